// Benchmark: the real CLI (`cli.ts worker`) draining the file broker.
//   deno run -A bench/worker_e2e.ts      (BENCH_RUNTIME=bun to run the worker on Bun)
// 1. 100,000 pre-filled no-op messages drained by `cli.ts worker -t 2` (messages/s), counted
//    from spawning the CLI (boot included) and from the first message run (the drain alone).
// 2. The same with an actor awaiting a 1 ms timer, at `-c 256`.
// 3. Boot to first processed message: from spawning the CLI to the actor's first run.
// 4. Peak memory of the whole worker (supervisor + worker process) during run 1: the sum of
//    RSS, and the sum of PSS (which counts pages the processes share, such as the runtime's
//    code, once instead of once per process).
// Median of RUNS runs each.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { fillScript } from "./_common.ts";

const N = Number(process.env.BENCH_N ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const runtime = process.env.BENCH_RUNTIME ?? ("Bun" in globalThis ? "bun" : "deno");
const exe = runtime === "bun" ? process.env.BUN ?? "bun" : process.env.DENO ?? "deno";
const root = fileURLToPath(new URL("..", import.meta.url));
const tasks = join(root, "bench", "fixtures", "e2e_tasks.ts");
const cli = join(root, "cli.ts");
const run = (file: string) => runtime === "bun" ? [file] : ["run", "-A", file];

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

function fill(dir: string, actorName: string, n: number): Promise<void> {
  const script = join(dir, "fill.ts");
  writeFileSync(script, fillScript(tasks, actorName, n));
  return new Promise((resolve, reject) => {
    const p = spawn(exe, run(script), { env: envFor(dir), stdio: "inherit" });
    p.on("exit", (c) => c === 0 ? resolve() : reject(new Error(`fill exited ${c}`)));
  });
}

function envFor(dir: string): Record<string, string> {
  return {
    ...process.env as Record<string, string>,
    DRAMATIS_BROKER: `file://${join(dir, "broker")}`,
    BENCH_OUT: join(dir, "out"),
  };
}

function processed(dir: string): number {
  const f = join(dir, "out");
  if (!existsSync(f)) return 0;
  return readFileSync(f, "utf8").split("\n").filter((l) => /^\d+$/.test(l))
    .reduce((a, l) => a + Number(l), 0);
}

function firstRun(dir: string): number {
  const f = join(dir, "out");
  const starts = existsSync(f)
    ? [...readFileSync(f, "utf8").matchAll(/^start (\d+)$/gm)].map((m) => Number(m[1]))
    : [];
  return starts.length ? Math.min(...starts) : NaN;
}

function memKb(pid: number): { rss: number; pss: number } {
  let rss = 0, pss = 0;
  const visit = (p: number) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, "utf8");
      pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/);
      for (const k of kids) if (k) visit(Number(k));
    } catch { /* exited */ }
  };
  visit(pid);
  return { rss, pss };
}

async function drain(
  actorName: string,
  args: string[],
): Promise<{ rate: number; drainRate: number; peakRssMb: number; peakPssMb: number }> {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-e2e-"));
  try {
    await fill(dir, actorName, N);
    const t0 = Date.now();
    const p = spawn(exe, [...run(cli), "worker", tasks, ...args], {
      env: envFor(dir),
      stdio: ["ignore", "ignore", "inherit"],
    });
    let peakRss = 0, peakPss = 0;
    while (processed(dir) < N) {
      const m = memKb(p.pid!);
      peakRss = Math.max(peakRss, m.rss);
      peakPss = Math.max(peakPss, m.pss);
      await new Promise((r) => setTimeout(r, 20));
    }
    const t1 = Date.now();
    process.kill(p.pid!, "SIGINT");
    await new Promise((r) => p.on("exit", r));
    return {
      rate: N / (t1 - t0) * 1000,
      drainRate: N / (t1 - firstRun(dir)) * 1000,
      peakRssMb: peakRss / 1024,
      peakPssMb: peakPss / 1024,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bootToFirst(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-e2e-"));
  try {
    await fill(dir, "first", 1);
    const t0 = Date.now();
    const p = spawn(exe, [...run(cli), "worker", tasks, "-t", "2"], {
      env: envFor(dir),
      stdio: ["ignore", "ignore", "inherit"],
    });
    let at = 0;
    while (!at) {
      const f = join(dir, "out");
      const m = existsSync(f) ? /first (\d+)/.exec(readFileSync(f, "utf8")) : null;
      if (m) at = Number(m[1]);
      else await new Promise((r) => setTimeout(r, 2));
    }
    process.kill(p.pid!, "SIGINT");
    await new Promise((r) => p.on("exit", r));
    return at - t0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`bench/worker_e2e.ts: worker on ${runtime}, ${N} messages, median of ${RUNS} runs`);
const noop: number[] = [], noopDrain: number[] = [], rss: number[] = [], pss: number[] = [];
const sleepy: number[] = [], sleepyDrain: number[] = [], boot: number[] = [];
const only = process.env.BENCH_ONLY; // "noop" to run just the first measure
for (let i = 0; i < RUNS; i++) {
  const a = await drain("noop", (process.env.BENCH_ARGS ?? "-t 2").split(" "));
  noop.push(a.rate);
  noopDrain.push(a.drainRate);
  rss.push(a.peakRssMb);
  pss.push(a.peakPssMb);
  if (only === "noop") continue;
  const s = await drain("sleepy", ["-t", "2", "-c", "256"]);
  sleepy.push(s.rate);
  sleepyDrain.push(s.drainRate);
  boot.push(await bootToFirst());
}
const f = (x: number) => Math.round(x).toLocaleString("en");
const line = (name: string, xs: number[], unit: string, dec = 0) =>
  console.log(
    `${name.padEnd(44)} ${dec ? median(xs).toFixed(dec) : f(median(xs))} ${unit}  (runs: ${
      xs.map((x) => dec ? x.toFixed(dec) : f(x)).join(", ")
    })`,
  );
line("no-op, -t 2, from spawn:", noop, "msg/s");
line("no-op, -t 2, from the first message:", noopDrain, "msg/s");
if (sleepy.length) {
  line("1 ms timer actor, -t 2 -c 256, from spawn:", sleepy, "msg/s");
  line("1 ms timer actor, from the first message:", sleepyDrain, "msg/s");
}
if (boot.length) line("boot to first processed message:", boot, "ms");
line("peak RSS, -t 2 (sum over processes):", rss, "MB", 1);
line("peak PSS, -t 2 (sum over processes):", pss, "MB", 1);
