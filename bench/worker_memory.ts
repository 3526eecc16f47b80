// Benchmark: where the memory of `cli.ts worker -t 2` goes, on the file broker.
//   deno run -A bench/worker_memory.ts      (BENCH_RUNTIME=bun to run the worker on Bun)
// Per run and variant:
// 1. Idle: the worker tree on an empty queue, 1.5 s (BENCH_IDLE_MS) after every role started:
//    RSS and PSS (/proc/PID/smaps_rollup) of each process, and each role's own heap figures.
// 2. Drain: 100,000 pre-filled no-op messages: peak RSS/PSS of the tree (sampled every 20 ms),
//    each role's peak heap, and the drain rate from the first message run.
// 3. Boot: from spawning the CLI to the first message run.
// Roles report their heaps themselves (DRAMATIS_MEMORY_REPORT, worker/_memory_report.ts):
// `supervisor`, `process-0` (the worker process's main thread, which holds the broker replica),
// `Worker-1`, `Worker-2` (Web Workers). Variants (BENCH_VARIANTS, JSON
// `[{"name": "...", "env": {...}, "flags": [...]}]`, flags go to the supervisor's runtime) run
// interleaved; medians of RUNS runs.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { fillScript, median, sleep } from "./_common.ts";
import type { MemoryReport } from "../worker/_memory_report.ts";

interface Variant {
  name: string;
  env?: Record<string, string>;
  flags?: string[];
  /** Another checkout whose cli.ts to run (a "before" side: `git worktree add /tmp/x REV`). */
  root?: string;
}

const N = Number(process.env.BENCH_N ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const runtime = process.env.BENCH_RUNTIME ?? ("Bun" in globalThis ? "bun" : "deno");
const exe = runtime === "bun" ? process.env.BUN ?? "bun" : process.env.DENO ?? "deno";
const variants: Variant[] = JSON.parse(process.env.BENCH_VARIANTS ?? '[{"name":"default"}]');
const root = fileURLToPath(new URL("..", import.meta.url));
const tasks = join(root, "bench", "fixtures", "e2e_tasks.ts");
const cli = join(root, "cli.ts");
/** Web Workers per process (BENCH_THREADS; the figures are for 2). */
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const ROLES = [
  "supervisor",
  "process-0",
  ...Array.from({ length: THREADS }, (_, i) => `Worker-${i + 1}`),
];
const MB = 1024 * 1024;
/** How long after every role has started the idle figures are read, in ms. */
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 1500);
/** BENCH_PHASES=idle: the idle figures alone. */
const PHASES = process.env.BENCH_PHASES ?? "idle,drain,boot";

function command(v: Variant, file: string): string[] {
  return runtime === "bun" ? [...(v.flags ?? []), file] : ["run", "-A", ...(v.flags ?? []), file];
}

function envFor(dir: string, v: Variant): Record<string, string> {
  return {
    ...process.env as Record<string, string>,
    DRAMATIS_BROKER: `file://${join(dir, "broker")}`,
    BENCH_OUT: join(dir, "out"),
    DRAMATIS_MEMORY_REPORT: join(dir, "memory.jsonl"),
    ...v.env,
  };
}

function fill(dir: string, actorName: string, n: number): Promise<void> {
  const script = join(dir, "fill.ts");
  writeFileSync(script, fillScript(tasks, actorName, n));
  const env = { ...envFor(dir, { name: "fill" }), DRAMATIS_MEMORY_REPORT: "" };
  return new Promise((resolve, reject) => {
    const p = spawn(exe, command({ name: "fill" }, script), { env, stdio: "inherit" });
    p.on("exit", (c) => c === 0 ? resolve() : reject(new Error(`fill exited ${c}`)));
  });
}

function read(dir: string, name: string): string {
  const f = join(dir, name);
  return existsSync(f) ? readFileSync(f, "utf8") : "";
}

function processed(dir: string): number {
  return read(dir, "out").split("\n").filter((l) => /^\d+$/.test(l))
    .reduce((a, l) => a + Number(l), 0);
}

/** The roles' reports; Web Workers named Worker-1, Worker-2 in the order they first reported. */
function reports(dir: string): MemoryReport[] {
  const rs = read(dir, "memory.jsonl").split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as MemoryReport);
  const names = new Map<string, string>();
  for (const r of rs) {
    if (r.role === "supervisor" || r.role.startsWith("process-")) continue;
    if (!names.has(r.role)) names.set(r.role, `Worker-${names.size + 1}`);
    r.role = names.get(r.role)!;
  }
  return rs;
}

/** RSS, PSS and anonymous (heap, not file-backed) bytes of `pid` and its descendants. */
function tree(pid: number): { pid: number; rss: number; pss: number; anon: number }[] {
  const out: { pid: number; rss: number; pss: number; anon: number }[] = [];
  const visit = (p: number) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, "utf8");
      out.push({
        pid: p,
        rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024,
        pss: Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024,
        anon: Number(/^Anonymous:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024,
      });
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/);
      for (const k of kids) if (k) visit(Number(k));
    } catch { /* exited */ }
  };
  visit(pid);
  return out;
}

/** CPU seconds (user + system) `pid` and its descendants used so far (Linux clock ticks of 10 ms). */
function cpu(pid: number): number {
  let total = 0;
  const visit = (p: number) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(f[11]) + Number(f[12])) / 100; // utime, stime
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/);
      for (const k of kids) if (k) visit(Number(k));
    } catch { /* exited */ }
  };
  visit(pid);
  return total;
}

const sum = (xs: { rss: number; pss: number }[], k: "rss" | "pss") =>
  xs.reduce((a, x) => a + x[k], 0);

function start(dir: string, v: Variant) {
  const t0 = Date.now();
  // The tasks module of the same checkout (it imports that checkout's mod.ts).
  const [entry, mine] = v.root
    ? [join(v.root, "cli.ts"), join(v.root, "bench", "fixtures", "e2e_tasks.ts")]
    : [cli, tasks];
  const p = spawn(exe, [...command(v, entry), "worker", mine, "-t", String(THREADS)], {
    env: envFor(dir, v),
    stdio: ["ignore", "ignore", "inherit"],
  });
  return { p, t0 };
}

async function stop(p: ReturnType<typeof spawn>): Promise<void> {
  const exited = new Promise((r) => p.on("exit", r));
  process.kill(p.pid!, "SIGINT");
  await exited;
}

type Sample = Record<string, number>;

async function idle(v: Variant): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-mem-"));
  try {
    const { p } = start(dir, v);
    while (!ROLES.every((r) => reports(dir).some((x) => x.role === r))) await sleep(20);
    await sleep(IDLE_MS);
    const procs = tree(p.pid!);
    const rs = reports(dir);
    const out: Sample = { rss: sum(procs, "rss"), pss: sum(procs, "pss") };
    // The supervisor is the first process; the worker process the second.
    out["supervisor rss"] = procs[0]?.rss ?? 0;
    out["supervisor pss"] = procs[0]?.pss ?? 0;
    out["process rss"] = procs[1]?.rss ?? 0;
    out["process pss"] = procs[1]?.pss ?? 0;
    out["supervisor anonymous"] = procs[0]?.anon ?? 0;
    out["process anonymous"] = procs[1]?.anon ?? 0;
    for (const r of ROLES) {
      const last = rs.filter((x) => x.role === r).at(-1)!;
      out[`${r} heapUsed`] = last.heapUsed;
      out[`${r} heapTotal`] = last.heapTotal;
      out[`${r} external`] = last.external;
    }
    await stop(p);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function drain(v: Variant): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-mem-"));
  try {
    await fill(dir, "noop", N);
    const { p } = start(dir, v);
    let rss = 0, pss = 0, sup = 0, proc = 0;
    while (processed(dir) < N) {
      const procs = tree(p.pid!);
      rss = Math.max(rss, sum(procs, "rss"));
      pss = Math.max(pss, sum(procs, "pss"));
      sup = Math.max(sup, procs[0]?.rss ?? 0);
      proc = Math.max(proc, procs[1]?.rss ?? 0);
      await sleep(20);
    }
    const t1 = Date.now();
    const cpuUsed = cpu(p.pid!);
    const first = Math.min(
      ...[...read(dir, "out").matchAll(/^start (\d+)$/gm)].map((m) => Number(m[1])),
    );
    const rs = reports(dir);
    await stop(p);
    const out: Sample = {
      "peak rss": rss,
      "peak pss": pss,
      "peak supervisor rss": sup,
      "peak process rss": proc,
      "rate": N / (t1 - first) * 1000,
      // Steadier than the rate on a shared host: what the drain cost the tree (boot included).
      "cpu": cpuUsed,
    };
    for (const r of ROLES) {
      const mine = rs.filter((x) => x.role === r);
      out[`${r} peak heapUsed`] = Math.max(...mine.map((x) => x.heapUsed));
      out[`${r} peak heapTotal`] = Math.max(...mine.map((x) => x.heapTotal));
      out[`${r} peak external`] = Math.max(...mine.map((x) => x.external));
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function boot(v: Variant): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-mem-"));
  try {
    await fill(dir, "first", 1);
    const { p, t0 } = start(dir, v);
    let at = 0;
    while (!at) {
      const m = /first (\d+)/.exec(read(dir, "out"));
      if (m) at = Number(m[1]);
      else await sleep(2);
    }
    await stop(p);
    return { boot: at - t0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `bench/worker_memory.ts: cli.ts worker -t ${THREADS} on ${runtime}, ${N} messages, median of ${RUNS} runs`,
);
const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
for (let i = 0; i < RUNS; i++) {
  for (const v of variants) {
    samples.get(v.name)!.push({
      ...await idle(v),
      ...(PHASES.includes("drain") ? await drain(v) : {}),
      ...(PHASES.includes("boot") ? await boot(v) : {}),
    });
  }
}
const show = (key: string, x: number) =>
  key === "rate"
    ? `${Math.round(x).toLocaleString("en")}/s`
    : key === "boot"
    ? `${Math.round(x)} ms`
    : key === "cpu"
    ? `${x.toFixed(2)} s`
    : `${(x / MB).toFixed(1)} MB`;
const keys = Object.keys(samples.get(variants[0]!.name)![0]!);
console.log(["measure".padEnd(30), ...variants.map((v) => v.name.padStart(14))].join(" "));
for (const k of keys) {
  const cells = variants.map((v) =>
    show(k, median(samples.get(v.name)!.map((s) => s[k]!))).padStart(14)
  );
  console.log([k.padEnd(30), ...cells].join(" "));
}
