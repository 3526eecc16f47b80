/**
 * `Worker`: consumes queues and runs actors in this isolate, with `concurrency` messages in
 * flight at once. The CLI runs one Worker inside each Web Worker it spawns.
 *
 * On a broker with the operations of `broker/ops.ts` a Worker also:
 * - polls `broker.cancelled()` every `cancelPoll` ms for the messages it holds, and aborts a
 *   cancelled one with `Cancelled` (see `worker.cancel()`); the actor is abandoned if it ignores
 *   its signal, the message is acked, never retried, and its result (with `Results`) is a
 *   `ResultFailure` named `Cancelled`;
 * - writes what actors report with `reportProgress()` (at most once per 250 ms per message);
 * - publishes its `WorkerRecord` every `heartbeat` ms (ttl 10 s) and removes it at `stop()`;
 * - sends `completed` / `failed` / `retried` / `dead-lettered` / `cancelled` events in batches.
 *
 * The CLI's Web Worker path reuses this: a Worker there may keep all of it (it has its own
 * broker), or turn parts off (`cancelPoll: false`, `heartbeat: false`, `events: false`) and
 * let the worker process do them: it calls `worker.cancel(ids)` for what it was told is
 * cancelled, reads `worker.runningMessages()` for its one heartbeat per process, and passes
 * `progress` to forward reported values to the main thread.
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
import { Cancelled, Shutdown } from "../errors.ts";
import type { RunningMessage, WorkerRecord } from "../broker/ops.ts";
import { eventOf, processIdentity, recordOf, runningOf, WorkerOps } from "./_heartbeat.ts";
import { bindProgress, flushProgress, PROGRESS_INTERVAL, type ProgressSink } from "./_progress.ts";
import {
  positiveInt,
  type StopOptions,
  type WorkerMonitor,
  type WorkerOptions,
} from "./_worker_options.ts";

export type { StopOptions, WorkerMonitor, WorkerOptions };
import { Intake } from "./_intake.ts";
import { runActor, settle } from "./_run.ts";
import { receiveBackoff, sleep } from "../util/async.ts";
import { formatError, getLogger } from "../util/log.ts";

const logger = getLogger("dramatis.worker.Worker");
/** The longest a consumer loop runs on without letting timers run, in ms. */
const TURN_MS = 10;

/**
 * Runs actors for the messages of a broker's queues, in this isolate.
 *
 * - Messages from all its queues are run lowest `priority` first, then in arrival order.
 * - Delayed messages (`q.DQ`) are moved to their queue when due; on a broker whose delay queues
 *   hand them out only when due (`capabilities.delaysUntilDue`: the FileBroker) they run in
 *   place, as messages of their queue, and are acked on `q.DQ`.
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
  /** The messages held, not running: ready ones and delayed ones (`worker/_intake.ts`). */
  readonly #intake: Intake;
  /** The messages being processed, with when each started. */
  #inFlight = new Map<MessageProxy, number>();
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
  #ops: WorkerOps;
  #progressSink: ProgressSink | undefined;
  #identity: { host: string; pid: number; runtime: string } | undefined;
  #startedAt = 0;
  #workerId: string | undefined;
  /** The queues consumed since `start()`. */
  #consumed: string[] = [];
  /** When a consumer loop last let the event loop turn (see #consumeLoop). */
  #turnedAt = 0;

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
    this.#workerId = options.workerId;
    this.#intake = new Intake(broker, this.#consumers, {
      dispatch: () => this.#dispatch(),
      wake: () => this.#wake(),
    });
    this.#progressSink = options.progress ??
      (broker.capabilities.progress ? (m, v) => broker.setProgress(m.messageId, v) : undefined);
    const cancelPoll = options.cancelPoll ?? 50;
    if (cancelPoll !== false) positiveInt("cancelPoll", cancelPoll);
    const heartbeat = options.heartbeat ?? 1000;
    if (heartbeat !== false) positiveInt("heartbeat", heartbeat);
    this.#ops = new WorkerOps({
      broker,
      heldIds: () => this.#heldIds(),
      cancel: (ids) => this.cancel(ids),
      record: () => this.record(),
    }, { cancelPoll, heartbeat, events: options.events ?? true });
  }

  /** The messages being processed right now. */
  get inFlight(): Iterable<MessageProxy> {
    return this.#inFlight.keys();
  }

  /**
   * This worker's id in the registry (`broker.workers()`); set by `start()` unless given.
   *
   * @example
   * ```ts
   * import { StubBroker, Worker } from "@dramatis/dramatis";
   * const worker = new Worker(new StubBroker(), { workerId: "box:1" });
   * console.log(worker.workerId); // box:1
   * ```
   */
  get workerId(): string {
    return this.#workerId ??= `${this.#identity?.host ?? "unknown"}:${this.#identity?.pid ?? 0}:${
      crypto.randomUUID().slice(0, 8)
    }`;
  }

  /**
   * What this worker runs now, with the last progress each reported: what its heartbeat
   * record lists.
   *
   * @example
   * ```ts
   * import { StubBroker, Worker } from "@dramatis/dramatis";
   * const worker = new Worker(new StubBroker());
   * console.log(worker.runningMessages()); // []
   * ```
   */
  runningMessages(): RunningMessage[] {
    return runningOf(this.#inFlight);
  }

  /**
   * This worker's registry record as of now, as its heartbeat publishes it (with a `Metrics`
   * middleware on the broker, its snapshot too).
   *
   * @example
   * ```ts
   * import { StubBroker, Worker } from "@dramatis/dramatis";
   * const worker = new Worker(new StubBroker(), { concurrency: 4 });
   * console.log(worker.record().concurrency); // 4
   * ```
   */
  record(): WorkerRecord {
    return recordOf({
      middleware: this.broker.middleware,
      workerId: this.workerId,
      identity: this.#identity,
      queues: this.#consumed,
      concurrency: this.concurrency,
      startedAt: this.#startedAt,
      running: this.runningMessages(),
    });
  }

  /**
   * Cancels the messages with these ids that this worker holds: a running one has its signal
   * aborted with `Cancelled` (and the worker stops waiting for it at once, as for a time
   * limit); a prefetched or delayed one never runs. Each is acked, not retried, with a
   * `ResultFailure` named `Cancelled` stored if its actor stores results. The worker calls this
   * itself for what `broker.cancelled()` lists; resolves to how many it held.
   *
   * @example
   * ```ts
   * import { StubBroker, Worker } from "@dramatis/dramatis";
   * const worker = new Worker(new StubBroker());
   * console.log(worker.cancel(["no-such-id"])); // 0
   * ```
   */
  cancel(messageIds: Iterable<string>): number {
    const ids = new Set(messageIds);
    if (ids.size === 0) return 0;
    const reason = (m: MessageProxy) => new Cancelled(`Message ${m.messageId} was cancelled.`);
    let n = 0;
    for (const m of this.#inFlight.keys()) {
      if (ids.has(m.messageId) && !m.aborted) {
        m.abort(reason(m));
        n++;
      }
    }
    // Held but not started: settled at once, without running.
    for (const m of this.#intake.take(ids)) {
      m.abort(reason(m));
      this.#process(m);
      n++;
    }
    return n;
  }

  #heldIds(): string[] {
    const ids: string[] = [];
    for (const m of this.#inFlight.keys()) if (!m.aborted) ids.push(m.messageId);
    return this.#intake.ids(ids);
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
    this.#consumed = names;
    this.#identity ??= await processIdentity();
    this.#startedAt = Date.now();
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
    this.#ops.start();
    const after = this.broker.emitAfter("workerBoot", this);
    if (after) await after;
  }

  get #capacity(): number {
    return this.concurrency + this.prefetch;
  }

  get #held(): number {
    return this.#intake.size + this.#inFlight.size;
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
      for (const m of batch) this.#intake.accept(m);
      if (refilling) this.#refilled(consumer);
      this.#dispatch();
      // A broker that always has messages (a backlog, due delayed ones) answers without a
      // macrotask: the loop would starve every timer (the broker's writes and leases, heartbeats,
      // cancel polls) for as long as it lasts. Let the event loop turn now and then.
      if (performance.now() - this.#turnedAt >= TURN_MS) {
        await new Promise((r) => setTimeout(r, 0));
        this.#turnedAt = performance.now();
      }
    }
  }

  /** `consumer` has fetched since the last start or resume; dispatch once all have. */
  #refilled(consumer: Consumer): void {
    if (this.#refill.delete(consumer) && this.#refill.size === 0) this.#dispatch();
  }

  #dispatch(): void {
    if (this.#paused || this.#refill.size > 0) return;
    while (this.#inFlight.size < this.concurrency && this.#intake.ready > 0) {
      this.#process(this.#intake.next()!);
    }
  }

  #wake(): void {
    if (this.#wakeLoops.length) {
      const wakers = this.#wakeLoops;
      this.#wakeLoops = [];
      for (const w of wakers) w();
    }
    if (this.#idleWaiters.length && this.#intake.ready === 0 && this.#inFlight.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  async #process(m: MessageProxy): Promise<void> {
    this.#inFlight.set(m, Date.now());
    const broker = this.broker;
    let requeue = false;
    let ended: number | undefined;
    const retries = m.options.retries;
    if (this.#progressSink) bindProgress(m, this.#progressSink, PROGRESS_INTERVAL);
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
        requeue = await runActor(m, actor, {
          broker,
          monitor: this.#monitor,
          discardChecked: this.#discardChecked,
          stopping: () => this.#stopping,
          ended: (at) => ended = at,
        });
      }
    } finally {
      m.done = true;
      m.onAbort(undefined);
      const flushed = flushProgress(m);
      if (flushed) await flushed;
      await settle(m, { broker, consumer: this.#intake.consumerOf(m), requeue });
      if (!requeue) {
        this.#ops.event(eventOf(m, retries, this.workerId, this.#inFlight.get(m), ended));
      }
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
    if (this.#intake.ready === 0 && this.#inFlight.size === 0) return Promise.resolve();
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
    await this.#requeue(this.#intake.stop());
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
        for (const m of this.#inFlight.keys()) {
          m.abort(new Shutdown("The worker is shutting down."));
        }
        await this.join();
      }
    }
    await this.#intake.settled();
    for (const consumer of this.#consumers.values()) {
      try {
        await consumer.close();
      } catch (e) {
        logger.error(`Failed to close a consumer: ${formatError(e)}`);
      }
    }
    this.#consumers.clear();
    await this.#ops.stop();
    const after = this.broker.emitAfter("workerShutdown", this);
    if (after) await after;
  }

  async #requeue(messages: MessageProxy[]): Promise<void> {
    const byConsumer = Map.groupBy(messages, (m) => this.#intake.consumerOf(m));
    for (const [consumer, list] of byConsumer) {
      try {
        await consumer?.requeue(list);
      } catch (e) {
        const queue = list[0]!.queueName;
        logger.error(`Failed to requeue ${list.length} message(s) on ${queue}: ${formatError(e)}`);
      }
    }
  }
}
