/**
 * The metrics of a whole broker: the counters of every worker process that consumes from it
 * (summed from their `WorkerRecord`s, never going backwards), queue depths and live workers,
 * served in the Prometheus text format by `brokerMetricsHandler`. What `dramatis worker
 * --metrics` serves and what the dashboard reads.
 *
 * @example
 * ```ts
 * import { brokerMetricsHandler } from "./broker_metrics.ts";
 * import { StubBroker } from "../mod.ts";
 * const handler = brokerMetricsHandler(new StubBroker());
 * // Deno.serve({ hostname: "127.0.0.1", port: 9191 }, handler);
 * const res = await handler(new Request("http://127.0.0.1:9191/metrics"));
 * console.log(res.status); // 200
 * ```
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import type { WorkerRecord } from "../broker/ops.ts";
import { qName } from "../broker/queue_name.ts";
import { MetricsAggregator, type MetricsSnapshot, SNAPSHOT_FORMAT } from "./registry.ts";
import { statsOf } from "./_depth.ts";
import {
  metricsHandler as sourceHandler,
  type MetricsSource,
  type PrometheusInput,
  type PrometheusOptions,
  type QueueMetrics,
  type WorkerMetrics,
} from "./prometheus.ts";

/**
 * Options of `new BrokerMetrics()` and `brokerMetricsHandler`.
 *
 * @example
 * ```ts
 * import type { BrokerMetricsOptions } from "./broker_metrics.ts";
 * const o: BrokerMetricsOptions = { queues: ["default", "emails"], cacheTtl: 2_000 };
 * ```
 */
export interface BrokerMetricsOptions extends Omit<PrometheusOptions, "now"> {
  /**
   * The queues whose depth to export. Default: the queues the broker declares, those it lists
   * (`listQueues()`, refreshed every 30 s) and those the live workers consume.
   */
  queues?: readonly string[];
  /**
   * A collection is reused for this many ms (default 1000): scrapes closer together, or from
   * several scrapers at once, read the broker once. 0 reads it on every scrape.
   */
  cacheTtl?: number;
  /**
   * The counters of a worker whose record is gone are kept; after this many ms (default
   * 600_000) it is forgotten for good (its counters are kept in the totals, and a record of it
   * that would come back later is ignored, so nothing is counted twice).
   */
  forgetAfter?: number;
  /** Cap on distinct (queue, actor) pairs (default 1000; see `MetricsRegistry`). */
  maxSeries?: number;
  /**
   * Take the depth of a queue from the live worker records that carry it (`WorkerRecord.depths`,
   * the freshest, if read at most `RECORD_DEPTHS_MAX_AGE` ms ago; a queue a live worker
   * consumes whose record has no depths that fresh is left out of that collection) and call
   * `broker.stats()` only for the queues no live worker consumes; without `queues`, the queue
   * list is then what this process declares and the live workers consume (no `listQueues()`).
   * While no worker has published a record yet, for up to 10 s after the `BrokerMetrics` is
   * created, no depth is read at all (the workers are starting). Default false. What
   * `dramatis worker --metrics` uses on a FileBroker, whose `stats()` and `listQueues()` follow
   * its whole log (about 3 µs of CPU per message drained, in the process that serves).
   */
  recordDepths?: boolean;
}

/**
 * `BrokerMetricsOptions.recordDepths`: for this long after it is created (ms), while no worker
 * record exists, no queue's depth is read from the broker (the workers are starting).
 */
const RECORD_DEPTHS_STARTUP = 10_000;

/** `BrokerMetricsOptions.recordDepths`: the oldest depths of a record still used, in ms. */
export const RECORD_DEPTHS_MAX_AGE = 3_000;

/** What one collection found (the input of `renderPrometheus`, plus the records read). */
export interface BrokerMetricsCollection extends PrometheusInput {
  /** The merged snapshot of every worker process of the broker, past and present. */
  metrics: MetricsSnapshot;
  /** The depth of each queue. */
  queues: QueueMetrics[];
  /** The live workers. */
  workers: WorkerMetrics[];
  /** The records `broker.workers()` returned (empty without the `workers` capability). */
  records: WorkerRecord[];
  /** When it was collected (ms since the epoch). */
  collectedAt: number;
}

const QUEUE_LIST_TTL = 30_000;
const GONE_KEPT = 10_000;

/**
 * Aggregates the `WorkerRecord`s of every worker process of a broker (`broker.workers()`, the
 * `metrics` snapshot each publishes every second) into one snapshot, summed per (queue, actor):
 * one series per actor, not one per process.
 *
 * How the totals stay monotonic: each process's snapshot counts from its own start (a new
 * `instance` when it restarts). The total is the sum of the latest snapshot of every process
 * seen, live or gone: when a process dies or restarts, its last published counters stay in the
 * totals and the new process adds from zero, so no counter goes backwards (what a process
 * counted after its last publish, at most a second, is lost). Gauges (`inProgress`, `delayed`)
 * come from the live records only, so a dead worker's gauges drop at once. Only a new
 * `BrokerMetrics` (a restarted `dramatis worker --metrics`) starts again from what the live
 * processes report, which Prometheus treats as a counter reset.
 *
 * Each collection costs one `broker.workers()` and one `broker.stats()` per queue (counters the
 * broker keeps: no queue is scanned), and is cached for `cacheTtl` ms.
 *
 * @example
 * ```ts
 * import { BrokerMetrics } from "./broker_metrics.ts";
 * import { StubBroker } from "../mod.ts";
 * const broker = new StubBroker();
 * broker.declareQueue("default");
 * const source = new BrokerMetrics(broker);
 * const { queues } = await source.collect();
 * console.log(queues[0].queueName, queues[0].ready); // default 0
 * ```
 */
export class BrokerMetrics implements MetricsSource {
  /** The broker read. */
  readonly broker: Broker;
  /** See `BrokerMetricsOptions.cacheTtl`. */
  readonly cacheTtl: number;
  /** See `BrokerMetricsOptions.forgetAfter`. */
  readonly forgetAfter: number;
  #queues: readonly string[] | undefined;
  #aggregator: MetricsAggregator;
  /** Source key -> when its record was last listed. */
  #listed = new Map<string, number>();
  /** The totals of the last collection. */
  #merged: { live: MetricsSnapshot[]; metrics: MetricsSnapshot } | undefined;
  /** Source key -> the snapshot last given to the aggregator. */
  #fed = new Map<string, MetricsSnapshot>();
  /** Keys of sources forgotten for good (a record of theirs coming back is ignored). */
  #gone = new Set<string>();
  #cached: { at: number; value: Promise<BrokerMetricsCollection> } | undefined;
  #recordDepths: boolean;
  readonly #createdAt = Date.now();
  #queueList: { at: number; names: string[] } | undefined;

  /** A source reading `broker`. */
  constructor(broker: Broker, options: BrokerMetricsOptions = {}) {
    this.broker = broker;
    this.cacheTtl = nonNegative("cacheTtl", options.cacheTtl ?? 1000);
    this.forgetAfter = nonNegative("forgetAfter", options.forgetAfter ?? 600_000);
    this.#queues = options.queues?.map(qName);
    this.#recordDepths = options.recordDepths ?? false;
    // Sources are retired by collect(), never by the aggregator's own clock.
    this.#aggregator = new MetricsAggregator({
      maxAge: Number.MAX_SAFE_INTEGER,
      ...(options.maxSeries !== undefined ? { maxSeries: options.maxSeries } : {}),
    });
  }

  /** The current metrics (the cached collection if younger than `cacheTtl`). */
  collect(): Promise<BrokerMetricsCollection> {
    const now = Date.now();
    const c = this.#cached;
    if (c && now - c.at < this.cacheTtl) return c.value;
    const value = this.#collect(now);
    this.#cached = { at: now, value };
    value.catch(() => {
      if (this.#cached?.value === value) this.#cached = undefined;
    });
    return value;
  }

  /** `MetricsSource.snapshot`: the merged snapshot. */
  async snapshot(): Promise<MetricsSnapshot> {
    return (await this.collect()).metrics;
  }

  async #collect(now: number): Promise<BrokerMetricsCollection> {
    const records = this.broker.capabilities.workers ? await this.broker.workers() : [];
    const live: MetricsSnapshot[] = [];
    let changed = false;
    for (const r of records) {
      const snap = r.metrics;
      if (snap?.format !== SNAPSHOT_FORMAT) continue;
      // Keyed by worker and instance: two processes never share a source, whatever they name it.
      const key = `${r.workerId}\u0000${snap.instance}`;
      if (this.#gone.has(key)) continue;
      live.push(snap);
      this.#listed.set(key, now);
      // A record unchanged since the last collection (the FileBroker returns the same object
      // for a file it did not re-read) has nothing new for the aggregator.
      if (this.#fed.get(key) === snap) continue;
      changed = true;
      this.#fed.set(key, snap);
      this.#aggregator.update({ ...snap, instance: key });
    }
    for (const [key, at] of this.#listed) {
      if (now - at <= this.forgetAfter) continue;
      this.#listed.delete(key);
      this.#fed.delete(key);
      changed = true;
      this.#aggregator.retire(key);
      this.#gone.add(key);
      if (this.#gone.size > GONE_KEPT) this.#gone.delete(this.#gone.values().next().value!);
    }
    // The same live snapshots as the last collection: its totals (the merge is ~1 ms at 8 x 100
    // series).
    const last = this.#merged;
    const same = !changed && last !== undefined && last.live.length === live.length &&
      live.every((snap, i) => last.live[i] === snap);
    const metrics = same ? last.metrics : withGauges(this.#aggregator.snapshot(), live);
    this.#merged = { live, metrics };
    const names = await this.#queueNames(records, now);
    const known = this.#recordDepths ? depthsOf(records, now) : undefined;
    // Before the first worker published its record (they start after this), every queue is
    // left out rather than read from the broker, which on a FileBroker replays its whole log.
    const starting = known !== undefined && records.length === 0 &&
      now - this.#createdAt < RECORD_DEPTHS_STARTUP;
    const queues = (await Promise.all(names.map((q) => {
      if (!known) return statsOf(this.broker, q);
      // A queue its workers report but not lately enough (a record published before it read
      // them) is left out of this collection rather than read here.
      if (starting) return undefined;
      return known.depths.get(q) ?? (known.consumed.has(q) ? undefined : statsOf(this.broker, q));
    }))).filter((q) => q !== undefined);
    const workers = records.map((r): WorkerMetrics => ({
      workerId: r.workerId,
      slots: r.concurrency,
      busy: r.running.length,
      lastSeen: r.heartbeatAt,
    }));
    return { metrics, queues, workers, records, collectedAt: now };
  }

  async #queueNames(records: WorkerRecord[], now: number): Promise<string[]> {
    if (this.#queues) return [...new Set(this.#queues)].sort();
    const list = this.#queueList;
    if (!this.#recordDepths && (!list || now - list.at >= QUEUE_LIST_TTL)) {
      this.#queueList = { at: now, names: (await this.broker.listQueues()).map(qName) };
    }
    const names = new Set([...this.broker.getDeclaredQueues(), ...this.#queueList?.names ?? []]);
    for (const r of records) for (const q of r.queues) names.add(qName(q));
    return [...names].sort();
  }
}

/** The freshest depth of each queue among the records (if read lately enough), and the queues
 * live workers consume. */
function depthsOf(
  records: WorkerRecord[],
  now: number,
): { depths: Map<string, QueueMetrics>; consumed: Set<string> } {
  const found = new Map<string, { at: number; depth: QueueMetrics }>();
  const consumed = new Set<string>();
  for (const r of records) {
    for (const q of r.queues) consumed.add(qName(q));
    const at = r.depthsAt;
    if (!Array.isArray(r.depths) || typeof at !== "number" || now - at > RECORD_DEPTHS_MAX_AGE) {
      continue;
    }
    for (const d of r.depths) {
      const q = qName(d.queueName);
      const had = found.get(q);
      if (!had || had.at < at) found.set(q, { at, depth: { ...d, queueName: q } });
    }
  }
  const depths = new Map([...found].map(([q, { depth }]) => [q, depth]));
  return { depths, consumed };
}

/** `total` with its gauges replaced by the sum of the live snapshots' gauges. */
function withGauges(total: MetricsSnapshot, live: MetricsSnapshot[]): MetricsSnapshot {
  const gauges = new Map<string, { inProgress: number; delayed: number }>();
  for (const snap of live) {
    for (const s of snap.series) {
      if (s.inProgress === 0 && s.delayed === 0) continue;
      const key = `${s.queue}\u0000${s.actor}`;
      const g = gauges.get(key);
      if (g) {
        g.inProgress += s.inProgress;
        g.delayed += s.delayed;
      } else {
        gauges.set(key, { inProgress: s.inProgress, delayed: s.delayed });
      }
    }
  }
  for (const s of total.series) {
    const g = gauges.size > 0 ? gauges.get(`${s.queue}\u0000${s.actor}`) : undefined;
    s.inProgress = g?.inProgress ?? 0;
    s.delayed = g?.delayed ?? 0;
  }
  return total;
}

/**
 * A request handler serving the Prometheus metrics of every worker process of `broker` (see
 * `BrokerMetrics`): Dramatiq's seven metrics (so its Grafana dashboard 3692 works) and dramatis'
 * own (outcomes, wait time, queue depth by state, live workers), summed per queue and actor.
 * For Deno.serve, Bun.serve, Hono (`app.get("/metrics", (c) => handler(c.req.raw))`) or any
 * server built on Web `Request`; GET and HEAD on any path. The worker processes must run the
 * `Metrics` middleware (`dramatis worker --metrics` adds it; in code, add it to the broker).
 *
 * @example
 * ```ts
 * import { brokerMetricsHandler } from "./broker_metrics.ts";
 * import { StubBroker } from "../mod.ts";
 * const broker = new StubBroker();
 * const handler = brokerMetricsHandler(broker, { cacheTtl: 5_000 });
 * // Deno.serve({ hostname: "127.0.0.1", port: 9191 }, handler);
 * // Bun.serve({ hostname: "127.0.0.1", port: 9191, fetch: handler });
 * const res = await handler(new Request("http://127.0.0.1:9191/metrics"));
 * console.log((await res.text()).includes("dramatis_workers 0")); // true
 * ```
 */
export function brokerMetricsHandler(
  broker: Broker,
  options: BrokerMetricsOptions = {},
): (req: Request) => Promise<Response> {
  return sourceHandler(new BrokerMetrics(broker, options), options);
}

/**
 * A request handler serving metrics in the Prometheus text format: of a whole broker (every
 * worker process that consumes from it; see `brokerMetricsHandler`), or of one source (a
 * `Metrics` middleware, a `MetricsRegistry`, a `MetricsAggregator`, any `MetricsSource`).
 *
 * @example
 * ```ts
 * import { metricsHandler } from "./broker_metrics.ts";
 * import { Metrics } from "./mod.ts";
 * import { StubBroker } from "../mod.ts";
 * const broker = new StubBroker();
 * const ofBroker = metricsHandler(broker); // every worker process of the broker
 * const ofThisIsolate = metricsHandler(new Metrics()); // one middleware's registry
 * // Deno.serve({ hostname: "127.0.0.1", port: 9191 }, ofBroker);
 * console.log((await ofBroker(new Request("http://localhost/metrics"))).status); // 200
 * console.log((await ofThisIsolate(new Request("http://localhost/metrics"))).status); // 200
 * ```
 */
export function metricsHandler(
  source: Broker | MetricsSource,
  options: BrokerMetricsOptions = {},
): (req: Request) => Promise<Response> {
  return isBroker(source) ? brokerMetricsHandler(source, options) : sourceHandler(source, options);
}

function isBroker(source: Broker | MetricsSource): source is Broker {
  const b = source as Partial<Broker>;
  return typeof b.stats === "function" && typeof b.capabilities === "object" &&
    typeof (source as Partial<MetricsSource>).snapshot !== "function";
}

function nonNegative(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) {
    throw new TypeError(`${name} must be a number of ms, 0 or more, got ${v}.`);
  }
  return v;
}
