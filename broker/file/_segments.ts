// The log on disk: segment files, the head pointer in broker.lock, appending under the lock,
// sealing segments, and reading records back in order (with corruption and torn-tail handling).
import {
  bodyLength,
  Check,
  checkRecord,
  type Cut,
  CUT_AT,
  decodeCut,
  decodeHead,
  decodeSegmentHeader,
  decodeTail,
  encodeCut,
  encodeHead,
  encodeSegmentHeader,
  encodeTail,
  LOCK_HEADER,
  LOCK_READ,
  parseSegmentName,
  REC_HEADER,
  SEG_HEADER,
  SEG_HOLE,
  segmentFlags,
  segmentName,
  SYNC0,
  TAIL_AT,
} from "./_format.ts";
import {
  accessModes,
  type FileAccess,
  listDir,
  makeDir,
  openFile,
  type RawFile,
  removeFile,
  statPath,
  syncDir,
  tryOpenFile,
} from "../../runtime/fs.ts";
import { getLogger } from "../../util/log.ts";

const logger = getLogger("dramatis.broker.FileBroker");
/**
 * How far past a deleted newest segment the log goes on when its size is unknown: more than any
 * one write adds to a segment past `segmentSize`, so no log id can be used twice.
 */
const LOST_HEAD_BOUND = 2 ** 30;

/** One segment file, open for reading, with the live messages the replica knows in it. */
export class Seg {
  /** Live messages whose JSON is in this segment. */
  live = 0;
  /** Their bytes (JSON plus a fixed overhead per record). */
  liveBytes = 0;
  #hole: boolean | undefined;
  constructor(readonly base: number, readonly path: string, readonly file: RawFile) {}

  /** A placeholder for missing log bytes (`SEG_HOLE`): no records; the log goes on at the next file. */
  get hole(): boolean {
    if (this.#hole !== undefined) return this.#hole;
    const h = new Uint8Array(SEG_HEADER);
    if (this.file.read(h, 0) < SEG_HEADER) return false; // its header is being written
    return this.#hole = (segmentFlags(h) & SEG_HOLE) !== 0;
  }
}

/** The directory: lock, head pointer, segment files, appends. */
export class Log {
  readonly lockPath: string;
  #lockFile: RawFile | undefined;
  #locked = false;
  #writer: { base: number; file: RawFile } | undefined;
  /** Writer files replaced by a newer segment; the owner closes them once no sync needs them. */
  readonly retired: RawFile[] = [];
  #headBuf = new Uint8Array(LOCK_READ);
  #headRead = 0;
  /** Modes of the directory and of the files created in it. */
  readonly modes: { dir: number; file: number };

  constructor(readonly dir: string, readonly segmentSize: number, access: FileAccess = "owner") {
    this.lockPath = `${dir}/broker.lock`;
    this.modes = accessModes(access);
  }

  /** Creates the directory if needed and repairs what a crash may have left. */
  open(): void {
    makeDir(this.dir, this.modes.dir);
    this.#lockFile = openFile(this.lockPath, { create: true, mode: this.modes.file });
    this.withLock(() => {
      let head = this.readHead();
      const bases = this.listSegments();
      if (head < 0) {
        // A new directory (or a damaged lock file).
        head = bases.length === 0 ? 0 : this.#headLocked();
        this.#writeHead(head);
      } else if (!bases.includes(head) && (head > 0 || bases.length > 0)) {
        head = this.repairHead(head).base;
      }
      this.#removeStale(head);
      this.#ensureSegment(head).close();
      this.#repairTail(head);
      this.checkTail();
    });
  }

  /** Removes segment files past the head that hold nothing: left by a crash while sealing. */
  #removeStale(head: number): void {
    for (const base of this.listSegments()) {
      if (base <= head) continue;
      const size = statPath(this.segmentPath(base))?.size ?? 0;
      if (size <= SEG_HEADER) removeFile(this.segmentPath(base));
    }
  }

  /**
   * Compares the oldest segment present with the tail pointer: segments deleted from the start
   * of the log by hand are reported (once: the tail then moves to what is there).
   */
  checkTail(): void {
    const oldest = this.listSegments()[0];
    if (oldest === undefined) return;
    const b = new Uint8Array(12);
    const tail = this.#lockFile!.read(b, TAIL_AT) === 12 ? decodeTail(b) : -1;
    if (tail >= 0 && oldest > tail) {
      logger.error(
        `The log of ${this.dir} now starts at ${segmentName(oldest)}: the segments from ` +
          `${segmentName(tail)} on (log bytes ${tail}-${oldest}) are missing, deleted by ` +
          `something other than FileBroker. The messages recorded only in them are lost, and ` +
          `messages they recorded as done may be delivered again; the rest is read as usual.`,
      );
    }
    if (tail !== oldest) this.#writeTail(oldest);
  }

  /** Moves the tail pointer (durably: compaction deletes segments right after). */
  #writeTail(base: number): void {
    this.#lockFile!.write(encodeTail(base), TAIL_AT);
    this.#lockFile!.syncDataSync();
  }

  /** Runs `fn` holding the exclusive lock. `fn` must be synchronous. */
  withLock<T>(fn: () => T): T {
    if (this.#locked) return fn();
    const lock = this.#lockFile!;
    lock.lock();
    this.#locked = true;
    try {
      return fn();
    } finally {
      this.#locked = false;
      lock.unlock();
    }
  }

  /** True while this instance holds the lock. */
  get locked(): boolean {
    return this.#locked;
  }

  /** The base of the newest segment, or -1 when broker.lock has none. Reads the last cut too. */
  readHead(): number {
    const b = this.#headBuf;
    this.#headRead = this.#lockFile!.read(b, 0);
    if (this.#headRead < LOCK_HEADER) return -1;
    return decodeHead(b);
  }

  /** The last cut (see `CUT_AT`), as of the last `readHead()`. */
  lastCut(): Cut {
    return decodeCut(this.#headBuf.subarray(0, this.#headRead));
  }

  /** The head pointer, repaired from the segment list if broker.lock was damaged (locked). */
  #headLocked(): number {
    const head = this.readHead();
    if (head >= 0) return head;
    const bases = this.listSegments();
    const recovered = bases[bases.length - 1] ?? 0;
    logger.warning(
      `${this.lockPath} had no valid head pointer; using the newest segment, ` +
        `${segmentName(recovered)}.`,
    );
    this.#writeHead(recovered);
    return recovered;
  }

  #writeHead(base: number): void {
    this.#lockFile!.write(encodeHead(base), 0);
    this.#lockFile!.syncDataSync();
  }

  /** The path of the segment starting at global offset `base`. */
  segmentPath(base: number): string {
    return `${this.dir}/${segmentName(base)}`;
  }

  /** The bases of the segment files present, oldest first. */
  listSegments(): number[] {
    const out: number[] = [];
    for (const name of listDir(this.dir)) {
      const base = parseSegmentName(name);
      if (base >= 0) out.push(base);
    }
    return out.sort((a, b) => a - b);
  }

  /** Opens (creating it, with its header, if missing or empty) the segment at `base`. Locked. */
  #ensureSegment(base: number): RawFile {
    const path = this.segmentPath(base);
    const file = openFile(path, { create: true, mode: this.modes.file });
    const size = file.size();
    if (size < SEG_HEADER) {
      file.truncate(0);
      file.write(encodeSegmentHeader(base), 0);
      file.syncDataSync();
      syncDir(this.dir);
    } else {
      const h = new Uint8Array(SEG_HEADER);
      file.read(h, 0);
      if (decodeSegmentHeader(h) !== base) {
        logger.warning(`${path} has a damaged header; reading it anyway.`);
      }
    }
    return file;
  }

  /**
   * Appends `bytes` at the end of the newest segment, sealing it first when they would not fit.
   * Must hold the lock. Returns the file written, for a later `fdatasync`.
   */
  append(bytes: Uint8Array): RawFile {
    if (!this.#locked) throw new Error("Log.append() called without the lock");
    const head = this.#headLocked();
    let w = this.#writer;
    if (!w || w.base !== head) w = this.#switchWriter(head);
    let st = w.file.stat();
    if (st.links === 0) {
      // The file was deleted while in use: writing on would store nothing anyone can read.
      w = this.repairHead(w.base, st.size);
      st = w.file.stat();
    }
    let size = st.size;
    if (size < SEG_HEADER) {
      w.file.truncate(0);
      w.file.write(encodeSegmentHeader(w.base), 0);
      size = SEG_HEADER;
    } else if (size > SEG_HEADER && size + bytes.length > this.segmentSize) {
      w = this.roll();
      size = SEG_HEADER;
    }
    try {
      w.file.write(bytes, size);
    } catch (e) {
      throw new AppendError(e as Error, this.#undo(w, size));
    }
    return w.file;
  }

  /**
   * After a failed write (a full disk keeps a part of it): cuts the segment back to `size`, and
   * notes the cut in broker.lock, so that a reader that saw the part reads the log again. False
   * when the part could not be taken back.
   */
  #undo(w: { base: number; file: RawFile }, size: number): boolean {
    try {
      if (w.file.size() === size) return true;
      w.file.truncate(size);
      this.readHead();
      const last = this.lastCut();
      this.#lockFile!.write(
        encodeCut({ epoch: last.epoch + 1, base: w.base, offset: size }),
        CUT_AT,
      );
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The newest segment, at `head`, was deleted (by hand; locked): a placeholder (`SEG_HOLE`)
   * takes its place, and the log goes on in a new segment past every log id the deleted one can
   * have held (so that a process that still knows one never mistakes a new record for it):
   * `head + size` when its final size is known (from a descriptor still open on it), else a
   * generous bound. Reported once: by the process that moves the head.
   */
  repairHead(head: number, size?: number): { base: number; file: RawFile } {
    if (this.#headLocked() === head) {
      const next = head + (size ?? this.segmentSize + LOST_HEAD_BOUND);
      logger.error(
        `The newest segment of ${this.dir}, ${segmentName(head)}, was deleted by something ` +
          `other than FileBroker: the messages recorded only in it are lost, and messages it ` +
          `recorded as done may be delivered again. Going on in ${segmentName(next)}.`,
      );
      this.#placeholder(head);
      if (this.#writer?.base === head) {
        this.retired.push(this.#writer.file);
        this.#writer = undefined;
      }
      const w = this.#switchWriter(next);
      this.#writeHead(next);
      return w;
    }
    return this.#switchWriter(this.#headLocked());
  }

  /** Writes the placeholder of missing segment `base` (locked). */
  #placeholder(base: number): void {
    if (statPath(this.segmentPath(base))) return;
    const file = openFile(this.segmentPath(base), { create: true, mode: this.modes.file });
    try {
      file.write(encodeSegmentHeader(base, SEG_HOLE), 0);
      file.syncDataSync();
    } finally {
      file.close();
    }
    syncDir(this.dir);
  }

  /**
   * A segment between two present ones is missing (deleted by hand): puts a placeholder in its
   * place (`SEG_HOLE`), so that every reader goes on at the next segment and the loss is
   * reported once (locked). Returns false when nothing follows it (the head may be coming).
   */
  markHole(base: number): boolean {
    if (statPath(this.segmentPath(base))) return true;
    const next = this.listSegments().find((b) => b > base);
    if (next === undefined) return false;
    this.#placeholder(base);
    logger.error(
      `Segment ${segmentName(base)} of ${this.dir} is missing (log bytes ${base}-${next}; ` +
        `deleted by something other than FileBroker): the messages recorded only in it are ` +
        `lost, and messages it recorded as done may be delivered again. Reading on from ` +
        `${segmentName(next)}; the placeholder ${segmentName(base)} now marks the gap.`,
    );
    return true;
  }

  /** The size of the newest segment (locked). */
  headSize(): number {
    const head = this.#headLocked();
    const w = this.#writer && this.#writer.base === head ? this.#writer : this.#switchWriter(head);
    return w.file.size();
  }

  #switchWriter(base: number): { base: number; file: RawFile } {
    if (this.#writer) this.retired.push(this.#writer.file);
    this.#writer = { base, file: this.#ensureSegment(base) };
    return this.#writer;
  }

  /**
   * Seals the newest segment and starts the next one (locked). Order matters for crash safety:
   * the old segment is synced, then the head pointer is moved and synced, then the new file is
   * created and synced with the directory.
   */
  roll(): { base: number; file: RawFile } {
    const head = this.#headLocked();
    const w = this.#writer && this.#writer.base === head ? this.#writer : this.#switchWriter(head);
    const size = w.file.size();
    w.file.syncDataSync();
    const next = w.base + size;
    // The new file first, then the head: a head never points at a file that was not made, so a
    // missing head means a deleted one.
    this.#removeStale(head);
    const nw = this.#switchWriter(next);
    this.#writeHead(next);
    return nw;
  }

  /**
   * At open, with the lock: if the newest segment ends in a partial record (a process died while
   * writing), cut it off. Looks at the last MiB only; a longer torn write is skipped by readers.
   */
  #repairTail(head: number): void {
    const file = tryOpenFile(this.segmentPath(head));
    if (!file) return;
    try {
      const size = file.size();
      if (size <= SEG_HEADER) return;
      const start = Math.max(SEG_HEADER, size - 1024 * 1024);
      const buf = new Uint8Array(size - start);
      const n = file.read(buf, start);
      let p = 0;
      if (start > SEG_HEADER) {
        p = firstValid(buf, 0, n);
        if (p < 0) return;
      }
      while (p < n && checkRecord(buf, p, n) === Check.OK) p += REC_HEADER + bodyLength(buf, p);
      // Only a partial record is cut off (see LogReader), and only if nothing valid follows.
      if (p >= n || checkRecord(buf, p, n) !== Check.SHORT || firstValid(buf, p + 1, n) >= 0) {
        return;
      }
      file.truncate(start + p);
      file.syncDataSync();
      logger.warning(
        `Truncated a torn write at the end of ${file.path} at offset ${start + p} ` +
          `(${n - p} bytes): a process stopped while writing; every complete record is kept.`,
      );
    } finally {
      file.close();
    }
  }

  /** Deletes the segment files whose base is below `base` (locked). */
  deleteBefore(base: number): number {
    this.#writeTail(base);
    let n = 0;
    for (const b of this.listSegments()) {
      if (b >= base) break;
      if (removeFile(this.segmentPath(b))) n++;
    }
    if (n > 0) syncDir(this.dir);
    return n;
  }

  /** Closes every file. */
  close(): void {
    this.#writer?.file.close();
    this.#writer = undefined;
    for (const f of this.retired.splice(0)) f.close();
    this.#lockFile?.close();
    this.#lockFile = undefined;
  }
}

/** The first position in `buf[from..end)` where a complete, valid record starts, or -1. */
function firstValid(buf: Uint8Array, from: number, end: number): number {
  let i = from;
  for (;;) {
    i = buf.indexOf(SYNC0, i);
    if (i < 0 || i >= end) return -1;
    if (checkRecord(buf, i, end) === Check.OK) return i;
    i++;
  }
}

/** A write to the log failed; `undone` says whether any part of it that reached the file was taken back. */
export class AppendError extends Error {
  constructor(override readonly cause: Error, readonly undone: boolean) {
    super(cause.message, { cause });
  }
}

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
