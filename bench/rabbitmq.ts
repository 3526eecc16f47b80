// Benchmark: RabbitmqBroker and dramatis's AMQP client, with peers measured in the same run
// against the same RabbitMQ: Python Dramatiq 2.2 (its RabbitmqBroker, /usr/bin/python3 with
// python3-pika) and @cloudamqp/amqp-client (on Node, and on this runtime). Install the peers
// once: `cd bench/peers && npm install`. Run by hand, on an otherwise idle machine:
//   deno run -A bench/rabbitmq.ts      |      bun bench/rabbitmq.ts
// Environment: BENCH_RUNS (default 3), BENCH_PEERS=0 to skip the peers, BENCH_ONLY=seq,c64,
// drain,cli,latency,client to run only those, BENCH_N (messages per drain, default 50,000).
// Everything runs in a vhost of its own (made with rabbitmqctl, deleted at the end).
//
// Prints the median of several runs of:
//   - enqueue, 1 sender awaiting each send (confirms on; Python: confirm_delivery off and on)
//   - enqueue, 64 concurrent senders (confirms on)
//   - drain of N pre-filled no-op messages by one in-isolate Worker (concurrency 64), and by
//     `cli.ts worker -t 2` (Python: `dramatiq -p 2 -t 8`), from the first message run to the last
//   - send-to-start latency at 1,000 msg/s, producer and worker in separate processes
//   - the client alone: publish (64 in flight, confirms; persistent, then transient) and
//     consume (prefetch 1,000, an ack each), ours and amqp-client's on this runtime and Node.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { RabbitmqBroker } from "../broker/rabbitmq/broker.ts";
import { AmqpClient } from "../broker/amqp/client.ts";
import { actor } from "../actor.ts";
import { Message } from "../message.ts";
import { Worker } from "../worker/worker.ts";
import { dramatiqDir, pythonSkip } from "../tests/_python.ts";
import { tempVhost } from "../tests/_rabbitmq.ts";
import { median, now, paced, percentile, sleep, write } from "./_common.ts";

const isBun = "Bun" in globalThis;
const proc = (globalThis as unknown as {
  process: { env: Record<string, string | undefined>; argv: string[]; execPath: string };
}).process;
const env = proc.env;
const args = proc.argv.slice(2);
const RUNS = Number(env.BENCH_RUNS ?? 3);
const N = Number(env.BENCH_N ?? 50_000);
const scriptPath = fileURLToPath(import.meta.url);
const root = fileURLToPath(new URL("..", import.meta.url));
const runArgs = (file: string) => isBun ? [file] : ["run", "-A", file];

const exit = (code: number) =>
  (globalThis as unknown as { process: { exit(c: number): never } }).process.exit(code);
const queueName = () => `bench-${crypto.randomUUID().slice(0, 8)}`;
const BODY = JSON.stringify(new Message({ queueName: "default", actorName: "noop" }).asDict());

// ---------------------------------------------------------------------------------------------
// Child mode: the worker process of the latency measurement.

if (args[0] === "--latency-worker") {
  const [, url, queue, stop] = args;
  const broker = new RabbitmqBroker({ url });
  let out = "";
  actor(function lat(sentAt: number) {
    out += `${(now() - sentAt).toFixed(4)}\n`;
  }, { actorName: "lat", queueName: queue, broker, maxRetries: 0 });
  const worker = new Worker(broker, { queues: [queue], concurrency: 8 });
  await worker.start();
  const flusher = setInterval(() => {
    if (out) write(out);
    out = "";
  }, 20);
  write("ready\n");
  while (!fs.existsSync(stop)) await sleep(20);
  await worker.stop();
  clearInterval(flusher);
  if (out) write(out);
  await broker.close();
  write("stopped\n");
  exit(0);
}

// ---------------------------------------------------------------------------------------------
// dramatis

const vhost = await tempVhost();
const url = vhost.url;

async function enqueueRate(senders: number, n: number): Promise<number> {
  const broker = new RabbitmqBroker({ url });
  const q = queueName();
  const noop = actor(function noop() {}, { broker, queueName: q, maxRetries: 0 });
  for (let i = 0; i < 500; i++) await noop.send(); // warm-up: connection, declarations
  let i = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: senders }, async () => {
    while (i++ < n) await noop.send();
  }));
  const rate = n / (performance.now() - t0) * 1000;
  await broker.deleteQueues(q);
  await broker.close();
  return rate;
}

async function fill(q: string, n: number): Promise<void> {
  const broker = new RabbitmqBroker({ url });
  broker.declareQueue(q);
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    pending.push(broker.enqueue(new Message({ queueName: q, actorName: "noop" })));
    if (pending.length >= 2000) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await broker.close();
}

async function drainRate(n: number): Promise<number> {
  const q = queueName();
  await fill(q, n);
  const broker = new RabbitmqBroker({ url });
  actor(function noop() {}, { broker, queueName: q, maxRetries: 0 });
  const worker = new Worker(broker, { concurrency: 64, workerTimeout: 100 });
  const t0 = performance.now();
  await worker.start();
  await broker.join(q);
  const rate = n / (performance.now() - t0) * 1000;
  await worker.stop();
  await broker.deleteQueues(q);
  await broker.close();
  return rate;
}

/** Reads a BENCH_OUT file: counts (one per line) and `start <ms>` lines. */
function progress(out: string): { done: number; start: number } {
  if (!fs.existsSync(out)) return { done: 0, start: Infinity };
  let done = 0, start = Infinity;
  for (const l of fs.readFileSync(out, "utf8").split("\n")) {
    if (/^\d+$/.test(l)) done += Number(l);
    else if (l.startsWith("start ")) start = Math.min(start, Number(l.slice(6)));
  }
  return { done, start };
}

/** Runs `command` until the BENCH_OUT file counts `n`; the rate from the first run to the last. */
async function drainBy(command: string[], extraEnv: Record<string, string>, n: number) {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-bench-`);
  const out = `${dir}/out`;
  const child = spawn(command[0], command.slice(1), {
    env: { ...env, ...extraEnv, BENCH_OUT: out },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise((r) => child.on("exit", r));
  const deadline = Date.now() + 300_000;
  while (progress(out).done < n && Date.now() < deadline) await sleep(10);
  const end = Date.now();
  const { done, start } = progress(out);
  process.kill(child.pid!, "SIGTERM");
  await exited;
  fs.rmSync(dir, { recursive: true, force: true });
  return done / (end - start) * 1000;
}

async function cliDrainRate(n: number): Promise<number> {
  // bench/fixtures/e2e_tasks.ts: `noop` on the queue "default" of this run's vhost.
  await fill("default", n);
  const rate = await drainBy(
    [
      proc.execPath,
      ...runArgs(`${root}cli.ts`),
      "worker",
      `${root}bench/fixtures/e2e_tasks.ts`,
      "-t",
      "2",
    ],
    { DRAMATIS_BROKER: url },
    n,
  );
  const broker = new RabbitmqBroker({ url });
  await broker.deleteQueues("default");
  await broker.close();
  return rate;
}

async function latency(n: number): Promise<number[]> {
  const q = queueName();
  const stop = `${tmpdir()}/dramatis-bench-${q}.stop`;
  const broker = new RabbitmqBroker({ url });
  const lat = actor(function lat(_sentAt: number) {}, { actorName: "lat", queueName: q, broker });
  await broker.connect();
  const child = spawn(proc.execPath, [...runArgs(scriptPath), "--latency-worker", url, q, stop], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
  const exited = new Promise((r) => child.on("close", r));
  while (!out.includes("ready\n")) await sleep(5);
  await paced(n, 1000, (t) => lat.send(t));
  while (out.split("\n").filter((l) => /^-?\d/.test(l)).length < n) await sleep(20);
  fs.writeFileSync(stop, "");
  await exited;
  fs.rmSync(stop);
  await broker.deleteQueues(q);
  await broker.close();
  const xs = out.split("\n").filter((l) => /^-?\d/.test(l)).map(Number);
  return xs.slice(Math.floor(xs.length / 10)); // drop the warm-up tenth
}

/** Our client: publish `n` (`inflight` at once, confirms) to a fresh durable queue. */
async function clientPublish(n: number, inflight: number, persistent: boolean): Promise<number> {
  const client = await AmqpClient.connect(url);
  const ch = await client.channel({ confirm: true });
  const q = queueName();
  await ch.declareQueue(q, { durable: true });
  const properties = { deliveryMode: persistent ? 2 : 1 };
  const run = async (count: number) => {
    let i = 0;
    await Promise.all(Array.from({ length: inflight }, async () => {
      while (i++ < count) await ch.publish(q, BODY, { properties });
    }));
  };
  await run(2000);
  await ch.purgeQueue(q);
  const t0 = performance.now();
  await run(n);
  const rate = n / (performance.now() - t0) * 1000;
  await ch.deleteQueue(q);
  await client.close();
  return rate;
}

/** Our client: consume `n` pre-filled messages (prefetch, an ack each). */
async function clientConsume(n: number, prefetch: number): Promise<number> {
  const client = await AmqpClient.connect(url);
  const ch = await client.channel({ confirm: true });
  const q = queueName();
  await ch.declareQueue(q, { durable: true });
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    pending.push(ch.publish(q, BODY, { properties: { deliveryMode: 2 } }));
    if (pending.length >= 256) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const consumer = await client.channel({ prefetch });
  let got = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => done = r);
  const t0 = performance.now();
  await consumer.consume(q, (d) => {
    consumer.ack(d);
    if (++got === n) done();
  });
  await finished;
  const rate = n / (performance.now() - t0) * 1000;
  await consumer.close();
  await ch.deleteQueue(q);
  await client.close();
  return rate;
}

// ---------------------------------------------------------------------------------------------
// Peers

const withPeers = env.BENCH_PEERS !== "0";
const amqpClientPeer = `${root}bench/peers/amqp_client.mjs`;
const withAmqpClient = withPeers &&
  fs.existsSync(`${root}bench/peers/node_modules/@cloudamqp/amqp-client`);
const pythonMissing = withPeers ? await pythonSkip(["pika"]) : "BENCH_PEERS=0";

function json(command: string[], extraEnv: Record<string, string> = {}) {
  return new Promise<Record<string, number>>((resolve, reject) => {
    const child = spawn(command[0], command.slice(1), {
      env: { ...env, ...extraEnv },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout!.on("data", (d: Uint8Array) => out += new TextDecoder().decode(d));
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`${command.join(" ")} exited ${code}`));
      resolve(JSON.parse(out.trim().split("\n").at(-1)!));
    });
  });
}

const amqpClient = (runtime: "node" | "self", ...a: (string | number)[]) =>
  json([
    ...(runtime === "node" ? ["node"] : [proc.execPath, ...(isBun ? [] : ["run", "-A"])]),
    amqpClientPeer,
    url,
    ...a.map(String),
  ]).then((r) => r.rate);

async function pythonEnv(queue: string): Promise<Record<string, string>> {
  return {
    PYTHONPATH: `${await dramatiqDir()}:${root}bench/peers`,
    PYTHONDONTWRITEBYTECODE: "1",
    BENCH_URL: url,
    BENCH_QUEUE: queue,
  };
}

async function pythonEnqueue(n: number, confirm: boolean): Promise<number> {
  const q = queueName();
  const r = await json(
    [
      "/usr/bin/python3",
      `${root}bench/peers/dramatiq_bench.py`,
      "enqueue",
      String(n),
      confirm ? "1" : "0",
    ],
    await pythonEnv(q),
  );
  const broker = new RabbitmqBroker({ url });
  await broker.deleteQueues(q);
  await broker.close();
  return r.rate;
}

async function pythonDrain(n: number): Promise<number> {
  const q = queueName();
  await fill(q, n);
  const rate = await drainBy(
    ["/usr/bin/python3", "-m", "dramatiq", "dramatiq_bench", "-p", "2", "-t", "8"],
    await pythonEnv(q),
    n,
  );
  const broker = new RabbitmqBroker({ url });
  await broker.deleteQueues(q);
  await broker.close();
  return rate;
}

// ---------------------------------------------------------------------------------------------

const runtime = isBun
  ? `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `Deno ${Deno.version.deno}`;
const server = await AmqpClient.connect(url).then(async (c) => {
  const v = `${c.serverProperties.product} ${c.serverProperties.version}`;
  await c.close();
  return v;
});
console.log(`bench/rabbitmq.ts on ${runtime}, ${server}, median of ${RUNS} runs, N = ${N}`);
if (!withAmqpClient) console.log("(amqp-client skipped: run `npm install` in bench/peers)");
if (pythonMissing) console.log(`(Python Dramatiq skipped: ${pythonMissing})`);

const r: Record<string, number[]> = {};
const add = (k: string, v: number) => (r[k] ??= []).push(v);
const only = env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(",")) : undefined;
const wants = (what: string) => only === undefined || only.has(what);

try {
  await enqueueRate(64, 5_000); // warm-up
  for (let run = 0; run < RUNS; run++) {
    const line: string[] = [];
    const note = (k: string, label: string, v: number, unit = "/s") => {
      add(k, v);
      line.push(`${label} ${unit === "/s" ? Math.round(v) : v.toFixed(3)}${unit}`);
    };
    if (wants("seq")) {
      note("seq", "seq", await enqueueRate(1, 5_000));
      if (!pythonMissing) {
        note("pySeqOff", "py seq (confirms off)", await pythonEnqueue(20_000, false));
        note("pySeqOn", "py seq (confirms on)", await pythonEnqueue(3_000, true));
      }
    }
    if (wants("c64")) note("c64", "64 senders", await enqueueRate(64, 50_000));
    if (wants("drain")) note("drain", "drain", await drainRate(N));
    if (wants("cli")) {
      note("cli", "cli -t 2", await cliDrainRate(N));
      if (!pythonMissing) note("pyDrain", "py -p 2 -t 8", await pythonDrain(N));
    }
    if (wants("latency")) {
      const xs = await latency(3_000);
      note("p50", "p50", percentile(xs, 0.5), " ms");
      note("p99", "p99", percentile(xs, 0.99), " ms");
    }
    if (wants("client")) {
      note("pub", "client publish", await clientPublish(50_000, 64, true));
      note("pubT", "transient", await clientPublish(50_000, 64, false));
      note("con", "consume", await clientConsume(N, 1000));
      if (withAmqpClient) {
        note("acPub", "amqp-client publish", await amqpClient("self", "publish", 50_000, 64, 1));
        note("acPubT", "transient", await amqpClient("self", "publish", 50_000, 64, 0));
        note("acCon", "consume", await amqpClient("self", "consume", N, 1000));
        note(
          "nodePub",
          "node amqp-client publish",
          await amqpClient("node", "publish", 50_000, 64, 1),
        );
        note("nodePubT", "transient", await amqpClient("node", "publish", 50_000, 64, 0));
        note("nodeCon", "consume", await amqpClient("node", "consume", N, 1000));
      }
    }
    console.log(`run ${run + 1}: ${line.join(", ")}`);
  }
} finally {
  await vhost.delete();
}

const m = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)]));
const rate = (x: number | undefined) =>
  x === undefined ? "" : `${Math.round(x).toLocaleString("en")}/s`;
const ms = (x: number | undefined) => x === undefined ? "" : `${x.toFixed(3)} ms`;
const ratio = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? "" : `${(a / b).toFixed(2)}x`;
const rows: string[][] = [];
const row = (name: string, ours: string, target: string, peer: string, x: string) =>
  rows.push([name, ours, target, peer, x]);
if (wants("seq")) {
  row(
    "enqueue, 1 sender, confirms on",
    rate(m.seq),
    "",
    `Dramatiq confirms on ${rate(m.pySeqOn)}`,
    ratio(m.seq, m.pySeqOn),
  );
  row("", "", "", `Dramatiq confirms off ${rate(m.pySeqOff)}`, ratio(m.seq, m.pySeqOff));
}
if (wants("c64")) {
  row(
    "enqueue, 64 senders, confirms on",
    rate(m.c64),
    ">= 40,000/s",
    `Dramatiq confirms off ${rate(m.pySeqOff)}`,
    ratio(m.c64, m.pySeqOff),
  );
}
if (wants("drain")) row(`drain ${N}, 1 Worker c=64`, rate(m.drain), "", "", "");
if (wants("cli")) {
  row(
    `drain ${N}, cli.ts worker -t 2`,
    rate(m.cli),
    ">= 4x",
    `dramatiq -p 2 -t 8 ${rate(m.pyDrain)}`,
    ratio(m.cli, m.pyDrain),
  );
}
if (wants("latency")) {
  row("send-to-start p50, 1,000/s", ms(m.p50), "<= 1 ms", "", "");
  row("send-to-start p99, 1,000/s", ms(m.p99), "<= 5 ms", "", "");
}
if (wants("client")) {
  row(
    "client publish, 64 in flight, persistent",
    rate(m.pub),
    "within 10%",
    `amqp-client ${rate(m.acPub)} (Node ${rate(m.nodePub)})`,
    ratio(m.pub, m.acPub),
  );
  row(
    "client publish, 64 in flight, transient",
    rate(m.pubT),
    "within 10%",
    `amqp-client ${rate(m.acPubT)} (Node ${rate(m.nodePubT)})`,
    ratio(m.pubT, m.acPubT),
  );
  row(
    "client consume, prefetch 1,000",
    rate(m.con),
    "within 10%",
    `amqp-client ${rate(m.acCon)} (Node ${rate(m.nodeCon)})`,
    ratio(m.con, m.acCon),
  );
}
const header = ["measurement", runtime, "target", "peer, same run", "ours / peer"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i].length)));
const fmtLine = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
console.log();
console.log(fmtLine(header));
console.log(`| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`);
for (const x of rows) console.log(fmtLine(x));
exit(0);
