// The dashboard's charts: samples of a cumulative MetricsSnapshot, turned into per-second rates
// and wait / run time percentiles (over a sliding window of the histograms' increase).
import {
  type MetricsSnapshot,
  RUN_TIME_BUCKETS_MS,
  WAIT_TIME_BUCKETS_SECONDS,
} from "../telemetry/registry.ts";

interface Sample {
  t: number;
  enqueued: number;
  processed: number;
  errors: number;
  run: number[];
  wait: number[];
}

/** One point of the charts (rates per second; times in ms; null when nothing was observed). */
export interface ChartPoint {
  t: number;
  enqueued: number;
  processed: number;
  failed: number;
  wait: [number | null, number | null, number | null];
  run: [number | null, number | null, number | null];
}

function total(snap: MetricsSnapshot): Sample {
  const s: Sample = {
    t: snap.takenAt,
    enqueued: 0,
    processed: 0,
    errors: 0,
    run: new Array(RUN_TIME_BUCKETS_MS.length + 1).fill(0),
    wait: new Array(WAIT_TIME_BUCKETS_SECONDS.length + 1).fill(0),
  };
  for (const x of snap.series) {
    s.enqueued += x.enqueued;
    s.processed += x.processed;
    s.errors += x.errors;
    for (let i = 0; i < s.run.length; i++) s.run[i]! += x.runMs.counts[i] ?? 0;
    for (let i = 0; i < s.wait.length; i++) s.wait[i]! += x.waitSeconds.counts[i] ?? 0;
  }
  return s;
}

/**
 * The `q` quantile (0..1) of a histogram's per-bucket counts, interpolated linearly inside the
 * bucket as Prometheus' `histogram_quantile` does; the `+Inf` bucket answers its lower bound.
 */
export function quantile(
  q: number,
  bounds: readonly number[],
  counts: readonly number[],
): number | null {
  let n = 0;
  for (const c of counts) n += c;
  if (n === 0) return null;
  const rank = q * n;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && seen + c >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1]!;
      const lo = i === 0 ? 0 : bounds[i - 1]!;
      return lo + (bounds[i]! - lo) * ((rank - seen) / c);
    }
    seen += c;
  }
  return bounds[bounds.length - 1]!;
}

/** An increase, reading a counter that went down as a restart from zero (as Prometheus does). */
function inc(now: number, before: number): number {
  return now >= before ? now - before : now;
}

/** Keeps the last `max` samples, at most one per `every` ms, and derives chart points. */
export class MetricsSampler {
  #samples: Sample[] = [];
  #instance = "";
  constructor(readonly every: number, readonly max = 300, readonly windowMs = 10_000) {}

  /** True when a new sample is due at `now`. */
  due(now: number): boolean {
    const last = this.#samples[this.#samples.length - 1];
    return !last || now - last.t >= this.every * 0.9;
  }

  /** Adds a sample (a new `instance` starts the series again). */
  add(snap: MetricsSnapshot): void {
    if (snap.instance !== this.#instance) {
      this.#samples = [];
      this.#instance = snap.instance;
    }
    const s = total(snap);
    const last = this.#samples[this.#samples.length - 1];
    if (last && s.t <= last.t) return;
    this.#samples.push(s);
    if (this.#samples.length > this.max) this.#samples.shift();
  }

  /** Chart points from the samples after `since` (ms), oldest first. */
  points(since = 0): ChartPoint[] {
    const out: ChartPoint[] = [];
    const s = this.#samples;
    let w = 0;
    for (let i = 1; i < s.length; i++) {
      const a = s[i - 1]!, b = s[i]!;
      if (b.t <= since) continue;
      const dt = (b.t - a.t) / 1000;
      while (w < i - 1 && b.t - s[w + 1]!.t >= this.windowMs) w++;
      const from = s[w]!;
      const run = b.run.map((c, k) => inc(c, from.run[k]!));
      const wait = b.wait.map((c, k) => inc(c, from.wait[k]!));
      const q = (bounds: readonly number[], counts: number[], scale: number) =>
        [0.5, 0.95, 0.99].map((p) => {
          const v = quantile(p, bounds, counts);
          return v === null ? null : Math.round(v * scale * 10) / 10;
        }) as [number | null, number | null, number | null];
      out.push({
        t: b.t,
        enqueued: round(inc(b.enqueued, a.enqueued) / dt),
        processed: round(inc(b.processed, a.processed) / dt),
        failed: round(inc(b.errors, a.errors) / dt),
        run: q(RUN_TIME_BUCKETS_MS, run, 1),
        wait: q(WAIT_TIME_BUCKETS_SECONDS, wait, 1000),
      });
    }
    return out;
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
