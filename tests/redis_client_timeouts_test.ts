// Command time limits of the Redis client (broker/redis/client.ts). The client arms one timer
// for the earliest deadline instead of one per command (a timer per command cost more than
// the round trip on Deno), so these tests check that every command still times out on its
// own limit, whatever the order in which limits were set, and that the script runner keeps
// falling back to EVAL after NOSCRIPT. Runs on both `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RedisClient } from "../broker/redis/client.ts";
import { ConnectionError } from "../errors.ts";
import { deleteKeys, randomNamespace, SHARED_URL, TestRedis } from "./_redis_server.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with how long `p` took to reject, and its error. */
async function rejection(p: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  try {
    await p;
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
  throw new Error("expected a rejection");
}

test("client timeouts: a shorter limit set after a longer one still fires on time", async () => {
  const ns = randomNamespace("tmo");
  await using redis = await RedisClient.connect(SHARED_URL);
  await using blocking = await redis.duplicate();
  try {
    // The first command arms the timer for 5 s; the ones queued behind the blocked BLPOP must
    // not wait for it.
    const long = blocking.send(["BLPOP", `${ns}:never`, 0], { timeout: 5_000 });
    long.catch(() => {});
    const short = rejection(blocking.send(["PING"], { timeout: 150 }));
    const shorter = rejection(blocking.send(["PING"], { timeout: 60 }));
    const a = await shorter;
    const b = await short;
    assert.ok(a.error instanceof ConnectionError);
    assert.match((a.error as Error).message, /did not answer PING within 60 ms/);
    assert.ok(a.ms >= 55 && a.ms < 1_000, `60 ms limit fired after ${a.ms} ms`);
    assert.ok(b.error instanceof ConnectionError);
    assert.match((b.error as Error).message, /did not answer PING within 150 ms/);
    assert.ok(b.ms >= 145 && b.ms < 1_100, `150 ms limit fired after ${b.ms} ms`);
    // Unblock the BLPOP: it is answered before its own limit, and the dropped PING replies
    // keep the connection in step.
    await redis.send(["RPUSH", `${ns}:never`, "x"]);
    assert.deepEqual(await long, [`${ns}:never`, "x"]);
    assert.equal(await blocking.send(["ECHO", "in step"], { timeout: 1_000 }), "in step");
  } finally {
    await deleteKeys(`${ns}:`);
  }
});

test("client timeouts: answered commands leave no stale limit behind", async () => {
  const ns = randomNamespace("tmo");
  await using redis = await RedisClient.connect({ url: SHARED_URL, commandTimeout: 80 });
  await using blocking = await redis.duplicate();
  try {
    // Many answered commands with the default 80 ms limit: none of them may fail later.
    for (let i = 0; i < 200; i++) assert.equal(await redis.send(["PING"]), "PONG");
    await sleep(120); // past all their deadlines: the timer fires and finds nothing overdue
    assert.equal(await redis.send(["PING"]), "PONG");
    // A blocked command with a longer limit set after the timer was armed for 80 ms is not
    // failed early when that timer fires.
    const blocked = rejection(blocking.send(["BLPOP", `${ns}:never`, 0], { timeout: 300 }));
    await sleep(10);
    assert.equal(await redis.send(["PING"]), "PONG"); // re-arms nothing later than needed
    const { ms, error } = await blocked;
    assert.ok(error instanceof ConnectionError);
    assert.match((error as Error).message, /did not answer BLPOP within 300 ms/);
    assert.ok(ms >= 295 && ms < 1_500, `300 ms limit fired after ${ms} ms`);
  } finally {
    await deleteKeys(`${ns}:`);
  }
});

test("client timeouts: no limit (0) never fires, and close() rejects what is in flight", async () => {
  const ns = randomNamespace("tmo");
  const redis = await RedisClient.connect({ url: SHARED_URL, commandTimeout: 50 });
  const blocking = await redis.duplicate();
  try {
    const waiting = rejection(blocking.send(["BLPOP", `${ns}:never`, 0], { timeout: 0 }));
    const limited = rejection(blocking.send(["PING"]));
    const timedOut = await limited;
    assert.match((timedOut.error as Error).message, /did not answer PING within 50 ms/);
    await sleep(100);
    await blocking.close();
    const { error } = await waiting;
    assert.ok(error instanceof ConnectionError);
    assert.match((error as Error).message, /closed|Lost the connection/);
  } finally {
    await blocking.close();
    await redis.close();
    await deleteKeys(`${ns}:`);
  }
});

test("client scripts: EVALSHA falls back to EVAL after SCRIPT FLUSH, errors still reject", async () => {
  // SCRIPT FLUSH runs on a private server, not to disturb other users of the shared one.
  const server = await TestRedis.start();
  const redis = await RedisClient.connect(server.url);
  try {
    const script = redis.script(
      "if ARGV[1] == 'fail' then return redis.error_reply('BOOM ' .. KEYS[1]) end " +
        "return redis.call('INCRBY', KEYS[1], ARGV[1])",
    );
    assert.equal(await script.run(["n"], [2]), 2);
    await redis.send(["SCRIPT", "FLUSH"]);
    assert.equal(await script.run(["n"], [3], { timeout: 1_000 }), 5); // NOSCRIPT -> EVAL
    assert.equal(await script.run(["n"], [4]), 9); // cached again by EVAL
    await assert.rejects(script.run(["n"], ["fail"]), (e: Error) => {
      assert.equal((e as { code?: string }).code, "BOOM");
      assert.equal((e as { command?: string }).command, "EVALSHA");
      return true;
    });
  } finally {
    await redis.close();
    await server.kill();
  }
});

test("client timeouts: by default, a server that stops answering fails the command (10 s)", {
  timeout: 30_000,
}, async () => {
  const server = await TestRedis.start();
  const redis = await RedisClient.connect(server.url);
  try {
    assert.equal(await redis.send(["PING"]), "PONG");
    server.signal("SIGSTOP"); // the connection stays open; no reply comes
    const { ms, error } = await rejection(redis.send(["PING"]));
    assert.ok(error instanceof ConnectionError, String(error));
    assert.match((error as Error).message, /did not answer PING within 10000 ms/);
    assert.ok(ms >= 9_500 && ms < 20_000, `the default limit fired after ${ms} ms`);
  } finally {
    server.signal("SIGCONT");
    await redis.close();
    await server.kill();
  }
});

test("client timeouts: blocking commands get their blocking time on top of commandTimeout", async () => {
  const ns = randomNamespace("tmo");
  await using redis = await RedisClient.connect({ url: SHARED_URL, commandTimeout: 200 });
  await using blocking = await redis.duplicate();
  try {
    const t0 = performance.now();
    assert.equal(await blocking.send(["BLPOP", `${ns}:empty`, 1]), null); // 1 s > 200 ms
    assert.ok(performance.now() - t0 >= 900, "BLPOP returned before its blocking time");
    assert.equal(
      await blocking.send(["XREAD", "BLOCK", 500, "STREAMS", `${ns}:stream`, "$"]),
      null,
    );
    assert.equal(await blocking.send(["BLMOVE", `${ns}:a`, `${ns}:b`, "LEFT", "LEFT", 0.5]), null);
    // Blocking for ever (0): no limit at all.
    let settled = false;
    const forever = blocking.send(["BLPOP", `${ns}:later`, 0]).finally(() => settled = true);
    await sleep(600);
    assert.equal(settled, false, "a BLPOP 0 was given a time limit");
    await redis.send(["RPUSH", `${ns}:later`, "x"]);
    assert.deepEqual(await forever, [`${ns}:later`, "x"]);
  } finally {
    await deleteKeys(`${ns}:`);
  }
});
