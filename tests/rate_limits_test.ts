// Limiters and barriers: unit tests on the memory backend, and contention tests with real
// processes on the backends shared across processes (file; Redis in redis_limits_test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
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
import { scriptArgs } from "./_runtime.ts";

const fixture = fileURLToPath(new URL("./fixtures/limiter_process.ts", import.meta.url));

export interface SharedBackend {
  name: string;
  env: (dir: string) => Record<string, string>;
  make: (dir: string) => RateLimiterBackend & { close?: () => unknown };
}

function spawnContender(
  env: Record<string, string>,
): { proc: ChildProcess; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, scriptArgs(fixture), {
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return { proc, exited: new Promise((r) => proc.on("exit", (c) => r(c))) };
}

function readEvents(file: string): { event: string; t: number; pid: number }[] {
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** Registers the cross-process contention tests for one shared backend. */
export function contentionSuite(b: SharedBackend): void {
  test(`${b.name}: ConcurrentRateLimiter(limit 2) across 3 processes x 8 tasks: max 2 at once`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-limits-"));
    try {
      const out = join(dir, "events.jsonl");
      writeFileSync(out, "");
      const key = `k-${Date.now()}-${Math.random()}`;
      const procs = [0, 1, 2].map(() =>
        spawnContender({
          ...b.env(dir),
          KIND: "concurrent",
          KEY: key,
          OUT_FILE: out,
          TASKS: "8",
          HOLD_MS: "20",
        })
      );
      for (const p of procs) assert.equal(await p.exited, 0);
      const events = readEvents(out);
      assert.equal(events.filter((e) => e.event === "start").length, 24, "every task ran");
      let running = 0, peak = 0;
      // Ends sort before starts at the same millisecond: a slot freed and retaken.
      const sorted = [...events].sort((x, y) => x.t - y.t || (x.event === "end" ? -1 : 1));
      for (const e of sorted) {
        running += e.event === "start" ? 1 : -1;
        peak = Math.max(peak, running);
      }
      assert.equal(peak, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${b.name}: a holder killed with SIGKILL frees its slot after the ttl`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-limits-"));
    try {
      const out = join(dir, "events.jsonl");
      writeFileSync(out, "");
      const key = `hold-${Date.now()}-${Math.random()}`;
      const holder = spawnContender({
        ...b.env(dir),
        KIND: "hold",
        KEY: key,
        OUT_FILE: out,
        TTL: "1000",
      });
      const t0 = Date.now();
      while (!readFileSync(out, "utf8").includes("holding")) {
        assert.ok(Date.now() - t0 < 10_000, "the holder never took the slot");
        await new Promise((r) => setTimeout(r, 20));
      }
      holder.proc.kill("SIGKILL");
      await holder.exited;
      const backend = b.make(dir);
      const limiter = new ConcurrentRateLimiter(backend, key, { limit: 1, ttl: 1000 });
      await assert.rejects(limiter.acquire(() => 1), RateLimitExceeded);
      let got = false;
      const start = Date.now();
      while (!got && Date.now() - start < 5_000) {
        got = (await limiter.acquire(() => true, { raiseOnFailure: false })) ?? false;
        if (!got) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(got, "the slot never freed");
      assert.ok(Date.now() - t0 >= 900, "freed before its ttl");
      backend.close?.();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`${b.name}: WindowRateLimiter(10 per 1 s) never admits more than 10 in any 1 s window`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-limits-"));
    try {
      const out = join(dir, "events.jsonl");
      writeFileSync(out, "");
      const key = `w-${Date.now()}-${Math.random()}`;
      const procs = [0, 1].map(() =>
        spawnContender({
          ...b.env(dir),
          KIND: "window",
          KEY: key,
          OUT_FILE: out,
          TASKS: "15",
          HOLD_MS: "1",
        })
      );
      for (const p of procs) assert.equal(await p.exited, 0);
      const starts = readEvents(out).filter((e) => e.event === "start").map((e) => e.t).sort((
        x,
        y,
      ) => x - y);
      assert.equal(starts.length, 30);
      for (let i = 0; i < starts.length; i++) {
        // Windows are whole seconds (Dramatiq's keys): count admissions in each second.
        const inSameSecond = starts.filter((t) =>
          Math.floor(t / 1000) === Math.floor(starts[i] / 1000)
        );
        assert.ok(inSameSecond.length <= 10, `${inSameSecond.length} admissions in one second`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

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
