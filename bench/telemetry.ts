// Benchmark: the cost of telemetry.
//   deno run -A bench/telemetry.ts      |      bun bench/telemetry.ts
// 1. A scrape with 100 actors x 8 processes: each process's registry snapshot, its trip through
//    JSON (as over IPC), the aggregator's merge, and the Prometheus rendering (target < 10 ms).
// 2. The middleware's cost per message: a StubBroker + Worker draining no-op messages with the
//    default stack, + Metrics, + Metrics + Tracing (a tracer that makes valid ids and records
//    nothing), interleaved runs, medians and ratios from the same run.
// 3. The Metrics hooks alone, as a Worker calls them for a no-op actor (beforeProcessMessage,
//    afterProcessMessage, afterAck) on fresh proxies: CPU time per message (process.cpuUsage).
import { actor, Message, MessageProxy, StubBroker, Worker } from "../mod.ts";
import process from "node:process";
import { defaultMiddleware } from "../middleware/_default.ts";
import {
  Metrics,
  MetricsAggregator,
  MetricsRegistry,
  renderPrometheus,
  Tracing,
} from "../telemetry/mod.ts";
import { constantTracer } from "../tests/_tracer.ts";

const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
const ACTORS = Number(env?.BENCH_ACTORS ?? 100);
const PROCESSES = Number(env?.BENCH_PROCESSES ?? 8);
const SCRAPES = Number(env?.BENCH_SCRAPES ?? 200);
const N = Number(env?.BENCH_N ?? 50_000);
const RUNS = Number(env?.BENCH_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const runtime = "Bun" in globalThis
  ? `bun ${(globalThis as { Bun?: { version: string } }).Bun?.version}`
  : `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`;
console.log(`bench/telemetry.ts on ${runtime}`);

// 1. Scrape

function busyRegistry(p: number): MetricsRegistry {
  const r = new MetricsRegistry();
  for (let a = 0; a < ACTORS; a++) {
    const s = r.series(`queue_${a % 10}`, `actor_${a}`);
    for (let i = 0; i < 200; i++) {
      s.processed++;
      s.succeeded++;
      s.runMs.observe((i * 37 + a * 11 + p) % 20_000);
      s.waitSeconds.observe(((i * 13 + a) % 5_000) / 100);
    }
    s.errors = a % 7;
    s.retries = a % 5;
    s.enqueued = 210;
    s.inProgress = a % 3;
  }
  return r;
}

const registries = Array.from({ length: PROCESSES }, (_, p) => busyRegistry(p));
const aggregator = new MetricsAggregator();
const queues = Array.from({ length: 10 }, (_, q) => ({
  queueName: `queue_${q}`,
  ready: 100 + q,
  delayed: q,
  inFlight: 8,
  dead: 1,
  oldestReadyTimestamp: Date.now() - 1_000 * q,
}));
const snapshotTimes: number[] = [], ipcTimes: number[] = [], scrapeTimes: number[] = [];
const renderTimes: number[] = [];
let bytes = 0, lines = 0;
for (let i = 0; i < SCRAPES + 20; i++) {
  const t0 = performance.now();
  const snaps = registries.map((r) => r.snapshot());
  const t1 = performance.now();
  const received = snaps.map((s) => JSON.parse(JSON.stringify(s)));
  const t2 = performance.now();
  for (const s of received) aggregator.update(s);
  const t3 = performance.now();
  const merged = aggregator.snapshot();
  const tm = performance.now();
  const text = renderPrometheus({ metrics: merged, queues });
  const t4 = performance.now();
  if (i < 20) continue; // warm-up
  snapshotTimes.push((t1 - t0) / PROCESSES);
  ipcTimes.push(t2 - t1);
  scrapeTimes.push(t4 - t3);
  renderTimes.push(t4 - tm);
  bytes = new TextEncoder().encode(text).length;
  lines = text.split("\n").length - 1;
}
console.log(
  `scrape, ${ACTORS} actors x ${PROCESSES} processes (${lines} lines, ${
    Math.round(bytes / 1024)
  } KB): merge + render median ${median(scrapeTimes).toFixed(2)} ms ` +
    `(render alone ${median(renderTimes).toFixed(2)} ms; target < 10 ms)`,
);
console.log(
  `  per process: snapshot ${median(snapshotTimes).toFixed(3)} ms; all ${PROCESSES} snapshots ` +
    `through JSON ${median(ipcTimes).toFixed(2)} ms`,
);

// 2. Middleware overhead

/** A tracer that makes valid span contexts and records nothing (the SDK's cheapest real case). */
const cheapTracer = constantTracer({
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  spanId: "00f067aa0ba902b7",
  traceFlags: 1,
});

type Variant = "default" | "metrics" | "metrics+tracing";

async function drain(variant: Variant): Promise<number> {
  const middleware = defaultMiddleware();
  if (variant !== "default") middleware.push(new Metrics());
  if (variant === "metrics+tracing") middleware.push(new Tracing({ tracer: cheapTracer }));
  const broker = new StubBroker({ middleware });
  const noop = actor(function noop() {}, { broker, maxRetries: 0 });
  for (let i = 0; i < N; i++) await noop.send();
  const worker = new Worker(broker, { concurrency: 8, workerTimeout: 100 });
  const t0 = performance.now();
  await worker.start();
  await broker.join("default");
  const t1 = performance.now();
  await worker.stop();
  return N / (t1 - t0) * 1000;
}

const variants: Variant[] = ["default", "metrics", "metrics+tracing"];
const rates = new Map<Variant, number[]>(variants.map((v) => [v, []]));
for (const v of variants) await drain(v); // warm-up
for (let r = 0; r < RUNS; r++) {
  for (const v of variants) rates.get(v)!.push(await drain(v));
}
const base = median(rates.get("default")!);
for (const v of variants) {
  const m = median(rates.get(v)!);
  console.log(
    `drain ${N} no-op messages, ${v}: ${Math.round(m).toLocaleString("en")}/s ` +
      `(${(1e6 / m).toFixed(2)} µs per message; ${(m / base).toFixed(3)}x the default stack)`,
  );
}

// 3. The hooks alone

function hookLoop(): number {
  const metrics = new Metrics();
  const broker = new StubBroker({ middleware: [] });
  const encoded = new Message({
    queueName: "default",
    actorName: "noop",
    args: [],
    kwargs: {},
    options: {},
  }).encode();
  const proxies = Array.from({ length: N }, () => MessageProxy.decode(encoded) as MessageProxy);
  const c0 = process.cpuUsage();
  for (const m of proxies) {
    metrics.beforeProcessMessage(broker, m);
    metrics.afterProcessMessage(broker, m, { result: undefined, error: undefined });
    metrics.afterAck(broker, m);
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / N * 1000;
}

const loops: number[] = [];
for (let r = 0; r < RUNS * 2 + 1; r++) loops.push(hookLoop());
console.log(
  `Metrics hooks alone (before/after process, after ack): ${median(loops).toFixed(0)} ns of ` +
    `CPU per message (median of ${loops.length})`,
);
