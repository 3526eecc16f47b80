// BrokerMetrics / brokerMetricsHandler: the records of every worker of a broker summed per
// (queue, actor); counters never go backwards when a worker dies or restarts; gauges come from
// the live workers only; a scrape is cached for cacheTtl.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BrokerMetrics, brokerMetricsHandler, metricsHandler, MetricsRegistry } from "../mod.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { actor } from "../actor.ts";
import type { Broker } from "../broker/broker.ts";
import { FileBroker } from "../broker/file/broker.ts";
import { RedisBroker } from "../broker/redis/broker.ts";
import { StubBroker } from "../broker/stub.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";
import { workerRecord as record } from "./_worker_record.ts";
import { parseExposition, valueOf } from "./_prometheus_parser.ts";

test("BrokerMetrics sums the workers per actor, and a dead or restarted worker's counts stay", async () => {
  const broker = new StubBroker();
  broker.declareQueue("default");
  const source = new BrokerMetrics(broker, { cacheTtl: 0 });
  const a = new MetricsRegistry(), b = new MetricsRegistry();
  a.series("default", "add").processed = 10;
  a.series("default", "add").inProgress = 2;
  b.series("default", "add").processed = 5;
  b.series("default", "mul").processed = 1;
  b.series("default", "add").delayed = 3;
  await broker.publishWorker(record("a", a, 2), 10_000);
  await broker.publishWorker(record("b", b), 10_000);
  let c = await source.collect();
  const add = () => c.metrics.series.find((s) => s.actor === "add")!;
  assert.equal(c.metrics.series.length, 2);
  assert.deepEqual([add().processed, add().inProgress, add().delayed], [15, 2, 3]);
  assert.equal(c.workers.length, 2);
  assert.equal(c.workers.find((w) => w.workerId === "a")!.busy, 2);

  // Worker a dies (its record goes): its counters stay, its gauges go at once.
  await broker.removeWorker("a");
  c = await source.collect();
  assert.deepEqual([add().processed, add().inProgress, add().delayed], [15, 0, 3]);
  assert.equal(c.workers.length, 1);

  // It restarts under the same id with a new registry counting from zero: added, not replacing.
  const a2 = new MetricsRegistry();
  a2.series("default", "add").processed = 1;
  await broker.publishWorker(record("a", a2), 10_000);
  c = await source.collect();
  assert.equal(add().processed, 16);

  // A record that comes back after missing a few scrapes (a slow heartbeat) is not counted twice.
  a2.series("default", "add").processed = 4;
  await broker.publishWorker(record("a", a2), 10_000);
  c = await source.collect();
  assert.equal(add().processed, 19);
  await broker.removeWorker("b");
  c = await source.collect();
  await broker.publishWorker(record("b", b), 10_000);
  c = await source.collect();
  assert.equal(add().processed, 19);
});

test("BrokerMetrics: a worker gone longer than forgetAfter is folded, and ignored if it comes back", async () => {
  const broker = new StubBroker();
  const source = new BrokerMetrics(broker, { cacheTtl: 0, forgetAfter: 20 });
  const a = new MetricsRegistry();
  a.series("q", "x").processed = 7;
  await broker.publishWorker(record("a", a), 10_000);
  await source.collect();
  await broker.removeWorker("a");
  await new Promise((r) => setTimeout(r, 40));
  let c = await source.collect(); // folded now
  assert.equal(c.metrics.series[0]!.processed, 7);
  a.series("q", "x").processed = 9;
  await broker.publishWorker(record("a", a), 10_000);
  c = await source.collect();
  assert.equal(c.metrics.series[0]!.processed, 7, "a forgotten source is not added again");
});

test("brokerMetricsHandler: one scrape per cacheTtl reads the broker, queue depth by state", async () => {
  const broker = new StubBroker();
  broker.declareQueue("default");
  let reads = 0;
  const workers = broker.workers.bind(broker);
  broker.workers = () => (reads++, workers());
  const r = new MetricsRegistry();
  r.series("default", "add").processed = 2;
  await broker.publishWorker(record("w", r), 10_000);
  const handler = brokerMetricsHandler(broker, { cacheTtl: 60_000 });
  const texts = await Promise.all(
    [1, 2, 3].map(async () => await (await handler(new Request("http://x/metrics"))).text()),
  );
  assert.equal(reads, 1);
  const f = parseExposition(texts[2]!);
  assert.equal(valueOf(f, "dramatiq_messages_total", { actor_name: "add" }), 2);
  assert.equal(valueOf(f, "dramatis_workers"), 1);
  assert.equal(
    valueOf(f, "dramatis_queue_messages", { queue_name: "default", state: "ready" }),
    0,
  );
  // The overload: a broker is read as a whole, a registry alone.
  const viaOverload = parseExposition(
    await (await metricsHandler(broker)(new Request("http://x/"))).text(),
  );
  assert.equal(valueOf(viaOverload, "dramatis_workers"), 1);
  const ofRegistry = parseExposition(
    await (await metricsHandler(r)(new Request("http://x/"))).text(),
  );
  assert.equal(ofRegistry.has("dramatis_workers"), false);
});

test("brokerMetricsHandler: a broker without the worker registry still exports queue depth", async () => {
  const broker = new StubBroker();
  broker.declareQueue("jobs");
  Object.defineProperty(broker, "capabilities", {
    value: { ...broker.capabilities, workers: false },
  });
  const res = await brokerMetricsHandler(broker)(new Request("http://x/metrics"));
  const f = parseExposition(await res.text());
  assert.equal(valueOf(f, "dramatis_queue_messages", { queue_name: "jobs", state: "dead" }), 0);
  assert.equal(valueOf(f, "dramatis_workers"), 0);
});

/** Three sends (two ready, one delayed): the age is the first's, via the broker and /metrics. */
async function oldestScenario(
  broker: Broker & { oldestReadyTimestamp(q: string): Promise<number | null> },
): Promise<void> {
  const job = actor(function job(_n: number) {}, { actorName: "job", queueName: "jobs", broker });
  assert.equal(await broker.oldestReadyTimestamp("jobs"), null);
  const first = await job.send(1);
  await new Promise((r) => setTimeout(r, 5));
  await job.send(2);
  await job.sendWithOptions({ args: [3], delay: 60_000 }); // delayed: not ready
  assert.equal(await broker.oldestReadyTimestamp("jobs"), first.messageTimestamp);
  const c = await new BrokerMetrics(broker).collect();
  assert.deepEqual(
    c.queues.map((q) => [q.queueName, q.ready, q.delayed, q.oldestReadyTimestamp]),
    [["jobs", 2, 1, first.messageTimestamp]],
  );
  const f = parseExposition(
    await (await brokerMetricsHandler(broker)(new Request("http://x/"))).text(),
  );
  const age = valueOf(f, "dramatis_queue_oldest_message_age_seconds", { queue_name: "jobs" });
  assert.ok(age > 0 && age < 60, `age ${age}`);
}

test("FileBroker: the oldest ready message's age (lowest log id, one read; no scan of the log)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-oldest-"));
  const broker = new FileBroker({ dir });
  try {
    await oldestScenario(broker);
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("RedisBroker: the oldest ready message's age is the head of its list", async () => {
  const ns = randomNamespace("oldest");
  const broker = new RedisBroker({ url: SHARED_URL, namespace: ns });
  try {
    await oldestScenario(broker);
  } finally {
    await broker.close();
    await deleteKeys(`${ns}:`);
  }
});

test("BrokerMetrics with recordDepths: depths from the freshest record, the broker read only for queues no live worker consumes", async () => {
  const broker = new StubBroker();
  broker.declareQueue("default");
  broker.declareQueue("other");
  const add = actor((a: number) => a, { actorName: "add_depths", queueName: "other", broker });
  await add.send(1);
  await add.send(2);
  const source = new BrokerMetrics(broker, { cacheTtl: 0, recordDepths: true });
  const depth = (ready: number) => ({
    queueName: "default",
    ready,
    delayed: 1,
    inFlight: 2,
    dead: 0,
  });
  const r = new MetricsRegistry();
  // "default" as two workers saw it (the later one wins); the broker itself has 0 there.
  await broker.publishWorker(
    { ...record("a", r), depths: [depth(7)], depthsAt: Date.now() - 500 },
    10_000,
  );
  await broker.publishWorker(
    { ...record("b", r), depths: [depth(9)], depthsAt: Date.now() },
    10_000,
  );
  let c = await source.collect();
  const q = (name: string) => c.queues.find((x) => x.queueName === name);
  assert.deepEqual(
    [q("default")?.ready, q("default")?.delayed, q("default")?.inFlight],
    [9, 1, 2],
  );
  // "other" is consumed by no live worker: read from the broker.
  assert.equal(q("other")?.ready, 2);

  // Depths too old, and the queue is consumed: left out rather than read here.
  await broker.publishWorker({
    ...record("a", r),
    depths: [depth(7)],
    depthsAt: Date.now() - 60_000,
  }, 10_000);
  await broker.publishWorker({ ...record("b", r), depthsAt: undefined, depths: undefined }, 10_000);
  c = await source.collect();
  assert.equal(q("default"), undefined);

  // Without the option, the broker's own counters.
  c = await new BrokerMetrics(broker, { cacheTtl: 0 }).collect();
  assert.equal(q("default")?.ready, 0);
});
