// Finding messages by message id. The replica knows messages by log id only (a message id costs
// memory per pending message), so `cancel` and the browse actions of a process without an id
// lookup (`_ids.ts`) read the log's segment files and look at the JSON of every ENQ, SNAP and
// NACK record: the top-level `"message_id":"…"` is the last one in the JSON (asDict order: it
// comes after args, kwargs and options, and an escaped one inside a string never matches), found
// by looking back from the end of the JSON. Cost: one sequential read of the log and a walk over
// its record headers (~200 ms for 200 MB here, page cache warm). A retried, moved or debounced
// message appears under several log ids, of which at most one is live: the replica decides.
import {
  bodyLength,
  Kind,
  MAX_BODY,
  MAX_KIND,
  REC_HEADER,
  SEG_HEADER,
  SYNC0,
  SYNC1,
} from "./_format.ts";
import { tryOpenFile } from "../../runtime/fs.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const KEY = encoder.encode('"message_id":"');
const CHUNK = 4 * 1024 * 1024;

/** Where one record's message id is: its message's log id, and the id's bytes `[start, end)`. */
export interface IdRef {
  logId: number;
  start: number;
  end: number;
}

/**
 * Where the message JSON starts in the body at `buf[bs..]` of a record of `kind` (and sets
 * `ref.logId` to the message's log id; `id` is the record's own), or -1 for other kinds.
 */
function jsonStart(
  buf: Uint8Array,
  v: DataView,
  kind: number,
  bs: number,
  id: number,
  ref: IdRef,
): number {
  switch (kind) {
    case Kind.ENQ:
      ref.logId = id;
      return bs + 1 + buf[bs]! + 16; // queue, priority, eta
    case Kind.SNAP: {
      const q = bs + 65; // id, state, order key, owner, lease end, dead time, priority, eta
      ref.logId = v.getFloat64(bs, true);
      return q + 1 + buf[q]!;
    }
    case Kind.NACK: {
      const q = bs + 24; // owner, id, time; then queue, priority
      ref.logId = v.getFloat64(bs + 8, true);
      return q + 1 + buf[q]! + 8;
    }
  }
  return -1;
}

/** Where the top-level message id of the JSON in `buf[js..je)` starts, or -1. */
function messageIdAt(buf: Uint8Array, js: number, je: number): number {
  outer: for (let i = je - KEY.length; i >= js; i--) {
    for (let k = 0; k < KEY.length; k++) if (buf[i + k] !== KEY[k]) continue outer;
    return i + KEY.length;
  }
  return -1;
}

/**
 * The message id of the record of `kind` whose body is `buf[bs..be)` (`id`: the record's own log
 * id), into `ref`; false for a kind that carries no message, or no id found. The id's bytes are
 * as in the JSON (escapes kept).
 */
export function messageIdOf(
  buf: Uint8Array,
  v: DataView,
  kind: number,
  bs: number,
  be: number,
  id: number,
  ref: IdRef,
): boolean {
  if (kind !== Kind.ENQ && kind !== Kind.SNAP && kind !== Kind.NACK) return false;
  const js = jsonStart(buf, v, kind, bs, id, ref);
  const s = js >= 0 && js < be ? messageIdAt(buf, js, be) : -1;
  if (s < 0) return false;
  let e = s;
  while (e < be && buf[e] !== 0x22) e += buf[e] === 0x5c ? 2 : 1;
  if (e >= be) return false;
  ref.start = s;
  ref.end = e;
  return true;
}

/** The bytes a message id has in the JSON (between its quotes). */
export function idBytes(messageId: string): Uint8Array {
  return encoder.encode(JSON.stringify(messageId).slice(1, -1));
}

/**
 * The body length of the record at `buf[p]` if its framing is plausible (marker, kind, length);
 * -1 for a record cut off by `n`, -2 for bad framing. The checksum is not verified: a scan only
 * proposes log ids, which the replica then judges.
 */
function frame(buf: Uint8Array, p: number, n: number): number {
  if (n - p < REC_HEADER) return -1;
  const kind = buf[p + 2]!;
  if (buf[p] !== SYNC0 || buf[p + 1] !== SYNC1 || kind === 0 || kind > MAX_KIND) return -2;
  const len = bodyLength(buf, p);
  if (len > MAX_BODY) return -2;
  return p + REC_HEADER + len > n ? -1 : len;
}

/**
 * Calls `visit` with the message id of every ENQ, SNAP and NACK record of `segments` (the
 * segment files, oldest first). They are read newest first, and the walk stops after a segment
 * once `enough()` says so. `visit` must not keep `buf` (it is reused).
 */
export function walkMessageIds(
  segments: readonly { base: number; path: string }[],
  visit: (buf: Uint8Array, ref: IdRef) => void,
  enough: () => boolean = () => false,
): void {
  // Open them all first: compaction may delete one meanwhile (an open file stays readable).
  const files = segments.map((s) => ({
    base: s.base,
    file: tryOpenFile(s.path, { readOnly: true }),
  })).reverse();
  let buf = new Uint8Array(CHUNK);
  let view = new DataView(buf.buffer);
  const ref: IdRef = { logId: 0, start: 0, end: 0 };
  try {
    for (const { base, file } of files) {
      if (!file) continue;
      let pos = SEG_HEADER;
      for (;;) {
        const n = file.read(buf, pos);
        if (n <= 0) break;
        let p = 0;
        while (p < n) {
          const len = frame(buf, p, n);
          if (len === -1) break;
          if (len === -2) {
            const next = buf.indexOf(SYNC0, p + 1);
            p = next < 0 ? n : next;
            continue;
          }
          const bs = p + REC_HEADER, be = bs + len;
          if (messageIdOf(buf, view, buf[p + 2]!, bs, be, base + pos + p, ref)) visit(buf, ref);
          p = be;
        }
        if (p === 0 && n === buf.length) {
          // One record bigger than the chunk: read it whole.
          buf = new Uint8Array(buf.length * 2 + bodyLength(buf, 0));
          view = new DataView(buf.buffer);
          continue;
        }
        pos += p;
        if (n < buf.length && p < n) break; // a record being written (or torn) at the end
      }
      if (enough()) break;
    }
  } finally {
    for (const f of files) f.file?.close();
  }
}

/**
 * The log ids of the messages whose message id is in `wanted`, per id; ids not found are absent.
 * `segments`: the segment files, oldest first. They are read newest first, and the scan stops
 * after a segment once `enough(found)` says so (a live message found: older ones are finished).
 */
export function scanMessageIds(
  segments: readonly { base: number; path: string }[],
  wanted: ReadonlySet<string>,
  enough: (found: Map<string, number[]>) => boolean = () => false,
): Map<string, number[]> {
  const found = new Map<string, number[]>();
  if (wanted.size === 0) return found;
  // One wanted id (cancel, findMessage): compared as bytes, no string made per record.
  const one = wanted.size === 1 ? [...wanted][0] : undefined;
  const oneBytes = one === undefined ? undefined : idBytes(one);
  const note = (id: string, logId: number) => {
    let list = found.get(id);
    if (!list) found.set(id, list = []);
    list.push(logId);
  };
  walkMessageIds(segments, (buf, ref) => {
    if (oneBytes) {
      if (sameBytes(buf, ref, oneBytes)) note(one!, ref.logId);
      return;
    }
    let id = decoder.decode(buf.subarray(ref.start, ref.end));
    if (id.includes("\\")) {
      try {
        id = JSON.parse(`"${id}"`) as string;
      } catch {
        return; // not a JSON string: not a message this broker wrote
      }
    }
    if (wanted.has(id)) note(id, ref.logId);
  }, () => found.size > 0 && enough(found));
  return found;
}

/** True when the id at `ref` is `id`'s bytes. */
function sameBytes(buf: Uint8Array, ref: IdRef, id: Uint8Array): boolean {
  if (ref.end - ref.start !== id.length) return false;
  for (let k = 0; k < id.length; k++) if (buf[ref.start + k] !== id[k]) return false;
  return true;
}
