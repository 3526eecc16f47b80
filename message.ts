/**
 * The message: what `send()` puts on a broker and a worker takes off it. Its wire format is
 * Python Dramatiq's JSON, so both can share queues.
 *
 * @example
 * ```ts
 * import { Message } from "@dramatis/dramatis";
 * const m = new Message({ queueName: "default", actorName: "add", args: [1, 2] });
 * const back = Message.decode(m.encode());
 * console.log(back.actorName, back.args); // add [1, 2]
 * ```
 * @module
 */
import { DecodeError } from "./errors.ts";

// The JSON check of arguments, results and options (importable from here, as before).
export { findNonJson } from "./util/json.ts";

/**
 * A JSON value: what actor arguments, results and message options may hold.
 *
 * @example
 * ```ts
 * import type { JsonValue } from "@dramatis/dramatis";
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
 * import type { JsonObject } from "@dramatis/dramatis";
 * const o: JsonObject = { a: 1 };
 * ```
 */
export type JsonObject = { [key: string]: JsonValue };

/**
 * The fields of a message, as passed to `new Message()`.
 *
 * @example
 * ```ts
 * import type { MessageFields } from "@dramatis/dramatis";
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
  messageId?: string | undefined;
  /** Milliseconds since the epoch; now when omitted. */
  messageTimestamp?: number | undefined;
}

/**
 * The seven-key JSON object Dramatiq writes on the wire.
 *
 * @example
 * ```ts
 * import { Message, type WireMessage } from "@dramatis/dramatis";
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

/**
 * A broker, as `getResult({ broker })` takes it: any `Broker` (only its middleware stack is read,
 * to find the `Results` middleware).
 *
 * @example
 * ```ts
 * import { type HasMiddleware, StubBroker } from "@dramatis/dramatis";
 * const b: HasMiddleware = new StubBroker();
 * ```
 */
export interface HasMiddleware {
  /** The middleware stack, in order. */
  readonly middleware: readonly object[];
}

/**
 * Options of `message.getResult()`.
 *
 * @example
 * ```ts
 * import type { GetResultOptions } from "@dramatis/dramatis";
 * const o: GetResultOptions = { block: true, timeout: 5_000 };
 * ```
 */
export interface GetResultOptions {
  /** Wait for the result (up to `timeout`). Default false: throw `ResultMissing` at once. */
  block?: boolean;
  /** How long to wait when blocking, in ms. Default 10_000. */
  timeout?: number | undefined;
  /** The broker whose `Results` middleware to use. Default: the one the message was sent to. */
  broker?: HasMiddleware;
}

/**
 * A broker, as `message.cancel({ broker })` and `message.getProgress({ broker })` take it: any
 * `Broker` with the `cancel` / `progress` capability.
 *
 * @example
 * ```ts
 * import { type OpsBroker, StubBroker } from "@dramatis/dramatis";
 * const b: OpsBroker = new StubBroker();
 * ```
 */
export interface OpsBroker {
  /** `broker.cancel(id)`. */
  cancel(messageId: string): Promise<"cancelled" | "running" | "finished" | "unknown">;
  /** `broker.getProgress(id)`. */
  getProgress(messageId: string): Promise<{ value: JsonValue; updatedAt: number } | null>;
}

/**
 * Options of `message.cancel()` and `message.getProgress()`.
 *
 * @example
 * ```ts
 * import { type MessageOpsOptions, StubBroker } from "@dramatis/dramatis";
 * const o: MessageOpsOptions = { broker: new StubBroker() };
 * ```
 */
export interface MessageOpsOptions {
  /** The broker to ask. Default: the one the message was sent to, else the global broker. */
  broker?: OpsBroker;
}

type BrokerFinder = (message: Message) => OpsBroker;
let brokerFinder: BrokerFinder | undefined;
type CancelledHook = (message: Message, broker: OpsBroker) => Promise<void>;
let cancelledHook: CancelledHook | undefined;

/** @internal Installed by `actor.ts`: the broker a message was sent to, else the global one. */
export function _setBrokerFinder(fn: BrokerFinder): void {
  brokerFinder = fn;
}

/** @internal Installed by `middleware/results.ts`: stores the result of a message cancelled while queued. */
export function _setCancelledHook(fn: CancelledHook): void {
  cancelledHook = fn;
}

type ResultLookup = (message: Message, options: GetResultOptions) => Promise<unknown>;
let resultLookup: ResultLookup | undefined;

/** @internal Installed by `middleware/results.ts`: how `getResult()` finds a result. */
export function _setResultLookup(fn: ResultLookup): void {
  resultLookup = fn;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const EMPTY_KWARGS: JsonObject = Object.freeze({}) as JsonObject;

/**
 * A message to an actor. Immutable by convention: use `copy()` to change fields.
 *
 * @example
 * ```ts
 * import { Message } from "@dramatis/dramatis";
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
    if (!resultLookup) {
      return Promise.reject(
        new TypeError(
          "getResult() needs the Results middleware: " +
            "broker.addMiddleware(new Results({ backend: new MemoryResultBackend() })).",
        ),
      );
    }
    return resultLookup(this, options) as Promise<R>;
  }

  /**
   * Cancels this message (`broker.cancel(messageId)`, on a broker with the `cancel`
   * capability): a queued or delayed one never runs (`"cancelled"`); a running one sees its
   * `currentSignal()` abort with `Cancelled` (`"running"`); `"finished"` or `"unknown"` when
   * it is gone. It is not retried, and its result (with `Results`) is a `ResultFailure` whose
   * `errorName` is `Cancelled`.
   *
   * @example
   * ```ts
   * import { actor, StubBroker } from "@dramatis/dramatis";
   * const broker = new StubBroker();
   * const slow = actor(async () => {}, { actorName: "slow", broker });
   * const msg = await slow.sendWithOptions({ delay: 60_000 });
   * console.log(await msg.cancel()); // cancelled
   * ```
   */
  async cancel(options: MessageOpsOptions = {}): Promise<
    "cancelled" | "running" | "finished" | "unknown"
  > {
    const broker = this.#opsBroker(options);
    const outcome = await broker.cancel(this.messageId);
    if (outcome === "cancelled" && cancelledHook) await cancelledHook(this, broker);
    return outcome;
  }

  /**
   * The last progress its actor reported with `reportProgress()` (`{ value, updatedAt }`), or
   * null: from any process, on a broker with the `progress` capability.
   *
   * @example
   * ```ts
   * import { actor, StubBroker } from "@dramatis/dramatis";
   * const broker = new StubBroker();
   * const job = actor(() => {}, { actorName: "job", broker });
   * const msg = await job.send();
   * console.log(await msg.getProgress()); // null: not started yet
   * ```
   */
  getProgress(
    options: MessageOpsOptions = {},
  ): Promise<{ value: JsonValue; updatedAt: number } | null> {
    return this.#opsBroker(options).getProgress(this.messageId);
  }

  #opsBroker(options: MessageOpsOptions): OpsBroker {
    const broker = options.broker ?? brokerFinder?.(this);
    if (!broker) {
      throw new TypeError(
        "This message has no broker to ask: pass { broker } or set a global broker (setBroker()).",
      );
    }
    return broker;
  }

  /** A short readable form: `actorName(arg, ...)`. */
  toString(): string {
    const parts = this.args.map((a) => JSON.stringify(a));
    if (Object.keys(this.kwargs).length > 0) parts.push(JSON.stringify(this.kwargs));
    return `${this.actorName}(${parts.join(", ")})`;
  }
}

/**
 * A message as a worker holds it while processing: the message plus its processing state
 * (`failed`, the error), an `AbortSignal` that aborts on time limit and shutdown, and a
 * broker-specific `receipt` used to ack it.
 *
 * @example
 * ```ts
 * import { MessageProxy } from "@dramatis/dramatis";
 * const m = new MessageProxy({ queueName: "default", actorName: "add", args: [1, 2] });
 * m.fail();
 * console.log(m.failed); // true
 * ```
 */
export class MessageProxy extends Message {
  /** True once a middleware decided the message failed for good: it will be nacked. */
  failed = false;
  /** The error the actor threw on this delivery, if any. */
  error: unknown = undefined;
  /** Broker-specific data identifying this delivery (for ack / nack / requeue). */
  receipt: unknown = undefined;
  /** Set by the worker when processing of this delivery has finished. */
  done = false;
  #controller: AbortController | undefined;
  #abortHandler: ((reason: unknown) => void) | undefined;

  /** Marks the message failed: it will be nacked (dead-lettered) instead of acked. */
  fail(): void {
    this.failed = true;
  }

  /** The signal that aborts when this delivery's time limit passes or the worker stops. */
  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  /** Aborts this delivery: its signal fires and the worker stops waiting for the actor. */
  abort(reason: unknown): void {
    if (this.done) return;
    (this.#controller ??= new AbortController()).abort(reason);
    this.#abortHandler?.(reason);
  }

  /** True when `abort()` was called. */
  get aborted(): boolean {
    return this.#controller?.signal.aborted ?? false;
  }

  /** @internal The worker's hook: called with the reason when the delivery is aborted. */
  onAbort(handler: ((reason: unknown) => void) | undefined): void {
    this.#abortHandler = handler;
  }
}

function isPlainObject(v: unknown): boolean {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
