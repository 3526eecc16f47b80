// Benchmark of the Redis client (broker/redis/client.ts) against a local redis-server.
//
//   deno run -A bench/redis_client.ts [redis://127.0.0.1:6379] [--raw]
//   bun bench/redis_client.ts [redis://127.0.0.1:6379] [--raw]
//
// Measures pipelined SET throughput (commands/s) at several pipeline depths, and sequential
// round-trip latency (p50/p99) of GET and of a cached script (EVALSHA). With --raw it also
// measures the bare transports (node:net, and Deno.connect on Deno) with pre-encoded commands,
// to show what the client costs on top of the socket.
import net from "node:net";
import { RedisClient } from "../broker/redis/client.ts";
import { deleteKeys } from "../tests/_redis_server.ts";

const args = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
const url = args.find((a) => a.startsWith("redis")) ?? "redis://127.0.0.1:6379";
const raw = args.includes("--raw");
const runtime = typeof Deno !== "undefined"
  ? `Deno ${Deno.version.deno}`
  : `Bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`;
const key = `dramatis-bench:${crypto.randomUUID()}`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

async function pipelined(redis: RedisClient, total: number, depth: number): Promise<number> {
  const value = "x".repeat(100);
  const started = performance.now();
  for (let done = 0; done < total; done += depth) {
    const batch = [];
    for (let i = 0; i < depth; i++) batch.push(redis.send(["SET", `${key}:${i % 1000}`, value]));
    await Promise.all(batch);
  }
  return total / ((performance.now() - started) / 1000);
}

/** `concurrency` independent sequential loops, like workers sharing one connection. */
async function concurrent(redis: RedisClient, total: number, concurrency: number) {
  const value = "x".repeat(100);
  const started = performance.now();
  const per = total / concurrency;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let i = 0; i < per; i++) await redis.send(["SET", `${key}:${w}`, value]);
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

async function latency(run: () => Promise<unknown>, n: number): Promise<[number, number]> {
  for (let i = 0; i < 1000; i++) await run(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await run();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return [percentile(samples, 0.5) * 1000, percentile(samples, 0.99) * 1000];
}

const redis = await RedisClient.connect(url);
console.log(`${runtime}, ${url}, RESP${redis.protocol}`);
await pipelined(redis, 50_000, 1000); // warm-up

for (const depth of [100, 1000, 10_000]) {
  const rates = [];
  for (let i = 0; i < 3; i++) rates.push(await pipelined(redis, 300_000, depth));
  console.log(`pipelined SET, ${depth} in flight: ${fmt(Math.max(...rates))} commands/s`);
}
for (const concurrency of [1, 50]) {
  const rate = await concurrent(redis, concurrency === 1 ? 20_000 : 200_000, concurrency);
  console.log(`${concurrency} sequential loop(s) on one connection: ${fmt(rate)} commands/s`);
}
await redis.send(["SET", key, "value"]);
const [p50, p99] = await latency(() => redis.send(["GET", key]), 20_000);
console.log(`sequential GET round trip: p50 ${p50.toFixed(0)} µs, p99 ${p99.toFixed(0)} µs`);
const script = redis.script("return redis.call('GET', KEYS[1])");
const [s50, s99] = await latency(() => script.run([key]), 20_000);
console.log(`sequential EVALSHA round trip: p50 ${s50.toFixed(0)} µs, p99 ${s99.toFixed(0)} µs`);

if (raw) {
  const { hostname, port } = new URL(url);
  const set = new TextEncoder().encode(
    `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$1\r\nv\r\n`,
  );
  const batchOf = (n: number) => {
    const out = new Uint8Array(set.length * n);
    for (let i = 0; i < n; i++) out.set(set, i * set.length);
    return out;
  };
  /** Counts replies (one "+OK\r\n" each) on a raw socket; resolves after `n` of them. */
  const rawBench = async (
    label: string,
    write: (b: Uint8Array) => Promise<void> | void,
    onReplies: (cb: (count: number) => void) => void,
  ) => {
    let seen = 0;
    let waiter: (() => void) | undefined;
    let want = 0;
    onReplies((count) => {
      seen += count;
      if (seen >= want && waiter) waiter();
    });
    const until = (n: number) =>
      new Promise<void>((resolve) => {
        want = n;
        waiter = resolve;
        if (seen >= n) resolve();
      });
    const batch = batchOf(1000);
    const started = performance.now();
    for (let i = 0; i < 300; i++) {
      await write(batch);
      await until((i + 1) * 1000);
    }
    const rate = 300_000 / ((performance.now() - started) / 1000);
    const one = batchOf(1);
    const samples: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const t = performance.now();
      await write(one);
      await until(300_000 + i + 1);
      samples.push(performance.now() - t);
    }
    samples.sort((a, b) => a - b);
    console.log(
      `raw ${label}: SET ${fmt(rate)} commands/s (1000 in flight); round trip p50 ` +
        `${(percentile(samples, 0.5) * 1000).toFixed(0)} µs, p99 ` +
        `${(percentile(samples, 0.99) * 1000).toFixed(0)} µs`,
    );
  };
  const countLf = (chunk: Uint8Array) => {
    let n = 0;
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) n++;
    return n;
  };

  const socket = net.createConnection({ host: hostname, port: Number(port || 6379) });
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once("connect", resolve));
  await rawBench(
    "node:net",
    (b) => void socket.write(b),
    (cb) => socket.on("data", (chunk: Uint8Array) => cb(countLf(chunk))),
  );
  socket.destroy();

  if (typeof Deno !== "undefined") {
    const conn = await Deno.connect({ hostname, port: Number(port || 6379) });
    conn.setNoDelay(true);
    await rawBench(
      "Deno.connect",
      async (b) => {
        for (let at = 0; at < b.length;) at += await conn.write(b.subarray(at));
      },
      (cb) => {
        (async () => {
          const buf = new Uint8Array(64 * 1024);
          for (;;) {
            const n = await conn.read(buf).catch(() => null);
            if (n === null) return;
            cb(countLf(buf.subarray(0, n)));
          }
        })();
      },
    );
    conn.close();
  }
}

await redis.close();
await deleteKeys(key, url);
