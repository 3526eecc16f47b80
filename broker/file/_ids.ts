// The lookup by message id of a process that browses (the dashboard, `dramatis cancel`): a hash
// of each message id -> the log ids that carried it, so `findMessage()` and the browse actions by
// id are a probe and one read of the JSON from its segment, not a scan of the log. Workers never
// build one (it costs ~17 bytes a live message): it starts at a process's first lookup by id,
// filled by the replay if the replica is not built yet, else by one scan of the segments
// (`_scan.ts`), and is then kept up to date as the replica applies ENQ, SNAP and NACK records
// (`_ops_hooks.ts`). Entries are never removed one by one: when the table is full, those whose
// log id is no longer live are dropped (so it follows the live messages, not the log's history).
// A probe only proposes log ids: the caller reads each one's JSON and checks its message id
// (two ids can share a 32-bit hash).
import { idBytes, type IdRef, messageIdOf } from "./_scan.ts";

const FIRST_BUCKETS = 1 << 12;
const MAX_LOAD = 0.7;

/** FNV-1a over `b[s..e)`. */
function hashOf(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5;
  for (let i = s; i < e; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

/** Message id hash -> log ids, open addressing (linear probing); log id 0 marks an empty bucket. */
export class IdLookup {
  #hash = new Uint32Array(FIRST_BUCKETS);
  #log = new Float64Array(FIRST_BUCKETS);
  #count = 0;
  #view: DataView | undefined;
  #viewOf: Uint8Array | undefined;
  readonly #ref: IdRef = { logId: 0, start: 0, end: 0 };

  /** `isLive(logId)`: true while the replica holds that message (entries of others are dropped). */
  constructor(private readonly isLive: (logId: number) => boolean) {}

  /** Entries held (live and not yet dropped). */
  get size(): number {
    return this.#count;
  }

  /** Bytes held by the table. */
  bytes(): number {
    return this.#hash.byteLength + this.#log.byteLength;
  }

  /** Notes the message of a record of `kind` (body `buf[bs..be)`, the record's log id `id`). */
  record(kind: number, buf: Uint8Array, bs: number, be: number, id: number): void {
    if (this.#viewOf !== buf) {
      this.#viewOf = buf;
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const ref = this.#ref;
    if (!messageIdOf(buf, this.#view!, kind, bs, be, id, ref)) return;
    this.note(buf, ref);
  }

  /** Notes that the message id in `buf[ref.start..ref.end)` is carried by `ref.logId`. */
  note(buf: Uint8Array, ref: IdRef): void {
    this.#add(hashOf(buf, ref.start, ref.end), ref.logId);
  }

  /** The log ids that may carry `messageId`, live or not (check each). */
  candidates(messageId: string): number[] {
    const b = idBytes(messageId);
    const h = hashOf(b, 0, b.length);
    const hs = this.#hash, ls = this.#log, mask = hs.length - 1;
    const out: number[] = [];
    for (let i = this.#home(h);; i = (i + 1) & mask) {
      const l = ls[i]!;
      if (l === 0) return out;
      if (hs[i] === h) out.push(l);
    }
  }

  #home(h: number): number {
    return Math.imul(h, 0x9e3779b1) >>> (32 - Math.log2(this.#hash.length));
  }

  #add(h: number, logId: number): void {
    if (this.#count + 1 > MAX_LOAD * this.#hash.length) this.#make();
    const hs = this.#hash, ls = this.#log, mask = hs.length - 1;
    let i = this.#home(h);
    for (; ls[i] !== 0; i = (i + 1) & mask) {
      if (ls[i] === logId && hs[i] === h) return; // seen already (a replay, a scan)
    }
    hs[i] = h;
    ls[i] = logId;
    this.#count++;
  }

  /**
   * Room for one more: the entries of live messages (each judged once), in a table twice their
   * number or more (so the next rebuild is as many additions away: amortised O(1) a note).
   */
  #make(): void {
    const oldH = this.#hash, oldL = this.#log;
    const keep = new Uint8Array(oldL.length);
    let live = 0;
    for (let i = 0; i < oldL.length; i++) {
      if (oldL[i] !== 0 && this.isLive(oldL[i]!)) {
        keep[i] = 1;
        live++;
      }
    }
    let n = oldH.length;
    while (live + 1 > n * MAX_LOAD / 2) n *= 2;
    this.#hash = new Uint32Array(n);
    this.#log = new Float64Array(n);
    this.#count = 0;
    for (let i = 0; i < oldL.length; i++) if (keep[i]) this.#add(oldH[i]!, oldL[i]!);
  }
}
