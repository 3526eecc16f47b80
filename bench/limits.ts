// Benchmark: rate-limiter acquisitions per second, per backend.
//   deno run -A bench/limits.ts [redis://127.0.0.1:6379/0]   |   bun bench/limits.ts [redis://...]
// With a Redis URL it also measures RedisRateLimiterBackend (its keys are deleted afterwards).
// Each run: one isolate, `CONCURRENCY` loops each doing ConcurrentRateLimiter.acquire (limit
// high enough to always succeed: this measures the backend's cost, add + incr + decr), and a
// WindowRateLimiter.acquire loop. Median of RUNS runs.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import process from "node:process";
import {
  ConcurrentRateLimiter,
  FileRateLimiterBackend,
  MemoryRateLimiterBackend,
  type RateLimiterBackend,
  WindowRateLimiter,
} from "../mod.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const redisUrl = process.argv.slice(2).find((a) => a.startsWith("redis")) ??
  (globalThis as { Deno?: { args: string[] } }).Deno?.args.find((a) => a.startsWith("redis"));

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

async function rate(fn: () => Promise<unknown>, concurrency: number): Promise<number> {
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      await fn();
      n++;
    }
  }));
  return n / SECONDS;
}

async function measure(
  name: string,
  make: () => RateLimiterBackend & { close?: () => unknown },
  cleanup?: (prefix: string) => Promise<void>,
) {
  const conc: number[] = [];
  const win: number[] = [];
  const prefix = `bench-limits-${crypto.randomUUID().slice(0, 8)}:`;
  for (let r = 0; r < RUNS; r++) {
    const backend = make();
    const key = `${prefix}${r}`;
    const c = new ConcurrentRateLimiter(backend, key, { limit: 1_000_000 });
    conc.push(await rate(() => c.acquire(() => {}), 8));
    const w = new WindowRateLimiter(backend, `${key}-w`, { limit: 1e9, window: 1000 });
    win.push(await rate(() => w.acquire(() => {}), 8));
    await backend.close?.();
  }
  await cleanup?.(prefix);
  console.log(
    `${name.padEnd(26)} concurrent acquire+release ${
      Math.round(median(conc)).toLocaleString("en")
    }/s, ` +
      `window acquire ${Math.round(median(win)).toLocaleString("en")}/s`,
  );
}

const runtime = "Bun" in globalThis ? "bun" : "deno";
console.log(
  `bench/limits.ts on ${runtime}, median of ${RUNS} runs of ${SECONDS} s, 8 concurrent loops`,
);
await measure("MemoryRateLimiterBackend", () => new MemoryRateLimiterBackend());
const dir = mkdtempSync(join(tmpdir(), "dramatis-bench-limits-"));
await measure("FileRateLimiterBackend", () => new FileRateLimiterBackend({ dir }));
rmSync(dir, { recursive: true, force: true });
if (redisUrl) {
  const { RedisRateLimiterBackend } = await import("../rate_limits/redis.ts");
  const { deleteKeys } = await import("../tests/_redis_server.ts");
  await measure(
    "RedisRateLimiterBackend",
    () => new RedisRateLimiterBackend({ url: redisUrl }),
    (prefix) => deleteKeys(prefix, redisUrl), // the keys live on a shared server
  );
}
process.exit(0);
