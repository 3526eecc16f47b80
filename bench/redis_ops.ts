// Benchmark: the RedisBroker's operations (broker/redis/_ops.ts) on the shared Redis.
//   flock /tmp/dramatis-bench.lock deno run -A bench/redis_ops.ts
//   flock /tmp/dramatis-bench.lock bun bench/redis_ops.ts
// Environment: BENCH_RUNS (default 5), BENCH_SENDS (default 20,000 per run), BENCH_REDIS_URL.
//
// Prints the median of several runs of:
//   - enqueue, 64 concurrent senders: plain, and with a distinct unique_key per message (a tick's
//     unique sends decided in one script call), and 64 senders sharing 16 keys (mostly duplicates)
//   - cancel() of a running message (the scan of the queue's hashes + one script call), with
//     1,000 and 20,000 messages waiting in the queue
//   - cancel round trip: cancel() of a running message until another broker instance polling
//     cancelled() (one MGET) every 1 ms sees the mark
import { RedisBroker } from "../broker/redis/broker.ts";
import { RedisClient } from "../broker/redis/client.ts";
import { Message } from "../message.ts";
import {
  cancelRoundTrip,
  fmt,
  median,
  percentile,
  printLatency,
  sendRate,
  uniqueVsPlain,
} from "./_common.ts";
import { environment, runtime } from "../runtime/process.ts";

const env: Record<string, string | undefined> = environment();
const RUNS = Number(env.BENCH_RUNS ?? 5);
const SENDS = Number(env.BENCH_SENDS ?? 20_000);
const URL = env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379/0";

function open(namespace: string): RedisBroker {
  const broker = new RedisBroker({ url: URL, namespace });
  broker.declareQueue("q");
  return broker;
}

/** Deletes the keys of `namespace`. */
async function clean(namespace: string): Promise<void> {
  const redis = await RedisClient.connect(URL);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.send<[string, string[]]>(
        ["SCAN", cursor, "MATCH", `${namespace}:*`, "COUNT", 1000],
      );
      if (keys.length > 0) await redis.send(["UNLINK", ...keys]);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    await redis.close();
  }
}

function ns(): string {
  return `bench-ops-${crypto.randomUUID().slice(0, 8)}`;
}

/** Messages/s of SENDS sends by 64 concurrent senders; `options(i)` gives message i's options. */
async function rate(options: (i: number) => Record<string, string>): Promise<number> {
  const namespace = ns();
  const broker = open(namespace);
  try {
    await broker.connect();
    return await sendRate(broker, SENDS, options);
  } finally {
    await broker.close();
    await clean(namespace);
  }
}

/** p50 / p99 of cancel() of a running message with `waiting` messages in the queue. */
async function cancelLatency(waiting: number): Promise<[number, number]> {
  const namespace = ns();
  const broker = open(namespace);
  try {
    const c = broker.consume("q");
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      await broker.enqueue(new Message({ queueName: "q", actorName: "t" }));
      const [m] = await c.receive(1, { timeout: 1000 });
      if (i === 0) {
        const filler = "x".repeat(100);
        for (let k = 0; k < waiting; k += 1000) {
          await Promise.all(
            Array.from({ length: Math.min(1000, waiting - k) }, (_, j) =>
              broker.enqueue(
                new Message({ queueName: "q", actorName: "t", args: [k + j], kwargs: { filler } }),
              )),
          );
        }
      }
      const t0 = performance.now();
      const outcome = await broker.cancel(m!.messageId);
      times.push(performance.now() - t0);
      if (outcome !== "running") throw new Error(`cancel said ${outcome}`);
      await c.ack(m!);
    }
    await c.close();
    return [median(times), percentile(times, 0.99)];
  } finally {
    await broker.close();
    await clean(namespace);
  }
}

/** Round trip: cancel() of a running message until another instance's cancelled() has it. */
async function roundTrip(): Promise<[number, number]> {
  const namespace = ns();
  const a = open(namespace), b = open(namespace);
  try {
    return await cancelRoundTrip(a, b, 200);
  } finally {
    await a.close();
    await b.close();
    await clean(namespace);
  }
}

await uniqueVsPlain(`${runtime}: enqueue, 64 senders, ${fmt(SENDS)} sends`, RUNS, rate);
for (const waiting of [0, 1000, 20_000]) {
  printLatency(
    `cancel() of a running message, ${fmt(waiting)} waiting`,
    await cancelLatency(waiting),
  );
}
printLatency("cancel round trip (running; seen by another instance)", await roundTrip());
