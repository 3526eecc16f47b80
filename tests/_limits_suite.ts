// The cross-process contention tests of the rate limiters, shared by every backend that
// processes can share: FileRateLimiterBackend (rate_limits_test.ts) and RedisRateLimiterBackend
// (redis_backends_test.ts). Each test spawns real processes running
// tests/fixtures/limiter_process.ts with the backend chosen by the env that `b.env` returns.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { ConcurrentRateLimiter, type RateLimiterBackend, RateLimitExceeded } from "../mod.ts";
import { scriptArgs } from "./_runtime.ts";

const fixture = fileURLToPath(new URL("./fixtures/limiter_process.ts", import.meta.url));

/** A backend that several processes can share, as the contention suite needs it. */
export interface SharedBackend {
  /** Test name prefix, e.g. the backend's class name. */
  name: string;
  /** Env for limiter_process.ts (BACKEND and where the data lives), given a temp dir. */
  env: (dir: string) => Record<string, string>;
  /** A backend in this process over the same data. */
  make: (dir: string) => RateLimiterBackend & { close?: () => unknown };
  /** The limiter key for a test's base name (a prefix lets a shared server be cleaned). */
  key?: (base: string) => string;
  /** Runs after each test (e.g. deletes the test's keys on a shared server). */
  cleanup?: () => Promise<void>;
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

function readEvents(file: string): { event: string; t: number; asked?: number; pid: number }[] {
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** Registers the cross-process contention tests for one shared backend. */
export function contentionSuite(b: SharedBackend): void {
  const keyOf = (base: string) =>
    (b.key ?? ((k: string) => k))(`${base}-${Date.now()}-${Math.random()}`);

  /** Runs `fn` with a fresh temp dir and events file; cleans both and the backend up. */
  async function withRun(fn: (dir: string, out: string) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-limits-"));
    try {
      const out = join(dir, "events.jsonl");
      writeFileSync(out, "");
      await fn(dir, out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await b.cleanup?.();
    }
  }

  test(`${b.name}: ConcurrentRateLimiter(limit 2) across 3 processes x 8 tasks: max 2 at once`, async () => {
    await withRun(async (dir, out) => {
      const key = keyOf("k");
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
      assert.equal(new Set(events.map((e) => e.pid)).size, 3, "all 3 processes took part");
      let running = 0, peak = 0;
      // Ends sort before starts at the same millisecond: a slot freed and retaken.
      const sorted = [...events].sort((x, y) => x.t - y.t || (x.event === "end" ? -1 : 1));
      for (const e of sorted) {
        running += e.event === "start" ? 1 : -1;
        peak = Math.max(peak, running);
      }
      assert.equal(peak, 2);
    });
  });

  test(`${b.name}: a holder killed with SIGKILL frees its slot after the ttl`, async () => {
    await withRun(async (dir, out) => {
      const key = keyOf("hold");
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
      try {
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
      } finally {
        await backend.close?.();
      }
    });
  });

  test(`${b.name}: WindowRateLimiter(10 per 1 s) never admits more than 10 in any 1 s window`, async () => {
    await withRun(async (dir, out) => {
      const key = keyOf("w");
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
      // Counted by the time each admission was asked for: the second the limiter counts it in
      // (its start may be logged a few ms later, in the next second).
      const starts = readEvents(out).filter((e) => e.event === "start").map((e) => e.asked ?? e.t)
        .sort((x, y) => x - y);
      assert.equal(starts.length, 30);
      for (let i = 0; i < starts.length; i++) {
        // Windows are whole seconds (Dramatiq's keys): count admissions in each second.
        const inSameSecond = starts.filter((t) =>
          Math.floor(t / 1000) === Math.floor(starts[i] / 1000)
        );
        assert.ok(inSameSecond.length <= 10, `${inSameSecond.length} admissions in one second`);
      }
    });
  });
}
