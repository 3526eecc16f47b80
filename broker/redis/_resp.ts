/**
 * RESP (REdis Serialization Protocol) parsing and command encoding, for RESP2 and RESP3.
 *
 * Private module: the public client is `./client.ts`.
 *
 * @example
 * ```ts
 * import { encodeCommand, RespParser } from "./_resp.ts";
 * const parser = new RespParser();
 * parser.feed(new TextEncoder().encode("+OK\r\n:42\r\n"));
 * console.log(parser.next(), parser.next()); // "OK" 42
 * console.log(encodeCommand(["GET", "key"]).length); // 22
 * ```
 * @module
 */
import { BrokerError } from "../../errors.ts";

/**
 * An error reply from Redis (`-ERR ...` or a RESP3 bulk error). The message is Redis's own
 * message, for example `WRONGTYPE Operation against a key holding the wrong kind of value`.
 *
 * @example
 * ```ts
 * import { RedisError } from "./_resp.ts";
 * const e = new RedisError("NOSCRIPT No matching script. Please use EVAL.");
 * console.log(e.code); // "NOSCRIPT"
 * ```
 */
export class RedisError extends BrokerError {
  /** The error's first word, e.g. `ERR`, `WRONGTYPE`, `NOSCRIPT`, `WRONGPASS`. */
  readonly code: string;
  /** The name of the command that failed (e.g. `LPUSH`), when known. */
  command: string | undefined;

  /** Creates the error from Redis's error text. */
  constructor(message: string, options?: ErrorOptions & { command?: string }) {
    super(message, options);
    const space = message.indexOf(" ");
    this.code = space === -1 ? message : message.slice(0, space);
    this.command = options?.command;
  }
}

/**
 * Raised when the bytes received are not valid RESP: the connection cannot be trusted any more
 * and is dropped.
 *
 * @example
 * ```ts
 * import { RespParser, RespProtocolError } from "./_resp.ts";
 * const parser = new RespParser();
 * parser.feed(new TextEncoder().encode("HTTP/1.1 400\r\n"));
 * try { parser.next(); } catch (e) { console.log(e instanceof RespProtocolError); } // true
 * ```
 */
export class RespProtocolError extends BrokerError {}

/**
 * A reply decoded from RESP.
 *
 * - simple strings, verbatim strings (without their `txt:` prefix) and bulk strings: `string`,
 *   or `Uint8Array` for bulk and verbatim strings in bytes mode;
 * - integers: `number`, or `bigint` beyond ±2^53; RESP3 big numbers: `bigint`; doubles: `number`;
 * - nil (RESP2 null bulk string and null array, RESP3 `_`): `null`; booleans: `boolean`;
 * - arrays: `Reply[]`; RESP3 maps: `Map`; sets: `Set`;
 * - an error nested inside an aggregate (e.g. in an `EXEC` reply): a `RedisError` value.
 *
 * @example
 * ```ts
 * import type { Reply } from "./_resp.ts";
 * const r: Reply = ["a", 1, null, new Map([["k", "v"]])];
 * ```
 */
export type Reply =
  | string
  | number
  | bigint
  | boolean
  | null
  | Uint8Array
  | RedisError
  | Reply[]
  | Map<Reply, Reply>
  | Set<Reply>;

/**
 * An out-of-band RESP3 push message (`>`), e.g. a client-tracking invalidation. It is not the
 * reply to any command.
 *
 * @example
 * ```ts
 * import { PushReply } from "./_resp.ts";
 * const p = new PushReply(["invalidate", ["key"]]);
 * console.log(p.data[0]); // "invalidate"
 * ```
 */
export class PushReply {
  /** Creates a push message holding `data`. */
  constructor(readonly data: Reply[]) {}
}

/**
 * One argument of a Redis command. Numbers are sent in decimal; `Uint8Array` is sent as is.
 *
 * @example
 * ```ts
 * import type { Arg } from "./_resp.ts";
 * const args: Arg[] = ["SET", "key", new Uint8Array([0, 1, 2]), "EX", 10];
 * ```
 */
export type Arg = string | number | bigint | Uint8Array;

/**
 * Options of a {@linkcode RespParser}.
 *
 * @example
 * ```ts
 * import { RespParser, type RespParserOptions } from "./_resp.ts";
 * const options: RespParserOptions = { maxBulkLength: 1024 * 1024 };
 * const parser = new RespParser(options);
 * ```
 */
export interface RespParserOptions {
  /** Largest bulk string accepted, in bytes. Default: 512 MiB (Redis's `proto-max-bulk-len`). */
  maxBulkLength?: number;
  /** Longest simple string / error / big number line accepted, in bytes. Default: 1 MiB. */
  maxLineLength?: number;
  /** Deepest nesting of aggregates accepted. Default: 1000. */
  maxDepth?: number;
}

const CR = 13;
const LF = 10;
const EMPTY = new Uint8Array(0);
const MIN_CAPACITY = 16 * 1024;
/** A buffer this large is dropped once it is empty, so one huge reply does not pin memory. */
const SHRINK_ABOVE = 1024 * 1024;
/** Longest header line holding a length or an integer (`:-9223372036854775808` is 21 bytes). */
const MAX_NUMBER_LINE = 32;
const MAX_AGGREGATE_LENGTH = 2 ** 32 - 1;

const K_ARRAY = 0;
const K_MAP = 1;
const K_SET = 2;
const K_ATTRIBUTE = 3;
const K_PUSH = 4;

interface Frame {
  kind: number;
  /** Values still expected (a map of n pairs expects 2n values). */
  remaining: number;
  array: Reply[] | undefined;
  map: Map<Reply, Reply> | undefined;
  set: Set<Reply> | undefined;
  key: Reply;
  /** True for the odd values of a map (keys). */
  expectKey: boolean;
}

/** Returned by `#value()` when more input is needed. */
const NEED_MORE = Symbol("NEED_MORE");
/** Returned by `#value()` when it opened an aggregate frame (no value completed yet). */
const OPENED = Symbol("OPENED");

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const DOUBLE_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const BIG_RE = /^[+-]?\d+$/;

/** Decodes UTF-8 bytes, with a fast path for short ASCII strings. */
function decodeUtf8(buf: Uint8Array, from: number, to: number): string {
  const length = to - from;
  if (length <= 16) {
    let s = "";
    for (let i = from; i < to; i++) {
      const b = buf[i]!;
      if (b >= 0x80) return decoder.decode(buf.subarray(from, to));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return decoder.decode(buf.subarray(from, to));
}

function describeByte(b: number): string {
  const hex = "0x" + b.toString(16).padStart(2, "0");
  return b >= 0x20 && b < 0x7f ? `${hex} (${JSON.stringify(String.fromCharCode(b))})` : hex;
}

/**
 * An incremental RESP2/RESP3 parser. Feed it bytes as they arrive, in chunks split anywhere,
 * and pull complete replies with {@linkcode RespParser.next}, which returns `undefined` until a
 * whole reply is there. Invalid input throws {@linkcode RespProtocolError}; after that the
 * parser must be discarded (or {@linkcode RespParser.reset}).
 *
 * The buffer is indexed, not re-sliced: each byte is copied at most once on the way in (plus
 * amortised growth), and a partly received aggregate is kept as parsed values, not re-parsed.
 *
 * @example
 * ```ts
 * import { RespParser } from "./_resp.ts";
 * const parser = new RespParser();
 * const bytes = new TextEncoder().encode("*2\r\n$3\r\nfoo\r\n_\r\n");
 * for (const b of bytes) parser.feed(new Uint8Array([b])); // any split works
 * console.log(parser.next()); // ["foo", null]
 * console.log(parser.next()); // undefined: nothing more buffered
 * ```
 */
export class RespParser {
  #buf: Uint8Array = EMPTY;
  /** Whether `#buf` is ours to write into (a fed chunk is kept without copying until then). */
  #owned = false;
  #start = 0;
  #end = 0;
  /** Bytes discarded before `#buf[0]`, for error offsets. */
  #base = 0;
  /** While a line is incomplete: how far past its start we already looked for LF. */
  #scanned = 0;
  #stack: Frame[] = [];
  #bytes = false;
  /** True after a top-level attribute, until the value it annotates is complete. */
  #attributed = false;
  readonly #maxBulk: number;
  readonly #maxLine: number;
  readonly #maxDepth: number;

  /** Creates a parser; see {@linkcode RespParserOptions} for the limits. */
  constructor(options: RespParserOptions = {}) {
    this.#maxBulk = options.maxBulkLength ?? 512 * 1024 * 1024;
    this.#maxLine = options.maxLineLength ?? 1024 * 1024;
    this.#maxDepth = options.maxDepth ?? 1000;
  }

  /** Bytes received but not yet consumed by a complete value. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** True while a reply has been started but not finished. */
  get inReply(): boolean {
    return this.#stack.length > 0 || this.#end > this.#start || this.#attributed;
  }

  /** Adds received bytes. The chunk is not modified; it may be kept until consumed. */
  feed(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    if (this.#start === this.#end) {
      this.#base += this.#start;
      if (!this.#owned || this.#buf.length < n) {
        // Nothing pending: use the chunk in place, no copy. (A plain Uint8Array view, so that
        // slice() copies: Buffer#slice would return a view into the socket's chunk.)
        this.#buf = chunk.constructor === Uint8Array
          ? chunk
          : new Uint8Array(chunk.buffer, chunk.byteOffset, n);
        this.#owned = false;
        this.#start = 0;
        this.#end = n;
        return;
      }
      this.#start = this.#end = 0;
    }
    const live = this.#end - this.#start;
    if (this.#owned && this.#end + n <= this.#buf.length) {
      this.#buf.set(chunk, this.#end);
      this.#end += n;
      return;
    }
    if (this.#owned && live + n <= this.#buf.length && this.#start >= live) {
      // Compact: the live bytes move to the front, without overlap.
      this.#buf.copyWithin(0, this.#start, this.#end);
    } else {
      let capacity = Math.max(MIN_CAPACITY, this.#owned ? this.#buf.length : 0);
      while (capacity < live + n) capacity *= 2;
      const next = new Uint8Array(capacity);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
      this.#owned = true;
    }
    this.#base += this.#start;
    this.#start = 0;
    this.#end = live;
    this.#buf.set(chunk, live);
    this.#end += n;
  }

  /**
   * Returns the next complete reply, or `undefined` if more bytes are needed. A RESP3 push
   * message is returned as a {@linkcode PushReply}. An error reply is returned as a
   * {@linkcode RedisError} value (not thrown).
   *
   * @param bytes When true, bulk and verbatim strings of this reply (including map keys) are
   * returned as `Uint8Array` instead of UTF-8-decoded strings. It applies from the start of a
   * reply to its end, even if the reply arrives over several calls.
   */
  next(bytes = false): Reply | PushReply | undefined {
    const stack = this.#stack;
    if (stack.length === 0) this.#bytes = bytes;
    for (;;) {
      const v = this.#value();
      if (v === NEED_MORE) {
        this.#release();
        return undefined;
      }
      if (v === OPENED) continue;
      let value: Reply | PushReply = v;
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) {
          this.#attributed = false;
          this.#release();
          return value;
        }
        if (top.kind === K_MAP) {
          if (top.expectKey) top.key = value as Reply;
          else top.map!.set(top.key, value as Reply);
          top.expectKey = !top.expectKey;
        } else if (top.kind === K_SET) {
          top.set!.add(value as Reply);
        } else if (top.kind !== K_ATTRIBUTE) {
          top.array!.push(value as Reply);
        }
        if (--top.remaining > 0) break;
        stack.pop();
        if (top.kind === K_ATTRIBUTE) {
          // Discarded; the value it annotates follows.
          if (stack.length === 0) this.#attributed = true;
          break;
        }
        value = top.kind === K_MAP
          ? top.map!
          : top.kind === K_SET
          ? top.set!
          : top.kind === K_PUSH && stack.length === 0
          ? new PushReply(top.array!)
          : top.array!;
      }
    }
  }

  /**
   * Declares the end of input: throws {@linkcode RespProtocolError} if a reply was cut off.
   */
  end(): void {
    if (this.inReply) {
      throw new RespProtocolError(
        `RESP protocol error: the stream ended in the middle of a reply ` +
          `(${this.buffered} unparsed byte(s), ${this.#stack.length} open aggregate(s)).`,
      );
    }
  }

  /** Drops all buffered input and partial state. */
  reset(): void {
    this.#buf = EMPTY;
    this.#owned = false;
    this.#start =
      this.#end =
      this.#base =
      this.#scanned =
        0;
    this.#stack = [];
    this.#attributed = false;
  }

  /** Frees a big buffer once it is empty. */
  #release(): void {
    if (this.#start === this.#end) {
      this.#base += this.#start;
      this.#start = this.#end = 0;
      if (!this.#owned || this.#buf.length > SHRINK_ABOVE) {
        this.#buf = EMPTY;
        this.#owned = false;
      }
    }
  }

  #fail(message: string, at: number): never {
    throw new RespProtocolError(
      `RESP protocol error at byte ${this.#base + at}: ${message}. ` +
        `The peer is not speaking RESP as expected (is this really a Redis server port?); ` +
        `the connection is dropped.`,
    );
  }

  /** Finds the LF ending the line that starts at `from`; -1 if not received yet. */
  #lineEnd(from: number, maxLength: number): number {
    const buf = this.#buf;
    // Only look at received bytes, and no further than the longest line allowed.
    const limit = Math.min(this.#end, from + maxLength + 1);
    let i = from + this.#scanned;
    for (; i < limit; i++) {
      const b = buf[i];
      if (b === CR || b === LF) break;
    }
    if (i === limit) {
      if (limit - from > maxLength) this.#fail(`line longer than ${maxLength} bytes`, from);
      this.#scanned = limit - from;
      return -1;
    }
    if (buf[i] === LF) this.#fail("LF not preceded by CR", i);
    if (i + 1 >= this.#end) {
      this.#scanned = i - from; // look at this CR again when the next byte is there
      return -1;
    }
    if (buf[i + 1] !== LF) this.#fail("CR not followed by LF", i);
    this.#scanned = 0;
    return i + 1;
  }

  /** Parses a strict decimal integer in `[from, to)`. */
  #int(from: number, to: number): number {
    const buf = this.#buf;
    let i = from;
    let negative = false;
    if (i < to && buf[i] === 0x2d) {
      negative = true;
      i++;
    }
    if (i === to) this.#fail("empty number", from);
    if (to - i > 15) return NaN; // caller falls back to BigInt
    let n = 0;
    for (; i < to; i++) {
      const d = buf[i]! - 0x30;
      if (d < 0 || d > 9) this.#fail(`invalid digit ${describeByte(buf[i]!)} in a number`, i);
      n = n * 10 + d;
    }
    return negative ? -n : n;
  }

  /** Parses an aggregate or bulk length: a non-negative integer, or -1 if `allowNull`. */
  #length(from: number, to: number, allowNull: boolean, max: number): number {
    const n = this.#int(from, to);
    if (Number.isNaN(n) || n > max) this.#fail(`length too large (limit ${max})`, from);
    if (n < 0 && !(allowNull && n === -1)) this.#fail(`invalid length ${n}`, from);
    return n;
  }

  #bulkEnd(dataStart: number, length: number): number {
    const end = dataStart + length;
    if (this.#end < end + 2) {
      if (this.#end > end && this.#buf[end] !== CR) {
        this.#fail("bulk string not followed by CRLF (wrong length?)", end);
      }
      return -1;
    }
    if (this.#buf[end] !== CR || this.#buf[end + 1] !== LF) {
      this.#fail("bulk string not followed by CRLF (wrong length?)", end);
    }
    return end;
  }

  #open(kind: number, count: number): typeof OPENED {
    if (this.#stack.length >= this.#maxDepth) {
      this.#fail(`aggregates nested deeper than ${this.#maxDepth}`, this.#start);
    }
    this.#stack.push({
      kind,
      remaining: count,
      array: kind === K_ARRAY || kind === K_PUSH ? [] : undefined,
      map: kind === K_MAP ? new Map() : undefined,
      set: kind === K_SET ? new Set() : undefined,
      key: null,
      expectKey: true,
    });
    return OPENED;
  }

  /** Parses one scalar value or one aggregate header at `#start`. */
  #value(): Reply | PushReply | typeof NEED_MORE | typeof OPENED {
    const start = this.#start;
    if (start >= this.#end) return NEED_MORE;
    const buf = this.#buf;
    const type = buf[start]!;
    const isText = type === 0x2b || type === 0x2d || type === 0x28 || type === 0x2c; // + - ( ,
    const lf = this.#lineEnd(start + 1, isText ? this.#maxLine : MAX_NUMBER_LINE);
    if (lf === -1) return NEED_MORE;
    const from = start + 1;
    const to = lf - 1; // the CR
    switch (type) {
      case 0x2b: { // + simple string
        this.#start = lf + 1;
        if (to - from === 2 && buf[from] === 0x4f && buf[from + 1] === 0x4b) return "OK";
        return decodeUtf8(buf, from, to);
      }
      case 0x2d: // - error
        this.#start = lf + 1;
        return new RedisError(decodeUtf8(buf, from, to));
      case 0x3a: { // : integer
        let n = this.#int(from, to);
        if (Number.isNaN(n)) {
          const text = decodeUtf8(buf, from, to);
          if (!BIG_RE.test(text)) this.#fail(`invalid integer ${JSON.stringify(text)}`, from);
          const big = BigInt(text);
          if (big > 0x7fffffffffffffffn || big < -0x8000000000000000n) {
            this.#fail(`integer ${text} out of 64-bit range`, from);
          }
          n = Number(big);
          this.#start = lf + 1;
          return Number.isSafeInteger(n) ? n : big;
        }
        this.#start = lf + 1;
        return n;
      }
      case 0x24: // $ bulk string
      case 0x21: // ! bulk error
      case 0x3d: { // = verbatim string
        if (to - from === 1 && buf[from] === 0x3f) {
          this.#fail("streamed strings ($?) are not supported", start);
        }
        const length = this.#length(from, to, type === 0x24, this.#maxBulk);
        if (length === -1) {
          this.#start = lf + 1;
          return null;
        }
        const dataStart = lf + 1;
        const dataEnd = this.#bulkEnd(dataStart, length);
        if (dataEnd === -1) return NEED_MORE;
        this.#start = dataEnd + 2;
        if (type === 0x21) return new RedisError(decodeUtf8(buf, dataStart, dataEnd));
        let textStart = dataStart;
        if (type === 0x3d) {
          if (length < 4 || buf[dataStart + 3] !== 0x3a) {
            this.#fail("verbatim string without a 3-letter format prefix", dataStart);
          }
          textStart += 4;
        }
        return this.#bytes ? buf.slice(textStart, dataEnd) : decodeUtf8(buf, textStart, dataEnd);
      }
      case 0x2a: // * array
      case 0x25: // % map
      case 0x7e: // ~ set
      case 0x7c: // | attribute
      case 0x3e: { // > push
        if (to - from === 1 && buf[from] === 0x3f) {
          this.#fail("streamed aggregates (*?) are not supported", start);
        }
        const isArray = type === 0x2a;
        const count = this.#length(from, to, isArray, MAX_AGGREGATE_LENGTH);
        this.#start = lf + 1;
        if (count === -1) return null;
        const kind = isArray
          ? K_ARRAY
          : type === 0x25
          ? K_MAP
          : type === 0x7e
          ? K_SET
          : type === 0x7c
          ? K_ATTRIBUTE
          : K_PUSH;
        const values = kind === K_MAP || kind === K_ATTRIBUTE ? count * 2 : count;
        if (values === 0) {
          if (kind === K_ATTRIBUTE) {
            if (this.#stack.length === 0) this.#attributed = true;
            return OPENED; // an empty attribute: nothing to skip
          }
          if (kind === K_MAP) return new Map();
          if (kind === K_SET) return new Set();
          if (kind === K_PUSH && this.#stack.length === 0) return new PushReply([]);
          return [];
        }
        return this.#open(kind, values);
      }
      case 0x5f: // _ null
        if (to !== from) this.#fail("null (_) with trailing data", from);
        this.#start = lf + 1;
        return null;
      case 0x23: // # boolean
        if (to - from !== 1 || (buf[from] !== 0x74 && buf[from] !== 0x66)) {
          this.#fail("boolean is not #t or #f", from);
        }
        this.#start = lf + 1;
        return buf[from] === 0x74;
      case 0x2c: { // , double
        const text = decodeUtf8(buf, from, to);
        let n: number;
        if (text === "inf" || text === "+inf") n = Infinity;
        else if (text === "-inf") n = -Infinity;
        else if (text === "nan" || text === "-nan") n = NaN;
        else if (DOUBLE_RE.test(text)) n = Number(text);
        else this.#fail(`invalid double ${JSON.stringify(text)}`, from);
        this.#start = lf + 1;
        return n;
      }
      case 0x28: { // ( big number
        const text = decodeUtf8(buf, from, to);
        if (!BIG_RE.test(text)) this.#fail(`invalid big number ${JSON.stringify(text)}`, from);
        this.#start = lf + 1;
        return BigInt(text);
      }
      default:
        this.#fail(`unexpected type byte ${describeByte(type)}`, start);
    }
  }
}

/**
 * Encodes commands (arrays of bulk strings) into one growing buffer, so that many commands can
 * be written to the socket at once (pipelining).
 *
 * @example
 * ```ts
 * import { RespEncoder } from "./_resp.ts";
 * const enc = new RespEncoder();
 * enc.encode(["SET", "a", 1]);
 * enc.encode(["GET", "a"]);
 * const bytes = enc.take(); // both commands, ready for one socket write
 * console.log(new TextDecoder().decode(bytes).startsWith("*3\r\n$3\r\nSET")); // true
 * ```
 */
export class RespEncoder {
  #buf: Uint8Array;
  #pos = 0;
  readonly #initial: number;

  /** Creates an encoder whose buffer starts at `initialCapacity` bytes (default 16 KiB). */
  constructor(initialCapacity = 16 * 1024) {
    this.#initial = initialCapacity;
    this.#buf = new Uint8Array(initialCapacity);
  }

  /** Bytes encoded and not yet taken. */
  get length(): number {
    return this.#pos;
  }

  /**
   * Appends one command. Throws `TypeError` for an argument that is not a string, a finite
   * number, a bigint or a `Uint8Array`; nothing is appended in that case.
   */
  encode(args: readonly Arg[]): void {
    if (args.length === 0) {
      throw new TypeError("A Redis command needs at least one argument (its name).");
    }
    const mark = this.#pos;
    try {
      this.#header(0x2a, args.length);
      for (let i = 0; i < args.length; i++) {
        const arg = args[i];
        if (typeof arg === "string") this.#string(arg);
        else if (arg instanceof Uint8Array) this.#binary(arg);
        else if (typeof arg === "number") {
          if (!Number.isFinite(arg)) {
            throw new TypeError(
              `Redis command argument ${i} is ${arg}: pass a finite number, or a string such ` +
                `as "+inf" for commands that accept infinities.`,
            );
          }
          this.#ascii(String(arg));
        } else if (typeof arg === "bigint") this.#ascii(arg.toString());
        else {
          throw new TypeError(
            `Redis command argument ${i} has type ${
              arg === null ? "null" : typeof arg
            }: pass a string, number, bigint or Uint8Array.`,
          );
        }
      }
    } catch (e) {
      this.#pos = mark;
      throw e;
    }
  }

  /** Returns the bytes encoded so far (a copy, safe to hand to a socket) and empties the buffer. */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#pos);
    this.#pos = 0;
    if (this.#buf.length > SHRINK_ABOVE) this.#buf = new Uint8Array(this.#initial);
    return out;
  }

  #reserve(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    let capacity = this.#buf.length * 2;
    while (capacity < need) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }

  /** Writes `<type><n>\r\n`; the caller reserved nothing. */
  #header(type: number, n: number): void {
    this.#reserve(24);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = type;
    pos = writeDecimal(buf, pos, n);
    buf[pos++] = CR;
    buf[pos++] = LF;
    this.#pos = pos;
  }

  #ascii(s: string): void {
    this.#header(0x24, s.length);
    this.#reserve(s.length + 2);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    buf[pos++] = CR;
    buf[pos++] = LF;
    this.#pos = pos;
  }

  #binary(b: Uint8Array): void {
    this.#header(0x24, b.length);
    this.#reserve(b.length + 2);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
    this.#buf[this.#pos++] = CR;
    this.#buf[this.#pos++] = LF;
  }

  #string(s: string): void {
    const n = s.length;
    if (n <= 64) {
      let ascii = true;
      for (let i = 0; i < n; i++) {
        if (s.charCodeAt(i) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) return this.#ascii(s);
    }
    // UTF-8 takes between n and 3n bytes. Encode after room for the longest header, then move
    // the data left if the real header is shorter.
    const maxDigits = decimalDigits(3 * n);
    this.#reserve(1 + maxDigits + 2 + 3 * n + 2);
    const dataAt = this.#pos + 1 + maxDigits + 2;
    const { written } = encoder.encodeInto(s, this.#buf.subarray(dataAt));
    const digits = decimalDigits(written);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = 0x24;
    if (digits < maxDigits) buf.copyWithin(pos + digits + 2, dataAt, dataAt + written);
    pos = writeDecimal(buf, pos, written);
    buf[pos++] = CR;
    buf[pos++] = LF;
    pos += written;
    buf[pos++] = CR;
    buf[pos++] = LF;
    this.#pos = pos;
  }
}

function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

/** Writes a non-negative integer in decimal; returns the new position. */
function writeDecimal(buf: Uint8Array, pos: number, n: number): number {
  if (n < 10) {
    buf[pos] = 0x30 + n;
    return pos + 1;
  }
  const digits = decimalDigits(n);
  for (let i = pos + digits - 1; i >= pos; i--) {
    buf[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return pos + digits;
}

/**
 * Encodes one command as a RESP array of bulk strings.
 *
 * @example
 * ```ts
 * import { encodeCommand } from "./_resp.ts";
 * const bytes = encodeCommand(["PING"]);
 * console.log(new TextDecoder().decode(bytes)); // "*1\r\n$4\r\nPING\r\n"
 * ```
 */
export function encodeCommand(args: readonly Arg[]): Uint8Array {
  const enc = new RespEncoder(256);
  enc.encode(args);
  return enc.take();
}
