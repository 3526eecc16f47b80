// The dashboard's response times over a real broker holding N messages (default 1,000,000):
// 5 queues, ~97% ready, 2% delayed, 1% dead, 50 running (received, not acked). Each figure is
// the median of RUNS requests through dashboardHandler(broker) (no socket), after one warm-up.
//   npx deno run -A bench/dashboard_broker.ts file [N]     (or: npx bun bench/dashboard_broker.ts redis [N])
// The file broker lives in a temp directory (durability "none" for the load; deleted after);
// Redis is the shared 127.0.0.1:6379 under a fresh namespace, deleted after.
// Targets (issue 17): search by id < 50 ms, by text < 1 s, overview < 100 ms.
// BENCH_BEFORE=/path/to/an/older/checkout: the same requests also through that checkout's broker
// and dashboard, opened on the same directory or namespace, alternating request by request
// (before, after, before, ...), so both sides see the same data, load and caches.
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import type { Broker } from "../broker/broker.ts";
import { FileBroker } from "../broker/file/broker.ts";
import { RedisBroker } from "../broker/redis/broker.ts";
import { RedisClient } from "../broker/redis/client.ts";
import { dashboardHandler } from "../dashboard/mod.ts";
import { Message } from "../message.ts";
import { median } from "./_common.ts";

const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const kind = argv[0] ?? "file";
const N = Number(argv[1] ?? 1_000_000);
const RUNS = 5;
const runtime = "Bun" in globalThis
  ? `bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`;

let broker: Broker;
let cleanup: () => Promise<void>;
if (kind === "file") {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-bench-dash-`);
  broker = new FileBroker({ dir, durability: "none" });
  cleanup = async () => {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
} else if (kind === "redis") {
  const namespace = `benchdash${crypto.randomUUID().slice(0, 8)}`;
  broker = new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace });
  cleanup = async () => {
    await broker.close();
    const redis = await RedisClient.connect("redis://127.0.0.1:6379/0");
    let cursor = "0";
    do {
      const [next, keys] = await redis.send<[string, string[]]>(
        ["SCAN", cursor, "MATCH", `${namespace}:*`, "COUNT", 1000],
      );
      if (keys.length) await redis.send(["UNLINK", ...keys]);
      cursor = next;
    } while (cursor !== "0");
    await redis.close();
  };
} else {
  throw new Error(`bench/dashboard_broker.ts: the broker is file or redis, got ${kind}.`);
}

const queues = ["default", "emails", "reports", "images", "billing"];
for (const q of queues) broker.declareQueue(q);
const t0 = performance.now();
let needleId = "", deadId = "", delayedId = "", runningId = "";
const CONCURRENCY = 256;
for (let i = 0; i < N; i += CONCURRENCY) {
  const batch: Promise<Message>[] = [];
  for (let j = i; j < Math.min(N, i + CONCURRENCY); j++) {
    const m = new Message({
      queueName: queues[j % queues.length]!,
      actorName: j % 2 ? "send_email" : "build_report",
      args: [`user${j % 50_000}@example.com`, j === N >> 1 ? "needle-42" : `Invoice ${j}`],
      options: { max_retries: 20 },
    });
    if (j === N >> 1) needleId = m.messageId;
    if (j > N >> 1 && j % 50 === 1 && !delayedId) delayedId = m.messageId;
    batch.push(broker.enqueue(m, j % 50 === 1 ? { delay: 3_600_000 } : {}));
  }
  await Promise.all(batch);
}
const loadMs = performance.now() - t0;
// 1% dead (received and nacked with an error), 50 running (received, held).
const dead = Math.floor(N / 100);
{
  const c = broker.consume("emails");
  let n = 0;
  while (n < dead) {
    const got = await c.receive(Math.min(500, dead - n), { timeout: 1_000 });
    if (got.length === 0) break;
    for (const m of got) {
      m.options.traceback = n % 3 ? "TimeoutError: upstream" : "SMTPError: 550";
      await c.nack(m);
      deadId ||= m.messageId;
      n++;
    }
  }
  await c.close();
}
const holder = broker.consume("reports");
runningId = (await holder.receive(50, { timeout: 1_000 }))[0]!.messageId;
const setupMs = performance.now() - t0;

type Handler = (req: Request) => Promise<Response>;
const sides: { name: string; handler: Handler; close(): Promise<void> }[] = [];
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
const beforeDir = env?.BENCH_BEFORE;
if (beforeDir) {
  const url = (f: string) => new URL(`file://${beforeDir}/${f}`).href;
  const dash = await import(url("dashboard/mod.ts"));
  let old: Broker;
  if (kind === "file") {
    const { FileBroker: Old } = await import(url("broker/file/broker.ts"));
    old = new Old({ dir: (broker as FileBroker).dir, durability: "none" });
  } else {
    const { RedisBroker: Old } = await import(url("broker/redis/broker.ts"));
    old = new Old({
      url: "redis://127.0.0.1:6379/0",
      namespace: (broker as RedisBroker).namespace,
    });
  }
  for (const q of queues) old.declareQueue(q);
  sides.push({ name: "before", handler: dash.dashboardHandler(old), close: () => old.close() });
}
sides.push({ name: "after", handler: dashboardHandler(broker), close: () => Promise.resolve() });

/** Each side's median of RUNS requests of `path`, alternating sides, after one first request. */
async function measure(path: string) {
  const out = sides.map(() => ({ times: [] as number[], first: 0, bytes: 0, status: 0 }));
  for (let i = 0; i <= RUNS; i++) {
    for (let k = 0; k < sides.length; k++) {
      const t = performance.now();
      const res = await sides[k]!.handler(new Request(`http://127.0.0.1:8181${path}`));
      const body = await res.text();
      const ms = performance.now() - t;
      const o = out[k]!;
      if (i > 0) o.times.push(ms); // the first (caches cold) is shown apart
      else o.first = ms;
      o.bytes = new TextEncoder().encode(body).length;
      o.status = res.status;
    }
  }
  return out.map((o) => ({
    ms: median(o.times),
    first: o.first,
    bytes: o.bytes,
    status: o.status,
  }));
}

console.log(
  `# bench/dashboard_broker.ts, ${kind} broker, ${runtime}, ${N.toLocaleString("en")} messages`,
);
console.log(
  `loaded in ${(loadMs / 1000).toFixed(1)} s (with dead letters: ${(setupMs / 1000).toFixed(1)} s)`,
);
const cases: [string, string][] = [
  ["overview (HTML)", "/"],
  ["live poll (JSON)", "/api/live"],
  ["search by id (ready)", `/search?q=${needleId}`],
  ["search by id (delayed)", `/search?q=${delayedId}`],
  ["search by id (running)", `/search?q=${runningId}`],
  ["search by id (dead)", `/search?q=${deadId}`],
  ["search by id (not found)", `/search?q=${crypto.randomUUID()}`],
  ["message page", `/messages/${needleId}`],
  ["search by text, 1 match (bounded scan)", "/search?q=needle-42"],
  ["search by text in errors", "/search?q=smtperror&in=error"],
  ["queue page, dead", "/queues/emails?state=dead"],
  ["queue page, ready", "/queues/default?state=ready"],
  ["search by actor + state", "/search?actor=send_email&state=dead"],
];
try {
  for (const [name, path] of cases) {
    const rs = await measure(path);
    for (let k = 0; k < rs.length; k++) {
      const r = rs[k]!;
      if (r.status !== 200) throw new Error(`${sides[k]!.name} ${path}: HTTP ${r.status}`);
      console.log(
        `${`${name} [${sides[k]!.name}]`.padEnd(48)} ${r.ms.toFixed(1).padStart(9)} ms  (first ${
          r.first.toFixed(1)
        } ms)   ${r.bytes} B`,
      );
    }
  }
} finally {
  await holder.close();
  for (const side of sides) await side.close();
  await cleanup();
}
