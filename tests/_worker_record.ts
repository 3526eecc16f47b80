// A WorkerRecord for tests of the registry of workers and of BrokerMetrics.
import type { WorkerRecord } from "../broker/ops.ts";
import type { MetricsRegistry } from "../telemetry/registry.ts";

/** The record of worker `id`, with `registry`'s snapshot and `running` messages running. */
export function workerRecord(id: string, registry: MetricsRegistry, running = 0): WorkerRecord {
  return {
    workerId: id,
    host: "box",
    pid: 1,
    runtime: "test",
    version: "0",
    queues: ["default"],
    concurrency: 8,
    startedAt: registry.startedAt,
    heartbeatAt: Date.now(),
    running: Array.from({ length: running }, (_, i) => ({
      messageId: `m${i}`,
      actorName: "add",
      queueName: "default",
      since: Date.now(),
    })),
    metrics: registry.snapshot(),
  };
}
