// RedisResultBackend and RedisRateLimiterBackend against the shared redis-server: Dramatiq's keys
// and encodings, blocking reads without polling, sub-second timeouts, limiter semantics, and
// contention between processes (the suite of tests/_limits_suite.ts, as for the file backend).
// Runs on both `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  Barrier,
  BucketRateLimiter,
  ConcurrentRateLimiter,
  Message,
  RateLimitExceeded,
  ResultFailure,
  ResultMissing,
  Results,
  ResultTimeout,
  WindowRateLimiter,
} from "../mod.ts";
import { RedisResultBackend } from "../results/redis.ts";
import { RedisRateLimiterBackend } from "../rate_limits/redis.ts";
import { RedisBroker } from "../broker/redis/broker.ts";
import { RedisClient } from "../broker/redis/client.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";
import { contentionSuite } from "./_limits_suite.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const md5 = (s: string) => createHash("md5").update(s).digest("hex");

async function withRedis<T>(fn: (redis: RedisClient) => Promise<T>): Promise<T> {
  const redis = await RedisClient.connect(SHARED_URL);
  try {
    return await fn(redis);
  } finally {
    await redis.close();
  }
}

test("RedisResultBackend: Dramatiq's key, list layout, TTL and failure wrapper", async () => {
  const namespace = randomNamespace("results-");
  const backend = new RedisResultBackend({ url: SHARED_URL, namespace });
  const m = new Message({ queueName: "default.DQ", actorName: "add", args: [1, 2] });
  const key = md5(`${namespace}:default:add:${m.messageId}`);
  try {
    assert.equal(backend.buildMessageKey(m), key);
    await assert.rejects(backend.getResult(m), ResultMissing);
    await backend.storeResult(m, { sum: 3 }, 5_000);
    await withRedis(async (redis) => {
      assert.equal(await redis.send(["TYPE", key]), "list");
      assert.deepEqual(await redis.send(["LRANGE", key, 0, -1]), ['{"sum":3}']);
      const pttl = await redis.send<number>(["PTTL", key]);
      assert.ok(pttl > 4_000 && pttl <= 5_000, `pttl ${pttl}`);
    });
    assert.deepEqual(await backend.getResult(m), { sum: 3 });
    await backend.storeFailure(m, new TypeError("bad input"), 5_000);
    await withRedis(async (redis) => {
      assert.deepEqual(await redis.send(["LRANGE", key, 0, -1]), [
        '{"__t":"dramatiq.results.Result","exn":{"type":"TypeError","msg":"bad input"}}',
      ]);
      // What Python stores for a failed actor reads back the same way.
      await redis.send(["DEL", key]);
      await redis.send([
        "LPUSH",
        key,
        '{"__t":"dramatiq.results.Result","exn":{"type":"RuntimeError","msg":"boom"}}',
      ]);
    });
    await assert.rejects(
      backend.getResult(m),
      (e) => e instanceof ResultFailure && e.message === "actor raised RuntimeError: boom",
    );
  } finally {
    await withRedis((redis) => redis.send(["DEL", key]));
    await backend.close();
  }
});

test("RedisResultBackend: a blocking read wakes at once, does not consume, honours ms timeouts", async () => {
  const backend = new RedisResultBackend({ url: SHARED_URL, namespace: randomNamespace("r-") });
  const m = new Message({ queueName: "q", actorName: "a" });
  try {
    let t0 = performance.now();
    await assert.rejects(backend.getResult(m, { block: true, timeout: 250 }), ResultTimeout);
    const waited = performance.now() - t0;
    assert.ok(waited >= 240 && waited < 700, `a 250 ms timeout waited ${waited} ms`);
    t0 = performance.now();
    await assert.rejects(backend.getResult(m, { block: true, timeout: 0 }), ResultTimeout);
    assert.ok(performance.now() - t0 < 100);

    const readers = [1, 2, 3].map(() => backend.getResult(m, { block: true, timeout: 5_000 }));
    await sleep(50);
    t0 = performance.now();
    await backend.storeResult(m, 42, 10_000);
    assert.deepEqual(await Promise.all(readers), [42, 42, 42]);
    assert.ok(performance.now() - t0 < 100, "readers woke late");
    assert.equal(await backend.getResult(m), 42, "still there for later readers");
    await withRedis((redis) => redis.send(["DEL", backend.buildMessageKey(m)]));
  } finally {
    await backend.close();
  }
});

test("RedisResultBackend + RedisBroker: a Worker stores a result that send() can wait for", async () => {
  const namespace = randomNamespace();
  const broker = new RedisBroker({ url: SHARED_URL, namespace });
  const backend = new RedisResultBackend({ client: broker.client, namespace: `${namespace}-r` });
  broker.addMiddleware(new Results({ backend }));
  const add = actor((a: number, b: number) => a + b, {
    actorName: "redisAdd",
    broker,
    storeResults: true,
  });
  const worker = new Worker(broker, { workerTimeout: 100 });
  await worker.start();
  try {
    const m = await add.send(20, 22);
    assert.equal(await m.getResult({ block: true, timeout: 5_000 }), 42);
    await withRedis((redis) => redis.send(["DEL", backend.buildMessageKey(m)]));
  } finally {
    await worker.stop();
    await backend.close();
    await broker.close();
    await deleteKeys(`${namespace}:`);
  }
});

test("RedisRateLimiterBackend: primitives keep Dramatiq's keys, values and TTLs", async () => {
  const p = `${randomNamespace("limits-")}:`;
  const b = new RedisRateLimiterBackend({ url: SHARED_URL });
  try {
    assert.equal(await b.add(`${p}a`, 1, 5_000), true);
    assert.equal(await b.add(`${p}a`, 1, 5_000), false);
    assert.equal(await b.incr(`${p}a`, 1, 2, 5_000), true);
    assert.equal(await b.incr(`${p}a`, 1, 2, 5_000), false);
    assert.equal(await b.incr(`${p}missing`, 3, 3, 5_000), true, "a missing key counts as 0");
    assert.equal(await b.decr(`${p}a`, 2, 0, 7_000), true);
    assert.equal(await b.decr(`${p}a`, 1, 1, 7_000), false);
    assert.equal(await b.incrAndSum(`${p}w2`, () => [`${p}w1`, `${p}w2`], 1, 2, 5_000), true);
    await b.add(`${p}w1`, 1, 5_000);
    assert.equal(await b.incrAndSum(`${p}w2`, () => [`${p}w1`, `${p}w2`], 1, 2, 5_000), false);
    await withRedis(async (redis) => {
      assert.equal(await redis.send(["GET", `${p}a`]), "0");
      assert.equal(await redis.send(["GET", `${p}w2`]), "1");
      const pttl = await redis.send<number>(["PTTL", `${p}a`]);
      assert.ok(pttl > 6_000 && pttl <= 7_000, "decr rewrote the TTL");
    });
    // wait / waitNotify: a list of "x" under the key, read without consuming it.
    assert.equal(await b.wait(`${p}ev`, 0), false);
    const t0 = performance.now();
    assert.equal(await b.wait(`${p}ev`, 150), false);
    assert.ok(performance.now() - t0 >= 140, "a 150 ms wait returned early");
    const waiting = [b.wait(`${p}ev`, 5_000), b.wait(`${p}ev`, 5_000)];
    await sleep(30);
    await b.waitNotify(`${p}ev`, 5_000);
    assert.deepEqual(await Promise.all(waiting), [true, true]);
    assert.equal(await b.wait(`${p}ev`, 0), true, "later waiters see the notification");
    await withRedis(async (redis) => {
      assert.deepEqual(await redis.send(["LRANGE", `${p}ev`, 0, -1]), ["x"]);
    });
  } finally {
    await b.close();
    await deleteKeys(p);
  }
});

test("RedisRateLimiterBackend: limiters and barrier semantics", async () => {
  const p = `${randomNamespace("limits-")}:`;
  const backend = new RedisRateLimiterBackend({ url: SHARED_URL });
  try {
    const c = new ConcurrentRateLimiter(backend, `${p}c`, { limit: 2 });
    const a = await c.lease();
    const b2 = await c.lease();
    await assert.rejects(c.lease(), RateLimitExceeded);
    await a.release();
    {
      await using d = await c.lease();
      assert.ok(d.acquired);
    }
    await b2.release();
    assert.equal(await c.acquire(() => "ran"), "ran");

    const bucket = new BucketRateLimiter(backend, `${p}b`, { limit: 3, bucket: 60_000 });
    for (let i = 0; i < 3; i++) await bucket.acquire(() => {});
    assert.equal(await bucket.acquire(() => "x", { raiseOnFailure: false }), undefined);

    const w = new WindowRateLimiter(backend, `${p}w`, { limit: 2, window: 2_000 });
    await w.acquire(() => {});
    await w.acquire(() => {});
    await assert.rejects(w.acquire(() => {}), RateLimitExceeded);

    const barrier = new Barrier(backend, `${p}bar`, { ttl: 10_000 });
    assert.equal(await barrier.create(3), true);
    assert.equal(await barrier.create(3), false);
    const first = barrier.wait({ timeout: 2_000 });
    assert.equal(await barrier.wait({ block: false }), false);
    assert.equal(await barrier.wait({ block: false }), true, "the last party clears it");
    assert.equal(await first, true, "a blocked waiter wakes");
  } finally {
    await backend.close();
    await deleteKeys(p);
  }
});

// The cross-process contention suite (shared with FileRateLimiterBackend, see
// tests/_limits_suite.ts), on the shared server. Every key lives under one random prefix, deleted
// after each test.
const limitsPrefix = `${randomNamespace("limits-")}:`;
contentionSuite({
  name: "RedisRateLimiterBackend",
  env: () => ({ BACKEND: "redis", REDIS_URL: SHARED_URL }),
  make: () => new RedisRateLimiterBackend({ url: SHARED_URL }),
  key: (base) => `${limitsPrefix}${base}`,
  cleanup: () => deleteKeys(limitsPrefix),
});
