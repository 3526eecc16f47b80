// Big-endian reading and writing of AMQP's primitive types: octet, short, long, longlong,
// shortstr, longstr. Every read is bounds-checked and throws AmqpProtocolError on truncated
// input, so a malformed frame is an error, never a wrong value.
import { AmqpProtocolError } from "./errors.ts";

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A growable output buffer that frames are written into; `take()` hands out what was written. */
export class ByteWriter {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(size = 16_384) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }

  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  /** An unsigned 64-bit integer from a non-negative safe integer or a bigint. */
  u64(v: number | bigint): void {
    this.ensure(8);
    if (typeof v === "bigint") {
      this.view.setBigUint64(this.pos, v);
    } else {
      this.view.setUint32(this.pos, Math.floor(v / 0x1_0000_0000));
      this.view.setUint32(this.pos + 4, v >>> 0);
    }
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Writes `s` as UTF-8 at the current position; returns the byte length. */
  utf8(s: string): number {
    this.ensure(s.length * 3);
    const { written } = utf8.encodeInto(s, this.buf.subarray(this.pos));
    this.pos += written;
    return written;
  }

  /** A short string: one length octet, then at most 255 bytes of UTF-8. */
  shortstr(s: string): void {
    const at = this.pos;
    this.u8(0);
    const n = this.utf8(s);
    if (n > 255) {
      this.pos = at;
      throw new TypeError(
        `AMQP short strings hold at most 255 bytes; ${JSON.stringify(s.slice(0, 40))}... has ${n}.`,
      );
    }
    this.buf[at] = n;
  }

  /** A long string: a 32-bit length, then the bytes (UTF-8 for a string). */
  longstr(s: string | Uint8Array): void {
    if (typeof s === "string") {
      const at = this.pos;
      this.u32(0);
      const n = this.utf8(s);
      this.view.setUint32(at, n);
    } else {
      this.u32(s.length);
      this.bytes(s);
    }
  }

  /** A copy of what was written since the last `take()`. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    if (this.buf.length > 1 << 20) {
      this.buf = new Uint8Array(16_384); // do not keep a burst's buffer for ever
      this.view = new DataView(this.buf.buffer);
    }
    return out;
  }
}

/** Reads AMQP types from `bytes[pos, end)`, throwing AmqpProtocolError past `end`. */
export class ByteReader {
  readonly view: DataView;
  pos: number;

  constructor(readonly bytes: Uint8Array, pos = 0, readonly end = bytes.length) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new AmqpProtocolError(
        `truncated ${what}: needs ${n} byte(s) at offset ${this.pos}, ${this.end - this.pos} left`,
      );
    }
  }

  u8(what = "octet"): number {
    this.need(1, what);
    return this.bytes[this.pos++]!;
  }

  i8(): number {
    this.need(1, "signed octet");
    return this.view.getInt8(this.pos++);
  }

  u16(what = "short"): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  i16(): number {
    this.need(2, "signed short");
    const v = this.view.getInt16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what = "long"): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4, "signed long");
    const v = this.view.getInt32(this.pos);
    this.pos += 4;
    return v;
  }

  /** An unsigned 64-bit integer; throws beyond 2^53 (delivery tags and sizes never get there). */
  u64(what = "longlong"): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.pos), lo = this.view.getUint32(this.pos + 4);
    this.pos += 8;
    if (hi > 0x1f_ffff) throw new AmqpProtocolError(`${what} ${hi}:${lo} is beyond 2^53`);
    return hi * 0x1_0000_0000 + lo;
  }

  /** A signed 64-bit integer: a number when safe, else a bigint. */
  i64(): number | bigint {
    this.need(8, "signed longlong");
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
  }

  f32(): number {
    this.need(4, "float");
    const v = this.view.getFloat32(this.pos);
    this.pos += 4;
    return v;
  }

  f64(): number {
    this.need(8, "double");
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  raw(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  shortstr(what = "short string"): string {
    const n = this.u8(what);
    return decodeText(this.raw(n, what), what);
  }

  longstr(what = "long string"): string {
    const n = this.u32(what);
    return decodeText(this.raw(n, what), what);
  }
}

/** UTF-8 to a string; ASCII without the decoder (short names are most of what AMQP carries). */
export function decodeText(b: Uint8Array, what = "string"): string {
  if (b.length < 64) {
    let s = "";
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (c > 0x7f) return strict(b, what);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return strict(b, what);
}

function strict(b: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(b);
  } catch {
    throw new AmqpProtocolError(`${what} is not valid UTF-8`);
  }
}

/** UTF-8 text when `b` is valid UTF-8, else undefined. */
export function tryText(b: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(b);
  } catch {
    return undefined;
  }
}
