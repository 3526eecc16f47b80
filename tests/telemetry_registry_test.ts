import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Histogram,
  mergeSnapshots,
  MetricsAggregator,
  MetricsRegistry,
  type MetricsSnapshot,
  OVERFLOW_LABEL,
  RUN_TIME_BUCKETS_MS,
  WAIT_TIME_BUCKETS_SECONDS,
} from "../telemetry/mod.ts";

test("Histogram: a value equal to a bound falls in that bucket (le), above the last in +Inf", () => {
  const h = new Histogram([1, 10]);
  for (const v of [0, 1, 1.0001, 10, 11, 1e9]) h.observe(v);
  assert.deepEqual([...h.counts], [2, 2, 2]);
  assert.equal(h.sum, 0 + 1 + 1.0001 + 10 + 11 + 1e9);
});

test("Dramatiq's run-time buckets, and the wait-time buckets, are what the docs promise", () => {
  assert.deepEqual(RUN_TIME_BUCKETS_MS, [
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
  assert.ok(WAIT_TIME_BUCKETS_SECONDS.every((b, i, a) => i === 0 || b > a[i - 1]));
  assert.equal(WAIT_TIME_BUCKETS_SECONDS.at(-1), 86400);
});

test("a snapshot is a JSON value, detached from the live registry", () => {
  const r = new MetricsRegistry();
  const s = r.series("default", "add");
  s.processed = 2;
  s.runMs.observe(7);
  s.waitSeconds.observe(0.2);
  const snap = r.snapshot();
  s.processed = 99;
  s.runMs.observe(7);
  assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap);
  assert.equal(snap.series[0].processed, 2);
  assert.deepEqual(snap.series[0].runMs.counts.slice(0, 3), [0, 1, 0]);
  assert.equal(snap.series[0].runMs.counts.length, RUN_TIME_BUCKETS_MS.length + 1);
  assert.equal(snap.series[0].waitSeconds.counts.length, WAIT_TIME_BUCKETS_SECONDS.length + 1);
  assert.equal(snap.instance, r.instance);
  assert.equal(snap.format, 1);
});

test("past maxSeries, new (queue, actor) pairs share one (other) series", () => {
  const r = new MetricsRegistry({ maxSeries: 2 });
  r.series("q", "a").processed++;
  r.series("q", "b").processed++;
  r.series("q", "c").processed++;
  r.series("x", "d").processed += 2;
  r.series("q", "a").processed++; // known pairs still get their own series
  assert.equal(r.size, 3);
  const bySeries = Object.fromEntries(
    r.snapshot().series.map((s) => [`${s.queue}/${s.actor}`, s.processed]),
  );
  assert.deepEqual(bySeries, { "q/a": 2, "q/b": 1, [`${OVERFLOW_LABEL}/${OVERFLOW_LABEL}`]: 3 });
  assert.throws(() => new MetricsRegistry({ maxSeries: 0 }), /maxSeries must be a positive/);
});

test("mergeSnapshots sums counters, gauges and every histogram bucket per (queue, actor)", () => {
  const a = new MetricsRegistry(), b = new MetricsRegistry();
  a.series("q", "x").processed = 3;
  a.series("q", "x").inProgress = 1;
  a.series("q", "x").runMs.observe(4);
  b.series("q", "x").processed = 4;
  b.series("q", "x").inProgress = 2;
  b.series("q", "x").runMs.observe(4000);
  b.series("q", "y").retries = 1;
  const m = mergeSnapshots([a.snapshot(), b.snapshot()]);
  const x = m.series.find((s) => s.actor === "x")!;
  assert.equal(x.processed, 7);
  assert.equal(x.inProgress, 3);
  assert.equal(x.runMs.sum, 4004);
  assert.equal(x.runMs.counts[0], 1);
  assert.equal(x.runMs.counts[RUN_TIME_BUCKETS_MS.indexOf(5000)], 1);
  assert.equal(m.series.find((s) => s.actor === "y")!.retries, 1);
  assert.equal(m.startedAt, Math.min(a.startedAt, b.startedAt));
  // Merging is associative: merging merged snapshots gives the same totals.
  const again = mergeSnapshots([mergeSnapshots([a.snapshot()]), mergeSnapshots([b.snapshot()])]);
  assert.deepEqual(
    again.series.map(({ queue, actor, processed }) => ({ queue, actor, processed })),
    m.series.map(({ queue, actor, processed }) => ({ queue, actor, processed })),
  );
});

test("mergeSnapshots rejects a snapshot of another format with a clear error", () => {
  const bad = { ...new MetricsRegistry().snapshot(), format: 2 };
  assert.throws(() => mergeSnapshots([bad]), /format 1 \(got format 2\).*same dramatis version/);
  const r = new MetricsRegistry();
  r.series("q", "a");
  const snap = r.snapshot();
  snap.series[0].runMs.counts.pop();
  assert.throws(() => mergeSnapshots([snap]), /q\/a has histograms with other buckets/);
});

test("mergeSnapshots caps the result at maxSeries, folding the rest into (other)", () => {
  const a = new MetricsRegistry(), b = new MetricsRegistry();
  a.series("q", "a1").processed = 1;
  b.series("q", "b1").processed = 2;
  b.series("q", "b2").processed = 3;
  const m = mergeSnapshots([a.snapshot(), b.snapshot()], { maxSeries: 2 });
  assert.equal(m.series.length, 3);
  const other = m.series.find((s) => s.actor === OVERFLOW_LABEL)!;
  assert.equal(other.processed, 3);
  assert.equal(m.series.reduce((n, s) => n + s.processed, 0), 6);
});

function registryWith(processed: number, inProgress: number): MetricsRegistry {
  const r = new MetricsRegistry();
  const s = r.series("q", "a");
  s.processed = processed;
  s.inProgress = inProgress;
  s.runMs.observe(1);
  return r;
}

test("MetricsAggregator: a restarted source never makes a total go backwards", () => {
  let now = 1_000_000;
  const agg = new MetricsAggregator({ maxAge: 10_000, now: () => now });
  const totals: number[] = [];
  const total = () => agg.snapshot().series.find((s) => s.actor === "a")?.processed ?? 0;

  const p1 = registryWith(10, 1), p2 = registryWith(5, 2);
  agg.update(p1.snapshot());
  agg.update(p2.snapshot());
  totals.push(total()); // 15
  // p1 restarts: a new instance counting from zero; the old one stops reporting.
  const p1b = registryWith(1, 0);
  agg.update(p1b.snapshot());
  totals.push(total()); // 16: old p1's last 10 are still there
  now += 11_000; // p1 (old) has not reported for maxAge: retired
  agg.update(p2.snapshot());
  agg.update(p1b.snapshot());
  totals.push(total());
  assert.deepEqual(agg.sources().sort(), [p1b.instance, p2.instance].sort());
  // Gauges of the retired source are gone; its counters and histograms stay.
  const s = agg.snapshot().series[0];
  assert.equal(s.inProgress, 2);
  assert.equal(s.runMs.counts[0], 3);
  // p2 exits cleanly.
  agg.retire(p2.instance);
  totals.push(total());
  assert.deepEqual(totals, [15, 16, 16, 16]);
  assert.equal(agg.snapshot().series[0].inProgress, 0);
});

test("MetricsAggregator: a source retired by maxAge that reports again is not counted twice", () => {
  let now = 1_000_000;
  const agg = new MetricsAggregator({ maxAge: 10_000, now: () => now });
  const total = () => agg.snapshot().series.find((s) => s.actor === "a")?.processed ?? 0;
  const busy = registryWith(10, 1), other = registryWith(5, 0);
  agg.update(busy.snapshot());
  agg.update(other.snapshot());
  now += 11_000; // busy (a Web Worker in a long actor) misses maxAge: retired, counters kept
  agg.update(other.snapshot());
  assert.equal(total(), 15);
  assert.deepEqual(agg.sources(), [other.instance]);
  busy.series("q", "a").processed = 12;
  agg.update(busy.snapshot()); // back: live again, its retired counts taken out
  assert.equal(total(), 17);
  assert.equal(agg.snapshot().series[0]!.runMs.counts[0], 2);
  agg.retire(busy.instance);
  agg.retire(other.instance);
  assert.equal(total(), 17);
});

test("MetricsAggregator: counters that go down within one instance count as a restart", () => {
  const agg = new MetricsAggregator();
  const snap = (processed: number): MetricsSnapshot => {
    const s = registryWith(processed, 0).snapshot();
    return { ...s, instance: "same" };
  };
  agg.update(snap(10));
  agg.update(snap(3));
  assert.equal(agg.snapshot().series[0].processed, 13);
  agg.update(snap(4));
  assert.equal(agg.snapshot().series[0].processed, 14);
});

test("MetricsAggregator: a new aggregator continues from retiredSnapshot() of the last one", () => {
  const first = new MetricsAggregator();
  const p = registryWith(7, 1);
  first.update(p.snapshot());
  first.retire(p.instance);
  const stored = JSON.parse(JSON.stringify(first.retiredSnapshot()));
  const second = new MetricsAggregator({ retired: stored });
  second.update(registryWith(2, 1).snapshot());
  const s = second.snapshot().series[0];
  assert.equal(s.processed, 9);
  assert.equal(s.inProgress, 1);
  assert.equal(second.startedAt, first.startedAt);
});
