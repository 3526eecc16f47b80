// Benchmark: memory of a FileBroker consumer over a large backlog (issue 14).
//   deno run -A bench/file_memory.ts      |      bun bench/file_memory.ts
// Environment:
//   BENCH_ONLY       comma list of: open, delayed, big (default: open,delayed)
//   BENCH_N          pending messages of "open" (default 1,000,000)
//   BENCH_RUNS       runs of "open" per side (default 3), interleaved
//   BENCH_BASE       a checkout of another version (e.g. a `git archive` of main in /tmp): "open"
//                    and "delayed" measure it too, in the same run, alternating with this one
//   BENCH_DELAYED_N  delayed messages, etas spread over one minute (default 1,000,000)
//   BENCH_DELAYED_RUNS runs of "delayed" per side (default 1), interleaved
//   BENCH_DELAYED_LEAD ms from the start of the fill to the first eta (default 15 s + n / 20 ms:
//                    the fill and the child's open must be done by then)
//   BENCH_BIG_N      pending messages of "big" (default 10,000,000, about 2 GB on disk; filled
//                    once, copied for every run: twice that on disk)
//   BENCH_BIG_RUNS   runs of "big" per side (default 1), interleaved
//   BENCH_DURABILITY the consumer's durability in "delayed" and "big" (default "always"); on a
//                    version without `delaysUntilDue` the Worker moves each due delayed message
//                    to its queue with a send before it runs
//
// Each measurement is a child process of the same runtime that imports the FileBroker of its
// side, so that nothing the parent allocated (filling the directory) counts:
//   - open: RSS after opening a directory of BENCH_N pending messages (stats() answered, one
//     message received and requeued, then a full GC), minus the same over an empty directory;
//     the time until stats() answers.
//   - delayed: a Worker (concurrency 64) runs BENCH_DELAYED_N delayed messages whose etas are
//     spread over one minute: how late each starts (p50 / p99 / max), the CPU time of the
//     consumer process meanwhile, how late a 10 ms interval timer fired (p99 / max: event-loop
//     stalls), peak RSS, and the load average at the end.
//   - big: open BENCH_BIG_N pending, then drain them with a Worker (concurrency 64): open time,
//     RSS after open, peak RSS while draining, drain rate.
// Peak RSS is the kernel's high-water mark (VmHWM) where there is one, else a 100 ms sampler.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { loadavg as osLoad, tmpdir } from "node:os";
import { median, percentile, write } from "./_common.ts";

type Proc = {
  argv: string[];
  env: Record<string, string | undefined>;
  execPath: string;
  exit(c: number): never;
  memoryUsage(): { rss: number; heapUsed: number; heapTotal: number; arrayBuffers: number };
  cpuUsage(): { user: number; system: number };
};
const proc = (globalThis as unknown as { process: Proc }).process;
const isBun = "Bun" in globalThis;
const env = proc.env;
const args = proc.argv.slice(2);
const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const MB = 1024 * 1024;

function gc(): void {
  const g = globalThis as unknown as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

/** The peak RSS of this process (Linux: VmHWM), in MB; undefined elsewhere. */
function peakRss(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

function mem() {
  const m = proc.memoryUsage();
  return {
    rss: m.rss / MB,
    heap: m.heapUsed / MB,
    heapTotal: m.heapTotal / MB,
    arrayBuffers: m.arrayBuffers / MB,
  };
}

// ---------------------------------------------------------------------------------------------
// Child modes: `--child <mode> <root> <dir>`; print one JSON line.

interface BrokerModule {
  FileBroker: new (options: { dir: string; durability?: string }) => {
    stats(q: string): Promise<{ ready: number; delayed: number }>;
    declareQueue(q: string): void;
    consume(q: string): {
      receive(n: number, o: { timeout: number }): Promise<unknown[]>;
      requeue(m: unknown[]): void;
      close(): void;
    };
    join(q: string, o?: { timeout?: number }): Promise<void>;
    close(): Promise<void>;
  };
}

async function load(root: string) {
  const b = await import(`${root}/broker/file/broker.ts`) as BrokerModule;
  const a = await import(`${root}/actor.ts`);
  const w = await import(`${root}/worker/worker.ts`);
  return { FileBroker: b.FileBroker, actor: a.actor, Worker: w.Worker };
}

if (args[0] === "--child") {
  const [, mode, root, dir] = args as [string, string, string, string];
  const { FileBroker, actor, Worker } = await load(root);
  if (mode === "open") {
    const t0 = performance.now();
    const broker = new FileBroker({ dir });
    const stats = await broker.stats("default");
    const openMs = performance.now() - t0;
    broker.declareQueue("default");
    const c = broker.consume("default");
    const got = await c.receive(1, { timeout: stats.ready > 0 ? 1000 : 0 });
    c.requeue(got);
    c.close();
    for (let i = 0; i < 3; i++) gc();
    await new Promise((r) => setTimeout(r, 100));
    gc();
    write(`${JSON.stringify({ openMs, ready: stats.ready, ...mem() })}\n`);
    await broker.close();
    proc.exit(0);
  }
  // delayed and big: a Worker runs everything, RSS is sampled every 100 ms.
  const n = Number(args[4]);
  let peak = 0;
  const sampler = setInterval(() => peak = Math.max(peak, proc.memoryUsage().rss / MB), 100);
  const t0 = performance.now();
  const broker = new FileBroker({ dir, durability: env.BENCH_DURABILITY ?? "always" });
  const stats = await broker.stats("default");
  const openMs = performance.now() - t0;
  gc();
  const atOpen = mem();
  const late: number[] = [];
  let done = 0;
  actor(function job(eta: number) {
    if (eta > 0) late.push(Date.now() - eta);
    done++;
  }, { actorName: "job", broker, maxRetries: 0 });
  const worker = new Worker(broker, { concurrency: 64, workerTimeout: 100 });
  // Event-loop stalls: how late a 10 ms interval fires (a long synchronous step shows here).
  const lags: number[] = [];
  let tick = performance.now();
  const probe = setInterval(() => {
    const now = performance.now();
    lags.push(now - tick - 10);
    tick = now;
  }, 10);
  const cpu0 = proc.cpuUsage();
  const t1 = performance.now();
  await worker.start();
  while (done < n) await new Promise((r) => setTimeout(r, 50));
  const drainS = (performance.now() - t1) / 1000;
  const cpu1 = proc.cpuUsage();
  const cpuS = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / 1e6;
  const drained = done;
  await worker.stop();
  clearInterval(sampler);
  clearInterval(probe);
  // A draining Worker can starve timers (the sampler): the kernel's high-water mark is exact.
  peak = Math.max(peak, proc.memoryUsage().rss / MB, peakRss() ?? 0);
  const lateness = late.length > 0
    ? {
      p50: percentile(late, 0.5),
      p99: percentile(late, 0.99),
      max: late.reduce((a, b) => Math.max(a, b), -Infinity),
      early: late.filter((x) => x < -1).length,
    }
    : undefined;
  write(
    `${
      JSON.stringify({
        openMs,
        pending: stats.ready + stats.delayed,
        atOpen,
        peak,
        rate: drained / drainS,
        drained,
        lateness,
        cpuS,
        lag: { p99: percentile(lags, 0.99), max: lags.reduce((a, b) => Math.max(a, b), 0) },
      })
    }\n`,
  );
  await broker.close();
  proc.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Parent: fill directories (with this checkout), run the children.

function child(mode: string, root: string, dir: string, n = 0): Promise<Record<string, unknown>> {
  const script = `${here}/bench/file_memory.ts`;
  const argv = isBun
    ? [script, "--child", mode, root, dir, String(n)]
    : ["run", "-A", "--v8-flags=--expose-gc", script, "--child", mode, root, dir, String(n)];
  return new Promise((resolve, reject) => {
    const c = spawn(proc.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout!.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
    c.on("close", (code: number) => {
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (code !== 0 || !line) reject(new Error(`child ${mode} ${root} exited ${code}: ${out}`));
      else resolve(JSON.parse(line));
    });
  });
}

function loadavg(): string {
  return osLoad().map((x) => x.toFixed(1)).join(" ");
}

function tempDir(): string {
  return fs.mkdtempSync(`${tmpdir()}/dramatis-mem-`);
}
function du(dir: string): number {
  return fs.readdirSync(dir).reduce((s, f) => s + fs.statSync(`${dir}/${f}`).size, 0) / 1e6;
}

async function fill(dir: string, n: number, etaOf?: (i: number) => number): Promise<void> {
  const { FileBroker, actor } = await load(here);
  const broker = new FileBroker({ dir, durability: "none" });
  const job = actor(function job(_eta: number) {}, { actorName: "job", broker, maxRetries: 0 });
  for (let i = 0; i < n; i++) {
    if (etaOf) {
      const eta = etaOf(i);
      await job.sendWithOptions({ args: [eta], delay: Math.max(0, eta - Date.now()) });
    } else {
      await job.send(0);
    }
  }
  await broker.close();
}

const only = new Set((env.BENCH_ONLY ?? "open,delayed").split(","));
const base = env.BENCH_BASE;
const sides: [string, string][] = base ? [["before", base], ["after", here]] : [["this", here]];
const runtime = isBun
  ? `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `Deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`;
console.log(`# bench/file_memory.ts, ${runtime}, ${new Date().toISOString()}`);
const f1 = (x: number) => x.toFixed(1);

if (only.has("open")) {
  const n = Number(env.BENCH_N ?? 1_000_000);
  const runs = Number(env.BENCH_RUNS ?? 3);
  const empty = tempDir(), full = tempDir();
  await fill(full, n);
  console.log(`open: ${n.toLocaleString("en")} pending, ${f1(du(full))} MB on disk`);
  const res: Record<string, { d: number[]; ms: number[]; heap: number[]; ab: number[] }> = {};
  for (let run = 0; run < runs; run++) {
    for (const [name, root] of sides) {
      const e = await child("open", root, empty) as {
        rss: number;
        heap: number;
        heapTotal: number;
      };
      const f = await child("open", root, full) as {
        rss: number;
        heap: number;
        heapTotal: number;
        arrayBuffers: number;
        openMs: number;
        ready: number;
      };
      if (f.ready !== n) throw new Error(`${name}: ${f.ready} ready, not ${n}`);
      const r = res[name] ??= { d: [], ms: [], heap: [], ab: [] };
      r.d.push(f.rss - e.rss);
      r.ms.push(f.openMs);
      r.heap.push(f.heap - e.heap);
      r.ab.push(f.arrayBuffers);
      console.log(
        `  ${name} run ${run}: empty ${f1(e.rss)} MB, full ${f1(f.rss)} MB (+${
          f1(f.rss - e.rss)
        } MB; JS heap +${f1(f.heap - e.heap)} MB used, +${
          f1(f.heapTotal - e.heapTotal)
        } MB total, array buffers ${f1(f.arrayBuffers)} MB), open ${Math.round(f.openMs)} ms`,
      );
    }
  }
  for (const [name, r] of Object.entries(res)) {
    console.log(
      `| ${runtime} | ${name} | +${f1(median(r.d))} MB | +${f1(median(r.heap))} MB | ${
        f1(median(r.ab))
      } MB | ${(median(r.ms) / 1000).toFixed(2)} s |`,
    );
  }
  fs.rmSync(empty, { recursive: true, force: true });
  fs.rmSync(full, { recursive: true, force: true });
}

if (only.has("delayed")) {
  const n = Number(env.BENCH_DELAYED_N ?? 1_000_000);
  const runs = Number(env.BENCH_DELAYED_RUNS ?? 1);
  for (let run = 0; run < runs; run++) {
    for (const [name, root] of sides) await delayedRun(n, name, root);
  }
}

async function delayedRun(n: number, name: string, root: string): Promise<void> {
  const dir = tempDir();
  // Etas over one minute, starting once the directory is filled and the child has started.
  const t0 = Date.now();
  const lead = Number(env.BENCH_DELAYED_LEAD ?? 15_000 + n / 20);
  await fill(dir, n, (i) => t0 + lead + Math.floor((i * 60_000) / n));
  const slack = t0 + lead - Date.now();
  if (slack < 3000) console.log(`  (the fill ended ${slack} ms before the first eta)`);
  const r = await child("delayed", root, dir, n) as {
    openMs: number;
    atOpen: { rss: number };
    peak: number;
    lateness: { p50: number; p99: number; max: number; early: number };
    cpuS: number;
    lag: { p99: number; max: number };
  };
  console.log(
    `| ${runtime} | ${name} | ${
      n.toLocaleString("en")
    } delayed | late p50 ${r.lateness.p50} ms, p99 ${r.lateness.p99} ms, max ${r.lateness.max} ms, early ${r.lateness.early} | CPU ${
      f1(r.cpuS)
    } s | loop lag p99 ${Math.round(r.lag.p99)} ms, max ${Math.round(r.lag.max)} ms | RSS at open ${
      f1(r.atOpen.rss)
    } MB, peak ${f1(r.peak)} MB | open ${Math.round(r.openMs)} ms | load ${loadavg()} |`,
  );
  fs.rmSync(dir, { recursive: true, force: true });
}

if (only.has("big")) {
  const n = Number(env.BENCH_BIG_N ?? 10_000_000);
  // Filled once (with this checkout), copied for each run: the sides drain the same log.
  const template = tempDir();
  const t = performance.now();
  await fill(template, n);
  console.log(
    `big: ${n.toLocaleString("en")} pending, ${f1(du(template))} MB on disk, filled in ${
      Math.round((performance.now() - t) / 1000)
    } s`,
  );
  for (let run = 0; run < Number(env.BENCH_BIG_RUNS ?? 1); run++) {
    for (const [name, root] of sides) {
      const dir = tempDir();
      fs.cpSync(template, dir, { recursive: true });
      await big(name, root, dir);
    }
  }
  fs.rmSync(template, { recursive: true, force: true });
}

async function big(name: string, root: string, dir: string): Promise<void> {
  const n = Number(env.BENCH_BIG_N ?? 10_000_000);
  {
    const r = await child("big", root, dir, n) as {
      openMs: number;
      atOpen: { rss: number; heap: number; arrayBuffers: number };
      peak: number;
      rate: number;
      drained: number;
    };
    console.log(
      `| ${runtime} | ${name} | ${n.toLocaleString("en")} pending | open ${
        (r.openMs / 1000).toFixed(1)
      } s | RSS at open ${f1(r.atOpen.rss)} MB (heap ${f1(r.atOpen.heap)}, buffers ${
        f1(r.atOpen.arrayBuffers)
      }) | peak while draining ${f1(r.peak)} MB | ${
        Math.round(r.rate).toLocaleString("en")
      }/s over ${r.drained.toLocaleString("en")} |`,
    );
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
