// The depth of a queue as `/metrics` exports it (`broker.stats()` plus the age of the oldest
// ready message where the broker knows it cheaply), shared by `BrokerMetrics` and the worker
// processes that put it in their records for it (see `BrokerMetricsOptions.recordDepths`).
import type { Broker } from "../broker/broker.ts";
import { QueueNotFound } from "../errors.ts";
import type { QueueMetrics } from "./prometheus.ts";

/**
 * Set by `dramatis worker --metrics` for the worker processes when its broker is a FileBroker:
 * they publish the depth of their queues in their records, so that the supervisor serving
 * `/metrics` does not follow the broker's whole log to know them.
 */
export const RECORD_DEPTHS_ENV = "DRAMATIS_METRICS_DEPTHS";

/** A broker that knows the age of a queue's oldest ready message cheaply (the FileBroker). */
interface OldestReady {
  oldestReadyTimestamp(queueName: string): Promise<number | null>;
}

/** The depth of `queue`, or undefined when this broker does not know it (not declared here). */
export async function statsOf(broker: Broker, queue: string): Promise<QueueMetrics | undefined> {
  try {
    const stats: QueueMetrics = await broker.stats(queue);
    const oldest = (broker as Partial<OldestReady>).oldestReadyTimestamp;
    if (typeof oldest === "function") {
      stats.oldestReadyTimestamp = stats.ready > 0 ? await oldest.call(broker, queue) : null;
    }
    return stats;
  } catch (e) {
    if (e instanceof QueueNotFound) return undefined;
    throw e;
  }
}
