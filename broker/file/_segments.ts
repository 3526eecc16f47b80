// The log on disk: segment files, the head pointer in broker.lock, appending under the lock,
// sealing segments, repairing a torn tail. `_log_reader.ts` reads the records back in order.
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
