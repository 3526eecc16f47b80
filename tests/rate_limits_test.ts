// Limiters and barriers: unit tests on the memory and file backends, and the contention tests
// with real processes (tests/_limits_suite.ts) on FileRateLimiterBackend. The same contention
// suite runs on RedisRateLimiterBackend in redis_backends_test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import {
  Barrier,
  BucketRateLimiter,
  ConcurrentRateLimiter,
  MemoryRateLimiterBackend,
  type RateLimiterBackend,
  RateLimitExceeded,
  WindowRateLimiter,
} from "../mod.ts";
import { FileRateLimiterBackend } from "../rate_limits/file.ts";
import { contentionSuite } from "./_limits_suite.ts";

contentionSuite({
  name: "FileRateLimiterBackend",
  env: (dir) => ({ BACKEND: "file", LIMITS_DIR: join(dir, "limits") }),
  make: (dir) => new FileRateLimiterBackend({ dir: join(dir, "limits") }),
});

for (
  const [name, make] of [
    ["MemoryRateLimiterBackend", () => new MemoryRateLimiterBackend()],
    [
      "FileRateLimiterBackend",
      () => new FileRateLimiterBackend({ dir: mkdtempSync(join(tmpdir(), "dramatis-l-")) }),
    ],
  ] as [string, () => RateLimiterBackend][]
) {
  test(`${name}: limiters and barrier semantics`, async () => {
    const backend = make();
    const c = new ConcurrentRateLimiter(backend, "c", { limit: 2 });
    const a = await c.lease();
    const b2 = await c.lease();
    await assert.rejects(c.lease(), RateLimitExceeded);
    assert.equal((await c.lease({ raiseOnFailure: false })).acquired, false);
    await a.release();
    await a.release(); // idempotent
    {
      await using d = await c.lease();
      assert.ok(d.acquired);
    }
    await b2.release();
    assert.equal(await c.acquire(() => "ran"), "ran");

    const bucket = new BucketRateLimiter(backend, "b", { limit: 3, bucket: 60_000 });
    for (let i = 0; i < 3; i++) await bucket.acquire(() => {});
    assert.equal(await bucket.acquire(() => "x", { raiseOnFailure: false }), undefined);

    const w = new WindowRateLimiter(backend, "w", { limit: 2, window: 2_000 });
    await w.acquire(() => {});
    await w.acquire(() => {});
    await assert.rejects(w.acquire(() => {}), RateLimitExceeded);
    assert.throws(
      () => new WindowRateLimiter(backend, "w", { limit: 1, window: 1500 }),
      /multiple of 1000/,
    );

    const barrier = new Barrier(backend, `bar-${Math.random()}`, { ttl: 10_000 });
    assert.equal(await barrier.create(3), true);
    assert.equal(await barrier.create(3), false);
    const first = barrier.wait({ timeout: 2_000 });
    assert.equal(await barrier.wait({ block: false }), false);
    assert.equal(await barrier.wait({ block: false }), true, "the last party clears it");
    assert.equal(await first, true, "a blocked waiter wakes");
    (backend as { close?: () => void }).close?.();
  });
}
