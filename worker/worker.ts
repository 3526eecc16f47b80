/**
 * `Worker`: consumes queues and runs actors in this isolate, with `concurrency` messages in
 * flight at once. The CLI runs one Worker inside each Web Worker it spawns.
 *
 * @example
 * ```ts
 * import { actor, StubBroker, Worker } from "@dramatis/dramatis";
 *
 * const broker = new StubBroker();
 * const hello = actor((name: string) => console.log(`hello ${name}`), {
 *   actorName: "hello",
 *   broker,
 * });
 * await hello.send("ada");
 * const worker = new Worker(broker, { concurrency: 4 });
 * await worker.start();
 * await broker.join("default");
 * await worker.stop();
 * ```
 * @module
 */
import type { Broker, DeclaredActor } from "../broker/broker.ts";
import type { Consumer } from "../broker/consumer.ts";
import type { MessageProxy } from "../message.ts";
import { dqName, qName } from "../broker/queue_name.ts";
import { RateLimitExceeded, Retry, Shutdown, SkipMessage } from "../errors.ts";
import { isExpectedError } from "../_options.ts";
import { hasResultsMiddleware, resultPassedOn } from "../middleware/_util.ts";
import { Heap } from "../_queue.ts";
import { receiveBackoff, sleep } from "../_async.ts";
import { formatError, getLogger, LEVELS } from "../_log.ts";
import { runWithMessage } from "./context.ts";

const logger = getLogger("dramatis.worker.Worker");
const actorLogger = getLogger("dramatis.actor");

function describeArgs(m: MessageProxy): string {
  const args = JSON.stringify(m.args);
  return `args=${args.length > 200 ? args.slice(0, 200) + "..." : args} kwargs=${
    JSON.stringify(m.kwargs)
  }`;
}

/**
 * Options of `new Worker()`.
 *
 * @example
 * ```ts
 * import type { WorkerOptions } from "@dramatis/dramatis";
 * const o: WorkerOptions = { queues: ["default", "emails"], concurrency: 16 };
 * ```
 */
export interface WorkerOptions {
  /** Queues to consume. Default: every queue declared on the broker when `start()` runs. */
  queues?: string[];
  /** Messages processed at once (async concurrency in this isolate). Default 8. */
  concurrency?: number;
  /** How long a consumer waits for messages before checking for shutdown, in ms. Default 1000. */
  workerTimeout?: number;
  /** Messages held ready beyond `concurrency`, so the next one starts at once. Default: concurrency. */
  prefetch?: number;
  /**
   * Called just before an actor starts. The CLI uses it to watch for actors that never yield.
   */
  monitor?: WorkerMonitor;
  /**
   * @internal How to consume a queue. Default: `broker.consume()`. The CLI's Web Workers get
   * their messages from the worker process's main thread this way.
   */
  consume?: (queueName: string) => Consumer;
}

/**
 * Observes the messages a `Worker` runs (used by the CLI's hard time limits).
 *
 * @example
 * ```ts
 * import type { WorkerMonitor } from "@dramatis/dramatis";
 * const monitor: WorkerMonitor = { started: (m) => console.log("start", m.messageId) };
 * ```
 */
export interface WorkerMonitor {
  /** The actor of `message` is about to run (synchronously after this call). */
  started(message: MessageProxy): void;
}

/**
 * Options of `worker.stop()`.
 *
 * @example
 * ```ts
 * import type { StopOptions } from "@dramatis/dramatis";
 * const o: StopOptions = { timeout: 30_000 };
 * ```
 */
export interface StopOptions {
  /**
   * How long to let in-flight messages finish, in ms (default 600_000). Messages still running
   * then are aborted (their signal fires with `Shutdown`) and handed back to the broker.
   */
  timeout?: number;
}

interface Ready {
  message: MessageProxy;
  priority: number;
  seq: number;
}

/**
 * Runs actors for the messages of a broker's queues, in this isolate.
 *
 * - Messages from all its queues are run lowest `priority` first, then in arrival order.
 * - Delayed messages (`q.DQ`) are moved to their queue when due.
 * - `stop()` stops consuming, lets in-flight messages finish (up to a timeout) and hands every
 *   message it holds but has not finished back to the broker.
 *
 * @example
 * ```ts
 * import { StubBroker, Worker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * broker.declareQueue("default");
 * const worker = new Worker(broker, { queues: ["default"], concurrency: 8, workerTimeout: 100 });
 * await worker.start();
 * await worker.stop();
 * ```
 */
export class Worker {
  /** The broker this worker consumes from. */
  readonly broker: Broker;
  /** Messages processed at once. */
  readonly concurrency: number;
  /** Consumer wait timeout in ms. */
  readonly workerTimeout: number;
  /** Messages held ready beyond `concurrency`. */
  readonly prefetch: number;

  #queueNames: string[] | undefined;
  #consumers = new Map<string, Consumer>();
  #loops: Promise<void>[] = [];
  #ready = new Heap<Ready>((a, b) =>
    a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq)
  );
  #delayed = new Heap<MessageProxy>((a, b) =>
    (a.options.eta as number) < (b.options.eta as number)
  );
  #delayTimer: ReturnType<typeof setTimeout> | undefined;
  #delayTimerAt = Infinity;
  #moving = 0;
  #seq = 0;
  #inFlight = new Set<MessageProxy>();
  #running = false;
  #stopping = false;
  #paused = false;
  #stopController = new AbortController();
  /** Aborts the pending receives: on `pause()` and on `stop()`. */
  #fetchController = new AbortController();
  /** Receives in progress; `pause()` resolves once none is left. */
  #receiving = 0;
  #quietWaiters: (() => void)[] = [];
  /**
   * Consumers that have not fetched yet since `start()` or `resume()`: nothing is dispatched
   * until each has, so what every queue holds runs in priority order, not in fetch order.
   */
  #refill = new Set<Consumer>();
  #monitor: WorkerMonitor | undefined;
  #consume: ((queueName: string) => Consumer) | undefined;
  #wakeLoops: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  /** Actors whose returned value was checked for a Results middleware (see #checkDiscarded). */
  #discardChecked = new Set<string>();

  /** Creates a worker; call `start()` to begin. */
  constructor(broker: Broker, options: WorkerOptions = {}) {
    this.broker = broker;
    this.concurrency = positiveInt("concurrency", options.concurrency ?? 8);
    this.workerTimeout = positiveInt("workerTimeout", options.workerTimeout ?? 1000);
    this.prefetch = options.prefetch ?? this.concurrency;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) {
      throw new TypeError(
        `new Worker(): prefetch must be a non-negative integer, got ${this.prefetch}.`,
      );
    }
    this.#queueNames = options.queues?.map(qName);
    this.#monitor = options.monitor;
    this.#consume = options.consume;
  }

  /** The messages being processed right now. */
  get inFlight(): Iterable<MessageProxy> {
    return this.#inFlight;
  }

  /** True between `start()` and `stop()`. */
  get running(): boolean {
    return this.#running;
  }

  /** Starts consuming. Resolves once every consumer is running. */
  async start(): Promise<void> {
    if (this.#running) return;
    const before = this.broker.emitBefore("workerBoot", this);
    if (before) await before;
    const names = this.#queueNames ?? [...this.broker.getDeclaredQueues()];
    for (const name of names) this.broker.declareQueue(name);
    this.#running = true;
    this.#stopping = false;
    this.#stopController = new AbortController();
    this.#fetchController = new AbortController();
    for (const name of names) {
      for (const queue of [name, dqName(name)]) {
        const consumer = this.#consume?.(queue) ??
          this.broker.consume(queue, { prefetch: this.#capacity });
        this.#consumers.set(queue, consumer);
      }
    }
    this.#refill = new Set(this.#consumers.values());
    for (const consumer of this.#consumers.values()) {
      this.#loops.push(this.#consumeLoop(consumer));
    }
    const after = this.broker.emitAfter("workerBoot", this);
    if (after) await after;
  }

  get #capacity(): number {
    return this.concurrency + this.prefetch;
  }

  get #held(): number {
    return this.#ready.length + this.#inFlight.size + this.#delayed.length + this.#moving;
  }

  async #consumeLoop(consumer: Consumer): Promise<void> {
    let failures = 0;
    while (this.#running) {
      const free = this.#capacity - this.#held;
      if (this.#paused || free <= 0) {
        if (!this.#paused) this.#refilled(consumer); // no room: it has nothing to add
        await new Promise<void>((resolve) => this.#wakeLoops.push(resolve));
        continue;
      }
      // The first fetch after start() or resume() does not wait: it only collects what is there.
      const refilling = this.#refill.has(consumer);
      let batch: MessageProxy[];
      this.#receiving++;
      try {
        batch = await consumer.receive(free, {
          timeout: refilling ? 0 : this.workerTimeout,
          signal: this.#fetchController.signal,
        });
        failures = 0;
      } catch (e) {
        failures++;
        const wait = receiveBackoff(failures);
        logger.error(`Consumer failed to receive (retrying in ${wait} ms): ${formatError(e)}`);
        if (refilling) this.#refilled(consumer);
        await sleep(wait, this.#stopController.signal);
        continue;
      } finally {
        if (--this.#receiving === 0 && this.#quietWaiters.length) {
          for (const w of this.#quietWaiters.splice(0)) w();
        }
      }
      if (!this.#running) {
        if (batch.length) await consumer.requeue(batch);
        break;
      }
      for (const m of batch) this.#accept(m);
      if (refilling) this.#refilled(consumer);
      this.#dispatch();
    }
  }

  /** `consumer` has fetched since the last start or resume; dispatch once all have. */
  #refilled(consumer: Consumer): void {
    if (this.#refill.delete(consumer) && this.#refill.size === 0) this.#dispatch();
  }

  #accept(m: MessageProxy): void {
    const eta = m.options.eta;
    const delayed = m.queueName.endsWith(".DQ");
    if (eta !== undefined && typeof eta !== "number") {
      // As in Dramatiq: a null eta means none; anything else is reported, and the message runs now.
      if (eta !== null) {
        logger.warning(
          `Invalid eta value for message ${m.messageId}: ${JSON.stringify(eta)}. Running it now.`,
        );
      }
      if (delayed) m.options.eta = 0;
      else delete m.options.eta;
    }
    if (delayed || (typeof eta === "number" && eta > Date.now())) {
      const r = this.broker.emitBefore("delayMessage", m);
      if (r) r.catch((e) => logger.error(`beforeDelayMessage failed: ${formatError(e)}`));
      this.#delayed.push(m);
      this.#armDelayTimer();
      return;
    }
    this.#ready.push({ message: m, priority: this.broker.priorityOf(m), seq: this.#seq++ });
  }

  #armDelayTimer(): void {
    const head = this.#delayed.peek();
    if (!head) return;
    const at = head.options.eta as number;
    if (this.#delayTimer !== undefined && this.#delayTimerAt <= at) return;
    clearTimeout(this.#delayTimer);
    this.#delayTimerAt = at;
    this.#delayTimer = setTimeout(() => {
      this.#delayTimer = undefined;
      this.#delayTimerAt = Infinity;
      this.#moveDueMessages();
    }, Math.max(0, at - Date.now()));
  }

  #moveDueMessages(): void {
    const now = Date.now();
    while (this.#delayed.length > 0 && (this.#delayed.peek()!.options.eta as number) <= now) {
      const m = this.#delayed.pop()!;
      this.#moving++;
      this.#moveToQueue(m).finally(() => {
        this.#moving--;
        this.#wake();
      });
    }
    this.#armDelayTimer();
  }

  /** Moves a due delayed message to its queue: enqueue a copy first, then ack the original. */
  async #moveToQueue(m: MessageProxy): Promise<void> {
    const consumer = this.#consumers.get(m.queueName)!;
    try {
      const options = { ...m.options };
      delete options.eta;
      await this.broker.enqueue(m.copy({ queueName: qName(m.queueName), options }));
      await consumer.ack(m);
    } catch (e) {
      logger.error(`Failed to move delayed message ${m.messageId}: ${formatError(e)}`);
      try {
        await consumer.requeue([m]);
      } catch { /* the broker recovers it when the lease expires */ }
    }
  }

  #dispatch(): void {
    if (this.#paused || this.#refill.size > 0) return;
    while (this.#inFlight.size < this.concurrency && this.#ready.length > 0) {
      this.#process(this.#ready.pop()!.message);
    }
  }

  #wake(): void {
    if (this.#wakeLoops.length) {
      const wakers = this.#wakeLoops;
      this.#wakeLoops = [];
      for (const w of wakers) w();
    }
    if (this.#idleWaiters.length && this.#ready.length === 0 && this.#inFlight.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  async #process(m: MessageProxy): Promise<void> {
    this.#inFlight.add(m);
    const broker = this.broker;
    let requeue = false;
    try {
      let actor: DeclaredActor | undefined;
      try {
        actor = broker.getActor(m.actorName);
      } catch (e) {
        logger.error(
          `Received message ${m.messageId} for undefined actor ${
            JSON.stringify(m.actorName)
          } on queue ${m.queueName}. Moving it to the dead-letter queue.`,
        );
        m.error = e;
        m.fail();
      }
      if (actor) {
        try {
          const before = broker.emitBefore("processMessage", m);
          if (before) await before;
          const debug = actorLogger.isEnabledFor(LEVELS.DEBUG);
          const t0 = debug ? performance.now() : 0;
          if (debug) {
            getLogger(`dramatis.actor.${m.actorName}`).debug(`Received ${describeArgs(m)}.`);
          }
          this.#monitor?.started(m);
          const result = await this.#invoke(actor, m);
          if (debug) {
            getLogger(`dramatis.actor.${m.actorName}`).debug(
              `Completed after ${(performance.now() - t0).toFixed(2)} ms.`,
            );
          }
          if (result !== undefined) this.#checkDiscarded(actor, m);
          const after = broker.emitAfter("processMessage", m, { result });
          if (after) await after;
        } catch (e) {
          if (e instanceof SkipMessage) {
            // As in Dramatiq: a skipped message that failed carries the reason, which the
            // Results middleware stores ("actor raised SkipMessage: Message age limit exceeded").
            if (m.failed) m.error = e;
            const after = broker.emitAfter("skipMessage", m);
            if (after) await after;
          } else if (this.#stopping && e instanceof Shutdown) {
            requeue = true;
          } else {
            m.error = e;
            if (e instanceof RateLimitExceeded) {
              logger.debug(`Rate limit exceeded in message ${m} (${m.messageId}): ${e.message}`);
            } else if (isExpectedError(actor, e)) {
              logger.info(
                `Failed to process message ${m} (${m.messageId}) with expected exception ${
                  e instanceof Error ? e.name : typeof e
                }.`,
              );
            } else if (e instanceof Retry) {
              logger.debug(`Message ${m} asked for a retry.`);
            } else {
              logger.warning(
                `Failed to process message ${m} (${m.messageId}) with unhandled exception.\n${
                  formatError(e)
                }`,
              );
            }
            const after = broker.emitAfter("processMessage", m, { error: e });
            if (after) await after;
          }
        }
      }
    } finally {
      m.done = true;
      m.onAbort(undefined);
      await this.#settle(m, requeue);
      this.#inFlight.delete(m);
      this.#dispatch();
      this.#wake();
    }
  }

  /**
   * Warns, once per actor, that a returned value is discarded because no `Results` middleware
   * would store it (as Dramatiq does). The `Results` middleware warns when it is there but the
   * actor does not store results.
   */
  #checkDiscarded(actor: DeclaredActor, m: MessageProxy): void {
    if (this.#discardChecked.has(actor.actorName) || resultPassedOn(m, actor)) return;
    // Middleware is only ever added: once a Results middleware is there, it stays.
    this.#discardChecked.add(actor.actorName);
    if (hasResultsMiddleware(this.broker)) return;
    logger.warning(
      `Actor ${JSON.stringify(actor.actorName)} returned a value, but the broker has no ` +
        `Results middleware, so the value has been discarded. Add one ` +
        `(broker.addMiddleware(new Results({ backend }))) and set storeResults: true on the ` +
        `actor, or pipe the result into another actor. (Logged once per actor.)`,
    );
  }

  #invoke(actor: DeclaredActor, m: MessageProxy): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (m.aborted) return reject(m.signal.reason);
      m.onAbort(reject);
      const args = Object.keys(m.kwargs).length === 0 ? m.args : [...m.args, m.kwargs];
      let r: unknown;
      try {
        r = runWithMessage(m, actor.fn, args);
      } catch (e) {
        return reject(e);
      }
      if (
        r !== null && typeof r === "object" && typeof (r as Promise<unknown>).then === "function"
      ) {
        (r as Promise<unknown>).then(resolve, reject);
      } else {
        resolve(r);
      }
    });
  }

  async #settle(m: MessageProxy, requeue: boolean): Promise<void> {
    const consumer = this.#consumers.get(m.queueName);
    if (!consumer) {
      logger.error(`No consumer for queue ${m.queueName}: message ${m.messageId} left in flight.`);
      return;
    }
    const broker = this.broker;
    try {
      if (requeue) {
        await consumer.requeue([m]);
      } else if (m.failed) {
        const b = broker.emitBefore("nack", m);
        if (b) await b;
        await consumer.nack(m);
        const a = broker.emitAfter("nack", m);
        if (a) await a;
      } else {
        const b = broker.emitBefore("ack", m);
        if (b) await b;
        await consumer.ack(m);
        const a = broker.emitAfter("ack", m);
        if (a) await a;
      }
    } catch (e) {
      logger.error(
        `Failed to ${requeue ? "requeue" : m.failed ? "nack" : "ack"} message ${m.messageId}; ` +
          `the broker will deliver it again: ${formatError(e)}`,
      );
    }
  }

  /**
   * Stops taking messages: every fetch stops at once, including one waiting on the broker, and
   * no held message starts; in-flight ones finish. Resolves once no fetch is in progress: a
   * message sent after that stays on the broker until `resume()`.
   */
  pause(): Promise<void> {
    this.#paused = true;
    this.#fetchController.abort();
    if (this.#receiving === 0) return Promise.resolve();
    return new Promise((resolve) => this.#quietWaiters.push(resolve));
  }

  /**
   * Undoes `pause()`. Each queue is fetched once before anything starts, so the messages held
   * and those that arrived meanwhile run lowest priority first.
   */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#fetchController.signal.aborted) this.#fetchController = new AbortController();
    if (this.#running) this.#refill = new Set(this.#consumers.values());
    this.#dispatch();
    this.#wake();
  }

  /**
   * Resolves when the worker holds no message: nothing ready, nothing in flight. Useful in
   * tests after `broker.join()`.
   */
  join(): Promise<void> {
    if (this.#ready.length === 0 && this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops the worker: stops consuming, hands messages it holds but has not started back to the
   * broker, lets in-flight messages finish for up to `timeout` ms, then aborts and hands back
   * those still running.
   */
  async stop(options: StopOptions = {}): Promise<void> {
    if (!this.#running) return;
    const timeout = options.timeout ?? 600_000;
    this.#stopping = true;
    const before = this.broker.emitBefore("workerShutdown", this);
    if (before) await before;
    this.#running = false;
    this.#stopController.abort();
    this.#fetchController.abort();
    this.#refill.clear();
    this.#wake();
    await Promise.all(this.#loops);
    this.#loops = [];
    clearTimeout(this.#delayTimer);
    this.#delayTimer = undefined;
    this.#delayTimerAt = Infinity;
    const unstarted = [...this.#ready.clear().map((r) => r.message), ...this.#delayed.clear()];
    await this.#requeue(unstarted);
    if (this.#inFlight.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.join(),
        new Promise<void>((resolve) => timer = setTimeout(resolve, timeout)),
      ]);
      clearTimeout(timer);
      if (this.#inFlight.size > 0) {
        logger.warning(
          `${this.#inFlight.size} message(s) still running after ${timeout} ms; ` +
            `aborting them and handing them back to the broker.`,
        );
        for (const m of this.#inFlight) m.abort(new Shutdown("The worker is shutting down."));
        await this.join();
      }
    }
    while (this.#moving > 0) await sleep(1);
    for (const consumer of this.#consumers.values()) {
      try {
        await consumer.close();
      } catch (e) {
        logger.error(`Failed to close a consumer: ${formatError(e)}`);
      }
    }
    this.#consumers.clear();
    const after = this.broker.emitAfter("workerShutdown", this);
    if (after) await after;
  }

  async #requeue(messages: MessageProxy[]): Promise<void> {
    const byQueue = new Map<string, MessageProxy[]>();
    for (const m of messages) {
      let list = byQueue.get(m.queueName);
      if (!list) byQueue.set(m.queueName, list = []);
      list.push(m);
    }
    for (const [queue, list] of byQueue) {
      try {
        await this.#consumers.get(queue)?.requeue(list);
      } catch (e) {
        logger.error(`Failed to requeue ${list.length} message(s) on ${queue}: ${formatError(e)}`);
      }
    }
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new TypeError(`new Worker(): ${name} must be a positive integer, got ${v}.`);
  }
  return v;
}
