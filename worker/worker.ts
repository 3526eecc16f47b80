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
import type { Broker } from "../broker/broker.ts";
import type { DeclaredActor } from "../broker/declared_actor.ts";
import type { Consumer } from "../broker/consumer.ts";
import type { MessageProxy } from "../message.ts";
import { dqName, qName } from "../broker/queue_name.ts";
import { Shutdown, SkipMessage } from "../errors.ts";
import { Heap } from "../_queue.ts";
import { Delays } from "./_delays.ts";
import { invoke, logCompleted, logFailure, logReceived, settle, warnIfDiscarded } from "./_run.ts";
import { receiveBackoff, sleep } from "../_async.ts";
import { formatError, getLogger } from "../_log.ts";

const logger = getLogger("dramatis.worker.Worker");

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
  queues?: string[] | undefined;
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
  #delays = new Delays((m) => this.#moveToQueue(m), () => this.#wake());
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
    return this.#ready.length + this.#inFlight.size + this.#delays.size;
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
      this.#delays.add(m);
      return;
    }
    this.#ready.push({ message: m, priority: this.broker.priorityOf(m), seq: this.#seq++ });
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
          const t0 = logReceived(m);
          this.#monitor?.started(m);
          const result = await invoke(actor, m);
          if (t0 !== undefined) logCompleted(m, t0);
          if (result !== undefined) {
            warnIfDiscarded(m, { broker, actor, checked: this.#discardChecked });
          }
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
            logFailure(actor, m, e);
            const after = broker.emitAfter("processMessage", m, { error: e });
            if (after) await after;
          }
        }
      }
    } finally {
      m.done = true;
      m.onAbort(undefined);
      await settle(m, { broker, consumer: this.#consumers.get(m.queueName), requeue });
      this.#inFlight.delete(m);
      this.#dispatch();
      this.#wake();
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
    const unstarted = [...this.#ready.clear().map((r) => r.message), ...this.#delays.stop()];
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
    await this.#delays.settled();
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
