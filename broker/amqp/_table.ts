// AMQP field tables and arrays (queue arguments, message headers, client and server
// properties), with every field type RabbitMQ uses:
//   t bool, b int8, B uint8, s int16, u uint16, I int32, i uint32, l int64, f float, d double,
//   D decimal, S long string, A array, T timestamp, F table, V void, x byte array.
// Decoding gives plain values: numbers (a bigint for an int64 beyond 2^53), strings (a
// Uint8Array for a long string that is not UTF-8), Date for timestamps, AmqpDecimal, null for
// void. Encoding picks a type from the JS value (boolean t, integer I or l, other number d,
// string S, Uint8Array x, Date T, null V, array A, object F); wrap a value in `typed()` for
// another type (pika writes Python ints as I, so queue arguments need no wrapping).
import { AmqpProtocolError } from "./errors.ts";
import { ByteReader, type ByteWriter, tryText } from "./_bytes.ts";

/**
 * An AMQP decimal: `value / 10^scale`.
 *
 * @example
 * ```ts
 * import type { AmqpDecimal } from "./_table.ts";
 * const price: AmqpDecimal = { scale: 2, value: 1999 }; // 19.99
 * ```
 */
export interface AmqpDecimal {
  /** Number of decimal digits after the point. */
  scale: number;
  /** The unscaled value (a signed 32-bit integer). */
  value: number;
}

/** A field type letter. */
export type FieldType =
  | "t"
  | "b"
  | "B"
  | "s"
  | "u"
  | "I"
  | "i"
  | "l"
  | "f"
  | "d"
  | "D"
  | "S"
  | "A"
  | "T"
  | "F"
  | "V"
  | "x";

/** A value with an explicit field type (from `typed()`). */
export interface TypedValue {
  /** The field type letter to write. */
  readonly amqpType: FieldType;
  /** The value. */
  readonly value: FieldValue;
}

/**
 * A value in an AMQP field table or array.
 *
 * @example
 * ```ts
 * import type { FieldTable } from "./_table.ts";
 * const args: FieldTable = { "x-max-priority": 10, "x-dead-letter-exchange": "" };
 * ```
 */
export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Date
  | AmqpDecimal
  | null
  | FieldValue[]
  | TypedValue
  | { [key: string]: FieldValue };

/** An AMQP field table: names (short strings) to values. */
export type FieldTable = { [key: string]: FieldValue };

/**
 * A value to be written with the field type `type` instead of the one its JS type implies.
 *
 * @example
 * ```ts
 * import { typed } from "./_table.ts";
 * const headers = { "x-retries": typed("B", 3), "x-ratio": typed("f", 0.5) };
 * ```
 */
export function typed(type: FieldType, value: FieldValue): TypedValue {
  return { amqpType: type, value };
}

function isTyped(v: object): v is TypedValue {
  return typeof (v as TypedValue).amqpType === "string" && "value" in v;
}

function isDecimal(v: object): v is AmqpDecimal {
  const keys = Object.keys(v);
  return keys.length === 2 && typeof (v as AmqpDecimal).scale === "number" &&
    typeof (v as AmqpDecimal).value === "number";
}

function int(type: FieldType, v: FieldValue, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new TypeError(
      `AMQP field type ${type} takes an integer from ${min} to ${max}, got ${v}.`,
    );
  }
  return v;
}

/** Writes `table` (its 32-bit byte length first). */
export function writeTable(w: ByteWriter, table: FieldTable): void {
  const at = w.pos;
  w.u32(0);
  for (const key of Object.keys(table)) {
    const v = table[key];
    if (v === undefined) continue;
    w.shortstr(key);
    writeField(w, v);
  }
  w.view.setUint32(at, w.pos - at - 4);
}

function writeArray(w: ByteWriter, values: FieldValue[]): void {
  const at = w.pos;
  w.u32(0);
  for (const v of values) writeField(w, v);
  w.view.setUint32(at, w.pos - at - 4);
}

/** Writes one value: its type letter, then the value. */
export function writeField(w: ByteWriter, v: FieldValue): void {
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !(v instanceof Date)) {
    if (isTyped(v)) return writeTyped(w, v.amqpType, v.value);
    if (Array.isArray(v)) return writeTyped(w, "A", v);
    if (isDecimal(v)) return writeTyped(w, "D", v);
    return writeTyped(w, "F", v);
  }
  switch (typeof v) {
    case "boolean":
      return writeTyped(w, "t", v);
    case "number":
      if (Number.isInteger(v)) {
        return writeTyped(w, v >= -0x8000_0000 && v <= 0x7fff_ffff ? "I" : "l", v);
      }
      return writeTyped(w, "d", v);
    case "bigint":
      return writeTyped(w, "l", v);
    case "string":
      return writeTyped(w, "S", v);
  }
  if (v === null) return writeTyped(w, "V", null);
  if (v instanceof Uint8Array) return writeTyped(w, "x", v);
  return writeTyped(w, "T", v);
}

function writeTyped(w: ByteWriter, type: FieldType, v: FieldValue): void {
  w.u8(type.charCodeAt(0));
  w.ensure(9);
  switch (type) {
    case "t":
      if (typeof v !== "boolean") {
        throw new TypeError(`AMQP field type t takes a boolean, got ${v}.`);
      }
      return w.u8(v ? 1 : 0);
    case "b":
      w.view.setInt8(w.pos, int(type, v, -128, 127));
      w.pos += 1;
      return;
    case "B":
      return w.u8(int(type, v, 0, 255));
    case "s":
      w.view.setInt16(w.pos, int(type, v, -0x8000, 0x7fff));
      w.pos += 2;
      return;
    case "u":
      return w.u16(int(type, v, 0, 0xffff));
    case "I":
      w.view.setInt32(w.pos, int(type, v, -0x8000_0000, 0x7fff_ffff));
      w.pos += 4;
      return;
    case "i":
      return w.u32(int(type, v, 0, 0xffff_ffff));
    case "l": {
      const big = typeof v === "bigint"
        ? v
        : BigInt(int(type, v, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
      if (big < -(2n ** 63n) || big >= 2n ** 63n) {
        throw new TypeError(`AMQP field type l takes a signed 64-bit integer, got ${big}.`);
      }
      w.view.setBigInt64(w.pos, big);
      w.pos += 8;
      return;
    }
    case "f":
    case "d":
      if (typeof v !== "number") throw new TypeError(`AMQP field type ${type} takes a number.`);
      if (type === "f") w.view.setFloat32(w.pos, v);
      else w.view.setFloat64(w.pos, v);
      w.pos += type === "f" ? 4 : 8;
      return;
    case "D": {
      const d = v as AmqpDecimal;
      w.u8(int("D", d.scale, 0, 255));
      w.view.setInt32(w.pos, int("D", d.value, -0x8000_0000, 0x7fff_ffff));
      w.pos += 4;
      return;
    }
    case "S":
    case "x":
      if (typeof v !== "string" && !(v instanceof Uint8Array)) {
        throw new TypeError(`AMQP field type ${type} takes a string or a Uint8Array.`);
      }
      return w.longstr(v);
    case "T": {
      const seconds = v instanceof Date ? Math.floor(v.getTime() / 1000) : v;
      return w.u64(int("T", seconds as number, 0, Number.MAX_SAFE_INTEGER));
    }
    case "A":
      if (!Array.isArray(v)) throw new TypeError("AMQP field type A takes an array.");
      return writeArray(w, v);
    case "F":
      return writeTable(w, v as FieldTable);
    case "V":
      return;
  }
  throw new TypeError(`Unknown AMQP field type ${JSON.stringify(type)}.`);
}

/** Reads a field table (32-bit byte length, then entries). */
export function readTable(r: ByteReader): FieldTable {
  const size = r.u32("table length");
  r.need(size, "field table");
  const end = r.pos + size;
  const sub = new ByteReader(r.bytes, r.pos, end);
  const out: FieldTable = {};
  while (sub.pos < end) {
    const key = sub.shortstr("table key");
    out[key] = readField(sub);
  }
  r.pos = end;
  return out;
}

function readArray(r: ByteReader): FieldValue[] {
  const size = r.u32("array length");
  r.need(size, "field array");
  const end = r.pos + size;
  const sub = new ByteReader(r.bytes, r.pos, end);
  const out: FieldValue[] = [];
  while (sub.pos < end) out.push(readField(sub));
  r.pos = end;
  return out;
}

/** Reads one value (type letter, then the value). */
export function readField(r: ByteReader): FieldValue {
  const type = r.u8("field type");
  switch (type) {
    case 0x74: // t
      return r.u8("boolean") !== 0;
    case 0x62: // b
      return r.i8();
    case 0x42: // B
      return r.u8();
    case 0x73: // s
      return r.i16();
    case 0x75: // u
      return r.u16();
    case 0x49: // I
      return r.i32();
    case 0x69: // i
      return r.u32();
    case 0x6c: // l
      return r.i64();
    case 0x66: // f
      return r.f32();
    case 0x64: // d
      return r.f64();
    case 0x44: // D
      return { scale: r.u8("decimal scale"), value: r.i32() };
    case 0x53: { // S
      const b = r.raw(r.u32("long string length"), "long string");
      return tryText(b) ?? b.slice();
    }
    case 0x78: // x
      return r.raw(r.u32("byte array length"), "byte array").slice();
    case 0x54: // T
      return new Date(r.u64("timestamp") * 1000);
    case 0x41: // A
      return readArray(r);
    case 0x46: // F
      return readTable(r);
    case 0x56: // V
      return null;
  }
  throw new AmqpProtocolError(
    `unknown field type 0x${type.toString(16).padStart(2, "0")} (${
      JSON.stringify(String.fromCharCode(type))
    })`,
  );
}
