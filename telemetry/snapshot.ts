/**
 * The metrics snapshot format: a registry's (or an aggregate's) state as a plain JSON value, its
 * histogram buckets, and `mergeSnapshots`, which sums the snapshots of many isolates or
 * processes. Re-exported by `./registry.ts`.
 *
 * @example
 * ```ts
 * import { mergeSnapshots, type MetricsSnapshot } from "./snapshot.ts";
 * const none: MetricsSnapshot[] = [];
 * console.log(mergeSnapshots(none).series.length); // 0
 * ```
 * @module
 */

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
  const zero: SeriesSnapshot = {
    queue,
    actor,
    enqueued: 0,
    processed: 0,
    errors: 0,
    retries: 0,
    rejects: 0,
    skipped: 0,
    succeeded: 0,
    requeued: 0,
    failed: 0,
    timeLimits: 0,
    inProgress: 0,
    delayed: 0,
    runMs: { counts: new Array(RUN_TIME_BUCKETS_MS.length + 1).fill(0), sum: 0 },
    waitSeconds: { counts: new Array(WAIT_TIME_BUCKETS_SECONDS.length + 1).fill(0), sum: 0 },
  };
  return zero;
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

/** Throws a `TypeError` unless `snap` is a snapshot of this format with these buckets. */
export function checkSnapshot(snap: MetricsSnapshot): void {
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

/** `v` if it is a positive integer, else a `TypeError` naming the option `name`. */
export function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new TypeError(`${name} must be a positive integer, got ${v}.`);
  }
  return v;
}
