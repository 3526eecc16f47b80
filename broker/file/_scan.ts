// Finding messages by message id. The replica knows messages by log id only (a message id costs
// memory per pending message), so `cancel`, `findMessage` and the browse actions read the log's
// segment files and look at the JSON of every ENQ, SNAP and NACK record: the top-level
// `"message_id":"…"` is the last one in the JSON (asDict order: it comes after args, kwargs and
// options, and an escaped one inside a string never matches), found by looking back from the end
// of the JSON. Cost: one sequential read of the log and a walk over its record headers (tens of
// ms for 30 MB here, page cache warm). A retried, moved or debounced message appears under several
// log ids, of which at most one is live: the replica decides.
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

/**
 * Where the message JSON starts in the body at `buf[bs..]` of a record of `kind` (and sets
 * `logId[0]` to the message's log id; `id` is the record's own), or -1 for other kinds.
 */
function jsonStart(buf: Uint8Array, v: DataView, kind: number, bs: number, id: number): number {
  switch (kind) {
    case Kind.ENQ:
      logId[0] = id;
      return bs + 1 + buf[bs]! + 16; // queue, priority, eta
    case Kind.SNAP: {
      const q = bs + 65; // id, state, order key, owner, lease end, dead time, priority, eta
      logId[0] = v.getFloat64(bs, true);
      return q + 1 + buf[q]!;
    }
    case Kind.NACK: {
      const q = bs + 24; // owner, id, time; then queue, priority
      logId[0] = v.getFloat64(bs + 8, true);
      return q + 1 + buf[q]! + 8;
    }
  }
  return -1;
}
const logId = new Float64Array(1);

/** Where the top-level message id of the JSON in `buf[js..je)` starts, or -1. */
function messageIdAt(buf: Uint8Array, js: number, je: number): number {
  outer: for (let i = je - KEY.length; i >= js; i--) {
    for (let k = 0; k < KEY.length; k++) if (buf[i + k] !== KEY[k]) continue outer;
    return i + KEY.length;
  }
  return -1;
}

/** True when `buf[at..]` is `id` followed by a closing quote. */
function sameId(buf: Uint8Array, at: number, id: Uint8Array): boolean {
  for (let k = 0; k < id.length; k++) if (buf[at + k] !== id[k]) return false;
  return buf[at + id.length] === 0x22;
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
  const oneBytes = one === undefined ? undefined : encoder.encode(one);
  const note = (id: string, logId: number) => {
    let list = found.get(id);
    if (!list) found.set(id, list = []);
    list.push(logId);
  };
  // Open them all first: compaction may delete one meanwhile (an open file stays readable).
  const files = segments.map((s) => ({
    base: s.base,
    file: tryOpenFile(s.path, { readOnly: true }),
  })).reverse();
  let buf = new Uint8Array(CHUNK);
  let view = new DataView(buf.buffer);
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
          const js = jsonStart(buf, view, buf[p + 2]!, bs, base + pos + p);
          const s = js >= 0 && js < be ? messageIdAt(buf, js, be) : -1;
          if (s >= 0 && oneBytes) {
            if (sameId(buf, s, oneBytes)) note(one!, logId[0]!);
          } else if (s >= 0) {
            const e = buf.indexOf(0x22, s);
            const id = e < 0 || e > be ? undefined : decoder.decode(buf.subarray(s, e));
            if (id !== undefined && wanted.has(id)) note(id, logId[0]!);
          }
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
      if (found.size > 0 && enough(found)) break;
    }
  } finally {
    for (const f of files) f.file?.close();
  }
  return found;
}
