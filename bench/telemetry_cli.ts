// Benchmark: the cost of telemetry in the CLI, and of a scrape of a whole broker.
//   deno run -A bench/telemetry_cli.ts      (BENCH_RUNTIME=bun to run the workers on Bun)
// 1. N pre-filled no-op messages drained by `cli.ts worker -t 2` on the file broker, without and
//    with `--metrics 127.0.0.1:0` (the Metrics middleware in every Web Worker, its snapshot in
//    each heartbeat, the endpoint served by the supervisor and scraped every BENCH_SCRAPE_MS
//    (1000) during the drain) and with DRAMATIS_METRICS=1 alone (the middleware, no endpoint),
//    interleaved off, on, middleware, off, ...; ratios are medians of per-run ratios.
//    With BENCH_BASELINE=<dir> (a checkout of other code, e.g. `git archive main`), the same three
//    drains of that code run interleaved with these (this, baseline, this, ...), for before/after.
// 2. A scrape (`brokerMetricsHandler`, no cache) of a FileBroker whose registry holds 8 worker
//    records of 100 actors each: reading the records, summing, rendering. Median of SCRAPES.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { brokerMetricsHandler, FileBroker, MetricsRegistry, type WorkerRecord } from "../mod.ts";

const N = Number(process.env.BENCH_N ?? 50_000);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 3);
const SCRAPES = Number(process.env.BENCH_SCRAPES ?? 200);
/** How often the drain with --metrics is scraped, in ms (Prometheus' default is 15,000). */
const SCRAPE_EVERY = Number(process.env.BENCH_SCRAPE_MS ?? 1000);
const runtime = process.env.BENCH_RUNTIME ?? ("Bun" in globalThis ? "bun" : "deno");
const exe = runtime === "bun" ? process.env.BUN ?? "bun" : process.env.DENO ?? "deno";
const here = fileURLToPath(new URL("..", import.meta.url));
const baseline = process.env.BENCH_BASELINE;
const tasksOf = (root: string) => join(root, "bench", "fixtures", "e2e_tasks.ts");
const run = (file: string) => runtime === "bun" ? [file] : ["run", "-A", file];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function env(dir: string): Record<string, string> {
  return {
    ...process.env as Record<string, string>,
    DRAMATIS_BROKER: `file://${join(dir, "broker")}`,
    BENCH_OUT: join(dir, "out"),
  };
}

async function fill(dir: string, tasks: string): Promise<void> {
  const script = join(dir, "fill.ts");
  writeFileSync(
    script,
    `import { noop } from ${JSON.stringify(tasks)};\nconst ps = [];\n` +
      `for (let i = 0; i < ${N}; i++) { ps.push(noop.send()); if (ps.length >= 1000) { await Promise.all(ps); ps.length = 0; } }\n` +
      `await Promise.all(ps);\nawait noop.broker.close();\nprocess.exit(0);\n`,
  );
  const code = await new Promise((r) =>
    spawn(exe, run(script), { env: env(dir), stdio: "inherit" }).on("exit", r)
  );
  if (code !== 0) throw new Error(`fill exited ${code}`);
}

/** CPU time (user + system, ms) used so far by process `pid` and (by default) its descendants. */
function cpuMs(pid: number, descendants = true): number {
  let ticks = 0;
  const visit = (p: number) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
      if (!descendants) return;
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/);
      for (const k of kids) if (k) visit(Number(k));
    } catch { /* exited */ }
  };
  visit(pid);
  return ticks * 10; // USER_HZ is 100 on Linux
}

/**
 * The drain rate from the first message run to the last (messages/s), and the CPU time the
 * whole worker (supervisor, worker process, Web Workers) used from spawn to the last message.
 */
async function drain(
  root: string,
  metrics: boolean,
  middlewareOnly = false,
): Promise<{ rate: number; cpu: number; supervisor: number }> {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-telemetry-"));
  const tasks = tasksOf(root);
  try {
    await fill(dir, tasks);
    const serve = metrics && !middlewareOnly;
    const args = ["worker", tasks, "-t", "2", ...(serve ? ["--metrics", "127.0.0.1:0"] : [])];
    const p = spawn(exe, [...run(join(root, "cli.ts")), ...args], {
      env: { ...env(dir), ...(middlewareOnly ? { DRAMATIS_METRICS: "1" } : {}) },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    p.stderr!.on("data", (d) => log += d);
    const out = join(dir, "out");
    const text = () => existsSync(out) ? readFileSync(out, "utf8") : "";
    let done = 0, scrapes = 0, lastScrape = 0;
    while (done < N) {
      const t = text();
      done = t.split("\n").filter((l) => /^\d+$/.test(l)).reduce((a, l) => a + Number(l), 0);
      const url = /Serving metrics on (\S+)/.exec(log)?.[1];
      if (url && Date.now() - lastScrape >= SCRAPE_EVERY) {
        lastScrape = Date.now();
        await (await fetch(url)).text();
        scrapes++;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const end = Date.now();
    const cpu = cpuMs(p.pid!), supervisor = cpuMs(p.pid!, false);
    const start = Math.min(...[...text().matchAll(/^start (\d+)$/gm)].map((m) => Number(m[1])));
    process.kill(p.pid!, "SIGINT");
    await new Promise((r) => p.on("exit", r));
    if (serve && scrapes === 0) throw new Error(`never scraped:\n${log}`);
    return { rate: N / (end - start) * 1000, cpu, supervisor };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `bench/telemetry_cli.ts: workers on ${runtime}, ${N} messages, ${PAIRS} rounds` +
    (baseline ? `, baseline ${baseline}` : ""),
);
type Drain = { rate: number; cpu: number; supervisor: number };
const roots = baseline ? [here, baseline] : [here];
const results = roots.map(() => ({
  ratios: [] as number[],
  mwRatios: [] as number[],
  cpuRatios: [] as number[],
  mwCpuRatios: [] as number[],
  cpuOff: [] as number[],
  supervisor: [] as number[],
}));
const r = (x: Drain) => `${Math.round(x.rate)}/s ${x.cpu} ms CPU (supervisor ${x.supervisor})`;
for (let i = 0; i < PAIRS; i++) {
  const order = [...roots.entries()];
  if (i % 2 === 1) order.reverse(); // this first, then the baseline first, ...
  for (const [k, root] of order) {
    const a = await drain(root, false),
      b = await drain(root, true),
      c = await drain(root, true, true);
    const out = results[k]!;
    out.ratios.push(b.rate / a.rate);
    out.mwRatios.push(c.rate / a.rate);
    out.cpuRatios.push(b.cpu / a.cpu);
    out.mwCpuRatios.push(c.cpu / a.cpu);
    out.cpuOff.push(a.cpu);
    out.supervisor.push(b.supervisor);
    console.log(
      `  run ${i + 1}${baseline ? (k === 0 ? " (this)" : " (baseline)") : ""}: off ${r(a)}; ` +
        `--metrics ${r(b)}; DRAMATIS_METRICS=1 only ${r(c)}`,
    );
  }
}
const m3 = (xs: number[]) => median(xs).toFixed(3);
for (const [k, out] of PAIRS > 0 ? results.entries() : []) {
  console.log(
    `${baseline ? (k === 0 ? "this: " : "baseline: ") : ""}drain, -t 2 (medians of per-run ` +
      `ratios to off): --metrics rate ${m3(out.ratios)}, CPU ${m3(out.cpuRatios)}; middleware ` +
      `only rate ${m3(out.mwRatios)}, CPU ${m3(out.mwCpuRatios)}; off CPU ${
        median(out.cpuOff)
      } ms; ` +
      `supervisor CPU with --metrics ${median(out.supervisor)} ms`,
  );
}

// 2. Scrape of a broker with 8 processes' records of 100 actors each.
const dir = mkdtempSync(join(tmpdir(), "dramatis-scrape-"));
const broker = new FileBroker({ dir });
try {
  for (let p = 0; p < 8; p++) {
    const r = new MetricsRegistry();
    for (let a = 0; a < 100; a++) {
      const s = r.series(`queue_${a % 10}`, `actor_${a}`);
      for (let i = 0; i < 200; i++) {
        s.processed++;
        s.runMs.observe((i * 37 + a * 11 + p) % 20_000);
        s.waitSeconds.observe(((i * 13 + a) % 5_000) / 100);
      }
    }
    const record: WorkerRecord = {
      workerId: `host:${1000 + p}`,
      host: "host",
      pid: 1000 + p,
      runtime,
      version: "bench",
      queues: Array.from({ length: 10 }, (_, q) => `queue_${q}`),
      concurrency: 16,
      startedAt: Date.now(),
      heartbeatAt: Date.now(),
      running: [],
      metrics: r.snapshot(),
    };
    await broker.publishWorker(record, 600_000);
  }
  for (let q = 0; q < 10; q++) broker.declareQueue(`queue_${q}`);
  const handler = brokerMetricsHandler(broker, { cacheTtl: 0 });
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < SCRAPES; i++) {
    const t0 = performance.now();
    bytes = (await (await handler(new Request("http://x/metrics"))).text()).length;
    times.push(performance.now() - t0);
  }
  console.log(
    `scrape, 8 records x 100 actors (${Math.round(bytes / 1024)} KB): median ` +
      `${median(times).toFixed(2)} ms, p90 ${
        [...times].sort((a, b) => a - b)[Math.floor(SCRAPES * 0.9)]!.toFixed(2)
      } ms`,
  );
} finally {
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
}
