// Benchmark: how soon the messages of a FileBroker consumer killed with SIGKILL run elsewhere.
//   deno run -A bench/file_redelivery.ts      |      bun bench/file_redelivery.ts
// Environment: BENCH_KILLS (default 100), BENCH_IN_FLIGHT (default 32), BENCH_LEASE (the
// consumers' leaseTimeout, default 30000: the lease cannot be what brings the messages back).
//
// Each round: 32 messages are sent; a consumer process (this script with --victim) claims them
// all and holds them without acking; this process waits in `receive()` on the same queue (it
// holds nothing, so it polls the victim's liveness lock); the victim is killed with SIGKILL. The
// figures are the time from just before `kill()` to the first redelivered message back in this
// process's hands, and to all 32. Each round uses a fresh directory.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker } from "../broker/file/broker.ts";
import { Message } from "../message.ts";
import { configureLogging } from "../util/log.ts";

const isBun = "Bun" in globalThis;
const env =
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ??
    {};
const KILLS = Number(env.BENCH_KILLS ?? 100);
const IN_FLIGHT = Number(env.BENCH_IN_FLIGHT ?? 32);
const LEASE = Number(env.BENCH_LEASE ?? 30_000);
const args = (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const scriptPath = new URL(import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (args[0] === "--victim") {
  // Claims every message of "q" and never settles them.
  const broker = new FileBroker({ dir: args[1], leaseTimeout: LEASE });
  broker.declareQueue("q");
  const c = broker.consume("q");
  let held = 0;
  while (held < IN_FLIGHT) held += (await c.receive(IN_FLIGHT - held, { timeout: 1000 })).length;
  fs.writeSync(1, new TextEncoder().encode(`held ${held}\n`));
  await new Promise(() => {});
}

// One WARNING per round ("a consumer ... is gone") is expected: keep the output to the figures.
configureLogging({ level: "ERROR" });

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

async function round(): Promise<{ first: number; all: number }> {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-redeliver-bench-`);
  const broker = new FileBroker({ dir, leaseTimeout: LEASE });
  try {
    broker.declareQueue("q");
    await Promise.all(
      Array.from(
        { length: IN_FLIGHT },
        (_, i) => broker.enqueue(new Message({ queueName: "q", actorName: "t", args: [i] })),
      ),
    );
    const victim = spawn(
      process.execPath,
      isBun ? [scriptPath, "--victim", dir] : ["run", "-A", scriptPath, "--victim", dir],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    victim.stdout!.on("data", (d) => out += d);
    const exited = new Promise((r) => victim.on("close", r));
    const deadline = Date.now() + 30_000;
    while (!out.includes(`held ${IN_FLIGHT}`)) {
      if (Date.now() > deadline) throw new Error("the victim never held its messages");
      await sleep(5);
    }
    const c = broker.consume("q");
    const waiting = c.receive(IN_FLIGHT, { timeout: LEASE * 2 });
    await sleep(50); // waiting, and polling the victim's lock, when the kill comes
    const t0 = performance.now();
    victim.kill("SIGKILL");
    const got = await waiting;
    const first = performance.now() - t0;
    while (got.length < IN_FLIGHT) got.push(...await c.receive(IN_FLIGHT, { timeout: LEASE * 2 }));
    const all = performance.now() - t0;
    for (const m of got) c.ack(m);
    await c.close();
    await exited;
    return { first, all };
  } finally {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const firsts: number[] = [], alls: number[] = [];
for (let i = 0; i < KILLS; i++) {
  const r = await round();
  firsts.push(r.first);
  alls.push(r.all);
}
const fmt = (xs: number[]) =>
  `p50 ${percentile(xs, 0.5).toFixed(1)} ms, p90 ${percentile(xs, 0.9).toFixed(1)} ms, ` +
  `p99 ${percentile(xs, 0.99).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
const runtime = isBun
  ? `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `Deno ${Deno.version.deno}`;
console.log(
  `${runtime}: ${KILLS} kills of a consumer holding ${IN_FLIGHT} messages (leaseTimeout ${LEASE} ms)`,
);
console.log(`  kill -> first message back: ${fmt(firsts)}`);
console.log(`  kill -> all ${IN_FLIGHT} back:       ${fmt(alls)}`);
