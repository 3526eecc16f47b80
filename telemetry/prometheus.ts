/**
 * Prometheus text exposition (format 0.0.4) of a metrics snapshot and the queues' depth, and
 * `metricsHandler`, a `(req: Request) => Promise<Response>` for Deno.serve, Bun.serve or Hono.
 *
 * Dramatiq's seven metrics keep their names, types, labels, help texts and buckets byte for byte
 * (so Grafana dashboard 3692 works); the `dramatis_*` metrics add what Dramatiq lacks.
 *
 * @example
 * ```ts
 * import { metricsHandler } from "./prometheus.ts";
 * import { Metrics } from "../middleware/metrics.ts";
 * const metrics = new Metrics(); // add it to the broker
 * const handler = metricsHandler(metrics);
 * const res = await handler(new Request("http://localhost/metrics"));
 * console.log(res.headers.get("content-type")); // text/plain; version=0.0.4; charset=utf-8
 * // Deno.serve({ hostname: "127.0.0.1", port: 9191 }, handler);
 * ```
 * @module
 */
import type { QueueStats } from "../broker/_broker_options.ts";
import { VERSION } from "../version.ts";
import { runtime, runtimeVersion } from "../runtime/process.ts";
import {
  type HistogramSnapshot,
  type MetricsSnapshot,
  RUN_TIME_BUCKETS_MS,
  type SeriesSnapshot,
  WAIT_TIME_BUCKETS_SECONDS,
} from "./registry.ts";

/**
 * The `Content-Type` of the text exposition format.
 *
 * @example
 * ```ts
 * import { PROMETHEUS_CONTENT_TYPE } from "./prometheus.ts";
 * console.log(PROMETHEUS_CONTENT_TYPE); // text/plain; version=0.0.4; charset=utf-8
 * ```
 */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * One queue's depth, as a broker knows it without scanning the queue.
 *
 * @example
 * ```ts
 * import type { QueueMetrics } from "./prometheus.ts";
 * const q: QueueMetrics = {
 *   queueName: "default", ready: 12, delayed: 3, inFlight: 2, dead: 0,
 *   oldestReadyTimestamp: Date.now() - 5_000,
 * };
 * ```
 */
export interface QueueMetrics extends QueueStats {
  /**
   * When the oldest ready message was enqueued (ms since the epoch), null when no message is
   * ready (age 0), undefined when the broker cannot tell cheaply (no sample). Exported as
   * `dramatis_queue_oldest_message_age_seconds`.
   */
  oldestReadyTimestamp?: number | null;
}

/**
 * One worker process as the registry of workers knows it.
 *
 * @example
 * ```ts
 * import type { WorkerMetrics } from "./prometheus.ts";
 * const w: WorkerMetrics = { workerId: "host-1:4242", slots: 16, busy: 3, lastSeen: Date.now() };
 * ```
 */
export interface WorkerMetrics {
  /** The worker's id (low cardinality: one per running process). */
  workerId: string;
  /** How many messages it can run at once (threads x concurrency). */
  slots: number;
  /** How many it runs now. */
  busy: number;
  /** When it last published its heartbeat (ms since the epoch). */
  lastSeen: number;
}

/**
 * What `metricsHandler` reads on every scrape. Each method must be cheap (no scan of a queue):
 * read counters the broker keeps, or the last snapshots the worker processes published.
 * A `Metrics` middleware, a `MetricsRegistry` and a `MetricsAggregator` are sources already (they
 * have `snapshot()`); a broker-backed source adds `queueStats()` and `workers()`.
 *
 * @example
 * ```ts
 * import type { MetricsSource } from "./prometheus.ts";
 * import { MetricsAggregator } from "./registry.ts";
 * const aggregator = new MetricsAggregator();
 * const source: MetricsSource = {
 *   snapshot: () => aggregator.snapshot(),
 *   queueStats: () => [{ queueName: "default", ready: 0, delayed: 0, inFlight: 0, dead: 0 }],
 * };
 * ```
 */
export interface MetricsSource {
  /** The merged snapshot of every isolate and process this endpoint speaks for. */
  snapshot(): MetricsSnapshot | Promise<MetricsSnapshot>;
  /** The depth of each queue. */
  queueStats?(): readonly QueueMetrics[] | Promise<readonly QueueMetrics[]>;
  /** The live workers. */
  workers?(): readonly WorkerMetrics[] | Promise<readonly WorkerMetrics[]>;
  /**
   * Everything at once (used instead of the three others when present): for a source that reads
   * snapshots, queues and workers in one pass, such as `BrokerMetrics`.
   */
  collect?(): PrometheusInput | Promise<PrometheusInput>;
}

/**
 * What `renderPrometheus` renders.
 *
 * @example
 * ```ts
 * import type { PrometheusInput } from "./prometheus.ts";
 * import { MetricsRegistry } from "./registry.ts";
 * const input: PrometheusInput = { metrics: new MetricsRegistry().snapshot(), queues: [] };
 * ```
 */
export interface PrometheusInput {
  /** The merged snapshot. */
  metrics: MetricsSnapshot;
  /** Queue depths. */
  queues?: readonly QueueMetrics[] | undefined;
  /** Live workers. */
  workers?: readonly WorkerMetrics[] | undefined;
}

/**
 * Options of `renderPrometheus` and `metricsHandler`.
 *
 * @example
 * ```ts
 * import type { PrometheusOptions } from "./prometheus.ts";
 * const o: PrometheusOptions = { buildInfo: false };
 * ```
 */
export interface PrometheusOptions {
  /** Export `dramatis_build_info` (default true). */
  buildInfo?: boolean;
  /** The current time in ms, for ages (default `Date.now()`). */
  now?: number;
}

/**
 * Escapes a label value for the text format: backslash, double quote and line feed.
 *
 * @example
 * ```ts
 * import { escapeLabelValue } from "./prometheus.ts";
 * console.log(escapeLabelValue('say "hi"\n')); // say \"hi\"\n
 * ```
 */
export function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value)
    ? value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
    : value;
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A sample value in Go's float syntax. */
function num(v: number): string {
  if (Number.isFinite(v)) return String(v);
  return Number.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
}

/** A bucket bound as Python's prometheus_client writes it (`5.0`, `0.005`), as Dramatiq exposes it. */
function le(bound: number): string {
  return Number.isInteger(bound) && Math.abs(bound) < 1e6 ? `${bound}.0` : String(bound);
}

const RUN_LE = RUN_TIME_BUCKETS_MS.map((b) => `,le="${le(b)}"`).concat(`,le="+Inf"`);
const WAIT_LE = WAIT_TIME_BUCKETS_SECONDS.map((b) => `,le="${le(b)}"`).concat(`,le="+Inf"`);

type Counter = (s: SeriesSnapshot) => number;

/** Dramatiq's counters: name, help, value. */
const DRAMATIQ_COUNTERS: [string, string, Counter][] = [
  ["dramatiq_messages_total", "The total number of messages processed.", (s) => s.processed],
  ["dramatiq_message_errors_total", "The total number of errored messages.", (s) => s.errors],
  ["dramatiq_message_retries_total", "The total number of retried messages.", (s) => s.retries],
  [
    "dramatiq_message_rejects_total",
    "The total number of dead-lettered messages.",
    (s) => s.rejects,
  ],
];

const OUTCOMES: [string, Counter][] = [
  ["success", (s) => s.succeeded],
  ["retry", (s) => s.retries],
  ["dead", (s) => s.rejects],
  ["skipped", (s) => s.skipped],
  ["requeued", (s) => s.requeued],
  ["failed", (s) => s.failed],
];

/** Appends lines to one string (one join at the end). */
class Out {
  parts: string[] = [];
  family(name: string, type: string, help: string): void {
    this.parts.push(`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`);
  }
  sample(name: string, labels: string, value: number): void {
    this.parts.push(labels ? `${name}{${labels}} ${num(value)}\n` : `${name} ${num(value)}\n`);
  }
  histogram(name: string, labels: string, h: HistogramSnapshot, les: string[]): void {
    let acc = 0;
    let lines = "";
    for (let i = 0; i < les.length; i++) {
      acc += h.counts[i]!;
      lines += `${name}_bucket{${labels}${les[i]}} ${acc}\n`;
    }
    this.parts.push(
      `${lines}${name}_count{${labels}} ${acc}\n${name}_sum{${labels}} ${num(h.sum)}\n`,
    );
  }
}

/**
 * Renders a snapshot (and queue and worker gauges) in the Prometheus text format 0.0.4, with HELP
 * and TYPE lines, escaped label values, and series sorted by queue then actor.
 *
 * Metrics: Dramatiq's `dramatiq_messages_total`, `dramatiq_message_errors_total`,
 * `dramatiq_message_retries_total`, `dramatiq_message_rejects_total` (counters),
 * `dramatiq_messages_inprogress`, `dramatiq_delayed_messages_inprogress` (gauges),
 * `dramatiq_message_duration_milliseconds` (histogram), all labelled `queue_name`, `actor_name`;
 * and `dramatis_messages_enqueued_total`, `dramatis_message_outcomes_total{outcome}`,
 * `dramatis_message_time_limits_total`, `dramatis_message_wait_seconds` (histogram),
 * `dramatis_queue_messages{queue_name, state}`, `dramatis_queue_oldest_message_age_seconds`,
 * `dramatis_worker_slots`, `dramatis_worker_slots_busy`, `dramatis_worker_heartbeat_age_seconds`
 * (per `worker_id`) and `dramatis_build_info`.
 *
 * @example
 * ```ts
 * import { renderPrometheus } from "./prometheus.ts";
 * import { MetricsRegistry } from "./registry.ts";
 * const r = new MetricsRegistry();
 * r.series("default", "add").processed = 3;
 * const text = renderPrometheus({ metrics: r.snapshot() });
 * console.log(text.includes('dramatiq_messages_total{queue_name="default",actor_name="add"} 3'));
 * // true
 * ```
 */
export function renderPrometheus(input: PrometheusInput, options: PrometheusOptions = {}): string {
  const now = options.now ?? Date.now();
  const series = [...input.metrics.series].sort((a, b) =>
    a.queue < b.queue
      ? -1
      : a.queue > b.queue
      ? 1
      : a.actor < b.actor
      ? -1
      : a.actor > b.actor
      ? 1
      : 0
  );
  const labels = series.map((s) =>
    `queue_name="${escapeLabelValue(s.queue)}",actor_name="${escapeLabelValue(s.actor)}"`
  );
  const out = new Out();
  const counter = (name: string, help: string, value: Counter, type = "counter") => {
    out.family(name, type, help);
    for (let i = 0; i < series.length; i++) out.sample(name, labels[i]!, value(series[i]!));
  };

  for (const [name, help, value] of DRAMATIQ_COUNTERS) counter(name, help, value);
  counter(
    "dramatiq_messages_inprogress",
    "The number of messages in progress.",
    (s) => s.inProgress,
    "gauge",
  );
  counter(
    "dramatiq_delayed_messages_inprogress",
    "The number of delayed messages in memory.",
    (s) => s.delayed,
    "gauge",
  );
  const duration = "dramatiq_message_duration_milliseconds";
  out.family(duration, "histogram", "The time spent processing messages.");
  for (let i = 0; i < series.length; i++) {
    out.histogram(duration, labels[i]!, series[i]!.runMs, RUN_LE);
  }

  counter(
    "dramatis_messages_enqueued_total",
    "Messages sent (new messages: not retries or delayed-message releases).",
    (s) => s.enqueued,
  );
  const outcomes = "dramatis_message_outcomes_total";
  out.family(
    outcomes,
    "counter",
    "Deliveries by outcome: success, retry, dead, skipped, requeued, failed.",
  );
  for (let i = 0; i < series.length; i++) {
    for (const [outcome, value] of OUTCOMES) {
      out.sample(outcomes, `${labels[i]},outcome="${outcome}"`, value(series[i]!));
    }
  }
  counter(
    "dramatis_message_time_limits_total",
    "Deliveries that failed with TimeLimitExceeded.",
    (s) => s.timeLimits,
  );
  const wait = "dramatis_message_wait_seconds";
  out.family(wait, "histogram", "Time from enqueue (or eta) to the start of the actor.");
  for (let i = 0; i < series.length; i++) {
    out.histogram(wait, labels[i]!, series[i]!.waitSeconds, WAIT_LE);
  }

  const queues = [...(input.queues ?? [])].sort((a, b) =>
    a.queueName < b.queueName ? -1 : a.queueName > b.queueName ? 1 : 0
  );
  out.family(
    "dramatis_queue_messages",
    "gauge",
    "Messages in each queue by state: ready, delayed, in_flight, dead.",
  );
  for (const q of queues) {
    const l = `queue_name="${escapeLabelValue(q.queueName)}"`;
    out.sample("dramatis_queue_messages", `${l},state="ready"`, q.ready);
    out.sample("dramatis_queue_messages", `${l},state="delayed"`, q.delayed);
    out.sample("dramatis_queue_messages", `${l},state="in_flight"`, q.inFlight);
    out.sample("dramatis_queue_messages", `${l},state="dead"`, q.dead);
  }
  const age = "dramatis_queue_oldest_message_age_seconds";
  out.family(age, "gauge", "Age of the oldest ready message of each queue (0 when none is ready).");
  for (const q of queues) {
    const t = q.oldestReadyTimestamp;
    if (t === undefined) continue; // the broker cannot tell cheaply
    const seconds = typeof t === "number" && q.ready > 0 ? Math.max(0, now - t) / 1000 : 0;
    out.sample(age, `queue_name="${escapeLabelValue(q.queueName)}"`, seconds);
  }

  if (input.workers) {
    const workers = [...input.workers].sort((a, b) =>
      a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0
    );
    const ids = workers.map((w) => `worker_id="${escapeLabelValue(w.workerId)}"`);
    out.family("dramatis_workers", "gauge", "Live worker processes (records not expired).");
    out.sample("dramatis_workers", "", workers.length);
    const gauge = (name: string, help: string, value: (w: WorkerMetrics) => number) => {
      out.family(name, "gauge", help);
      for (let i = 0; i < workers.length; i++) out.sample(name, ids[i]!, value(workers[i]!));
    };
    gauge("dramatis_worker_slots", "Messages each worker can run at once.", (w) => w.slots);
    gauge("dramatis_worker_slots_busy", "Messages each worker runs now.", (w) => w.busy);
    gauge(
      "dramatis_worker_heartbeat_age_seconds",
      "Seconds since each worker's last heartbeat.",
      (w) => Math.max(0, now - w.lastSeen) / 1000,
    );
  }

  if (options.buildInfo ?? true) {
    out.family("dramatis_build_info", "gauge", "dramatis version and runtime; the value is 1.");
    out.sample(
      "dramatis_build_info",
      `version="${escapeLabelValue(VERSION)}",runtime="${runtime}",runtime_version="${
        escapeLabelValue(runtimeVersion().split(" ")[1] ?? "unknown")
      }"`,
      1,
    );
  }
  return out.parts.join("");
}

/**
 * A request handler serving the metrics of `source` in the text format: for Deno.serve, Bun.serve,
 * Hono (`app.get("/metrics", (c) => handler(c.req.raw))`) or any server built on Web `Request`.
 * It answers GET and HEAD on any path (405 otherwise), and 500 with a one-line reason when the
 * source fails. Each scrape reads the source once: keep the source cheap.
 *
 * @example
 * ```ts
 * import { metricsHandler } from "./prometheus.ts";
 * import { MetricsRegistry } from "./registry.ts";
 * const handler = metricsHandler(new MetricsRegistry());
 * // Deno.serve({ hostname: "127.0.0.1", port: 9191 }, handler);
 * // Bun.serve({ hostname: "127.0.0.1", port: 9191, fetch: handler });
 * const res = await handler(new Request("http://127.0.0.1:9191/metrics"));
 * console.log(res.status); // 200
 * ```
 */
export function metricsHandler(
  source: MetricsSource,
  options: Omit<PrometheusOptions, "now"> = {},
): (req: Request) => Promise<Response> {
  return async (req: Request): Promise<Response> => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response(`Method ${req.method} not allowed: scrape metrics with GET.\n`, {
        status: 405,
        headers: { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" },
      });
    }
    let body: string;
    try {
      if (source.collect) {
        body = renderPrometheus(await source.collect(), options);
      } else {
        const [metrics, queues, workers] = await Promise.all([
          source.snapshot(),
          source.queueStats?.(),
          source.workers?.(),
        ]);
        body = renderPrometheus({ metrics, queues, workers }, options);
      }
    } catch (e) {
      const reason = (e instanceof Error ? e.message : String(e)).split("\n")[0];
      return new Response(`Could not collect the metrics: ${reason}\n`, {
        status: 500,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    return new Response(req.method === "HEAD" ? null : body, {
      headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
    });
  };
}
