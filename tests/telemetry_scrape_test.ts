// What makes a scrape of `dramatis worker --metrics` cheap on a FileBroker: the queue depths come
// from the worker processes' records (DRAMATIS_METRICS_DEPTHS=1) and agree with the broker's own;
// the registry's files are parsed again only when they changed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { actor } from "../actor.ts";
import { FileBroker } from "../broker/file/broker.ts";
import type { WorkerRecord } from "../broker/ops.ts";
import { workerRecord } from "./_worker_record.ts";
import { Metrics } from "../middleware/metrics.ts";
import { BrokerMetrics } from "../telemetry/broker_metrics.ts";
import { RECORD_DEPTHS_ENV } from "../telemetry/_depth.ts";
import { MetricsRegistry } from "../telemetry/registry.ts";
import type { QueueMetrics } from "../telemetry/prometheus.ts";
import { ProcessOps } from "../worker/_process_ops.ts";
import { env, setEnv } from "../runtime/env.ts";

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "dramatis-scrape-test-"));
}

test("recordDepths: the depths a worker process puts in its record are the broker's own", async () => {
  const dir = tempDir();
  const before = env(RECORD_DEPTHS_ENV);
  setEnv(RECORD_DEPTHS_ENV, "1");
  // The worker process's broker (with Metrics, as --metrics adds it) and the supervisor's.
  const worker = new FileBroker({ dir, middleware: [new Metrics()] });
  const supervisor = new FileBroker({ dir });
  try {
    const work = actor((n: number) => n, { actorName: "work", queueName: "jobs", broker: worker });
    for (let i = 0; i < 7; i++) await work.send(i);
    for (let i = 0; i < 3; i++) await work.sendWithOptions({ args: [i], delay: 3_600_000 });
    const ops = await ProcessOps.create({
      broker: worker,
      queues: ["jobs"],
      concurrency: 2,
      heldIds: () => [],
      cancel: () => {},
      running: () => [],
    });
    const record = ops.record();
    assert.equal(typeof record.depthsAt, "number");
    await worker.publishWorker(record, 60_000);

    const fromRecords = await new BrokerMetrics(supervisor, { cacheTtl: 0, recordDepths: true })
      .collect();
    const fromBroker = await new BrokerMetrics(supervisor, { cacheTtl: 0, queues: ["jobs"] })
      .collect();
    const jobs = (c: { queues: QueueMetrics[] }) => c.queues.find((q) => q.queueName === "jobs");
    assert.deepEqual(jobs(fromRecords), jobs(fromBroker));
    assert.deepEqual([jobs(fromRecords)?.ready, jobs(fromRecords)?.delayed], [7, 3]);
    await worker.removeWorker(record.workerId);
  } finally {
    setEnv(RECORD_DEPTHS_ENV, before ?? "");
    await worker.close();
    await supervisor.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

const registries = new Map<string, MetricsRegistry>();

/** A record of worker `id`, its registry (one per worker: the same instance) at `processed`. */
function record(id: string, processed: number): WorkerRecord {
  const r = registries.get(id) ?? new MetricsRegistry();
  registries.set(id, r);
  r.series("default", "add").processed = processed;
  return workerRecord(id, r);
}

test("FileBroker workers(): a record written again is read again, even at once and of the same size", async () => {
  const dir = tempDir();
  const writer = new FileBroker({ dir });
  const reader = new FileBroker({ dir });
  const processed = async () =>
    (await reader.workers()).map((r) => r.metrics!.series[0]!.processed);
  try {
    await writer.publishWorker(record("w1", 1), 60_000);
    assert.deepEqual(await processed(), [1]);
    // Same length of JSON, written within the same clock tick as the read before.
    for (let i = 2; i < 10; i++) {
      await writer.publishWorker(record("w1", i), 60_000);
      assert.deepEqual(await processed(), [i]);
    }
    // Left alone long enough to be trusted by its stat: not parsed again (the same object).
    await new Promise((r) => setTimeout(r, 300));
    const [a] = await reader.workers();
    const [b] = await reader.workers();
    assert.equal(a, b);
    await writer.publishWorker(record("w1", 5), 60_000);
    assert.deepEqual(await processed(), [5]);
    // A second worker, then the first removed: the list follows the directory.
    await writer.publishWorker(record("w2", 3), 60_000);
    await writer.removeWorker("w1");
    assert.deepEqual(await processed(), [3]);
  } finally {
    await writer.close();
    await reader.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("BrokerMetrics: unchanged records give the same totals; a changed one is counted", async () => {
  const dir = tempDir();
  const broker = new FileBroker({ dir });
  try {
    broker.declareQueue("default");
    await broker.publishWorker(record("w1", 4), 60_000);
    await broker.publishWorker(record("w2", 6), 60_000);
    const source = new BrokerMetrics(broker, { cacheTtl: 0 });
    const total = async () => (await source.collect()).metrics.series[0]!.processed;
    assert.equal(await total(), 10);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await total(), 10);
    assert.equal(await total(), 10);
    await broker.publishWorker(record("w2", 9), 60_000);
    assert.equal(await total(), 13); // 4 + 9
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
