/**
 * `Metrics`: feeds a `MetricsRegistry` from the broker's hooks: Dramatiq's Prometheus metrics
 * with their bugs fixed, plus enqueue counts, outcomes and wait times.
 *
 * @example
 * ```ts
 * import { Metrics } from "../telemetry/mod.ts";
 * import { StubBroker } from "@dramatis/dramatis";
 * const metrics = new Metrics();
 * const broker = new StubBroker();
 * broker.addMiddleware(metrics);
 * console.log(metrics.registry.snapshot().series.length); // 0
 * ```
 * @module
 */
import { Middleware, type ProcessOutcome } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import { qName } from "../broker/queue_name.ts";
import type { MessageProxy } from "../message.ts";
import type { Message } from "../message.ts";
import { TimeLimitExceeded } from "../errors.ts";
import { type MetricSeries, MetricsRegistry, type MetricsSnapshot } from "../telemetry/registry.ts";
import { type Classified, DeliveryTracker, type Tracked } from "../telemetry/_tracker.ts";

/**
 * The message option in which `Metrics` records when a delayed message became due (ms since the
 * epoch), because the worker drops `eta` when it moves the message from `q.DQ` to `q`. Wait time
 * is measured from the latest of `message_timestamp`, `eta` and this.
 *
 * @example
 * ```ts
 * import { READY_TIMESTAMP_OPTION } from "../telemetry/mod.ts";
 * console.log(READY_TIMESTAMP_OPTION); // ready_timestamp
 * ```
 */
export const READY_TIMESTAMP_OPTION = "ready_timestamp";

/** Sends remembered between their enqueue hooks (beyond: enqueues that failed, dropped). */
const SENDING_KEPT = 10_000;
/** What beforeEnqueue found for a delay release it already took off the delayed gauge. */
const RELEASED: Classified<never, never> = Object.freeze({ reason: "delay_release" });

/**
 * Options of `new Metrics()`.
 *
 * @example
 * ```ts
 * import type { MetricsOptions } from "../telemetry/mod.ts";
 * const o: MetricsOptions = { maxSeries: 200 };
 * ```
 */
export interface MetricsOptions {
  /** The registry to feed. Default: a new one (`metrics.registry`). */
  registry?: MetricsRegistry;
  /** `maxSeries` of the new registry (ignored with `registry`). Default 1000. */
  maxSeries?: number;
}

/** A delivery being tracked; a class with every field declared, so that none is added later. */
class Run implements Tracked {
  readonly message: MessageProxy;
  readonly retries: number;
  readonly series: MetricSeries;
  /** Date.now() when the actor started; undefined when it was not seen starting. */
  readonly started: number | undefined;
  ended = false;
  error = false;
  skipped = false;
  retried = false;
  requeued = false;
  prev: Run | undefined = undefined;
  next: Run | undefined = undefined;
  doneSince: number | undefined = undefined;

  constructor(message: MessageProxy, series: MetricSeries, started: number | undefined) {
    this.message = message;
    const retries = message.options.retries;
    this.retries = typeof retries === "number" ? retries : 0;
    this.series = series;
    this.started = started;
  }
}

interface Held {
  series: MetricSeries;
  eta: number;
}

/**
 * Counts what the workers and producers of this isolate do, per canonical queue and actor, in
 * `registry` (see `SeriesSnapshot` for every field). Compared with Dramatiq's `Prometheus`:
 * - labels use the canonical queue name (`q`, never `q.DQ`);
 * - a retry is counted once, when `Retries` enqueues it (not again when its delay ends);
 * - the delayed gauge goes up when a worker holds a delayed message and down when it releases
 *   it, starts it or hands it back at shutdown, so it returns to zero (Dramatiq issue 672);
 * - skipped messages count in `processed` (as in Dramatiq) and in `skipped`;
 * - it also counts sends (`enqueued`), outcomes (`succeeded`, `requeued`, `failed`), time-limit
 *   failures, and the wait from enqueue (or eta) to start.
 *
 * Add it to the broker of every process (producers count `enqueued`, workers the rest); each
 * isolate has its own registry, and their snapshots merge by summing (`mergeSnapshots`).
 *
 * @example
 * ```ts
 * import { actor, StubBroker, Worker } from "@dramatis/dramatis";
 * import { Metrics } from "../telemetry/mod.ts";
 *
 * const metrics = new Metrics();
 * const broker = new StubBroker();
 * broker.addMiddleware(metrics);
 * const add = actor((a: number, b: number) => a + b, { actorName: "add", broker });
 * await add.send(1, 2);
 * const worker = new Worker(broker, { workerTimeout: 50 });
 * await worker.start();
 * await broker.join("default");
 * await worker.stop();
 * console.log(metrics.snapshot().series[0].succeeded); // 1
 * ```
 */
export class Metrics extends Middleware {
  /** The registry this middleware feeds. */
  readonly registry: MetricsRegistry;
  #tracker = new DeliveryTracker<Run, Held>();

  /** Creates the middleware. */
  constructor(options: MetricsOptions = {}) {
    super();
    this.registry = options.registry ?? new MetricsRegistry({ maxSeries: options.maxSeries });
  }

  /** The registry's snapshot. */
  snapshot(): MetricsSnapshot {
    return this.registry.snapshot();
  }

  /**
   * Classifies the send before it is stored: the copy a retry or a delay release enqueues may
   * be delivered, run and finish here before `afterEnqueue` comes, and would then look like a
   * new message. A delay release records when the message became due and leaves the delayed
   * gauge now.
   */
  override beforeEnqueue(_broker: Broker, message: Message, delay: number | undefined): void {
    // A held message's id is a delay release, even while an earlier delivery of it is tracked.
    const held = delay === undefined && !message.queueName.endsWith(".DQ")
      ? this.#tracker.release(message.messageId)
      : undefined;
    let c: Classified<Run, Held>;
    if (held) {
      held.series.delayed--;
      if (held.eta > 0) message.options[READY_TIMESTAMP_OPTION] = held.eta;
      c = RELEASED;
    } else {
      c = this.#tracker.classify(message, delay);
    }
    this.#sending.set(message, c);
    if (this.#sending.size > SENDING_KEPT) {
      // Sends that never reached afterEnqueue (failed, or a unique job's duplicate).
      this.#sending.delete(this.#sending.keys().next().value!);
    }
  }

  /** Sends between their `beforeEnqueue` and `afterEnqueue`, as classified before. */
  #sending = new Map<Message, Classified<Run, Held>>();

  /** Counts the send once it is stored. */
  override afterEnqueue(_broker: Broker, message: Message, delay: number | undefined): void {
    let c = this.#sending.get(message);
    if (c) this.#sending.delete(message);
    else c = this.#tracker.classify(message, delay);
    switch (c.reason) {
      case "retry":
        if (!c.origin!.retried) {
          c.origin!.retried = true;
          c.origin!.series.retries++;
        }
        break;
      case "requeue":
        c.origin!.requeued = true;
        break;
      case "delay_release":
        // Taken off the gauge by beforeEnqueue (c.held is unset), unless that did not run.
        if (c.held && this.#tracker.release(message.messageId) !== undefined) {
          c.held.series.delayed--;
        }
        break;
      default:
        this.#series(message).enqueued++;
    }
  }

  /** A worker holds a delayed message until its eta. */
  override beforeDelayMessage(_broker: Broker, message: MessageProxy): void {
    const series = this.#series(message);
    const eta = typeof message.options.eta === "number" ? message.options.eta : 0;
    if (this.#tracker.hold(message.messageId, { series, eta })) series.delayed++;
  }

  /** The actor is about to run. */
  override beforeProcessMessage(_broker: Broker, message: MessageProxy): void {
    const held = this.#tracker.release(message.messageId);
    if (held) held.series.delayed--;
    const series = this.#series(message);
    series.inProgress++;
    const now = Date.now();
    series.waitSeconds.observe(Math.max(0, now - readyAt(message)) / 1000);
    this.#begin(message, series, now);
    this.#tracker.sweep(this.#dropped);
  }

  /** The actor finished (or failed). */
  override afterProcessMessage(
    _broker: Broker,
    message: MessageProxy,
    { error }: ProcessOutcome,
  ): void {
    const run = this.#tracker.get(message) ?? this.#begin(message, this.#series(message));
    this.#end(run, error);
  }

  /** The message was skipped. */
  override afterSkipMessage(_broker: Broker, message: MessageProxy): void {
    const run = this.#tracker.get(message) ?? this.#begin(message, this.#series(message));
    if (run.ended) return;
    run.skipped = true;
    run.series.skipped++;
    this.#end(run, undefined);
  }

  /** The message was acked: its outcome is known. */
  override afterAck(_broker: Broker, message: MessageProxy): void {
    const run = this.#tracker.end(message);
    if (!run || run.skipped || run.retried) return;
    if (!run.error) run.series.succeeded++;
    else if (run.requeued) run.series.requeued++;
    else run.series.failed++;
  }

  /** The message was dead-lettered. */
  override afterNack(_broker: Broker, message: MessageProxy): void {
    const run = this.#tracker.end(message);
    (run?.series ?? this.#series(message)).rejects++;
  }

  /** The worker handed back what it held: delayed messages and unfinished deliveries. */
  override afterWorkerShutdown(): void {
    for (const held of this.#tracker.releaseAll()) held.series.delayed--;
    this.#tracker.sweep(this.#dropped, true);
  }

  /** A delivery whose settle hook never came: handed back unfinished, or its ack failed. */
  #dropped = (run: Run): void => {
    if (run.ended) return;
    if (run.started !== undefined) run.series.inProgress--;
    run.series.requeued++;
  };

  // The series of the last message, kept: consecutive messages are mostly of one actor.
  #lastQueue = "";
  #lastActor = "";
  #last: MetricSeries | undefined;

  #series(message: Message): MetricSeries {
    const { queueName, actorName } = message;
    if (queueName === this.#lastQueue && actorName === this.#lastActor && this.#last) {
      return this.#last;
    }
    this.#lastQueue = queueName;
    this.#lastActor = actorName;
    return this.#last = this.registry.series(qName(queueName), actorName);
  }

  #begin(message: MessageProxy, series: MetricSeries, started?: number): Run {
    return this.#tracker.begin(new Run(message, series, started));
  }

  #end(run: Run, error: unknown): void {
    if (run.ended) return;
    run.ended = true;
    const s = run.series;
    s.processed++;
    if (run.started !== undefined) {
      s.runMs.observe(Date.now() - run.started);
      s.inProgress--;
    }
    if (error !== undefined) {
      run.error = true;
      s.errors++;
      if (error instanceof TimeLimitExceeded) s.timeLimits++;
    }
  }
}

/** When the message became ready to run (ms since the epoch). */
function readyAt(message: Message): number {
  let t = message.messageTimestamp;
  const { eta } = message.options;
  const ready = message.options[READY_TIMESTAMP_OPTION];
  if (typeof eta === "number" && eta > t) t = eta;
  if (typeof ready === "number" && ready > t) t = ready;
  return t;
}
