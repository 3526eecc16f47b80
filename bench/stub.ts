// Benchmark: a no-op actor through StubBroker + Worker in one isolate.
//   deno run -A bench/stub.ts      |      bun bench/stub.ts
// Prints the median of RUNS runs of: send() rate, drain rate (pre-filled queue), and the
// per-message overhead of the whole path (send + worker + middleware + ack).
import { actor, StubBroker, Worker } from "../mod.ts";

const N = Number(globalThis.process?.env?.BENCH_N ?? 200_000);
const RUNS = Number(globalThis.process?.env?.BENCH_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function once(concurrency: number): Promise<{ send: number; drain: number }> {
  const broker = new StubBroker();
  const noop = actor(function noop() {}, { broker, maxRetries: 0 });
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await noop.send();
  const t1 = performance.now();
  const worker = new Worker(broker, { concurrency, workerTimeout: 100 });
  await worker.start();
  await broker.join("default");
  const t2 = performance.now();
  await worker.stop();
  return { send: N / (t1 - t0) * 1000, drain: N / (t2 - t1) * 1000 };
}

const runtime = "Bun" in globalThis
  ? `bun ${(globalThis as { Bun?: { version: string } }).Bun?.version}`
  : `deno ${Deno.version.deno}`;
console.log(`bench/stub.ts on ${runtime}: ${N} no-op messages, median of ${RUNS} runs`);
await once(8); // warm-up
for (const concurrency of [8, 64]) {
  const sends: number[] = [];
  const drains: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const { send, drain } = await once(concurrency);
    sends.push(send);
    drains.push(drain);
  }
  const s = median(sends), d = median(drains);
  console.log(
    `concurrency ${concurrency}: send ${Math.round(s).toLocaleString("en")}/s, ` +
      `drain ${Math.round(d).toLocaleString("en")}/s, ` +
      `send+process ${(1e6 / s + 1e6 / d).toFixed(2)} µs per message`,
  );
}
