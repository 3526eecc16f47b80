// Finding messages by message id. The replica knows messages by log id only (a message id costs
// memory per pending message), so `cancel`, `findMessage` and the browse actions read the log's
// segment files and look at the JSON of every ENQ, SNAP and NACK record: the top-level
// `"message_id":"…"` is the last one in the JSON (asDict order: it comes after args, kwargs and
// options, and an escaped one inside a string never matches). A chunk that holds none of the
// wanted ids is only walked record by record. Cost: one sequential read of the log (about 1-2 ms per
// 8 MiB segment here); a retried, moved or debounced message appears under several log ids, of
// which at most one is live.
import { bodyLength, Check, checkRecord, Kind, REC_HEADER, SEG_HEADER, SYNC0 } from "./_format.ts";
import { tryOpenFile } from "./_fs.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const KEY = encoder.encode('"message_id":"');
const CHUNK = 4 * 1024 * 1024;
/** Past this many wanted ids, every record's id is decoded instead of looking for each first. */
const PREFILTER_MAX = 8;

/** Where a message's JSON starts in a record body, and its log id; undefined for other kinds. */
function locate(
  buf: Uint8Array,
  kind: number,
  bs: number,
  id: number,
): [number, number] | undefined {
  const v = new DataView(buf.buffer, buf.byteOffset);
  switch (kind) {
    case Kind.ENQ:
      return [id, bs + 1 + buf[bs] + 16];
    case Kind.SNAP: {
      const q = bs + 65; // id, state, order key, owner, lease end, dead time, priority, eta
      return [v.getFloat64(bs, true), q + 1 + buf[q]];
    }
    case Kind.NACK: {
      const q = bs + 24; // owner, id, time
      return [v.getFloat64(bs + 8, true), q + 1 + buf[q] + 8];
    }
  }
  return undefined;
}

/** The top-level message id of the JSON in `buf[js..je)`, or undefined. */
function messageIdOf(buf: Uint8Array, js: number, je: number): string | undefined {
  outer: for (let i = je - KEY.length; i >= js; i--) {
    for (let k = 0; k < KEY.length; k++) if (buf[i + k] !== KEY[k]) continue outer;
    const s = i + KEY.length;
    const e = buf.indexOf(0x22, s);
    return e < 0 || e > je ? undefined : decoder.decode(buf.subarray(s, e));
  }
  return undefined;
}

/** True when `buf[0..n)` contains one of `patterns`. */
function containsAny(buf: Uint8Array, n: number, patterns: Uint8Array[]): boolean {
  for (const p of patterns) {
    let i = 0;
    for (;;) {
      i = buf.indexOf(p[0], i);
      if (i < 0 || i + p.length > n) break;
      let k = 1;
      while (k < p.length && buf[i + k] === p[k]) k++;
      if (k === p.length) return true;
      i++;
    }
  }
  return false;
}

/**
 * The log ids of the messages whose message id is in `wanted`, per id, in log order (oldest
 * first); ids not found are absent. `segments`: the segment files, oldest first.
 */
export function scanMessageIds(
  segments: readonly { base: number; path: string }[],
  wanted: ReadonlySet<string>,
): Map<string, number[]> {
  const found = new Map<string, number[]>();
  if (wanted.size === 0) return found;
  const patterns = wanted.size <= PREFILTER_MAX
    ? [...wanted].map((id) => encoder.encode(`"message_id":"${id}"`))
    : undefined;
  // Open them all first: compaction may delete one meanwhile (an open file stays readable).
  const files = segments.map((s) => ({
    base: s.base,
    file: tryOpenFile(s.path, { readOnly: true }),
  }));
  let buf = new Uint8Array(CHUNK);
  try {
    for (const { base, file } of files) {
      if (!file) continue;
      let pos = SEG_HEADER;
      for (;;) {
        const n = file.read(buf, pos);
        if (n <= 0) break;
        const look = !patterns || containsAny(buf, n, patterns);
        let p = 0;
        while (p < n) {
          const c = checkRecord(buf, p, n);
          if (c === Check.SHORT) break;
          if (c === Check.BAD) {
            const next = buf.indexOf(SYNC0, p + 1);
            p = next < 0 ? n : next;
            continue;
          }
          const len = bodyLength(buf, p);
          const bs = p + REC_HEADER, be = bs + len;
          if (look) {
            const at = locate(buf, buf[p + 2], bs, base + pos + p);
            if (at && at[1] < be) {
              const id = messageIdOf(buf, at[1], be);
              if (id !== undefined && wanted.has(id)) {
                let list = found.get(id);
                if (!list) found.set(id, list = []);
                list.push(at[0]);
              }
            }
          }
          p = be;
        }
        if (p === 0 && n === buf.length) {
          // One record bigger than the chunk: read it whole.
          buf = new Uint8Array(buf.length * 2 + bodyLength(buf, 0));
          continue;
        }
        pos += p;
        if (n < buf.length && p < n) break; // a record being written (or torn) at the end
      }
    }
  } finally {
    for (const f of files) f.file?.close();
  }
  return found;
}
