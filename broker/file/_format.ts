// The bytes FileBroker writes: segment headers, the head pointer in broker.lock, and records.
// docs/file-broker.md describes the format; this file is its single implementation.
import { crc32c } from "./_crc32c.ts";

/** Record kinds. The numbers are on disk: never renumber. */
export const Kind = {
  ENQ: 1,
  CLAIM: 2,
  ACK: 3,
  REQUEUE: 4,
  NACK: 5,
  HEARTBEAT: 6,
  EXPIRE: 7,
  FLUSH: 8,
  FLUSHALL: 9,
  PURGE: 10,
  UNDEAD: 11,
  SNAP: 12,
  // Records of the operations (broker/file/_ops_state.ts applies them): cancel marks, unique
  // holders, schedule ticks, paused queues, progress.
  MARK: 13,
  UNIQUE: 14,
  TICK: 15,
  PAUSE: 16,
  PROGRESS: 17,
} as const;
/** The largest kind number this version knows. */
export const MAX_KIND = 17;

/** Record header: sync marker (2), kind (1), reserved (1), body length (4), CRC-32C (4). */
export const REC_HEADER = 12;
/** First byte of every record. `0xFF` and `0xF7` never occur in UTF-8 text. */
export const SYNC0 = 0xff;
/** Second byte of every record. */
export const SYNC1 = 0xf7;
/** The largest record body accepted: a bigger length field is corruption. */
export const MAX_BODY = 64 * 1024 * 1024;

/** Segment header: magic (8), base (8), creation time (8), flags (4), CRC-32C (4). */
export const SEG_HEADER = 32;
/**
 * Segment flag: this file is a placeholder for log bytes that went missing (a segment deleted by
 * hand); it holds no record, and the log goes on at the next segment present.
 */
export const SEG_HOLE = 1;
const SEG_MAGIC = [0x44, 0x52, 0x4d, 0x54, 0x53, 0x45, 0x47, 0x31]; // "DRMTSEG1"
const LOCK_MAGIC = [0x44, 0x52, 0x4d, 0x54, 0x4c, 0x43, 0x4b, 0x31]; // "DRMTLCK1"
/** Bytes of the head pointer at the start of broker.lock. */
export const LOCK_HEADER = 20;

/** The file name of the segment whose first byte has global offset `base`. */
export function segmentName(base: number): string {
  return `${base.toString(16).padStart(16, "0")}.seg`;
}

/** The base of a segment file name, or -1 when `name` is not a segment file. */
export function parseSegmentName(name: string): number {
  if (!/^[0-9a-f]{16}\.seg$/.test(name)) return -1;
  return parseInt(name.slice(0, 16), 16);
}

/** The 32-byte header of the segment starting at global offset `base`. */
export function encodeSegmentHeader(base: number, flags = 0): Uint8Array {
  const b = new Uint8Array(SEG_HEADER);
  const v = new DataView(b.buffer);
  b.set(SEG_MAGIC, 0);
  v.setFloat64(8, base, true);
  v.setFloat64(16, Date.now(), true);
  v.setUint32(24, flags, true);
  v.setUint32(28, crc32c(b, 0, 28), true);
  return b;
}

/** The base recorded in a segment header, or -1 when the header is not valid. */
export function decodeSegmentHeader(b: Uint8Array): number {
  if (b.length < SEG_HEADER) return -1;
  for (let i = 0; i < 8; i++) if (b[i] !== SEG_MAGIC[i]) return -1;
  const v = new DataView(b.buffer, b.byteOffset, SEG_HEADER);
  if (v.getUint32(28, true) !== crc32c(b, 0, 28)) return -1;
  return v.getFloat64(8, true);
}

/** The flags of a valid segment header (`SEG_HOLE`), else 0. */
export function segmentFlags(b: Uint8Array): number {
  if (decodeSegmentHeader(b) < 0) return 0;
  return new DataView(b.buffer, b.byteOffset, SEG_HEADER).getUint32(24, true);
}

/** The head pointer (base of the newest segment) as stored in broker.lock. */
export function encodeHead(base: number): Uint8Array {
  const b = new Uint8Array(LOCK_HEADER);
  b.set(LOCK_MAGIC, 0);
  new DataView(b.buffer).setFloat64(8, base, true);
  new DataView(b.buffer).setUint32(16, crc32c(b, 0, 16), true);
  return b;
}

/** The head pointer stored in `b`, or -1 when missing or invalid. */
export function decodeHead(b: Uint8Array): number {
  for (let i = 0; i < 8; i++) if (b[i] !== LOCK_MAGIC[i]) return -1;
  const v = new DataView(b.buffer, b.byteOffset, LOCK_HEADER);
  if (v.getUint32(16, true) !== crc32c(b, 0, 16)) return -1;
  return v.getFloat64(8, true);
}

/**
 * Where broker.lock holds the last _cut_: a write that failed half-way (a full disk) is cut off
 * the end of the newest segment again, so that a rejected send is never delivered; a reader that
 * had already read past the cut must read the log again. 28 bytes: the count of cuts so far
 * (f64), the segment's base (f64), the offset cut back to (f64), CRC-32C.
 */
export const CUT_AT = 24;
const CUT_LEN = 28;
/** Bytes of broker.lock a reader reads each time it looks for new records: head and cut. */
export const LOCK_READ = CUT_AT + CUT_LEN;
/**
 * Where broker.lock holds the _tail_: the base of the oldest segment that should exist (moved by
 * compaction before it deletes segments), so that a segment deleted from the start of the log is
 * noticed. 12 bytes: base (f64), CRC-32C.
 */
export const TAIL_AT = LOCK_READ;

/** The 12 bytes of the tail pointer. */
export function encodeTail(base: number): Uint8Array {
  const b = new Uint8Array(12);
  new DataView(b.buffer).setFloat64(0, base, true);
  new DataView(b.buffer).setUint32(8, crc32c(b, 0, 8), true);
  return b;
}

/** The tail pointer in `b` (12 bytes), or -1 when absent or invalid. */
export function decodeTail(b: Uint8Array): number {
  if (b.length < 12) return -1;
  const v = new DataView(b.buffer, b.byteOffset, 12);
  return v.getUint32(8, true) === crc32c(b, 0, 8) ? v.getFloat64(0, true) : -1;
}

/** A cut: the `epoch`-th, back to `offset` in the segment at `base`. */
export interface Cut {
  epoch: number;
  base: number;
  offset: number;
}

/** The 28 bytes of a cut record. */
export function encodeCut(cut: Cut): Uint8Array {
  const b = new Uint8Array(CUT_LEN);
  const v = new DataView(b.buffer);
  v.setFloat64(0, cut.epoch, true);
  v.setFloat64(8, cut.base, true);
  v.setFloat64(16, cut.offset, true);
  v.setUint32(24, crc32c(b, 0, 24), true);
  return b;
}

/** The cut stored at `b[at..]`; no cut yet (epoch 0) when absent or invalid. */
export function decodeCut(b: Uint8Array, at = CUT_AT): Cut {
  if (b.length < at + CUT_LEN) return { epoch: 0, base: 0, offset: 0 };
  const v = new DataView(b.buffer, b.byteOffset + at, CUT_LEN);
  if (v.getUint32(24, true) !== crc32c(b, at, at + 24)) return { epoch: 0, base: 0, offset: 0 };
  return {
    epoch: v.getFloat64(0, true),
    base: v.getFloat64(8, true),
    offset: v.getFloat64(16, true),
  };
}

/**
 * What `checkRecord` found at a position: `OK`, a complete record with a valid checksum; `SHORT`,
 * the bytes end before the record does (read more, or it is a torn tail); `BAD`, not a valid
 * record (bad marker, kind, length or checksum).
 */
export const Check = { OK: 0, SHORT: 1, BAD: 2 } as const;

/**
 * Checks the record starting at `buf[at]`, given that valid bytes end at `end`. On `OK`, the
 * body is `buf[at + REC_HEADER .. at + REC_HEADER + bodyLength(buf, at))`.
 */
export function checkRecord(buf: Uint8Array, at: number, end: number): number {
  if (end - at < REC_HEADER) {
    // Judge what is there: a wrong marker is BAD even when short.
    if (end > at && buf[at] !== SYNC0) return Check.BAD;
    if (end > at + 1 && buf[at + 1] !== SYNC1) return Check.BAD;
    return Check.SHORT;
  }
  if (buf[at] !== SYNC0 || buf[at + 1] !== SYNC1) return Check.BAD;
  const kind = buf[at + 2]!;
  if (kind === 0 || kind > MAX_KIND || buf[at + 3] !== 0) return Check.BAD;
  const len = bodyLength(buf, at);
  if (len > MAX_BODY) return Check.BAD;
  if (at + REC_HEADER + len > end) return Check.SHORT;
  const stored =
    (buf[at + 8]! | (buf[at + 9]! << 8) | (buf[at + 10]! << 16) | (buf[at + 11]! << 24)) >>>
    0;
  const crc = crc32c(buf, at + REC_HEADER, at + REC_HEADER + len, crc32c(buf, at + 2, at + 8));
  return crc === stored ? Check.OK : Check.BAD;
}

/** The body length field of the record at `buf[at]`. */
export function bodyLength(buf: Uint8Array, at: number): number {
  return (buf[at + 4]! | (buf[at + 5]! << 8) | (buf[at + 6]! << 16) | (buf[at + 7]! << 24)) >>> 0;
}

const encoder = new TextEncoder();

/**
 * A growable buffer that records are encoded into, field by field, with no other allocation:
 * `begin(kind)`, then the fields, then `end()` fills in the length and checksum.
 */
export class RecordWriter {
  buf: Uint8Array;
  #view: DataView;
  /** Bytes used. */
  length = 0;
  #start = -1;

  constructor(capacity = 64 * 1024) {
    this.buf = new Uint8Array(capacity);
    this.#view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Starts a record of `kind`. */
  begin(kind: number): void {
    this.reserve(REC_HEADER + 64);
    this.#start = this.length;
    const b = this.buf, s = this.length;
    b[s] = SYNC0;
    b[s + 1] = SYNC1;
    b[s + 2] = kind;
    b[s + 3] = 0;
    this.length += REC_HEADER;
  }

  /** Appends one byte. */
  u8(v: number): void {
    this.reserve(1);
    this.buf[this.length++] = v;
  }

  /** Appends a little-endian u32. */
  u32(v: number): void {
    this.reserve(4);
    this.#view.setUint32(this.length, v, true);
    this.length += 4;
  }

  /** Appends a little-endian f64. */
  f64(v: number): void {
    this.reserve(8);
    this.#view.setFloat64(this.length, v, true);
    this.length += 8;
  }

  /** Appends a queue name: 1-byte length and ASCII. */
  queue(name: string): void {
    this.reserve(1 + name.length);
    this.buf[this.length++] = name.length;
    for (let i = 0; i < name.length; i++) this.buf[this.length++] = name.charCodeAt(i);
  }

  /** Appends `text` as UTF-8 (the rest of the record). */
  text(text: string): void {
    this.reserve(text.length * 3);
    const r = encoder.encodeInto(text, this.buf.subarray(this.length));
    this.length += r.written;
  }

  /** Appends raw bytes. */
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** Ends the current record: writes its length and checksum. */
  end(): void {
    const s = this.#start;
    const len = this.length - s - REC_HEADER;
    if (len > MAX_BODY) {
      this.length = s;
      throw new RangeError(
        `A record of ${len} bytes is over the ${MAX_BODY}-byte limit: send smaller messages ` +
          `(store big payloads elsewhere and send a reference).`,
      );
    }
    this.#view.setUint32(s + 4, len, true);
    const crc = crc32c(this.buf, s + REC_HEADER, this.length, crc32c(this.buf, s + 2, s + 8));
    this.#view.setUint32(s + 8, crc, true);
    this.#start = -1;
  }

  /** Drops the record being built (after an error while encoding it). */
  abort(): void {
    if (this.#start >= 0) this.length = this.#start;
    this.#start = -1;
  }

  /** The encoded bytes (a view, valid until the next change). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** Empties the buffer; shrinks it if a burst made it big. */
  reset(): void {
    this.length = 0;
    this.#start = -1;
    if (this.buf.length > 4 * 1024 * 1024) {
      this.buf = new Uint8Array(64 * 1024);
      this.#view = new DataView(this.buf.buffer);
    }
  }
}

/** Reads fields of a record body. */
export class BodyReader {
  #view: DataView<ArrayBufferLike>;
  buf: Uint8Array;
  pos: number;
  end: number;
  constructor(buf: Uint8Array = new Uint8Array(0), start = 0, end = buf.length) {
    this.buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = start;
    this.end = end;
  }
  /**
   * Points this reader at another body, keeping its DataView while the buffer is the same: one
   * reader for many records, with no allocation per record.
   */
  at(buf: Uint8Array, pos: number, end = buf.length): this {
    if (buf !== this.buf) {
      this.buf = buf;
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.pos = pos;
    this.end = end;
    return this;
  }
  u8(): number {
    return this.buf[this.pos++]!;
  }
  u32(): number {
    const v = this.#view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(): number {
    const v = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  queue(): string {
    const n = this.buf[this.pos++]!;
    const s = asciiString(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

function asciiString(b: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i]!);
  return s;
}
