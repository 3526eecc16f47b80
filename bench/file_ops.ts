// Benchmark: the FileBroker's operations (broker/file/_ops.ts).
//   flock /tmp/dramatis-bench.lock deno run -A bench/file_ops.ts
//   flock /tmp/dramatis-bench.lock bun bench/file_ops.ts
// Environment: BENCH_RUNS (default 5), BENCH_SENDS (default 20,000 per run).
//
// Prints the median of several runs of:
//   - enqueue, durability "always", 64 concurrent senders: plain, and with a distinct unique_key
//     per message (each send decided under the lock, a tick's sends in one locked append)
//   - the same with 64 senders sharing 16 keys (mostly duplicates)
//   - cancel() of a queued message (scan of the log + one locked append), on a log of 1,000 and
//     of 100,000 pending messages
//   - cancel round trip: cancel() of a running message in this process until another broker
//     instance on the directory (polling cancelled() every 1 ms) sees the mark
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker } from "../broker/file/broker.ts";
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

function tempDir(): string {
  return fs.mkdtempSync(`${tmpdir()}/dramatis-bench-ops-`);
}

function open(dir: string): FileBroker {
  const broker = new FileBroker({ dir });
  broker.declareQueue("q");
  return broker;
}

/** Messages/s of SENDS sends by 64 concurrent senders; `options(i)` gives message i's options. */
async function rate(options: (i: number) => Record<string, string>): Promise<number> {
  const dir = tempDir();
  const broker = open(dir);
  try {
    return await sendRate(broker, SENDS, options);
  } finally {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** p50 and p99 of cancel() of a queued message, with `pending` messages in the log. */
async function cancelLatency(pending: number): Promise<[number, number]> {
  const dir = tempDir();
  const broker = open(dir);
  try {
    const filler = "x".repeat(100);
    for (let i = 0; i < pending; i += 1000) {
      await Promise.all(
        Array.from({ length: Math.min(1000, pending - i) }, (_, k) =>
          broker.enqueue(
            new Message({ queueName: "q", actorName: "t", args: [i + k], kwargs: { filler } }),
          )),
      );
    }
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const m = await broker.enqueue(new Message({ queueName: "q", actorName: "t" }));
      const t0 = performance.now();
      const outcome = await broker.cancel(m.messageId);
      times.push(performance.now() - t0);
      if (outcome !== "cancelled") throw new Error(`cancel said ${outcome}`);
    }
    return [median(times), percentile(times, 0.99)];
  } finally {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Round trip: cancel() of a running message until another instance's cancelled() has it. */
async function roundTrip(): Promise<[number, number]> {
  const dir = tempDir();
  const a = open(dir), b = open(dir);
  try {
    return await cancelRoundTrip(a, b, 100);
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await uniqueVsPlain(`${runtime}: enqueue, always, 64 senders, ${fmt(SENDS)} sends`, RUNS, rate);
for (const pending of [1000, 100_000]) {
  printLatency(
    `cancel() of a queued message, ${fmt(pending)} pending`,
    await cancelLatency(pending),
  );
}
printLatency("cancel round trip (running; seen by another instance)", await roundTrip());
