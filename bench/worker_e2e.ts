// Benchmark: the real CLI (`cli.ts worker`) draining the file broker.
//   deno run -A bench/worker_e2e.ts      (BENCH_RUNTIME=bun to run the worker on Bun)
// 1. 100,000 pre-filled no-op messages drained by `cli.ts worker -t 2` (messages/s).
// 2. The same with an actor awaiting a 1 ms timer, at `-c 256`.
// 3. Boot to first processed message: from spawning the CLI to the actor's first run.
// 4. Peak RSS of the whole worker (supervisor + worker process) during run 1.
// Median of RUNS runs each.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";

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
  writeFileSync(
    script,
    `import { ${actorName} } from ${JSON.stringify(tasks)};\n` +
      `const ps = [];\n` +
      `for (let i = 0; i < ${n}; i++) { ps.push(${actorName}.send()); if (ps.length >= 1000) { await Promise.all(ps); ps.length = 0; } }\n` +
      `await Promise.all(ps);\nawait ${actorName}.broker.close();\nprocess.exit(0);\n`,
  );
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

function rssKb(pid: number): number {
  let total = 0;
  const visit = (p: number) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim().split(/\s+/);
      for (const k of kids) if (k) visit(Number(k));
    } catch { /* exited */ }
  };
  visit(pid);
  return total;
}

async function drain(
  actorName: string,
  args: string[],
): Promise<{ rate: number; peakRssMb: number }> {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-e2e-"));
  try {
    await fill(dir, actorName, N);
    const t0 = performance.now();
    const p = spawn(exe, [...run(cli), "worker", tasks, ...args], {
      env: envFor(dir),
      stdio: ["ignore", "ignore", "inherit"],
    });
    let peak = 0;
    while (processed(dir) < N) {
      peak = Math.max(peak, rssKb(p.pid!));
      await new Promise((r) => setTimeout(r, 20));
    }
    const elapsed = performance.now() - t0;
    process.kill(p.pid!, "SIGINT");
    await new Promise((r) => p.on("exit", r));
    return { rate: N / elapsed * 1000, peakRssMb: peak / 1024 };
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
const noop: number[] = [], rss: number[] = [], sleepy: number[] = [], boot: number[] = [];
const only = process.env.BENCH_ONLY; // "noop" to run just the first measure
for (let i = 0; i < RUNS; i++) {
  const a = await drain("noop", (process.env.BENCH_ARGS ?? "-t 2").split(" "));
  noop.push(a.rate);
  rss.push(a.peakRssMb);
  if (only === "noop") continue;
  sleepy.push((await drain("sleepy", ["-t", "2", "-c", "256"])).rate);
  boot.push(await bootToFirst());
}
const f = (x: number) => Math.round(x).toLocaleString("en");
console.log(
  `no-op drain, -t 2:                 ${f(median(noop))} msg/s  (runs: ${noop.map(f).join(", ")})`,
);
console.log(
  `1 ms timer actor, -t 2 -c 256:     ${f(median(sleepy))} msg/s  (runs: ${
    sleepy.map(f).join(", ")
  })`,
);
console.log(`boot to first processed message:   ${f(median(boot))} ms  (runs: ${boot.join(", ")})`);
console.log(
  `peak RSS, -t 2 (all processes):    ${median(rss).toFixed(1)} MB  (runs: ${
    rss.map((x) => x.toFixed(1)).join(", ")
  })`,
);
