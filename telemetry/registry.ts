/**
 * The metrics registry: live counters, gauges and histograms per (queue, actor), the one source
 * that `/metrics`, `dramatis workers` and the dashboard read. A registry's `snapshot()` is a plain
 * JSON value; snapshots of many isolates and processes merge by summing (`mergeSnapshots`), and
 * `MetricsAggregator` keeps the sum from going backwards when one of them restarts.
 *
 * @example
 * ```ts
 * import { mergeSnapshots, MetricsRegistry } from "./registry.ts";
 * const a = new MetricsRegistry(), b = new MetricsRegistry();
 * a.series("default", "send_email").processed += 2;
 * b.series("default", "send_email").processed += 3;
 * const total = mergeSnapshots([a.snapshot(), b.snapshot()]);
 * console.log(total.series[0].processed); // 5
 * ```
 * @module
 */
import { getLogger } from "../util/log.ts";

/**
 * Upper bounds (ms) of the run-time histogram's buckets: Dramatiq's, so that its Grafana dashboard
 * (3692) works unchanged. A last bucket, `+Inf`, is implied.
 *
 * @example
 * ```ts
 * import { RUN_TIME_BUCKETS_MS } from "./registry.ts";
 * console.log(RUN_TIME_BUCKETS_MS.length); // 18
 * ```
 */
export const RUN_TIME_BUCKETS_MS: readonly number[] = Object.freeze([
  5,
  10,
  25,
  50,
  75,
  100,
  250,
  500,
  750,
  1000,
  2500,
  5000,
  7500,
  10000,
  30000,
  60000,
  600000,
  900000,
]);

/**
 * Upper bounds (seconds) of the wait-time histogram's buckets (enqueue or eta to start): from 5 ms
 * to a day, since a backlog can last hours. A last bucket, `+Inf`, is implied.
 *
 * @example
 * ```ts
 * import { WAIT_TIME_BUCKETS_SECONDS } from "./registry.ts";
 * console.log(WAIT_TIME_BUCKETS_SECONDS[0]); // 0.005
 * ```
 */
export const WAIT_TIME_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
  600,
  1800,
  3600,
  21600,
  86400,
]);

/**
 * The label values a registry uses, past its `maxSeries` cap, for every new (queue, actor).
 *
 * @example
 * ```ts
 * import { OVERFLOW_LABEL } from "./registry.ts";
 * console.log(OVERFLOW_LABEL); // (other)
 * ```
 */
export const OVERFLOW_LABEL = "(other)";

/**
 * The snapshot format's version.
 *
 * @example
 * ```ts
 * import { SNAPSHOT_FORMAT } from "./registry.ts";
 * console.log(SNAPSHOT_FORMAT); // 1
 * ```
 */
export const SNAPSHOT_FORMAT = 1;

/**
 * A histogram in a snapshot: `counts[i]` observations fell in bucket `i` (not cumulative);
 * `counts` has one more entry than the bounds (the last is `+Inf`).
 *
 * @example
 * ```ts
 * import type { HistogramSnapshot } from "./registry.ts";
 * const h: HistogramSnapshot = { counts: [1, 0, 2], sum: 31 };
 * ```
 */
export interface HistogramSnapshot {
  /** Observations per bucket, not cumulative; the last entry is the `+Inf` bucket. */
  counts: number[];
  /** Sum of the observed values. */
  sum: number;
}

/**
 * The counter fields of a series (all cumulative since the registry was created).
 *
 * @example
 * ```ts
 * import type { CounterName } from "./registry.ts";
 * const c: CounterName = "retries";
 * ```
 */
export type CounterName =
  | "enqueued"
  | "processed"
  | "errors"
  | "retries"
  | "rejects"
  | "skipped"
  | "succeeded"
  | "requeued"
  | "failed"
  | "timeLimits";

/**
 * Every counter field, in snapshot order.
 *
 * @example
 * ```ts
 * import { COUNTERS } from "./registry.ts";
 * console.log(COUNTERS.includes("processed")); // true
 * ```
 */
export const COUNTERS: readonly CounterName[] = Object.freeze([
  "enqueued",
  "processed",
  "errors",
  "retries",
  "rejects",
  "skipped",
  "succeeded",
  "requeued",
  "failed",
  "timeLimits",
]);

/**
 * The gauge fields of a series (current values; summed across processes).
 *
 * @example
 * ```ts
 * import type { GaugeName } from "./registry.ts";
 * const g: GaugeName = "inProgress";
 * ```
 */
export type GaugeName = "inProgress" | "delayed";

/**
 * One (queue, actor) in a snapshot.
 *
 * @example
 * ```ts
 * import { MetricsRegistry, type SeriesSnapshot } from "./registry.ts";
 * const r = new MetricsRegistry();
 * r.series("default", "add").processed++;
 * const s: SeriesSnapshot = r.snapshot().series[0];
 * console.log(s.queue, s.actor, s.processed); // default add 1
 * ```
 */
export interface SeriesSnapshot {
  /** The canonical queue name (`q`, never `q.DQ` or `q.XQ`). */
  queue: string;
  /** The actor name. */
  actor: string;
  /** Messages sent (new messages: user sends, pipeline steps, group callbacks; not retries). */
  enqueued: number;
  /** Deliveries whose actor finished or was skipped (Dramatiq's `dramatiq_messages_total`). */
  processed: number;
  /** Deliveries whose actor threw. */
  errors: number;
  /** Retries decided (counted once, when the retry is enqueued). */
  retries: number;
  /** Messages dead-lettered. */
  rejects: number;
  /** Deliveries skipped by `SkipMessage`. */
  skipped: number;
  /** Deliveries that succeeded (and were acked). */
  succeeded: number;
  /** Deliveries handed back unfinished (worker stop) or re-enqueued without a retry (rate limit). */
  requeued: number;
  /** Deliveries that failed and were neither retried nor dead-lettered (no `Retries`). */
  failed: number;
  /** Deliveries that failed with `TimeLimitExceeded`. */
  timeLimits: number;
  /** Gauge: actors running now. */
  inProgress: number;
  /** Gauge: delayed messages a worker holds in memory until their eta. */
  delayed: number;
  /** Run time of the actor, in ms (`RUN_TIME_BUCKETS_MS`). */
  runMs: HistogramSnapshot;
  /** Time from enqueue (or eta) to start, in seconds (`WAIT_TIME_BUCKETS_SECONDS`). */
  waitSeconds: HistogramSnapshot;
}

/**
 * A registry's (or an aggregate's) state: a plain JSON value.
 *
 * @example
 * ```ts
 * import { MetricsRegistry, type MetricsSnapshot } from "./registry.ts";
 * const snap: MetricsSnapshot = new MetricsRegistry().snapshot();
 * console.log(JSON.parse(JSON.stringify(snap)).format); // 1
 * ```
 */
export interface MetricsSnapshot {
  /** `SNAPSHOT_FORMAT`. */
  format: number;
  /**
   * Who produced it: unique for the lifetime of one registry or aggregator. A new value means
   * its counters started again from zero.
   */
  instance: string;
  /** When that registry or aggregator was created (ms since the epoch). */
  startedAt: number;
  /** When the snapshot was taken (ms since the epoch). */
  takenAt: number;
  /** One entry per (queue, actor), in no particular order. */
  series: SeriesSnapshot[];
}

const logger = getLogger("dramatis.telemetry.MetricsRegistry");

/**
 * One histogram, mutable.
 *
 * @example
 * ```ts
 * import { Histogram } from "./registry.ts";
 * const h = new Histogram([1, 10]);
 * h.observe(5);
 * console.log([...h.counts]); // [0, 1, 0]
 * ```
 */
export class Histogram {
  /** The bucket upper bounds (the `+Inf` bucket is implied). */
  readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last is `+Inf`. */
  readonly counts: Float64Array;
  /** Sum of the observed values. */
  sum = 0;
  /** The bounds as doubles, and the first of them (the bucket most observations fall in). */
  readonly #b: Float64Array;
  readonly #first: number;

  /** An empty histogram with these bucket bounds. */
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
    this.#b = Float64Array.from(bounds);
    this.#first = bounds.length > 0 ? bounds[0]! : Infinity;
  }

  /** Counts `value` in the first bucket whose bound is at least `value` (Prometheus' `le`). */
  observe(value: number): void {
    // Typed arrays (a plain array of counts was 3-6x slower per observation on both runtimes),
    // the first bucket checked at once, then a binary search (5 steps for ~20 buckets).
    let lo = 0;
    if (value > this.#first) {
      const b = this.#b;
      let hi = b.length;
      lo = 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (value > b[mid]!) lo = mid + 1;
        else hi = mid;
      }
    }
    this.counts[lo]!++;
    this.sum += value;
  }

  /** A copy as JSON. */
  snapshot(): HistogramSnapshot {
    return { counts: Array.from(this.counts), sum: this.sum };
  }
}

/**
 * One (queue, actor) of a registry: its counters and gauges are plain fields to increment.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./registry.ts";
 * const s = new MetricsRegistry().series("default", "add");
 * s.inProgress++;
 * s.runMs.observe(12);
 * ```
 */
export class MetricSeries {
  /** The canonical queue name. */
  readonly queue: string;
  /** The actor name. */
  readonly actor: string;
  /** See `SeriesSnapshot.enqueued`. */
  enqueued = 0;
  /** See `SeriesSnapshot.processed`. */
  processed = 0;
  /** See `SeriesSnapshot.errors`. */
  errors = 0;
  /** See `SeriesSnapshot.retries`. */
  retries = 0;
  /** See `SeriesSnapshot.rejects`. */
  rejects = 0;
  /** See `SeriesSnapshot.skipped`. */
  skipped = 0;
  /** See `SeriesSnapshot.succeeded`. */
  succeeded = 0;
  /** See `SeriesSnapshot.requeued`. */
  requeued = 0;
  /** See `SeriesSnapshot.failed`. */
  failed = 0;
  /** See `SeriesSnapshot.timeLimits`. */
  timeLimits = 0;
  /** Gauge: actors running now. */
  inProgress = 0;
  /** Gauge: delayed messages held now. */
  delayed = 0;
  /** Run time in ms. */
  readonly runMs: Histogram = new Histogram(RUN_TIME_BUCKETS_MS);
  /** Wait time in seconds. */
  readonly waitSeconds: Histogram = new Histogram(WAIT_TIME_BUCKETS_SECONDS);

  /** A series with every value at zero. */
  constructor(queue: string, actor: string) {
    this.queue = queue;
    this.actor = actor;
  }

  /** A copy as JSON. */
  snapshot(): SeriesSnapshot {
    return {
      queue: this.queue,
      actor: this.actor,
      enqueued: this.enqueued,
      processed: this.processed,
      errors: this.errors,
      retries: this.retries,
      rejects: this.rejects,
      skipped: this.skipped,
      succeeded: this.succeeded,
      requeued: this.requeued,
      failed: this.failed,
      timeLimits: this.timeLimits,
      inProgress: this.inProgress,
      delayed: this.delayed,
      runMs: this.runMs.snapshot(),
      waitSeconds: this.waitSeconds.snapshot(),
    };
  }
}

/**
 * Options of `new MetricsRegistry()`.
 *
 * @example
 * ```ts
 * import type { MetricsRegistryOptions } from "./registry.ts";
 * const o: MetricsRegistryOptions = { maxSeries: 500 };
 * ```
 */
export interface MetricsRegistryOptions {
  /**
   * Most distinct (queue, actor) pairs kept (default 1000). Past it, new pairs are all counted in
   * one series labelled `(other)` / `(other)` and a warning is logged once, so a producer that
   * sends to thousands of made-up actor names cannot exhaust memory. About 0.5 KB per series.
   */
  maxSeries?: number | undefined;
}

/**
 * The live metrics of one isolate: a series per (canonical queue, actor). The `Metrics`
 * middleware feeds it; call `snapshot()` (cheap: about a microsecond per series) to publish it.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./registry.ts";
 * const registry = new MetricsRegistry({ maxSeries: 100 });
 * registry.series("emails", "send_email").enqueued++;
 * console.log(JSON.stringify(registry.snapshot()).length > 0); // true
 * ```
 */
export class MetricsRegistry {
  /** Unique for this registry's lifetime (see `MetricsSnapshot.instance`). */
  readonly instance: string = crypto.randomUUID();
  /** When it was created (ms since the epoch). */
  readonly startedAt: number = Date.now();
  /** The cap on distinct (queue, actor) pairs. */
  readonly maxSeries: number;
  #byQueue = new Map<string, Map<string, MetricSeries>>();
  #count = 0;
  #overflow: MetricSeries | undefined;

  /** An empty registry. */
  constructor(options: MetricsRegistryOptions = {}) {
    this.maxSeries = positiveInt("maxSeries", options.maxSeries ?? 1000);
  }

  /** The series of (queue, actor), created at zero if new (or the overflow series past the cap). */
  series(queue: string, actor: string): MetricSeries {
    let actors = this.#byQueue.get(queue);
    let s = actors?.get(actor);
    if (s) return s;
    if (this.#count >= this.maxSeries) return this.#overflowSeries();
    if (!actors) this.#byQueue.set(queue, actors = new Map());
    actors.set(actor, s = new MetricSeries(queue, actor));
    this.#count++;
    return s;
  }

  #overflowSeries(): MetricSeries {
    if (!this.#overflow) {
      logger.warning(
        `More than ${this.maxSeries} distinct (queue, actor) pairs: counting the rest as ` +
          `${OVERFLOW_LABEL}. Raise maxSeries if that many actors are expected.`,
      );
      this.#overflow = new MetricSeries(OVERFLOW_LABEL, OVERFLOW_LABEL);
    }
    return this.#overflow;
  }

  /** How many series it holds (the overflow series included). */
  get size(): number {
    return this.#count + (this.#overflow ? 1 : 0);
  }

  /** Its state as a plain JSON value. */
  snapshot(): MetricsSnapshot {
    const series: SeriesSnapshot[] = [];
    for (const actors of this.#byQueue.values()) {
      for (const s of actors.values()) series.push(s.snapshot());
    }
    if (this.#overflow) series.push(this.#overflow.snapshot());
    return {
      format: SNAPSHOT_FORMAT,
      instance: this.instance,
      startedAt: this.startedAt,
      takenAt: Date.now(),
      series,
    };
  }
}

/**
 * Options of `mergeSnapshots`.
 *
 * @example
 * ```ts
 * import type { MergeOptions } from "./registry.ts";
 * const o: MergeOptions = { instance: "supervisor", maxSeries: 2000 };
 * ```
 */
export interface MergeOptions {
  /** The merged snapshot's `instance`. Default `"merged"`. */
  instance?: string;
  /** The merged snapshot's `startedAt`. Default: the earliest of the inputs. */
  startedAt?: number;
  /** Cap on distinct (queue, actor) pairs in the result (default 1000; see `MetricsRegistry`). */
  maxSeries?: number;
  /** Leave the gauges at zero (for folding the counters of a process that is gone). */
  countersOnly?: boolean;
}

/**
 * Sums snapshots: every counter, gauge and histogram bucket of the same (queue, actor) is added.
 * Use it to total the isolates of one process or the processes of one worker. Snapshots of other
 * formats or with other bucket counts throw a `TypeError`.
 *
 * @example
 * ```ts
 * import { mergeSnapshots, MetricsRegistry } from "./registry.ts";
 * const a = new MetricsRegistry(), b = new MetricsRegistry();
 * a.series("q", "x").inProgress = 2;
 * b.series("q", "x").inProgress = 1;
 * console.log(mergeSnapshots([a.snapshot(), b.snapshot()]).series[0].inProgress); // 3
 * ```
 */
export function mergeSnapshots(
  snapshots: readonly MetricsSnapshot[],
  options: MergeOptions = {},
): MetricsSnapshot {
  const maxSeries = positiveInt("maxSeries", options.maxSeries ?? 1000);
  const out = new Map<string, SeriesSnapshot>();
  let overflow: SeriesSnapshot | undefined;
  let startedAt = Infinity;
  for (const snap of snapshots) {
    checkSnapshot(snap);
    if (snap.startedAt < startedAt) startedAt = snap.startedAt;
    for (const s of snap.series) {
      const key = `${s.queue}\u0000${s.actor}`;
      let into = out.get(key);
      if (!into) {
        if (s.queue === OVERFLOW_LABEL && s.actor === OVERFLOW_LABEL) {
          into = overflow ??= emptySeries(OVERFLOW_LABEL, OVERFLOW_LABEL);
        } else if (out.size >= maxSeries) {
          into = overflow ??= emptySeries(OVERFLOW_LABEL, OVERFLOW_LABEL);
        } else {
          out.set(key, into = emptySeries(s.queue, s.actor));
        }
      }
      addSeries(into, s, options.countersOnly ?? false);
    }
  }
  const series = [...out.values()];
  if (overflow) series.push(overflow);
  return {
    format: SNAPSHOT_FORMAT,
    instance: options.instance ?? "merged",
    startedAt: options.startedAt ?? (startedAt === Infinity ? Date.now() : startedAt),
    takenAt: Date.now(),
    series,
  };
}

/** A series at zero. */
function emptySeries(queue: string, actor: string): SeriesSnapshot {
  return new MetricSeries(queue, actor).snapshot();
}

function addSeries(into: SeriesSnapshot, s: SeriesSnapshot, countersOnly: boolean): void {
  for (const c of COUNTERS) into[c] += s[c];
  if (!countersOnly) {
    into.inProgress += s.inProgress;
    into.delayed += s.delayed;
  }
  addHistogram(into.runMs, s.runMs);
  addHistogram(into.waitSeconds, s.waitSeconds);
}

function addHistogram(into: HistogramSnapshot, h: HistogramSnapshot): void {
  for (let i = 0; i < into.counts.length; i++) into.counts[i]! += h.counts[i]!;
  into.sum += h.sum;
}

function checkSnapshot(snap: MetricsSnapshot): void {
  if (snap?.format !== SNAPSHOT_FORMAT || !Array.isArray(snap.series)) {
    throw new TypeError(
      `Not a metrics snapshot of format ${SNAPSHOT_FORMAT} (got format ${
        JSON.stringify(snap?.format)
      }): every process must run the same dramatis version.`,
    );
  }
  for (const s of snap.series) {
    if (
      s.runMs?.counts?.length !== RUN_TIME_BUCKETS_MS.length + 1 ||
      s.waitSeconds?.counts?.length !== WAIT_TIME_BUCKETS_SECONDS.length + 1
    ) {
      throw new TypeError(
        `Metrics snapshot ${snap.instance}: series ${s.queue}/${s.actor} has histograms with ` +
          `other buckets; every process must run the same dramatis version.`,
      );
    }
  }
}

/** True when some counter or histogram of `now` is below `before` (its source restarted). */
function wentBackwards(before: MetricsSnapshot, now: MetricsSnapshot): boolean {
  const current = new Map(now.series.map((s) => [`${s.queue}\u0000${s.actor}`, s]));
  for (const b of before.series) {
    const n = current.get(`${b.queue}\u0000${b.actor}`);
    if (!n) return true;
    for (const c of COUNTERS) if (n[c] < b[c]) return true;
    if (n.runMs.sum < b.runMs.sum || n.waitSeconds.sum < b.waitSeconds.sum) return true;
  }
  return false;
}

/**
 * Options of `new MetricsAggregator()`.
 *
 * @example
 * ```ts
 * import type { MetricsAggregatorOptions } from "./registry.ts";
 * const o: MetricsAggregatorOptions = { maxAge: 15_000 };
 * ```
 */
export interface MetricsAggregatorOptions {
  /**
   * A source not updated for this many ms is treated as gone: its counters are kept, its gauges
   * dropped (as `retire()` does). Default 30_000; use the heartbeat timeout of the workers.
   */
  maxAge?: number;
  /** Cap on distinct (queue, actor) pairs (default 1000; see `MetricsRegistry`). */
  maxSeries?: number;
  /**
   * Counters of sources already gone, for example read back from the broker, so that a new
   * aggregator continues the totals of the one before it.
   */
  retired?: MetricsSnapshot;
  /** The clock, in ms (for tests). Default `Date.now`. */
  now?: () => number;
}

/**
 * Sums the latest snapshot of every source (isolate, process or worker) into totals that never go
 * backwards while the aggregator lives, which is what Prometheus needs from a counter.
 *
 * The rule: each source sends cumulative snapshots (counting from its own start); the aggregate is
 * `retired + Σ latest snapshot of each live source`. When a source is gone (`retire()`, no update
 * for `maxAge` ms, or a snapshot of the same `instance` whose counters went down), its last
 * counters and histograms move into `retired` and its gauges are dropped. A restarted process
 * sends a new `instance`: it is a new source starting at zero, and the old one is retired. The
 * increments a source made after its last snapshot are lost (at most one publish interval), but
 * no total ever decreases. Only a restart of the aggregator itself resets the totals, and that
 * Prometheus handles as any counter reset (`rate()` and `increase()` treat a drop as a restart
 * from zero).
 *
 * @example
 * ```ts
 * import { MetricsAggregator, MetricsRegistry } from "./registry.ts";
 * const agg = new MetricsAggregator();
 * const p1 = new MetricsRegistry();
 * p1.series("q", "a").processed = 10;
 * agg.update(p1.snapshot());
 * const p1b = new MetricsRegistry(); // process 1 restarted: counts from zero
 * p1b.series("q", "a").processed = 1;
 * agg.update(p1b.snapshot());
 * agg.retire(p1.instance); // or wait maxAge
 * console.log(agg.snapshot().series[0].processed); // 11
 * ```
 */
export class MetricsAggregator {
  /** Unique for this aggregator's lifetime. */
  readonly instance: string = crypto.randomUUID();
  /** When it was created (ms since the epoch). */
  readonly startedAt: number;
  /** See `MetricsAggregatorOptions.maxAge`. */
  readonly maxAge: number;
  /** See `MetricsAggregatorOptions.maxSeries`. */
  readonly maxSeries: number;
  #now: () => number;
  #live = new Map<string, { snapshot: MetricsSnapshot; seenAt: number }>();
  #retired: MetricsSnapshot;
  /** The last snapshots of the sources retired lately (oldest first), should they come back. */
  #retiredBy = new Map<string, MetricsSnapshot>();

  /** An aggregator with no sources. */
  constructor(options: MetricsAggregatorOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.startedAt = options.retired?.startedAt ?? this.#now();
    this.maxAge = positiveInt("maxAge", options.maxAge ?? 30_000);
    this.maxSeries = positiveInt("maxSeries", options.maxSeries ?? 1000);
    this.#retired = this.#merge(options.retired ? [options.retired] : [], true);
  }

  /**
   * Takes the latest snapshot of the source `snapshot.instance`. A source retired lately (by
   * `retire()` or `maxAge`) that reports again, such as a Web Worker that was busy longer than
   * `maxAge`, is live again: its retired counters are taken back out, so nothing counts twice.
   */
  update(snapshot: MetricsSnapshot): void {
    checkSnapshot(snapshot);
    const prev = this.#live.get(snapshot.instance);
    if (prev && wentBackwards(prev.snapshot, snapshot)) this.#fold(prev.snapshot);
    if (!prev && this.#retiredBy.size > 0) {
      const gone = this.#retiredBy.get(snapshot.instance);
      if (gone && !wentBackwards(gone, snapshot)) {
        this.#retiredBy.delete(snapshot.instance);
        subtract(this.#retired, gone);
      }
    }
    this.#live.set(snapshot.instance, { snapshot, seenAt: this.#now() });
  }

  /** The source is gone (a process exited, a Web Worker crashed): keep its counters, drop its gauges. */
  retire(instance: string): void {
    const entry = this.#live.get(instance);
    if (!entry) return;
    this.#live.delete(instance);
    this.#fold(entry.snapshot);
    this.#retiredBy.set(instance, entry.snapshot);
    if (this.#retiredBy.size > RETIRED_KEPT) {
      this.#retiredBy.delete(this.#retiredBy.keys().next().value!);
    }
  }

  /** The instances of the live sources. */
  sources(): string[] {
    this.#prune();
    return [...this.#live.keys()];
  }

  /** The totals: retired counters plus the latest snapshot of every live source. */
  snapshot(): MetricsSnapshot {
    this.#prune();
    const parts = [this.#retired];
    for (const { snapshot } of this.#live.values()) parts.push(snapshot);
    return this.#merge(parts, false);
  }

  /** The counters of retired sources only (to store beside the broker for the next aggregator). */
  retiredSnapshot(): MetricsSnapshot {
    this.#prune();
    return this.#merge([this.#retired], true);
  }

  #prune(): void {
    const now = this.#now();
    for (const [instance, { seenAt }] of this.#live) {
      if (now - seenAt > this.maxAge) this.retire(instance);
    }
  }

  #fold(snapshot: MetricsSnapshot): void {
    this.#retired = this.#merge([this.#retired, snapshot], true);
  }

  #merge(parts: MetricsSnapshot[], countersOnly: boolean): MetricsSnapshot {
    return mergeSnapshots(parts, {
      instance: this.instance,
      startedAt: this.startedAt,
      maxSeries: this.maxSeries,
      countersOnly,
    });
  }
}

/** Retired sources remembered, should they report again (about 50 KB each at 100 series). */
const RETIRED_KEPT = 100;

/** Takes `gone`'s counters and histograms back out of `total` (never below zero). */
function subtract(total: MetricsSnapshot, gone: MetricsSnapshot): void {
  const byKey = new Map(total.series.map((s) => [`${s.queue}\u0000${s.actor}`, s]));
  for (const g of gone.series) {
    const t = byKey.get(`${g.queue}\u0000${g.actor}`) ??
      byKey.get(`${OVERFLOW_LABEL}\u0000${OVERFLOW_LABEL}`);
    if (!t) continue;
    for (const c of COUNTERS) t[c] = Math.max(0, t[c] - g[c]);
    for (const h of ["runMs", "waitSeconds"] as const) {
      for (let i = 0; i < t[h].counts.length; i++) {
        t[h].counts[i] = Math.max(0, t[h].counts[i]! - g[h].counts[i]!);
      }
      t[h].sum = Math.max(0, t[h].sum - g[h].sum);
    }
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new TypeError(`${name} must be a positive integer, got ${v}.`);
  }
  return v;
}
