/**
 * dramatis telemetry: the `Metrics` middleware and its registry, Prometheus exposition, and the
 * `Tracing` middleware for OpenTelemetry (no dependency: pass your `@opentelemetry/api` tracer).
 *
 * @example
 * ```ts
 * import { Metrics, metricsHandler } from "./mod.ts";
 * import { StubBroker } from "../mod.ts";
 * const metrics = new Metrics();
 * const broker = new StubBroker();
 * broker.addMiddleware(metrics);
 * const handler = metricsHandler(metrics);
 * // Deno.serve({ hostname: "127.0.0.1", port: 9191 }, handler);
 * const res = await handler(new Request("http://127.0.0.1:9191/metrics"));
 * console.log(res.status); // 200
 * ```
 * @module
 */
export { Metrics, READY_TIMESTAMP_OPTION } from "../middleware/metrics.ts";
export type { MetricsOptions } from "../middleware/metrics.ts";
export { currentProcessSpan, messagingSystem, Tracing } from "../middleware/tracing.ts";
export type { TracingOptions } from "../middleware/tracing.ts";
export {
  COUNTERS,
  Histogram,
  mergeSnapshots,
  MetricsAggregator,
  MetricSeries,
  MetricsRegistry,
  OVERFLOW_LABEL,
  RUN_TIME_BUCKETS_MS,
  SNAPSHOT_FORMAT,
  WAIT_TIME_BUCKETS_SECONDS,
} from "./registry.ts";
export type {
  CounterName,
  GaugeName,
  HistogramSnapshot,
  MergeOptions,
  MetricsAggregatorOptions,
  MetricsRegistryOptions,
  MetricsSnapshot,
  SeriesSnapshot,
} from "./registry.ts";
export { BrokerMetrics, brokerMetricsHandler, metricsHandler } from "./broker_metrics.ts";
export type { BrokerMetricsCollection, BrokerMetricsOptions } from "./broker_metrics.ts";
export { escapeLabelValue, PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";
export type {
  MetricsSource,
  PrometheusInput,
  PrometheusOptions,
  QueueMetrics,
  WorkerMetrics,
} from "./prometheus.ts";
export {
  extractTraceContext,
  formatTraceparent,
  injectTraceContext,
  isValidSpanContext,
  parseTraceparent,
  TRACE_CONTEXT_OPTION,
  TraceState,
} from "./trace_context.ts";
export type { TraceParent } from "./trace_context.ts";
export { SpanKind, SpanStatusCode } from "./otel.ts";
export type {
  Attributes,
  AttributeValue,
  Context,
  Link,
  OtelApi,
  Span,
  SpanContext,
  SpanOptions,
  Tracer,
  TraceStateLike,
} from "./otel.ts";
