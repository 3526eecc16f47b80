// The hook of a CLI Web Worker (worker/_web_worker.ts): with DRAMATIS_METRICS=1 (set by
// `dramatis worker --metrics`, or by hand), its broker gets a `Metrics` middleware if it has none,
// so that the records its worker publishes carry their counters.
import type { Broker } from "../broker/broker.ts";
import { env } from "../runtime/env.ts";
import { Metrics } from "../middleware/metrics.ts";

/** The environment variable that turns the `Metrics` middleware on in CLI Web Workers. */
export const METRICS_ENV = "DRAMATIS_METRICS";

/** Adds a `Metrics` middleware to `broker` when DRAMATIS_METRICS=1 and it has none. */
export function addMetricsIfAsked(broker: Broker): void {
  if (env(METRICS_ENV) !== "1") return;
  if (broker.middleware.some((m) => m instanceof Metrics)) return;
  broker.addMiddleware(new Metrics());
}
