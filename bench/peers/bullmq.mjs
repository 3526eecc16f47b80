// BullMQ on Node, measured the same way as dramatis in bench/redis.ts (which runs this script).
//   node bench/peers/bullmq.mjs <redis port> add <n> <senders>   -> {"rate": jobs/s}
//   node bench/peers/bullmq.mjs <redis port> drain <n> <concurrency>
//   node bench/peers/bullmq.mjs <redis port> latency <n> <per second>  -> {"p50": ms, "p99": ms}
//   (internal) node bench/peers/bullmq.mjs <redis port> latency-worker <queue>
// Jobs are removed on completion (removeOnComplete), as a production setup would; every run
// uses a fresh queue name and deletes its keys afterwards.
import { createRequire } from "node:module";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

// Loaded with require so that `deno check bench/` does not try to resolve it (it lives in
// bench/peers/node_modules, installed with npm).
const { Queue, Worker } = createRequire(import.meta.url)("bullmq");

const [port, mode, a, b] = process.argv.slice(2);
const connection = {
  host: "127.0.0.1",
  port: Number(port),
  maxRetriesPerRequest: null,
};
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jobOptions = { removeOnComplete: true, removeOnFail: true };
const name = `bench-${process.pid}-${Date.now()}`;

function percentile(xs, p) {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

async function cleanup(queue) {
  await queue.obliterate({ force: true });
  await queue.close();
}

if (mode === "add") {
  const n = Number(a), senders = Number(b);
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  for (let i = 0; i < 500; i++) await queue.add("noop", {}, jobOptions); // warm-up
  let i = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: senders }, async () => {
    while (i++ < n) await queue.add("noop", {}, jobOptions);
  }));
  const rate = n / (performance.now() - t0) * 1000;
  await cleanup(queue);
  console.log(JSON.stringify({ rate }));
} else if (mode === "drain") {
  const n = Number(a), concurrency = Number(b);
  const queue = new Queue(name, { connection });
  for (let i = 0; i < n; i += 1000) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      jobs.push({ name: "noop", data: {}, opts: jobOptions });
    }
    await queue.addBulk(jobs);
  }
  let done = 0;
  let finish;
  const finished = new Promise((r) => finish = r);
  const t0 = performance.now();
  const worker = new Worker(name, async () => {}, { connection, concurrency });
  worker.on("completed", () => {
    if (++done === n) finish();
  });
  await finished;
  const rate = n / (performance.now() - t0) * 1000;
  await worker.close();
  await cleanup(queue);
  console.log(JSON.stringify({ rate }));
} else if (mode === "latency-worker") {
  let out = "";
  // deno-lint-ignore require-await
  const worker = new Worker(a, async (job) => {
    out += `${(now() - job.data.t).toFixed(4)}\n`;
  }, { connection, concurrency: 8 });
  await worker.waitUntilReady();
  const flusher = setInterval(() => {
    if (out) process.stdout.write(out);
    out = "";
  }, 20);
  process.stdout.write("ready\n");
  process.on("SIGTERM", async () => {
    clearInterval(flusher);
    if (out) process.stdout.write(out);
    await worker.close();
    process.exit(0);
  });
} else if (mode === "latency") {
  const n = Number(a), perSecond = Number(b);
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  const child = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), port, "latency-worker", name],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.on("data", (d) => out += d);
  const exited = new Promise((r) => child.on("close", r));
  while (!out.includes("ready\n")) await sleep(5);
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0.5) await sleep(wait);
    await queue.add("lat", { t: now() }, jobOptions);
  }
  const deadline = Date.now() + 30_000;
  const count = () => out.split("\n").filter((l) => /^-?\d/.test(l)).length;
  while (count() < n && Date.now() < deadline) await sleep(20);
  child.kill("SIGTERM");
  await exited;
  await cleanup(queue);
  const xs = out.split("\n").filter((l) => /^-?\d/.test(l)).map(Number);
  const kept = xs.slice(Math.floor(xs.length / 10)); // drop the warm-up tenth
  console.log(
    JSON.stringify({ p50: percentile(kept, 0.5), p99: percentile(kept, 0.99) }),
  );
} else {
  console.error("usage: node bullmq.mjs <port> add|drain|latency ...");
  process.exit(64);
}
if (mode !== "latency-worker") process.exit(0);
