// Reading the log back in order, from the oldest segment, and following its tail: records are
// handed to an `ApplyFn` (the replica's `State.apply`); corruption is skipped and reported, a torn
// write at the end is waited past, a segment deleted under the reader (compaction) is a
// `GapError`. The files themselves are `_segments.ts`'s.
import {
  bodyLength,
  Check,
  checkRecord,
  REC_HEADER,
  SEG_HEADER,
  segmentName,
  SYNC0,
} from "./_format.ts";
import { tryOpenFile } from "../../runtime/fs.ts";
import { getLogger } from "../../util/log.ts";
import { type Log, Seg } from "./_segments.ts";

const logger = getLogger("dramatis.broker.FileBroker");

/** Thrown when a segment this reader still needed was deleted by compaction: replay again. */
export class GapError extends Error {}

/** Applies one record; see `State.apply`. */
export type ApplyFn = (
  kind: number,
  buf: Uint8Array,
  bodyStart: number,
  bodyEnd: number,
  seg: Seg,
  at: number,
) => void;

/** Reads the log in order, from the oldest segment, and follows its tail. */
export class LogReader {
  /** Open segments by base. */
  readonly segs: Map<number, Seg> = new Map();
  #cur: Seg | undefined;
  #off = SEG_HEADER;
  #buf = new Uint8Array(1024 * 1024);
  #scan = new Uint8Array(1024 * 1024);
  #reported = new Set<string>();
  /** The count of cuts (see `Log.lastCut`) when this reader last looked. */
  #cutEpoch = 0;

  constructor(private readonly log: Log, private readonly apply: ApplyFn) {}

  /** The segment being read and the offset of the next record in it. */
  get position(): { base: number; offset: number } {
    return { base: this.#cur?.base ?? 0, offset: this.#off };
  }

  /** Opens every segment present (so that compaction cannot pull one away) and starts at the oldest. */
  start(): void {
    this.log.readHead();
    this.#cutEpoch = this.log.lastCut().epoch;
    for (const base of this.log.listSegments()) {
      if (this.segs.has(base)) continue;
      const file = tryOpenFile(this.log.segmentPath(base));
      if (file) this.segs.set(base, new Seg(base, file.path, file));
    }
    const first = [...this.segs.keys()].sort((a, b) => a - b)[0];
    if (first === undefined) throw new GapError("no segment files");
    this.#cur = this.segs.get(first);
    this.#off = SEG_HEADER;
  }

  /**
   * Reads and applies every record appended since the last call. With `locked` (the caller holds
   * the lock, so no write is in progress), a partial record at the end is a torn write and is cut
   * off. Returns the number of records applied; throws `GapError` when it must start over.
   */
  catchUp(locked: boolean): number {
    const head = this.log.readHead();
    const cut = this.log.lastCut();
    if (cut.epoch !== this.#cutEpoch) {
      // A write that failed half-way was cut off again. Records read from that part were
      // never stored: if this reader applied any, its view is wrong and must be rebuilt.
      const safe = cut.epoch === this.#cutEpoch + 1 &&
        (this.#cur!.base !== cut.base || this.#off <= cut.offset);
      this.#cutEpoch = cut.epoch;
      if (!safe) {
        throw new GapError(
          `a write that failed was cut off ${segmentName(cut.base)} at offset ${cut.offset} ` +
            `after this process had read part of it`,
        );
      }
    }
    let applied = 0;
    for (;;) {
      const seg = this.#cur!;
      let nextBase: number;
      if (seg.hole) {
        // A placeholder for missing bytes: the log goes on at the next segment present.
        const after = this.log.listSegments().find((b) => b > seg.base);
        if (after === undefined) return applied;
        nextBase = after;
      } else {
        const sealed = head > seg.base;
        applied += this.#readSegment(seg, locked, sealed);
        if (!sealed) return applied;
        const size = seg.file.size();
        if (this.#off < size) return applied;
        nextBase = seg.base + size;
      }
      let next = this.segs.get(nextBase);
      if (!next) {
        let file = tryOpenFile(this.log.segmentPath(nextBase));
        if (!file && head > nextBase) {
          // Compaction deletes the oldest segments only: if an older one is still there, this
          // one was deleted by hand. Mark the hole (once, for every reader) and read on.
          if (!this.log.listSegments().some((b) => b < nextBase)) {
            throw new GapError(`segment ${segmentName(nextBase)} is gone`);
          }
          if (this.log.withLock(() => this.log.markHole(nextBase))) {
            file = tryOpenFile(this.log.segmentPath(nextBase));
          }
        }
        if (!file) return applied; // being created
        next = new Seg(nextBase, file.path, file);
        this.segs.set(nextBase, next);
      }
      if (next.file.size() < SEG_HEADER) return applied; // header not written yet
      this.#cur = next;
      this.#off = SEG_HEADER;
    }
  }

  #readSegment(seg: Seg, locked: boolean, sealed: boolean): number {
    let applied = 0;
    for (;;) {
      const buf = this.#buf;
      const n = seg.file.read(buf, this.#off);
      if (n === 0) return applied;
      let p = 0;
      let c: number = Check.OK;
      while (p < n) {
        c = checkRecord(buf, p, n);
        if (c !== Check.OK) break;
        const len = bodyLength(buf, p);
        this.apply(buf[p + 2]!, buf, p + REC_HEADER, p + REC_HEADER + len, seg, this.#off + p);
        applied++;
        p += REC_HEADER + len;
      }
      this.#off += p;
      if (p === n) {
        if (n < buf.length) return applied;
        continue;
      }
      if (c === Check.SHORT && n === buf.length) {
        // The chunk ended inside a record: read again from it (with room for it whole).
        if (p === 0) {
          this.#buf = new Uint8Array(Math.max(buf.length * 2, REC_HEADER + bodyLength(buf, 0)));
        }
        continue;
      }
      // A partial record at the end of the file is a write in progress, unless no write can be
      // (we hold the lock, or the segment is sealed): then it is a torn write. Only then, or for
      // a bad record, look for the next valid one: skipping a record that is merely still being
      // written would lose it.
      if (c === Check.SHORT && !locked && !sealed) return applied;
      const next = this.#resync(seg, this.#off);
      if (next >= 0) {
        logger.error(
          `Corrupt record in ${seg.path} at offset ${this.#off}: skipped ${next - this.#off} ` +
            `bytes (checksum mismatch or torn write); the records after it are intact.`,
        );
        this.#off = next;
        continue;
      }
      const size = seg.file.size();
      if (locked && !sealed && c === Check.SHORT) {
        // Only a partial record is cut off: bytes of a complete but bad record are never
        // changed, so a reader without the lock can always trust what it already judged bad.
        seg.file.truncate(this.#off);
        logger.warning(
          `Truncated a torn write at the end of ${seg.path} at offset ${this.#off} ` +
            `(${size - this.#off} bytes): a process stopped while writing; every complete ` +
            `record is kept.`,
        );
        return applied;
      }
      if (sealed) {
        logger.error(
          `Corrupt data at the end of ${seg.path} at offset ${this.#off}: skipped ` +
            `${size - this.#off} bytes.`,
        );
        this.#off = size;
      } else {
        const key = `${seg.path}:${this.#off}`;
        if (c === Check.BAD && !this.#reported.has(key)) {
          this.#reported.add(key);
          logger.debug(`Waiting past an invalid record in ${seg.path} at offset ${this.#off}.`);
        }
      }
      return applied;
    }
  }

  /** The file offset of the first valid record after `from`, or -1 when there is none (yet). */
  #resync(seg: Seg, from: number): number {
    let pos = from + 1;
    for (;;) {
      const buf = this.#scan;
      const n = seg.file.read(buf, pos);
      if (n === 0) return -1;
      let i = 0, shortAt = -1;
      for (;;) {
        i = buf.indexOf(SYNC0, i);
        if (i < 0 || i >= n) break;
        const c = checkRecord(buf, i, n);
        if (c === Check.OK) return pos + i;
        if (c === Check.SHORT && shortAt < 0) shortAt = i;
        i++;
      }
      if (n < buf.length) return -1;
      if (shortAt < 0) {
        pos += n;
      } else if (shortAt > 0) {
        pos += shortAt;
      } else {
        // A candidate longer than the scan buffer: make room for it whole, or step over it.
        const need = REC_HEADER + bodyLength(buf, 0);
        if (need > buf.length) this.#scan = new Uint8Array(need);
        else pos += 1;
      }
    }
  }

  /** Closes segments that were read to the end and hold no live message. */
  closeUnused(): void {
    const cur = this.#cur!.base;
    for (const [base, seg] of this.segs) {
      if (base < cur && seg.live <= 0) {
        seg.file.close();
        this.segs.delete(base);
      }
    }
  }

  /** Closes every segment. */
  close(): void {
    for (const seg of this.segs.values()) seg.file.close();
    this.segs.clear();
  }
}
