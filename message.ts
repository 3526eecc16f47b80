/**
 * The message: what `send()` puts on a broker and a worker takes off it. Its wire format is
 * Python Dramatiq's JSON, so both can share queues.
 *
 * @example
 * ```ts
 * import { Message } from "./message.ts";
 * const m = new Message({ queueName: "default", actorName: "add", args: [1, 2] });
 * const back = Message.decode(m.encode());
 * console.log(back.actorName, back.args); // add [1, 2]
 * ```
 * @module
 */
import { DecodeError } from "./errors.ts";
import { type GetResultOptions, lookupResult } from "./_message_broker.ts";

export type { GetResultOptions };

/**
 * A JSON value: what actor arguments, results and message options may hold.
 *
 * @example
 * ```ts
 * import type { JsonValue } from "./message.ts";
 * const v: JsonValue = { ids: [1, 2, 3], name: "x", ok: true, none: null };
 * ```
 */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * A JSON object.
 *
 * @example
 * ```ts
 * import type { JsonObject } from "./message.ts";
 * const o: JsonObject = { a: 1 };
 * ```
 */
export type JsonObject = { [key: string]: JsonValue };

/**
 * The fields of a message, as passed to `new Message()`.
 *
 * @example
 * ```ts
 * import type { MessageFields } from "./message.ts";
 * const f: MessageFields = { queueName: "default", actorName: "add", args: [1] };
 * ```
 */
export interface MessageFields {
  /** Queue the message is on (`q`, or `q.DQ` while delayed). */
  queueName: string;
  /** Name of the actor that handles it. */
  actorName: string;
  /** Positional arguments. */
  args?: JsonValue[];
  /** Keyword arguments (passed to a TS actor as one trailing object when non-empty). */
  kwargs?: JsonObject;
  /** Options in their wire (snake_case) names: `eta`, `retries`, `max_retries`, ... */
  options?: JsonObject;
  /** UUID; a new one when omitted. Stays the same across retries. */
  messageId?: string;
  /** Milliseconds since the epoch; now when omitted. */
  messageTimestamp?: number;
}

/**
 * The seven-key JSON object Dramatiq writes on the wire.
 *
 * @example
 * ```ts
 * import { Message, type WireMessage } from "./message.ts";
 * const w: WireMessage = new Message({ queueName: "q", actorName: "a" }).asDict();
 * console.log(w.queue_name); // q
 * ```
 */
export interface WireMessage {
  /** Queue name. */
  queue_name: string;
  /** Actor name. */
  actor_name: string;
  /** Positional arguments. */
  args: JsonValue[];
  /** Keyword arguments. */
  kwargs: JsonObject;
  /** Options. */
  options: JsonObject;
  /** Message id. */
  message_id: string;
  /** Creation time, ms since the epoch. */
  message_timestamp: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const EMPTY_KWARGS: JsonObject = Object.freeze({}) as JsonObject;

/**
 * A message to an actor. Immutable by convention: use `copy()` to change fields.
 *
 * @example
 * ```ts
 * import { Message } from "./message.ts";
 * const m = new Message({ queueName: "default", actorName: "add", args: [1, 2] });
 * const delayed = m.copy({ queueName: "default.DQ", options: { eta: Date.now() + 1000 } });
 * console.log(delayed.messageId === m.messageId); // true
 * ```
 */
export class Message<R = unknown> {
  /** Queue the message is on (`q`, or `q.DQ` while delayed). */
  queueName: string;
  /** Name of the actor that handles it. */
  actorName: string;
  /** Positional arguments. */
  args: JsonValue[];
  /** Keyword arguments. */
  kwargs: JsonObject;
  /** Options, keyed by their wire (snake_case) names. */
  options: JsonObject;
  /** The message's UUID; the same across retries. */
  messageId: string;
  /** Creation time in milliseconds since the epoch. */
  messageTimestamp: number;

  /** Creates a message; `messageId` and `messageTimestamp` default to new values. */
  constructor(fields: MessageFields) {
    this.queueName = fields.queueName;
    this.actorName = fields.actorName;
    this.args = fields.args ?? [];
    this.kwargs = fields.kwargs ?? EMPTY_KWARGS;
    this.options = fields.options ?? {};
    this.messageId = fields.messageId ?? crypto.randomUUID();
    this.messageTimestamp = fields.messageTimestamp ?? Date.now();
  }

  /** The wire form: Dramatiq's seven snake_case keys, in Dramatiq's order. */
  asDict(): WireMessage {
    return {
      queue_name: this.queueName,
      actor_name: this.actorName,
      args: this.args,
      kwargs: this.kwargs,
      options: this.options,
      message_id: this.messageId,
      message_timestamp: this.messageTimestamp,
    };
  }

  /** Encodes the message as UTF-8 JSON bytes (Dramatiq's wire format). */
  encode(): Uint8Array {
    return encoder.encode(JSON.stringify(this.asDict()));
  }

  /**
   * Decodes bytes (or a string) written by `encode()` or by Python Dramatiq.
   * Throws `DecodeError` naming what was wrong.
   */
  static decode(data: Uint8Array | string): Message {
    let text: string;
    try {
      text = typeof data === "string" ? data : decoder.decode(data);
    } catch {
      throw new DecodeError(
        "Message is not valid UTF-8. Was it written with a non-JSON encoder (pickle)?",
      );
    }
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      try {
        // Python writes the bare tokens NaN/Infinity/-Infinity for non-finite floats.
        obj = JSON.parse(text.replace(/(?<=[:,\[]\s*)(-?Infinity|NaN)(?=\s*[,\]}])/g, "null"));
      } catch (e) {
        throw new DecodeError(`Message is not valid JSON: ${(e as Error).message}`);
      }
    }
    return this.fromDict(obj);
  }

  /** Builds a message from its wire form, checking each field's type. */
  static fromDict(obj: unknown): Message {
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
      throw new DecodeError("Message must be a JSON object.");
    }
    const o = obj as Record<string, unknown>;
    const check = (key: string, ok: boolean, want: string) => {
      if (!ok) throw new DecodeError(`Message field "${key}" must be ${want}.`);
    };
    check("queue_name", typeof o.queue_name === "string", "a string");
    check("actor_name", typeof o.actor_name === "string", "a string");
    check("args", Array.isArray(o.args), "an array");
    check("kwargs", isPlainObject(o.kwargs), "an object");
    check("options", isPlainObject(o.options), "an object");
    check("message_id", o.message_id === undefined || typeof o.message_id === "string", "a string");
    check(
      "message_timestamp",
      o.message_timestamp === undefined || typeof o.message_timestamp === "number",
      "a number",
    );
    return new this({
      queueName: o.queue_name as string,
      actorName: o.actor_name as string,
      args: o.args as JsonValue[],
      kwargs: o.kwargs as JsonObject,
      options: o.options as JsonObject,
      messageId: o.message_id as string | undefined,
      messageTimestamp: o.message_timestamp as number | undefined,
    });
  }

  /** Returns a new message with some fields replaced (`options` replaces all options). */
  copy(changes: Partial<MessageFields> = {}): Message {
    return new Message({
      queueName: changes.queueName ?? this.queueName,
      actorName: changes.actorName ?? this.actorName,
      args: changes.args ?? this.args,
      kwargs: changes.kwargs ?? this.kwargs,
      options: changes.options ?? { ...this.options },
      messageId: changes.messageId ?? this.messageId,
      messageTimestamp: changes.messageTimestamp ?? this.messageTimestamp,
    });
  }

  /**
   * The actor's return value, stored by the `Results` middleware. Throws `ResultMissing` (not
   * there yet, when not blocking), `ResultTimeout` or `ResultFailure` (the actor failed for good).
   */
  getResult(options: GetResultOptions = {}): Promise<R> {
    return lookupResult(this, options) as Promise<R>;
  }

  /** A short readable form: `actorName(arg, ...)`. */
  toString(): string {
    const parts = this.args.map((a) => JSON.stringify(a));
    if (Object.keys(this.kwargs).length > 0) parts.push(JSON.stringify(this.kwargs));
    return `${this.actorName}(${parts.join(", ")})`;
  }
}

function isPlainObject(v: unknown): boolean {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Checks that `value` is a JSON value and returns the path of the first part that is not
 * (for example `"[0].user.tags[2]"`), or `undefined` when all of it is JSON. Also returns a
 * description of the problem.
 */
export function findNonJson(
  value: unknown,
  path = "",
  seen?: Set<object>,
): { path: string; problem: string } | undefined {
  // The common case, a JSON value, is checked without building paths or a set of seen objects.
  if (!seen && isJson(value, 0)) return undefined;
  return explain(value, path, seen ?? new Set());
}

/** True when `value` is JSON (false also for very deep values: `explain` then decides). */
function isJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "string":
      return !hasLoneSurrogate(value);
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth > 64) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (!isJson(obj[key], depth + 1)) return false;
  return true;
}

/** Finds where `value` stops being JSON, with the path to it. */
function explain(
  value: unknown,
  path: string,
  seen: Set<object>,
): { path: string; problem: string } | undefined {
  switch (typeof value) {
    case "string":
      return hasLoneSurrogate(value)
        ? { path, problem: "a string with a lone surrogate" }
        : undefined;
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : { path, problem: String(value) };
    case "undefined":
      return { path, problem: "undefined" };
    case "bigint":
      return { path, problem: "a BigInt (convert it to a string or number)" };
    case "function":
      return { path, problem: "a function" };
    case "symbol":
      return { path, problem: "a symbol" };
  }
  if (value === null) return undefined;
  const obj = value as object;
  if (seen.has(obj)) return { path, problem: "a cycle (the object contains itself)" };
  if (Array.isArray(obj)) {
    seen.add(obj);
    for (let i = 0; i < obj.length; i++) {
      const bad = explain(obj[i], `${path}[${i}]`, seen);
      if (bad) return bad;
    }
    seen.delete(obj);
    return undefined;
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto !== Object.prototype && proto !== null) {
    const name = proto?.constructor?.name ?? "unknown";
    return { path, problem: `an instance of ${name} (only plain objects and arrays are JSON)` };
  }
  seen.add(obj);
  for (const key of Object.keys(obj)) {
    const sub = /^[A-Za-z_$][\w$]*$/.test(key)
      ? `${path}.${key}`
      : `${path}[${JSON.stringify(key)}]`;
    const bad = explain((obj as Record<string, unknown>)[key], sub, seen);
    if (bad) return bad;
  }
  seen.delete(obj);
  return undefined;
}

function hasLoneSurrogate(s: string): boolean {
  // Fast path: most strings have no surrogates at all.
  if (!/[\uD800-\uDFFF]/.test(s)) return false;
  return !s.isWellFormed();
}
