/**
 * `actor()`: turns a function into an actor that can be called directly, or sent to a broker
 * as a message and run later by a worker.
 *
 * @example
 * ```ts
 * import { actor } from "./actor.ts";
 * import { StubBroker } from "./broker/stub.ts";
 * import { setBroker } from "./broker/global.ts";
 *
 * setBroker(new StubBroker());
 * const add = actor(function add(a: number, b: number) {
 *   return a + b;
 * }, { maxRetries: 3 });
 * console.log(add(1, 2)); // 3, run here and now
 * const msg = await add.send(1, 2); // enqueued for a worker
 * console.log(msg.actorName); // add
 * ```
 * @module
 */
import type { Broker } from "./broker/broker.ts";
import { getBroker, onGlobalBroker } from "./broker/global.ts";
import { findNonJson, type JsonObject, type JsonValue, Message } from "./message.ts";
import { checkActorOptions, snake } from "./_options.ts";
import { _attachBroker } from "./_message_broker.ts";
import type { ErrorClass } from "./errors.ts";

export type { ErrorClass };

/**
 * Options of `actor()`. Every option except `actorName`, `queueName`, `broker`, `retryWhen`
 * and `throws` can also be set per message with `sendWithOptions`.
 *
 * @example
 * ```ts
 * import type { ActorOptions } from "./actor.ts";
 * const o: ActorOptions = { queueName: "emails", maxRetries: 3, timeLimit: 60_000 };
 * ```
 */
export interface ActorOptions {
  /** The actor's name on the wire. Default: the function's name. */
  actorName?: string;
  /** The queue its messages go to. Default `"default"`. */
  queueName?: string;
  /** Lower runs first. Default 0. */
  priority?: number;
  /** The broker to declare it on. Default: the global broker (`getBroker()`). */
  broker?: Broker;
  /** Retries before giving up; `null` retries forever. Default 20. */
  maxRetries?: number | null;
  /** Smallest retry backoff in ms. Default 15_000. */
  minBackoff?: number;
  /** Largest retry backoff in ms (at most 7 days). Default 7 days. */
  maxBackoff?: number;
  /** Decides whether to retry, instead of `maxRetries`. Actor-level only. */
  retryWhen?: (retriesSoFar: number, error: unknown) => boolean;
  /** Error classes that are never retried. Actor-level only. */
  throws?: ErrorClass | ErrorClass[];
  /** Messages older than this many ms are skipped and dead-lettered. */
  maxAge?: number;
  /** The actor is aborted with `TimeLimitExceeded` after this many ms. Default 600_000. */
  timeLimit?: number;
  /** Store the result for `message.getResult()` (needs the `Results` middleware). */
  storeResults?: boolean;
  /** How long results are kept, in ms. Default 600_000. */
  resultTtl?: number;
  /** Actor (or its name) sent `(message, result)` when this actor succeeds. */
  onSuccess?: string | AnyActor;
  /** Actor (or its name) sent `(message, {type, message, traceback})` when it fails for good. */
  onFailure?: string | AnyActor;
  /** Actor (or its name) sent `(message, {retries, max_retries})` when retries run out. */
  onRetryExhausted?: string | AnyActor;
  /** Abort `currentSignal()` as soon as the worker starts shutting down. Default false. */
  notifyShutdown?: boolean;
  /** In a pipeline, do not append the previous result to this step's arguments. */
  pipeIgnore?: boolean;
  /**
   * When the actor throws `RateLimitExceeded`, run it again about this many ms later (0.5x to
   * 1.5x), without counting a retry. Default: treat it like any other error.
   */
  rateLimitDelay?: number;
  /** Options declared by middleware (`actorOptions`). */
  [option: string]: unknown;
}

/**
 * Options of `sendWithOptions` / `messageWithOptions`: the arguments, a delay, and per-message
 * options that override the actor's.
 *
 * @example
 * ```ts
 * import type { SendOptions } from "./actor.ts";
 * const o: SendOptions<[string]> = { args: ["a@b.c"], delay: 10_000, maxRetries: 1 };
 * ```
 */
export interface SendOptions<A extends unknown[] = unknown[]> {
  /** Positional arguments. */
  args?: A;
  /** Keyword arguments (a TS actor gets them as one trailing object). */
  kwargs?: Record<string, unknown>;
  /** Deliver no sooner than this many ms from now. */
  delay?: number;
  /** Per-message options (camelCase, as in `ActorOptions`). */
  [option: string]: unknown;
}

/**
 * An actor: callable like its function, plus `send` and friends.
 *
 * @example
 * ```ts
 * import { actor, type Actor } from "./actor.ts";
 * import { StubBroker } from "./broker/stub.ts";
 * const broker = new StubBroker();
 * const greet: Actor<[string], string> = actor((name: string) => `hi ${name}`, {
 *   actorName: "greet",
 *   broker,
 * });
 * console.log(greet("ada")); // hi ada
 * ```
 */
export interface Actor<A extends unknown[] = unknown[], R = unknown> {
  /** Runs the function here and now. */
  (...args: A): R;
  /** The actor's name. */
  readonly actorName: string;
  /** The queue its messages go to. */
  readonly queueName: string;
  /** Its priority (lower runs first). */
  readonly priority: number;
  /** The options it was declared with. */
  readonly options: Readonly<ActorOptions>;
  /** The function it runs. */
  readonly fn: (...args: A) => R;
  /** The broker it sends to: the one in its options, else the global broker. */
  readonly broker: Broker;
  /** Enqueues a message with these arguments. */
  send(...args: A): Promise<Message<Awaited<R>>>;
  /** Enqueues a message with arguments, a delay and per-message options. */
  sendWithOptions(options: SendOptions<A>): Promise<Message<Awaited<R>>>;
  /**
   * Builds a message with these arguments, without sending it. Leading arguments may be
   * left out for a pipeline step, which receives the previous result as its last argument.
   */
  message(...args: ArgsPrefix<A>): Message<Awaited<R>>;
  /** Builds a message with arguments and per-message options, without sending it. */
  messageWithOptions(options: SendOptions<ArgsPrefix<A>>): Message<Awaited<R>>;
}

/**
 * `A` or any of its prefixes: the arguments of a pipeline step, which gets the previous step's
 * result appended.
 *
 * @example
 * ```ts
 * import type { ArgsPrefix } from "./actor.ts";
 * const a: ArgsPrefix<[number, string]> = [1]; // [], [1] and [1, "x"] are all fine
 * ```
 */
export type ArgsPrefix<A extends unknown[]> = A extends [...infer Head, unknown]
  ? A | ArgsPrefix<Head>
  : A;

/**
 * An actor of any signature.
 *
 * @example
 * ```ts
 * import type { AnyActor } from "./actor.ts";
 * const byName = new Map<string, AnyActor>();
 * ```
 */
// deno-lint-ignore no-explicit-any
export type AnyActor = Actor<any[], unknown>;

// Actors declared without a `broker` option, by name: each is declared on every global broker.
const pendingGlobal = new Map<string, AnyActor>();
onGlobalBroker((broker) => {
  for (const a of pendingGlobal.values()) broker.declareActor(a);
});

const NOT_PER_MESSAGE = new Set(["actorName", "queueName", "broker", "retryWhen", "throws"]);

/**
 * Declares an actor. `actor(fn, options?)` or `actor(options)(fn)`.
 *
 * @example
 * ```ts
 * import { actor } from "./actor.ts";
 * import { StubBroker } from "./broker/stub.ts";
 * const broker = new StubBroker();
 * const sendEmail = actor({ queueName: "emails", maxRetries: 5, broker })(
 *   async function sendEmail(to: string) {
 *     console.log("sending to", to);
 *   },
 * );
 * await sendEmail.send("ada@example.com");
 * ```
 */
export function actor<A extends unknown[], R>(
  fn: (...args: A) => R,
  options?: ActorOptions,
): Actor<A, R>;
/**
 * The decorator form: `actor(options)(fn)`.
 *
 * @example
 * ```ts
 * import { actor } from "./actor.ts";
 * import { StubBroker } from "./broker/stub.ts";
 * const ping = actor({ actorName: "ping", broker: new StubBroker() })(() => "pong");
 * ```
 */
export function actor(
  options: ActorOptions,
): <A extends unknown[], R>(fn: (...args: A) => R) => Actor<A, R>;
export function actor<A extends unknown[], R>(
  fnOrOptions: ((...args: A) => R) | ActorOptions,
  maybeOptions?: ActorOptions,
): Actor<A, R> | (<A2 extends unknown[], R2>(fn: (...args: A2) => R2) => Actor<A2, R2>) {
  if (typeof fnOrOptions !== "function") {
    const options = fnOrOptions;
    return <A2 extends unknown[], R2>(fn: (...args: A2) => R2) => makeActor(fn, options);
  }
  return makeActor(fnOrOptions, maybeOptions ?? {});
}

function makeActor<A extends unknown[], R>(
  fn: (...args: A) => R,
  options: ActorOptions,
): Actor<A, R> {
  if (typeof fn !== "function") {
    throw new TypeError(`actor() takes a function, got ${typeof fn}.`);
  }
  const actorName = options.actorName ?? fn.name;
  if (!actorName || typeof actorName !== "string") {
    throw new TypeError(
      "actor(): the function has no name. Pass a named function or the `actorName` option.",
    );
  }
  validateActorName(actorName);
  checkActorOptions(actorName, options);
  const queueName = options.queueName ?? "default";
  const priority = options.priority ?? 0;
  checkOptionTypes(actorName, options);
  const explicitBroker = options.broker;

  const self = function (this: unknown, ...args: A): R {
    return fn.apply(this, args);
  } as Actor<A, R>;
  const frozen = Object.freeze({ ...options });
  Object.defineProperties(self, {
    actorName: { value: actorName, enumerable: true },
    queueName: { value: queueName, enumerable: true },
    priority: { value: priority, enumerable: true },
    options: { value: frozen, enumerable: true },
    fn: { value: fn },
    broker: { get: () => explicitBroker ?? getBroker() },
    name: { value: actorName },
  });

  const messageWithOptions = (o: SendOptions<ArgsPrefix<A>>): Message<Awaited<R>> => {
    const { args = [], kwargs, delay, ...rest } = o;
    if (!Array.isArray(args)) {
      throw new TypeError(`${actorName}: \`args\` must be an array, got ${typeof args}.`);
    }
    checkJson(actorName, "args", args);
    if (kwargs !== undefined) checkJson(actorName, "kwargs", kwargs);
    const wireOptions: JsonObject = {};
    for (const key of Object.keys(rest)) {
      const value = rest[key];
      if (value === undefined) continue;
      if (NOT_PER_MESSAGE.has(key)) {
        throw new TypeError(
          `${actorName}: option ${
            JSON.stringify(key)
          } can only be set on the actor, not per message.`,
        );
      }
      checkActorOptions(actorName, { [key]: value });
      wireOptions[snake(key)] = toWire(actorName, key, value);
    }
    if (delay !== undefined) wireOptions.delay = checkDelay(actorName, delay);
    return new Message<Awaited<R>>({
      queueName,
      actorName,
      args: args as JsonValue[],
      kwargs: kwargs as JsonObject,
      options: wireOptions,
    });
  };
  const message = (args: ArgsPrefix<A>): Message<Awaited<R>> => {
    checkJson(actorName, "args", args);
    return new Message<Awaited<R>>({ queueName, actorName, args: args as JsonValue[] });
  };
  // A message built for a pipeline or group knows the broker of an actor declared with one, so
  // that `pipeline([...])` runs there without a `broker` option.
  const built = (m: Message<Awaited<R>>) => explicitBroker ? _attachBroker(m, explicitBroker) : m;

  self.message = (...args: ArgsPrefix<A>) => built(message(args));
  self.messageWithOptions = (o: SendOptions<ArgsPrefix<A>>) => built(messageWithOptions(o));
  // One send path, as in Dramatiq: `send` is `sendWithOptions` with arguments only.
  self.send = (...args: A) => self.sendWithOptions({ args });
  self.sendWithOptions = (o: SendOptions<A>) => {
    let msg: Message<Awaited<R>>;
    try {
      msg = messageWithOptions(o as SendOptions<ArgsPrefix<A>>);
    } catch (e) {
      return Promise.reject(e);
    }
    const delay = msg.options.delay as number | undefined;
    if (delay !== undefined) delete msg.options.delay;
    const broker = self.broker;
    return broker.enqueue(msg, { delay }).then((m) =>
      _attachBroker(m as Message<Awaited<R>>, broker)
    );
  };

  if (explicitBroker) {
    explicitBroker.declareActor(self as AnyActor);
  } else {
    if (pendingGlobal.has(actorName)) {
      throw new TypeError(
        `An actor named ${JSON.stringify(actorName)} is already registered on the global ` +
          `broker. Give the new one another name (the \`actorName\` option), or pass it a ` +
          `\`broker\`.`,
      );
    }
    onGlobalBroker.current?.declareActor(self as AnyActor);
    pendingGlobal.set(actorName, self as AnyActor);
  }
  return self;
}

// C0 and C1 control characters, and the Unicode line and paragraph separators.
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

/** Throws a `TypeError` when an actor name holds a control character (it would forge log lines). */
function validateActorName(name: string): void {
  const bad = CONTROL.exec(name);
  if (bad) {
    const code = `U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
    throw new TypeError(
      `Invalid actor name ${JSON.stringify(name)}: it contains the control character ${code}. ` +
        `Use a name without newlines, tabs or other control characters.`,
    );
  }
}

function checkJson(actorName: string, what: string, value: unknown): void {
  const bad = findNonJson(value, what);
  if (bad) {
    throw new TypeError(
      `${actorName}: argument ${bad.path} is ${bad.problem}, which is not a JSON value. ` +
        `Messages carry JSON only: send ids, strings, numbers, plain objects and arrays.`,
    );
  }
}

function checkDelay(actorName: string, delay: unknown): number {
  if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
    throw new TypeError(`${actorName}: delay must be a non-negative number of ms, got ${delay}.`);
  }
  return Math.round(delay);
}

function toWire(actorName: string, key: string, value: unknown): JsonValue {
  if (key === "onSuccess" || key === "onFailure" || key === "onRetryExhausted") {
    if (typeof value === "function" && typeof (value as AnyActor).actorName === "string") {
      return (value as AnyActor).actorName;
    }
    if (typeof value !== "string") {
      throw new TypeError(`${actorName}: option ${key} must be an actor or an actor name.`);
    }
    return value;
  }
  const bad = findNonJson(value, key);
  if (bad) {
    throw new TypeError(
      `${actorName}: option ${bad.path} is ${bad.problem}; options must be JSON.`,
    );
  }
  return value as JsonValue;
}

function checkOptionTypes(actorName: string, o: ActorOptions): void {
  const num = (k: string, nullable = false) => {
    const v = o[k];
    if (v === undefined || (nullable && v === null)) return;
    if (typeof v !== "number" || Number.isNaN(v) || v < 0) {
      throw new TypeError(`Actor ${actorName}: option ${k} must be a non-negative number.`);
    }
  };
  num("priority");
  num("maxRetries", true);
  num("minBackoff");
  num("maxBackoff");
  num("maxAge");
  num("timeLimit");
  num("resultTtl");
  if (o.retryWhen !== undefined && typeof o.retryWhen !== "function") {
    throw new TypeError(`Actor ${actorName}: option retryWhen must be a function.`);
  }
  if (o.throws !== undefined) {
    const list = Array.isArray(o.throws) ? o.throws : [o.throws];
    if (list.some((c) => typeof c !== "function")) {
      throw new TypeError(`Actor ${actorName}: option throws must be an error class or a list.`);
    }
  }
  if (o.queueName !== undefined && typeof o.queueName !== "string") {
    throw new TypeError(`Actor ${actorName}: option queueName must be a string.`);
  }
}
