// The `Broker` base class: the middleware stack, the declared actors and queues, and `enqueue`
// (middleware, delay queue); each broker implements `consume` and its `Consumer`
// (`consumer.ts`), and the operations of `ops.ts` it has. The path of a message through it:
// docs/architecture.md.
import { ActorNotFound, QueueNotFound, Unsupported } from "../errors.ts";
import type { JsonValue, Message } from "../message.ts";
import type { Middleware } from "../middleware/middleware.ts";
import { defaultMiddleware } from "../middleware/_default.ts";
import {
  type BrokerOptions,
  Hooks,
  insertionPoint,
  type MiddlewareClass,
  runSync,
} from "./_hooks.ts";
import type { EnqueueOptions, JoinOptions, QueueStats } from "./_broker_options.ts";

import { dqName, qName, routed, validateQueueName } from "./queue_name.ts";
import type { ConsumeOptions, Consumer } from "./consumer.ts";
import type { DeclaredActor } from "./declared_actor.ts";
import {
  type BrokerCapabilities,
  type BrokerEvent,
  type BrowseEntry,
  type BrowseOptions,
  type BrowsePage,
  type BrowseState,
  type CancelOutcome,
  NO_CAPABILITIES,
  type ProgressRecord,
  type SchedulePause,
  type WorkerRecord,
} from "./ops.ts";

// What brokers and workers use, importable from here too: the message as a worker holds it
// (beside `Message`), queue names, and the consumer interface.
export { MessageProxy } from "../message.ts";
export { dqName, qName, validateQueueName, xqName } from "./queue_name.ts";
export { toRawDelivery } from "./consumer.ts";
export type { ConsumeOptions, Consumer, RawDelivery, ReceiveOptions } from "./consumer.ts";
export type { DeclaredActor, SendOptions } from "./declared_actor.ts";

export type { EnqueueOptions, JoinOptions, QueueStats } from "./_broker_options.ts";
export type { BrokerOptions, MiddlewareClass } from "./_hooks.ts";

/**
 * The base class of every broker. It owns the middleware stack, the declared actors and
 * queues, and the delay logic of `enqueue`; subclasses store and deliver messages.
 *
 * @example
 * ```ts
 * import { actor, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * const add = actor((a: number, b: number) => a + b, { actorName: "add", broker });
 * const msg = await add.send(1, 2);
 * console.log(msg.queueName); // default
 * ```
 */
export abstract class Broker {
  /** The middleware stack, in order. Use `addMiddleware` to change it. */
  readonly middleware: Middleware[] = [];
  /** Actors declared on this broker, by name. */
  protected readonly actors: Map<string, DeclaredActor> = new Map();
  /** Declared queue names (canonical). */
  protected readonly queues: Set<string> = new Set();
  /** Declared delay queue names (`q.DQ`). */
  protected readonly delayQueues: Set<string> = new Set();
  /** Who has which hook, per event name. */
  #hooks = new Hooks(this.middleware);
  #actorOptions = new Set<string>();
  #closed = false;

  /** Creates the broker with `options.middleware` or the default stack. */
  constructor(options: BrokerOptions = {}) {
    const stack = options.middleware ?? defaultMiddleware();
    for (const m of stack) this.addMiddleware(m);
  }

  /**
   * The actor options the middleware of this broker add (each middleware's `actorOptions`, as
   * Dramatiq's `broker.actor_options`). `actor()` accepts these, besides its own `actorName`,
   * `queueName`, `priority` and `broker`, for an actor declared on this broker.
   *
   * @example
   * ```ts
   * import { MemoryResultBackend, Results, StubBroker } from "@dramatis/dramatis";
   * const broker = new StubBroker();
   * console.log(broker.actorOptions.has("storeResults")); // false
   * broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
   * console.log(broker.actorOptions.has("storeResults")); // true
   * ```
   */
  get actorOptions(): ReadonlySet<string> {
    return this.#actorOptions;
  }

  /**
   * Makes actor options legal on this broker besides those of its middleware: for options the
   * broker itself reads (the RabbitMQ broker's `brokerPriority`). Call it in the constructor.
   */
  protected addActorOptions(names: Iterable<string>): void {
    for (const name of names) this.#actorOptions.add(name);
  }

  /**
   * Adds a middleware at the end of the stack, or just before / after the first middleware of
   * the class given.
   */
  addMiddleware(
    middleware: Middleware,
    options: { before?: MiddlewareClass; after?: MiddlewareClass } = {},
  ): void {
    const at = insertionPoint(this.middleware, middleware, options);
    this.middleware.splice(at, 0, middleware);
    this.addActorOptions(middleware.actorOptions);
    this.#hooks.clear();
    // Like Dramatiq: a middleware added late still hears about what was declared before it.
    for (const actor of this.actors.values()) {
      runSync(middleware.afterDeclareActor?.(this, actor), "afterDeclareActor");
    }
    for (const q of this.queues) {
      runSync(middleware.afterDeclareQueue?.(this, q), "afterDeclareQueue");
      runSync(middleware.afterDeclareDelayQueue?.(this, dqName(q)), "afterDeclareDelayQueue");
    }
  }

  /**
   * Runs the `before<Name>` hook of every middleware, in order. Errors propagate. Returns a
   * promise only when some hook returned one (so the common case costs no microtask).
   */
  emitBefore(name: string, ...args: unknown[]): void | Promise<void> {
    return this.#hooks.emitBefore(this, name, args);
  }

  /**
   * Runs the `after<Name>` hook of every middleware, in reverse order. Errors are logged and
   * swallowed. Returns a promise only when some hook returned one.
   */
  emitAfter(name: string, ...args: unknown[]): void | Promise<void> {
    return this.#hooks.emitAfter(this, name, args);
  }

  /**
   * Declares an actor (and its queue) on this broker. Declaring the same actor again does
   * nothing; declaring another actor under a name already registered throws a `TypeError`, as
   * in Dramatiq.
   */
  declareActor(actor: DeclaredActor): void {
    const existing = this.actors.get(actor.actorName);
    if (existing === actor) return;
    if (existing) {
      throw new TypeError(
        `An actor named ${JSON.stringify(actor.actorName)} is already registered on this ` +
          `broker. Give the new one another name (the \`actorName\` option), or declare it on ` +
          `another broker.`,
      );
    }
    runSync(this.emitBefore("declareActor", actor), "beforeDeclareActor");
    this.declareQueue(actor.queueName);
    this.actors.set(actor.actorName, actor);
    runSync(this.emitAfter("declareActor", actor), "afterDeclareActor");
  }

  /** Declares a queue and its delay queue. Declaring twice does nothing. */
  declareQueue(queueName: string): void {
    const q = qName(queueName);
    if (this.queues.has(q)) return;
    validateQueueName(q);
    runSync(this.emitBefore("declareQueue", q), "beforeDeclareQueue");
    this.queues.add(q);
    this.delayQueues.add(dqName(q));
    this._declareQueue(q);
    runSync(this.emitAfter("declareQueue", q), "afterDeclareQueue");
    runSync(this.emitAfter("declareDelayQueue", dqName(q)), "afterDeclareDelayQueue");
  }

  /** Returns the actor named `actorName`; throws `ActorNotFound`. */
  getActor(actorName: string): DeclaredActor {
    const a = this.actors.get(actorName);
    if (!a) throw new ActorNotFound(actorName);
    return a;
  }

  /**
   * The priority `message` runs at: its `priority` option when that is a number, else the
   * priority of its actor, else 0. Lower runs first. Brokers that order by priority and workers
   * use this one rule.
   *
   * @example
   * ```ts
   * import { actor, Message, StubBroker } from "@dramatis/dramatis";
   * const broker = new StubBroker();
   * actor(function report() {}, { broker, priority: 10 });
   * const m = new Message({ queueName: "default", actorName: "report" });
   * console.log(broker.priorityOf(m)); // 10
   * console.log(broker.priorityOf(m.copy({ options: { priority: 1 } }))); // 1
   * ```
   */
  priorityOf(message: Message): number {
    const p = message.options.priority;
    return typeof p === "number" ? p : (this.actors.get(message.actorName)?.priority ?? 0);
  }

  /** True when an actor named `actorName` is declared on this broker. */
  hasActor(actorName: string): boolean {
    return this.actors.has(actorName);
  }

  /** Names of the declared queues (canonical, without `.DQ`). */
  getDeclaredQueues(): Set<string> {
    return new Set(this.queues);
  }

  /** Names of the declared delay queues (`q.DQ`). */
  getDeclaredDelayQueues(): Set<string> {
    return new Set(this.delayQueues);
  }

  /** Names of the declared actors. */
  getDeclaredActors(): Set<string> {
    return new Set(this.actors.keys());
  }

  /**
   * Enqueues a message. With `delay`, the message goes to `q.DQ` with `options.eta` set and is
   * delivered once due. Resolves once the broker has accepted (and, for durable brokers,
   * stored) it, with the message as enqueued. A unique job (option `unique_key`, on a broker
   * whose capabilities include `unique`) whose key is held resolves to the holder's message.
   */
  async enqueue(message: Message, options: EnqueueOptions = {}): Promise<Message> {
    if (this.#closed) {
      throw new TypeError("broker.enqueue(): this broker is closed; create a new one to enqueue.");
    }
    const q = qName(message.queueName);
    if (!this.queues.has(q)) throw new QueueNotFound(q);
    const delay = options.delay;
    message = routed(message, q, delay);
    const before = this.emitBefore("enqueue", message, delay);
    if (before) await before;
    const holder = await this._enqueue(message);
    // A unique job's duplicate: nothing was enqueued, the holder of its key answers for it.
    if (holder) return holder;
    const after = this.emitAfter("enqueue", message, delay);
    if (after) await after;
    return message;
  }

  /** Called once per new queue; create storage here. `queueName` is canonical. */
  protected _declareQueue(_queueName: string): void {}

  /**
   * Stores `message` on `message.queueName` (`q` or `q.DQ`). A broker with the `unique`
   * capability resolves to the holder of the message's `unique_key` instead when it enqueued
   * nothing (or replaced the pending holder, with `debounce`); `enqueue` then returns that
   * message as is, without the `afterEnqueue` hooks.
   */
  protected abstract _enqueue(message: Message): Promise<void | Message>;

  /** Returns a consumer of `queueName` (`q` or `q.DQ`). */
  abstract consume(queueName: string, options?: ConsumeOptions): Consumer;

  /** Waits until `queueName` and its delay queue hold no message (ready, delayed or in flight). */
  abstract join(queueName: string, options?: JoinOptions): Promise<void>;

  /** Drops every message of `queueName` and its delay queue. */
  abstract flush(queueName: string): Promise<void>;

  /** Drops every message of every declared queue (dead letters too). */
  async flushAll(): Promise<void> {
    for (const q of this.queues) await this.flush(q);
  }

  /**
   * Queue names (canonical) that hold data in the broker's storage, declared here or not.
   * The default returns the declared queues; brokers that can look further override it.
   */
  listQueues(): Promise<string[]> {
    return Promise.resolve([...this.queues]);
  }

  /** The counters of one queue. */
  abstract stats(queueName: string): Promise<QueueStats>;

  /**
   * How many messages `queueName` and its delay queue hold: ready, delayed and in flight (on any
   * worker), dead letters excluded. It is Dramatiq's `qsize`, what `join()` waits to see at 0.
   *
   * @example
   * ```ts
   * import { Message, StubBroker } from "@dramatis/dramatis";
   * const broker = new StubBroker();
   * broker.declareQueue("emails");
   * await broker.enqueue(new Message({ queueName: "emails", actorName: "send" }));
   * await broker.enqueue(new Message({ queueName: "emails", actorName: "send" }), { delay: 60_000 });
   * console.log(await broker.queueSize("emails")); // 2
   * ```
   */
  async queueSize(queueName: string): Promise<number> {
    const s = await this.stats(queueName);
    return s.ready + s.delayed + s.inFlight;
  }

  /** The dead-lettered messages of `queueName`, oldest first. */
  abstract deadLetters(
    queueName: string,
    options?: { limit?: number | undefined },
  ): Promise<Message[]>;

  /**
   * Moves dead letters back onto their queue (all of them, or those whose ids are given).
   * Resolves with how many were moved.
   */
  abstract requeueDeadLetters(queueName: string, messageIds?: string[]): Promise<number>;

  /** Deletes the dead letters of `queueName`. Resolves with how many were deleted. */
  abstract purgeDeadLetters(queueName: string): Promise<number>;

  // ---- Operations (broker/ops.ts). Each throws `Unsupported` unless the broker has it. ----

  /**
   * Which operations this broker has (cancel, unique, progress, pause, schedules, workers,
   * events, browse). The base class has none.
   *
   * @example
   * ```ts
   * import { StubBroker } from "@dramatis/dramatis";
   * const broker = new StubBroker();
   * if (broker.capabilities.pause) await broker.pauseQueue("default");
   * ```
   */
  get capabilities(): BrokerCapabilities {
    return NO_CAPABILITIES;
  }

  /** Throws the `Unsupported` error for `operation` on this broker. */
  protected unsupported(operation: string): never {
    throw new Unsupported(
      `${this.constructor.name} does not support ${operation}: use a broker whose ` +
        `capabilities include it (the file and Redis brokers have them all).`,
    );
  }

  /**
   * Cancels a message by id: a queued or delayed one never runs; a running one has its signal
   * aborted with `Cancelled` by the worker running it (which polls `cancelled()`). A cancelled
   * message is not retried.
   */
  cancel(_messageId: string): Promise<CancelOutcome> {
    return this.unsupported("cancel()");
  }

  /** Which of `messageIds` were cancelled (workers poll it for what they run). */
  cancelled(_messageIds: readonly string[]): Promise<Set<string>> {
    return this.unsupported("cancelled()");
  }

  /** Stores the progress of a message (the last value wins). */
  setProgress(_messageId: string, _value: JsonValue): Promise<void> {
    return this.unsupported("setProgress()");
  }

  /** The last progress stored for a message, or null. */
  getProgress(_messageId: string): Promise<ProgressRecord | null> {
    return this.unsupported("getProgress()");
  }

  /** Pauses a queue for every consumer of this broker (kept across restarts). */
  pauseQueue(_queueName: string): Promise<void> {
    return this.unsupported("pauseQueue()");
  }

  /** Resumes a paused queue. */
  resumeQueue(_queueName: string): Promise<void> {
    return this.unsupported("resumeQueue()");
  }

  /** The canonical names of the paused queues. */
  pausedQueues(): Promise<Set<string>> {
    return this.unsupported("pausedQueues()");
  }

  /**
   * Enqueues a schedule's message for `tick` (ms since the epoch) unless that tick, or a later
   * one, of schedule `name` was enqueued already, and records it as the last tick, atomically
   * across processes. Resolves true when it enqueued.
   */
  enqueueTick(_name: string, _tick: number, _message: Message): Promise<boolean> {
    return this.unsupported("enqueueTick()");
  }

  /** The last tick enqueued per schedule name. */
  lastTicks(): Promise<Map<string, number>> {
    return this.unsupported("lastTicks()");
  }

  /** Pauses schedule `name`: from now on `enqueueTick()` refuses its ticks, in every process. */
  pauseSchedule(_name: string): Promise<void> {
    return this.unsupported("pauseSchedule()");
  }

  /** Resumes schedule `name`: its ticks from now on are enqueued (those of the pause: missed). */
  resumeSchedule(_name: string): Promise<void> {
    return this.unsupported("resumeSchedule()");
  }

  /** Every schedule ever paused: paused now, or resumed (and when). */
  schedulePauses(): Promise<Map<string, SchedulePause>> {
    return this.unsupported("schedulePauses()");
  }

  /** Publishes a worker's registry record, kept for `ttl` ms unless published again. */
  publishWorker(_record: WorkerRecord, _ttl: number): Promise<void> {
    return this.unsupported("publishWorker()");
  }

  /** The live workers' records (those whose last heartbeat is within their ttl). */
  workers(): Promise<WorkerRecord[]> {
    return this.unsupported("workers()");
  }

  /** Removes a worker's record (at a clean stop). */
  removeWorker(_workerId: string): Promise<void> {
    return this.unsupported("removeWorker()");
  }

  /** Publishes events for `events()` readers in every process. */
  publishEvents(_events: readonly BrokerEvent[]): Promise<void> {
    return this.unsupported("publishEvents()");
  }

  /**
   * The events published from now on by every process, until `signal` aborts. With `past`, first
   * those the broker still keeps from before the call, oldest first (the file broker keeps about
   * the last 5,000-10,000, Redis about 10,000, the StubBroker 10,000).
   *
   * @example
   * ```ts
   * import { StubBroker } from "@dramatis/dramatis";
   * const broker = new StubBroker();
   * const stop = new AbortController();
   * if (broker.capabilities.events) {
   *   (async () => {
   *     for await (const e of broker.events({ signal: stop.signal })) console.log(e.type);
   *   })();
   * }
   * stop.abort();
   * ```
   */
  events(_options: { signal?: AbortSignal; past?: boolean } = {}): AsyncIterable<BrokerEvent> {
    return this.unsupported("events()");
  }

  /** One page of the messages of `queueName` in `state`, newest first. */
  browse(_queueName: string, _state: BrowseState, _options?: BrowseOptions): Promise<BrowsePage> {
    return this.unsupported("browse()");
  }

  /** A message by id, wherever it is (ready, delayed, running or dead), or null. */
  findMessage(_messageId: string): Promise<BrowseEntry | null> {
    return this.unsupported("findMessage()");
  }

  /** Deletes ready, delayed or dead messages by id (not running ones). Resolves with how many. */
  deleteMessages(_messageIds: readonly string[]): Promise<number> {
    return this.unsupported("deleteMessages()");
  }

  /** Moves ready, delayed or dead messages to another queue (ready there). Resolves with how many. */
  moveMessages(_messageIds: readonly string[], _queueName: string): Promise<number> {
    return this.unsupported("moveMessages()");
  }

  /** Makes delayed messages ready now. Resolves with how many. */
  runNow(_messageIds: readonly string[]): Promise<number> {
    return this.unsupported("runNow()");
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Releases the broker's resources (files, connections, timers). */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** Same as `close()`, for `await using broker = ...`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
