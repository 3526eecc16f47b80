/**
 * `MetricsAggregator`: the latest snapshot of every source (isolate, process or worker) summed
 * into totals that never go backwards. Re-exported by `./registry.ts`.
 *
 * @example
 * ```ts
 * import { MetricsAggregator } from "./aggregator.ts";
 * console.log(new MetricsAggregator().sources().length); // 0
 * ```
 * @module
 */
import {
  checkSnapshot,
  COUNTERS,
  mergeSnapshots,
  type MetricsSnapshot,
  OVERFLOW_LABEL,
  positiveInt,
} from "./snapshot.ts";

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
