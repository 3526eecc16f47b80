// Benchmark: FileBroker, and Deno KV queues measured in the same run for comparison.
//   deno run -A bench/file_broker.ts      |      bun bench/file_broker.ts   (no KV part)
// Environment: BENCH_RUNS (default 5), BENCH_REOPEN_RUNS (default 3), BENCH_SKIP_REOPEN=1,
// BENCH_SKIP_KV=1 (no Deno KV part: for A/B runs of two checkouts, see bench/file_memory.ts).
//
// Prints the median of several runs of:
//   - enqueue, durability "always", 64 concurrent senders (each awaits its send)
//   - enqueue, durability "batch", one sender awaiting each send
//   - drain of 100,000 pre-filled no-op messages by one in-isolate Worker (concurrency 64)
//   - send-to-start latency at 1,000 msg/s, producer and worker in separate processes (and in
//     one process), durability "always"
//   - reopening a directory with 1,000,000 pending messages (until stats() answers)
// Deno KV: Deno.openKv(tmpfile) + enqueue / listenQueue, same measurements where they apply.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker } from "../broker/file/broker.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { median, now, paced, percentile, sleep, write } from "./_common.ts";

const isBun = "Bun" in globalThis;
const env =
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ??
    {};
const RUNS = Number(env.BENCH_RUNS ?? 5);
const REOPEN_RUNS = Number(env.BENCH_REOPEN_RUNS ?? 3);
const args = (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const scriptPath = new URL(import.meta.url).pathname;

function tempDir(): string {
  return fs.mkdtempSync(`${tmpdir()}/dramatis-bench-`);
}
function rm(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Child mode: the worker process of the latency measurement.

if (args[0] === "--latency-worker") {
  const dir = args[1];
  const broker = new FileBroker({ dir });
  let out = "";
  actor(function lat(sentAt: number) {
    out += `${(now() - sentAt).toFixed(4)}\n`;
  }, { actorName: "lat", queueName: "lat", broker, maxRetries: 0 });
  const worker = new Worker(broker, { queues: ["lat"], concurrency: 8, workerTimeout: 1000 });
  await worker.start();
  const flusher = setInterval(() => {
    if (out) write(out);
    out = "";
  }, 20);
  write("ready\n");
  while (!fs.existsSync(`${dir}.stop`)) await sleep(20);
  await worker.stop();
  clearInterval(flusher);
  if (out) write(out);
  await broker.close();
  write("stopped\n");
  (globalThis as unknown as { process: { exit(c: number): never } }).process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// FileBroker measurements

async function enqueueRate(durability: "always" | "batch", senders: number, n: number) {
  const dir = tempDir();
  const broker = new FileBroker({ dir, durability });
  const noop = actor(function noop() {}, { broker, maxRetries: 0 });
  let i = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: senders }, async () => {
    while (i++ < n) await noop.send();
  }));
  const rate = n / (performance.now() - t0) * 1000;
  await broker.close();
  rm(dir);
  return rate;
}

async function drainRate(n: number) {
  const dir = tempDir();
  const filler = new FileBroker({ dir, durability: "batch" });
  const fill = actor(function noop() {}, { broker: filler, maxRetries: 0 });
  for (let i = 0; i < n; i++) await fill.send();
  await filler.close();
  const t0 = performance.now();
  const broker = new FileBroker({ dir });
  actor(function noop() {}, { broker, maxRetries: 0 });
  const worker = new Worker(broker, { concurrency: 64, workerTimeout: 100 });
  await worker.start();
  await broker.join("default");
  const rate = n / (performance.now() - t0) * 1000;
  await worker.stop();
  await broker.close();
  rm(dir);
  return rate;
}

async function latencyCrossProcess(n: number) {
  const dir = tempDir();
  const broker = new FileBroker({ dir });
  const lat = actor(function lat(_sentAt: number) {}, {
    actorName: "lat",
    queueName: "lat",
    broker,
    maxRetries: 0,
  });
  const child = spawn(
    (globalThis as unknown as { process: { execPath: string } }).process.execPath,
    isBun
      ? [scriptPath, "--latency-worker", dir]
      : ["run", "-A", scriptPath, "--latency-worker", dir],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout!.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
  const exited = new Promise((r) => child.on("close", r));
  while (!out.includes("ready\n")) await sleep(5);
  await paced(n, 1000, (t) => lat.send(t));
  await broker.join("lat", { timeout: 30_000 });
  fs.writeFileSync(`${dir}.stop`, "");
  await exited;
  fs.rmSync(`${dir}.stop`);
  await broker.close();
  rm(dir);
  const xs = out.split("\n").filter((l) => /^-?\d/.test(l)).map(Number);
  return xs.slice(Math.floor(xs.length / 10)); // drop the warm-up tenth
}

async function latencyInProcess(n: number) {
  const dir = tempDir();
  const broker = new FileBroker({ dir });
  const xs: number[] = [];
  const lat = actor(function lat(sentAt: number) {
    xs.push(now() - sentAt);
  }, { actorName: "lat", queueName: "lat", broker, maxRetries: 0 });
  const worker = new Worker(broker, { queues: ["lat"], concurrency: 8, workerTimeout: 1000 });
  await worker.start();
  await paced(n, 1000, (t) => lat.send(t));
  await broker.join("lat", { timeout: 30_000 });
  await worker.stop();
  await broker.close();
  rm(dir);
  return xs.slice(Math.floor(xs.length / 10));
}

async function reopen(n: number) {
  const dir = tempDir();
  const filler = new FileBroker({ dir, durability: "none" });
  const fill = actor(function noop() {}, { broker: filler, maxRetries: 0 });
  for (let i = 0; i < n; i++) await fill.send();
  await filler.close();
  const bytes = fs.readdirSync(dir).reduce((s, f) => s + fs.statSync(`${dir}/${f}`).size, 0);
  const t0 = performance.now();
  const broker = new FileBroker({ dir });
  const stats = await broker.stats("default");
  const tStats = performance.now() - t0;
  broker.declareQueue("default");
  const c = broker.consume("default");
  const first = await c.receive(1, { timeout: 1000 });
  const tFirst = performance.now() - t0;
  if (stats.ready !== n || first.length !== 1) throw new Error(`reopen: ${stats.ready} ready`);
  c.requeue(first);
  c.close();
  await broker.close();
  rm(dir);
  return { tStats, tFirst, mb: bytes / 1e6 };
}

// ---------------------------------------------------------------------------------------------
// Deno KV measurements (Deno only)

type Kv = {
  enqueue(value: unknown): Promise<unknown>;
  listenQueue(handler: (value: unknown) => void | Promise<void>): Promise<void>;
  atomic(): { enqueue(value: unknown): unknown; commit(): Promise<unknown> };
  close(): void;
};
async function openKv(): Promise<{ kv: Kv; dir: string }> {
  const dir = tempDir();
  const kv = await (Deno as unknown as { openKv(p: string): Promise<Kv> }).openKv(
    `${dir}/kv.sqlite`,
  );
  return { kv, dir };
}

async function kvEnqueueRate(senders: number, n: number) {
  const { kv, dir } = await openKv();
  let i = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: senders }, async () => {
    while (i++ < n) await kv.enqueue({ t: 0 });
  }));
  const rate = n / (performance.now() - t0) * 1000;
  kv.close();
  rm(dir);
  return rate;
}

async function kvDrainRate(n: number) {
  const { kv, dir } = await openKv();
  for (let i = 0; i < n; i += 500) {
    const op = kv.atomic();
    for (let j = i; j < Math.min(n, i + 500); j++) op.enqueue({ t: 0 });
    await op.commit();
  }
  let seen = 0;
  const done = Promise.withResolvers<void>();
  const t0 = performance.now();
  const listening = kv.listenQueue(() => {
    if (++seen === n) done.resolve();
  });
  await done.promise;
  const rate = n / (performance.now() - t0) * 1000;
  kv.close();
  await listening.catch(() => {});
  rm(dir);
  return rate;
}

async function kvLatency(n: number) {
  const { kv, dir } = await openKv();
  const xs: number[] = [];
  const done = Promise.withResolvers<void>();
  const listening = kv.listenQueue((v) => {
    xs.push(now() - (v as { t: number }).t);
    if (xs.length === n) done.resolve();
  });
  await paced(n, 1000, (t) => kv.enqueue({ t }));
  await Promise.race([done.promise, sleep(30_000)]);
  kv.close();
  await listening.catch(() => {});
  rm(dir);
  return xs.slice(Math.floor(xs.length / 10));
}

// ---------------------------------------------------------------------------------------------

if (args[0] === "--kv") {
  write(JSON.stringify(await kvMeasurements()));
  (globalThis as unknown as { process: { exit(c: number): never } }).process.exit(0);
}

const runtime = isBun
  ? `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `Deno ${Deno.version.deno}`;
console.log(`bench/file_broker.ts on ${runtime}, median of ${RUNS} runs (reopen: ${REOPEN_RUNS})`);

const r: Record<string, number[]> = {};
const add = (k: string, v: number) => (r[k] ??= []).push(v);

await enqueueRate("always", 64, 20_000); // warm-up
for (let run = 0; run < RUNS; run++) {
  add("always64", await enqueueRate("always", 64, 100_000));
  add("batch1", await enqueueRate("batch", 1, 300_000));
  add("always1", await enqueueRate("always", 1, 5_000));
  add("drain", await drainRate(100_000));
  const cross = await latencyCrossProcess(2_000);
  add("crossP50", percentile(cross, 0.5));
  add("crossP99", percentile(cross, 0.99));
  const inproc = await latencyInProcess(2_000);
  add("inP50", percentile(inproc, 0.5));
  add("inP99", percentile(inproc, 0.99));
  console.log(
    `run ${run + 1}: always/64 ${r.always64.at(-1)!.toFixed(0)}/s, batch/1 ${
      r.batch1.at(-1)!.toFixed(0)
    }/s, drain ${r.drain.at(-1)!.toFixed(0)}/s, latency ${r.crossP50.at(-1)!.toFixed(3)}/${
      r.crossP99.at(-1)!.toFixed(3)
    } ms`,
  );
}
if (!env.BENCH_SKIP_REOPEN) {
  for (let run = 0; run < REOPEN_RUNS; run++) {
    const x = await reopen(1_000_000);
    add("reopenStats", x.tStats);
    add("reopenFirst", x.tFirst);
    add("reopenMb", x.mb);
    console.log(`reopen ${run + 1}: stats after ${x.tStats.toFixed(0)} ms (${x.mb.toFixed(0)} MB)`);
  }
}

/** The Deno KV measurements (run in a child with --unstable-kv when this process lacks it). */
async function kvMeasurements(): Promise<Record<string, number>> {
  const k: Record<string, number[]> = {};
  const kadd = (key: string, v: number) => (k[key] ??= []).push(v);
  for (let run = 0; run < Math.min(RUNS, 3); run++) {
    kadd("always64", await kvEnqueueRate(64, 5_000));
    kadd("single", await kvEnqueueRate(1, 2_000));
    kadd("drain", await kvDrainRate(3_000));
    const xs = await kvLatency(1_000);
    kadd("inP50", percentile(xs, 0.5));
    kadd("inP99", percentile(xs, 0.99));
    console.error(`kv run ${run + 1}: enqueue/64 ${k.always64.at(-1)!.toFixed(0)}/s`);
  }
  return Object.fromEntries(Object.entries(k).map(([key, v]) => [key, median(v)]));
}

let kv: Record<string, number> | undefined;
if (!isBun && !env.BENCH_SKIP_KV) {
  if ("openKv" in Deno) {
    kv = await kvMeasurements();
  } else {
    const child = spawn(Deno.execPath(), ["run", "-A", "--unstable-kv", scriptPath, "--kv"], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...env, BENCH_RUNS: String(RUNS) },
    });
    let out = "";
    child.stdout!.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
    await new Promise((resolve) => child.on("close", resolve));
    kv = JSON.parse(out);
  }
}

const m = Object.fromEntries(Object.entries(r).map(([key, v]) => [key, median(v)]));
const fmt = (x: number) => Math.round(x).toLocaleString("en");
const times = (x: number) => `${x >= 10 ? x.toFixed(0) : x.toFixed(1)}x`;
const ratio = (ours: number, theirs: number | undefined, lowerIsBetter = false) =>
  theirs === undefined
    ? ""
    : lowerIsBetter
    ? `${times(theirs / ours)} lower`
    : times(ours / theirs);
const rows: [string, string, string, string, string][] = [
  [
    "enqueue, always, 64 senders",
    `${fmt(m.always64)}/s`,
    ">= 100,000/s",
    kv ? `${fmt(kv.always64)}/s` : "",
    ratio(m.always64, kv?.always64),
  ],
  [
    "enqueue, batch, 1 sender",
    `${fmt(m.batch1)}/s`,
    ">= 300,000/s",
    kv ? `${fmt(kv.single)}/s (1 sender)` : "",
    ratio(m.batch1, kv?.single),
  ],
  [
    "enqueue, always, 1 sender",
    `${fmt(m.always1)}/s`,
    "",
    kv ? `${fmt(kv.single)}/s` : "",
    ratio(m.always1, kv?.single),
  ],
  [
    "drain 100k, Worker c=64",
    `${fmt(m.drain)}/s`,
    ">= 100,000/s",
    kv ? `${fmt(kv.drain)}/s` : "",
    ratio(m.drain, kv?.drain),
  ],
  ["latency p50, 2 processes", `${m.crossP50.toFixed(3)} ms`, "<= 0.4 ms", "", ""],
  ["latency p99, 2 processes", `${m.crossP99.toFixed(3)} ms`, "<= 3 ms", "", ""],
  [
    "latency p50, 1 process",
    `${m.inP50.toFixed(3)} ms`,
    "",
    kv ? `${kv.inP50.toFixed(1)} ms` : "",
    ratio(m.inP50, kv?.inP50, true),
  ],
  [
    "latency p99, 1 process",
    `${m.inP99.toFixed(3)} ms`,
    "",
    kv ? `${kv.inP99.toFixed(1)} ms` : "",
    ratio(m.inP99, kv?.inP99, true),
  ],
];
if (m.reopenStats !== undefined) {
  rows.push([
    `reopen 1M pending (${m.reopenMb.toFixed(0)} MB)`,
    `${(m.reopenStats / 1000).toFixed(2)} s`,
    "< 2 s",
    "",
    "",
  ]);
}
console.log("\n| measurement | FileBroker | target | Deno KV | ratio |\n|---|---|---|---|---|");
for (const row of rows) console.log(`| ${row.join(" | ")} |`);
