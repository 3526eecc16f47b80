/**
 * `actor()`: turns a function into an actor that can be called directly, or sent to a broker
 * as a message and run later by a worker.
 *
 * @example
 * ```ts
 * import { actor, setBroker, StubBroker } from "@dramatis/dramatis";
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
import type { DeclaredActor, SendOptions } from "./broker/declared_actor.ts";
import { getBroker, onGlobalBroker } from "./broker/global.ts";
import {
  _setBrokerFinder,
  findNonJson,
  type JsonObject,
  type JsonValue,
  Message,
} from "./message.ts";
import { checkActorOptions, snake } from "./middleware/_options.ts";
import { defaultMiddleware } from "./middleware/_default.ts";
import { _attachBroker, brokerOf } from "./broker/_message_broker.ts";
import type { ErrorClass } from "./errors.ts";

export type { ErrorClass, SendOptions };

/**
 * Options of `actor()`. Every option except `actorName`, `queueName`, `broker`, `retryWhen`
 * and `throws` can also be set per message with `sendWithOptions`.
 *
 * @example
 * ```ts
 * import type { ActorOptions } from "@dramatis/dramatis";
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
  /**
   * Makes the actor's messages unique jobs (on a broker with the `unique` capability): a send
   * whose key is held by a message still queued, delayed or running (or sent less than
   * `uniqueFor` ms ago) enqueues nothing and resolves to that message. A function computes the
   * key from the send's arguments; per message (`sendWithOptions`) it is a string.
   */
  uniqueKey?: string | ((...args: never[]) => string);
  /** Keep the unique key this many ms after the send, even once the message finished. */
  uniqueFor?: number;
  /**
   * With `uniqueKey`: deliver this many ms after the last send; a send while the holder still
   * waits replaces it (its arguments, its eta) instead of being dropped.
   */
  debounce?: number;
  /** Options declared by middleware (`actorOptions`). */
  [option: string]: unknown;
}

/**
 * An actor: callable like its function, plus `send` and friends. It is the `DeclaredActor` its
 * broker holds, typed by its arguments and result.
 *
 * @example
 * ```ts
 * import { actor, type Actor, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * const greet: Actor<[string], string> = actor((name: string) => `hi ${name}`, {
 *   actorName: "greet",
 *   broker,
 * });
 * console.log(greet("ada")); // hi ada
 * ```
 */
export interface Actor<A extends unknown[] = unknown[], R = unknown> extends DeclaredActor {
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
 * import type { ArgsPrefix } from "@dramatis/dramatis";
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
 * import type { AnyActor } from "@dramatis/dramatis";
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

// `message.cancel()` and `message.getProgress()` ask the broker the message was sent to.
_setBrokerFinder((m) => brokerOf(m) ?? getBroker());

const NOT_PER_MESSAGE = new Set(["actorName", "queueName", "broker", "retryWhen", "throws"]);

let defaultStackOptions: ReadonlySet<string> | undefined;

/**
 * The option names an actor may use: those of its broker's middleware. Without a `broker` option
 * it is the global broker's; before any global broker is set, those of the default stack, which
 * the global broker created on first use has (Dramatiq checks against that default broker too).
 */
function allowedOptions(broker: Broker | undefined): ReadonlySet<string> {
  const b = broker ?? onGlobalBroker.current;
  if (b) return b.actorOptions;
  return defaultStackOptions ??= new Set(defaultMiddleware().flatMap((m) => [...m.actorOptions]));
}

/**
 * Declares an actor. `actor(fn, options?)` or `actor(options)(fn)`.
 *
 * Its options are checked at once against its broker (the `broker` option, else the global
 * broker, else the default stack when no global broker is set yet): besides `actorName`,
 * `queueName`, `priority` and `broker`, only the `actorOptions` of that broker's middleware are
 * legal, as in Dramatiq. Add a middleware before declaring the actors that use its options.
 *
 * @example
 * ```ts
 * import { actor, StubBroker } from "@dramatis/dramatis";
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
 * import { actor, StubBroker } from "@dramatis/dramatis";
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
    return <A2 extends unknown[], R2>(fn: (...args: A2) => R2) => _declareActor(fn, options);
  }
  return _declareActor(fnOrOptions, maybeOptions ?? {});
}

/**
 * @internal `actor(fn, options)`, with `call` naming what the user called in errors
 * (`actorClass(Report)`).
 */
export function _declareActor<A extends unknown[], R>(
  fn: (...args: A) => R,
  options: ActorOptions,
  call = "actor()",
): Actor<A, R> {
  if (typeof fn !== "function") {
    throw new TypeError(`${call}: expected a function, got ${typeof fn}.`);
  }
  const actorName = options.actorName ?? fn.name;
  if (!actorName || typeof actorName !== "string") {
    throw new TypeError(
      `${call}: the function has no name. Pass a named function or the \`actorName\` option.`,
    );
  }
  validateActorName(actorName);
  const explicitBroker = options.broker;
  checkActorOptions(options, { call, actorName, allowed: allowedOptions(explicitBroker) });
  checkOptionTypes(call, actorName, options);
  const queueName = options.queueName ?? "default";
  const priority = options.priority ?? 0;

  const self = function (this: unknown, ...args: A): R {
    return fn.apply(this, args);
  } as Actor<A, R>;
  Object.defineProperties(self, {
    actorName: { value: actorName, enumerable: true },
    queueName: { value: queueName, enumerable: true },
    priority: { value: priority, enumerable: true },
    options: { value: Object.freeze({ ...options }), enumerable: true },
    fn: { value: fn },
    broker: { get: () => explicitBroker ?? getBroker() },
    name: { value: actorName },
  });
  const build = messageBuilder<A, R>(self, explicitBroker);
  // A message built for a pipeline or group knows the broker of an actor declared with one, so
  // that `pipeline([...])` runs there without a `broker` option.
  const built = (m: Message<Awaited<R>>) => explicitBroker ? _attachBroker(m, explicitBroker) : m;
  self.message = (...args: ArgsPrefix<A>) => built(build({ args }));
  self.messageWithOptions = (o: SendOptions<ArgsPrefix<A>>) => built(build(o));
  const send = (o: SendOptions<A>): Promise<Message<Awaited<R>>> => {
    let msg: Message<Awaited<R>>;
    try {
      msg = build(o as SendOptions<ArgsPrefix<A>>);
    } catch (e) {
      return Promise.reject(e);
    }
    let delay = msg.options.delay as number | undefined;
    if (delay !== undefined) delete msg.options.delay;
    try {
      applyUnique(self, msg, o.args ?? []);
    } catch (e) {
      return Promise.reject(e);
    }
    // A debounced job waits `debounce` ms (the broker moves the eta of a holder it replaces).
    const debounce = msg.options.debounce;
    if (delay === undefined && typeof debounce === "number" && UNIQUE_KEY in msg.options) {
      delay = debounce;
    }
    const broker = self.broker;
    return broker.enqueue(msg, { delay }).then((m) =>
      _attachBroker(m as Message<Awaited<R>>, broker)
    );
  };
  // One send path, as in Dramatiq: `send` is `sendWithOptions` with arguments only.
  self.send = (...args: A) => self.sendWithOptions({ args });
  self.sendWithOptions = send;
  register(self as AnyActor, explicitBroker);
  return self;
}

/**
 * The function behind `message`, `messageWithOptions` and the send methods: checks the
 * arguments and per-message options and builds the message (a delay stays in its options).
 */
function messageBuilder<A extends unknown[], R>(
  self: Actor<A, R>,
  explicitBroker: Broker | undefined,
): (o: SendOptions<ArgsPrefix<A>>) => Message<Awaited<R>> {
  // Errors name the actor as users call it: `store: argument args[0] is undefined, ...`.
  const { actorName, queueName } = self;
  const call = actorName;
  return (o) => {
    const { args = [], kwargs, delay, ...rest } = o;
    if (!Array.isArray(args)) {
      throw new TypeError(`${call}: \`args\` must be an array, got ${typeof args}.`);
    }
    checkJson(call, "args", args);
    if (kwargs !== undefined) checkJson(call, "kwargs", kwargs);
    const wireOptions: JsonObject = {};
    for (const key of Object.keys(rest)) {
      const value = rest[key];
      if (value === undefined) continue;
      if (NOT_PER_MESSAGE.has(key)) {
        throw new TypeError(
          `${call}: option ${JSON.stringify(key)} can only be set on the actor, not per message.`,
        );
      }
      checkActorOptions({ [key]: value }, {
        call,
        actorName,
        allowed: allowedOptions(explicitBroker),
      });
      wireOptions[snake(key)] = toWire(call, key, value);
    }
    if (delay !== undefined) wireOptions.delay = checkDelay(call, delay);
    return new Message<Awaited<R>>({
      queueName,
      actorName,
      args: args as JsonValue[],
      kwargs: kwargs as JsonObject,
      options: wireOptions,
    });
  };
}

/** Declares `self` on its broker, or on every global broker (now and to come). */
function register(self: AnyActor, explicitBroker: Broker | undefined): void {
  if (explicitBroker) {
    explicitBroker.declareActor(self);
    return;
  }
  const { actorName } = self;
  if (pendingGlobal.has(actorName)) {
    throw new TypeError(
      `An actor named ${JSON.stringify(actorName)} is already registered on the global ` +
        `broker. Give the new one another name (the \`actorName\` option), or pass it a ` +
        `\`broker\`.`,
    );
  }
  onGlobalBroker.current?.declareActor(self);
  pendingGlobal.set(actorName, self);
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

function checkJson(call: string, what: string, value: unknown): void {
  const bad = findNonJson(value, what);
  if (bad) {
    throw new TypeError(
      `${call}: argument ${bad.path} is ${bad.problem}, which is not a JSON value. ` +
        `Messages carry JSON only: send ids, strings, numbers, plain objects and arrays.`,
    );
  }
}

function checkDelay(call: string, delay: unknown): number {
  if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
    throw new TypeError(`${call}: delay must be a non-negative number of ms, got ${delay}.`);
  }
  return Math.round(delay);
}

const UNIQUE_KEY = "unique_key";

/** Sets the unique options of a message about to be sent from the actor's options. */
function applyUnique(self: AnyActor, msg: Message, args: readonly unknown[]): void {
  const o = msg.options;
  const { uniqueKey, uniqueFor, debounce } = self.options;
  if (!(UNIQUE_KEY in o) && uniqueKey !== undefined) {
    const key = typeof uniqueKey === "function"
      ? (uniqueKey as (...a: unknown[]) => unknown)(...args)
      : uniqueKey;
    if (typeof key !== "string") {
      throw new TypeError(
        `${self.actorName}: the uniqueKey option must return a string, got ${typeof key}.`,
      );
    }
    o[UNIQUE_KEY] = key;
  }
  if (!(UNIQUE_KEY in o)) return;
  if (!("unique_for" in o) && typeof uniqueFor === "number") o.unique_for = uniqueFor;
  if (!("debounce" in o) && typeof debounce === "number") o.debounce = debounce;
}

function toWire(call: string, key: string, value: unknown): JsonValue {
  if (key === "onSuccess" || key === "onFailure" || key === "onRetryExhausted") {
    if (typeof value === "function" && typeof (value as AnyActor).actorName === "string") {
      return (value as AnyActor).actorName;
    }
    if (typeof value !== "string") {
      throw new TypeError(`${call}: option ${key} must be an actor or an actor name.`);
    }
    return value;
  }
  if (key === "uniqueKey" && typeof value !== "string") {
    throw new TypeError(`${call}: option uniqueKey must be a string per message.`);
  }
  const bad = findNonJson(value, key);
  if (bad) {
    throw new TypeError(
      `${call}: option ${bad.path} is ${bad.problem}; options must be JSON.`,
    );
  }
  return value as JsonValue;
}

function checkOptionTypes(call: string, actorName: string, o: ActorOptions): void {
  const fail = (what: string): never => {
    throw new TypeError(`${call}: option ${what} (actor ${JSON.stringify(actorName)}).`);
  };
  const num = (k: string, nullable = false) => {
    const v = o[k];
    if (v === undefined || (nullable && v === null)) return;
    if (typeof v !== "number" || Number.isNaN(v) || v < 0) {
      fail(`${k} must be a non-negative number`);
    }
  };
  num("priority");
  num("maxRetries", true);
  num("minBackoff");
  num("maxBackoff");
  num("maxAge");
  num("timeLimit");
  num("resultTtl");
  num("uniqueFor");
  num("debounce");
  if (
    o.uniqueKey !== undefined && typeof o.uniqueKey !== "string" &&
    typeof o.uniqueKey !== "function"
  ) {
    fail("uniqueKey must be a string or a function of the arguments returning one");
  }
  if (o.retryWhen !== undefined && typeof o.retryWhen !== "function") {
    fail("retryWhen must be a function");
  }
  if (o.throws !== undefined) {
    const list = Array.isArray(o.throws) ? o.throws : [o.throws];
    if (list.some((c) => typeof c !== "function")) {
      fail("throws must be an error class or a list of them");
    }
  }
  if (o.queueName !== undefined && typeof o.queueName !== "string") {
    fail("queueName must be a string");
  }
}
