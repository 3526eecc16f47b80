// RedisBroker: the shared broker suite against the shared redis-server (see _redis_server.ts), plus
// Redis-specific behaviour: Dramatiq's keys, Python-written messages, receipts across
// instances, waking without polling, dead-worker recovery, exactly-once delayed moves,
// connection errors, validation. Each test uses its own namespace and deletes its keys.
// Runs on both `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brokerSuite } from "./_broker_suite.ts";
import { RedisBroker, type RedisReceipt } from "../broker/redis/broker.ts";
import { RedisClient } from "../broker/redis/client.ts";
import { brokerFromUrl, defaultBroker } from "../broker/url.ts";
import { ConnectionError } from "../errors.ts";
import { Message } from "../message.ts";
import type { MessageProxy } from "../broker/broker.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { deleteKeys, freePort, randomNamespace, SHARED_URL, TestRedis } from "./_redis_server.ts";
import { scriptArgs } from "./_runtime.ts";

const namespaces: string[] = [];
function makeBroker(options: ConstructorParameters<typeof RedisBroker>[0] = {}): RedisBroker {
  const namespace = options.namespace ?? randomNamespace();
  namespaces.push(namespace);
  return new RedisBroker({ url: SHARED_URL, namespace, ...options });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function msg(queueName: string, n: number, options = {}): Message {
  return new Message({ queueName, actorName: "redisActor", args: [n], options });
}

/** Runs `fn` with a raw client on the shared server, closed afterwards. */
async function withRedis<T>(fn: (redis: RedisClient) => Promise<T>, url = SHARED_URL): Promise<T> {
  const redis = await RedisClient.connect(url);
  try {
    return await fn(redis);
  } finally {
    await redis.close();
  }
}

/** Pushes a payload the way Python Dramatiq's enqueue does (HSET + RPUSH in one script). */
function pythonEnqueue(redis: RedisClient, ns: string, queue: string, payload: string) {
  const rid = crypto.randomUUID();
  return redis.send([
    "EVAL",
    "redis.call('HSET', KEYS[1] .. '.msgs', ARGV[1], ARGV[2]); redis.call('RPUSH', KEYS[1], ARGV[1])",
    1,
    `${ns}:${queue}`,
    rid,
    payload.replace("__RID__", rid),
  ]).then(() => rid);
}

brokerSuite("RedisBroker", () => makeBroker(), { brokerPriorities: false });

test("RedisBroker: an enqueue writes Dramatiq's keys and seven-key JSON", async () => {
  await using broker = makeBroker();
  const ns = broker.namespace;
  broker.declareQueue("proto");
  const sent = await broker.enqueue(msg("proto", 1, { custom: "x" }));
  const later = await broker.enqueue(msg("proto", 2), { delay: 5_000 });
  await withRedis(async (redis) => {
    const [rid] = await redis.send<string[]>(["LRANGE", `${ns}:proto`, 0, -1]);
    const stored = JSON.parse(await redis.send<string>(["HGET", `${ns}:proto.msgs`, rid]));
    assert.deepEqual(Object.keys(stored), [
      "queue_name",
      "actor_name",
      "args",
      "kwargs",
      "options",
      "message_id",
      "message_timestamp",
    ]);
    assert.equal(stored.queue_name, "proto");
    assert.equal(stored.message_id, sent.messageId);
    assert.deepEqual(stored.options, { custom: "x", redis_message_id: rid });
    const [drid] = await redis.send<string[]>(["LRANGE", `${ns}:proto.DQ`, 0, -1]);
    const delayed = JSON.parse(await redis.send<string>(["HGET", `${ns}:proto.DQ.msgs`, drid]));
    assert.equal(delayed.queue_name, "proto.DQ");
    assert.equal(delayed.options.eta, later.options.eta);
    assert.ok(Math.abs(delayed.options.eta - Date.now() - 5_000) < 1_000);
    assert.equal(delayed.options.redis_message_id, drid);
  });
  await broker.flushAll();
});

test("RedisBroker: consumes what a Python producer wrote, and cleans up after ack", async () => {
  await using broker = makeBroker();
  const ns = broker.namespace;
  const seen: unknown[][] = [];
  actor((...args: unknown[]) => void seen.push(args), { actorName: "py_task", broker });
  await withRedis(async (redis) => {
    // Python's json.dumps: ASCII with \u escapes, kwargs, an int eta of null.
    await pythonEnqueue(
      redis,
      ns,
      "default",
      '{"queue_name":"default","actor_name":"py_task","args":[1,"caf\\u00e9"],' +
        '"kwargs":{"k":2},"options":{"redis_message_id":"__RID__","eta":null},' +
        '"message_id":"7c1e9a44-2f0b-4b7a-8f3e-5a6d0c9b2e11","message_timestamp":1700000000000}',
    );
    const worker = new Worker(broker, { workerTimeout: 100 });
    await worker.start();
    await broker.join("default", { timeout: 5_000 });
    await worker.stop();
    assert.deepEqual(seen, [[1, "café", { k: 2 }]]);
    assert.equal(await redis.send(["HLEN", `${ns}:default.msgs`]), 0);
    const acks = await redis.send<string[]>(["KEYS", `${ns}:__acks__.*`]);
    for (const key of acks) assert.equal(await redis.send(["SCARD", key]), 0);
  });
});

test("RedisBroker: an idle consumer blocks (no polling) and wakes at once on a Python push", async () => {
  const server = await TestRedis.start();
  try {
    const ns = randomNamespace();
    await using broker = new RedisBroker({ url: server.url, namespace: ns });
    broker.declareQueue("idle");
    const c = broker.consume("idle");
    await c.receive(1, { timeout: 10 }); // warm up: connections, script
    await withRedis(async (redis) => {
      const calls = async () => {
        const stats = await redis.send<string>(["INFO", "commandstats"]);
        return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      };
      const before = await calls();
      const pending = c.receive(10, { timeout: 800 });
      await sleep(500);
      const idleCalls = (await calls()) - before;
      assert.ok(idleCalls <= 3, `${idleCalls} script calls while idle for 500 ms`);
      const t0 = performance.now();
      await pythonEnqueue(
        redis,
        ns,
        "idle",
        '{"queue_name":"idle","actor_name":"a","args":[],"kwargs":{},' +
          '"options":{"redis_message_id":"__RID__"},"message_id":"m1","message_timestamp":1}',
      );
      const got = await pending;
      const waited = performance.now() - t0;
      assert.equal(got.length, 1);
      assert.ok(waited < 50, `woke after ${waited.toFixed(1)} ms`);
      await c.ack(got[0]);
    }, server.url);
    await c.close();
  } finally {
    await server.kill();
  }
});

test("RedisBroker: receipts are structured-cloneable and work on another instance", async () => {
  const ns = randomNamespace();
  await using a = makeBroker({ namespace: ns });
  await using b = makeBroker({ namespace: ns });
  for (const x of [a, b]) x.declareQueue("rc");
  for (let i = 0; i < 3; i++) await a.enqueue(msg("rc", i));
  const ca = a.consume("rc");
  const got = await ca.receive(3, { timeout: 500 });
  assert.equal(got.length, 3);
  const cb = b.consume("rc");
  const clone = (m: MessageProxy) => {
    const copy = Message.decode(JSON.stringify(m.asDict())) as MessageProxy;
    (copy as { receipt: unknown }).receipt = structuredClone(m.receipt);
    return copy;
  };
  const receipt = structuredClone(got[0].receipt) as RedisReceipt;
  assert.equal(receipt.owner, a.brokerId);
  assert.equal(receipt.queue, "rc");
  await cb.ack(clone(got[0]));
  await cb.nack(clone(got[1]));
  await cb.requeue([clone(got[2])]);
  const s = await a.stats("rc");
  assert.deepEqual([s.ready, s.inFlight, s.dead], [1, 0, 1]);
  await ca.close();
  await cb.close();
  await a.flushAll();
});

test("RedisBroker: requeue puts messages back at the head, in order", async () => {
  await using broker = makeBroker();
  broker.declareQueue("head");
  for (let i = 0; i < 5; i++) await broker.enqueue(msg("head", i));
  const c = broker.consume("head");
  const first = await c.receive(2, { timeout: 500 });
  await c.requeue(first);
  const all = await c.receive(10, { timeout: 500 });
  assert.deepEqual(all.map((m) => m.args[0]), [0, 1, 2, 3, 4]);
  for (const m of all) await c.ack(m);
  await c.close();
});

test("RedisBroker: close() hands unacked messages back at once and leaves the heartbeat set", async () => {
  const ns = randomNamespace();
  const a = makeBroker({ namespace: ns });
  a.declareQueue("bye");
  for (let i = 0; i < 3; i++) await a.enqueue(msg("bye", i));
  await a.enqueue(msg("bye", 9), { delay: 60_000 });
  const c = a.consume("bye");
  const dc = a.consume("bye.DQ");
  assert.equal((await c.receive(2, { timeout: 500 })).length, 2);
  assert.deepEqual(await dc.receive(5, { timeout: 100 }), []); // holds the delayed one
  await withRedis(async (redis) => {
    assert.equal(await redis.send(["SCARD", `${ns}:__acks__.${a.brokerId}.bye.DQ`]), 1);
    await a.close();
    await using b = makeBroker({ namespace: ns });
    const s = await b.stats("bye");
    assert.deepEqual([s.ready, s.inFlight, s.delayed], [3, 0, 1]);
    assert.equal(await redis.send(["LLEN", `${ns}:bye.DQ`]), 1);
    assert.equal(await redis.send(["ZSCORE", `${ns}:__heartbeats__`, a.brokerId]), null);
    await b.flushAll();
  });
});

test("RedisBroker: a dead worker's messages are recovered within about heartbeatTimeout", async () => {
  const ns = randomNamespace();
  namespaces.push(ns);
  const dir = mkdtempSync(join(tmpdir(), "dramatis-redis-"));
  const script = join(dir, "dead_worker.ts");
  writeFileSync(
    script,
    `import { RedisBroker } from ${
      JSON.stringify(new URL("../broker/redis/broker.ts", import.meta.url).href)
    };
const broker = new RedisBroker({ url: ${JSON.stringify(SHARED_URL)}, namespace: ${
      JSON.stringify(ns)
    }, heartbeatTimeout: 1000 });
broker.declareQueue("dw");
const got = await broker.consume("dw").receive(10, { timeout: 5000 });
console.log("fetched " + got.length);
await new Promise(() => {});
`,
  );
  const timeout = 1_000;
  await using broker = makeBroker({ namespace: ns, heartbeatTimeout: timeout });
  const done: number[] = [];
  actor((n: number) => void done.push(n), { actorName: "dwTask", queueName: "dw", broker });
  for (let i = 0; i < 3; i++) await broker.enqueue(msg("dw", i).copy({ actorName: "dwTask" }));
  const child = spawn(process.execPath, scriptArgs(script), {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("fetched 3")) resolve();
      });
      child.once("exit", () => reject(new Error(`the dead worker exited early: ${out}`)));
    });
    const exited = new Promise((r) => child.once("exit", r));
    process.kill(child.pid!, "SIGKILL");
    await exited;
    const killedAt = Date.now();
    assert.equal((await broker.stats("dw")).inFlight, 3);
    const worker = new Worker(broker, { queues: ["dw"], workerTimeout: 100 });
    await worker.start();
    await broker.join("dw", { timeout: 10_000 });
    const took = Date.now() - killedAt;
    await worker.stop();
    assert.deepEqual(done.sort(), [0, 1, 2]);
    assert.ok(took >= timeout * 0.7, `recovered after ${took} ms, before the timeout`);
    assert.ok(took < timeout + 1_500, `recovered after ${took} ms`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

test("RedisBroker: maintenance recovers a dead Python worker's ack sets, all queues at once", async () => {
  await using broker = makeBroker();
  const ns = broker.namespace;
  const dead = crypto.randomUUID();
  await withRedis(async (redis) => {
    for (const q of ["pa", "pb.DQ"]) {
      for (const rid of ["r1", "r2"]) {
        await redis.send(["HSET", `${ns}:${q}.msgs`, rid, `{"x":"${rid}"}`]);
        await redis.send(["SADD", `${ns}:__acks__.${dead}.${q}`, rid]);
      }
      await redis.send(["SADD", `${ns}:__acks__.${dead}.${q}`, "gone"]); // no payload: dropped
    }
    await redis.send(["ZADD", `${ns}:__heartbeats__`, Date.now() - 120_000, dead]);
    assert.equal(await broker.maintain(), 4);
    // The ids come back from a Redis set, whose order Redis does not promise (7.0 iterates a
    // small set in hash order, which changes with each server start): compare them as a set.
    const recovered = await redis.send<string[]>(["LRANGE", `${ns}:pa`, 0, -1]);
    assert.deepEqual([...recovered].sort(), ["r1", "r2"]);
    assert.equal(await redis.send(["LLEN", `${ns}:pb.DQ`]), 2);
    assert.deepEqual(await redis.send(["KEYS", `${ns}:__acks__.${dead}*`]), []);
    assert.equal(await redis.send(["ZSCORE", `${ns}:__heartbeats__`, dead]), null);
  });
});

test("RedisBroker: a due delayed message reaches its queue once, however often it is moved", async () => {
  await using broker = makeBroker();
  broker.declareQueue("mv");
  await broker.enqueue(msg("mv", 1), { delay: 0 });
  const dc = broker.consume("mv.DQ");
  const [m] = await dc.receive(1, { timeout: 1_000 });
  assert.ok(m, "the delayed message was not handed out");
  const options = { ...m.options };
  delete options.eta;
  // Two holders moving it (e.g. after a heartbeat lapse), or one worker retrying the move.
  await broker.enqueue(m.copy({ queueName: "mv", options }));
  await broker.enqueue(m.copy({ queueName: "mv", options }));
  await dc.ack(m);
  const s = await broker.stats("mv");
  assert.deepEqual([s.ready, s.delayed, s.inFlight], [1, 0, 0]);
  const c = broker.consume("mv");
  const [moved] = await c.receive(5, { timeout: 500 });
  assert.equal(moved.queueName, "mv");
  assert.equal(moved.options.eta, undefined);
  assert.equal(moved.options.dramatis_dq_rid, undefined);
  // The copy on mv is its own (another hash and ack set), named by the message id as every
  // copy dramatis enqueues (broker/redis/_wire.ts keyedRid).
  assert.equal(moved.options.redis_message_id, m.messageId);
  await c.ack(moved);
  await dc.close();
  await c.close();
});

test("RedisBroker: listQueues finds queues from keys, declared or not", async () => {
  const ns = randomNamespace();
  await using a = makeBroker({ namespace: ns });
  a.declareQueue("found");
  await a.enqueue(msg("found", 1), { delay: 10_000 });
  await withRedis((redis) => redis.send(["HSET", `${ns}:py.queue.XQ.msgs`, "r", "{}"]));
  await using b = makeBroker({ namespace: ns });
  assert.deepEqual(await b.listQueues(), ["found", "py.queue"]);
  await a.flushAll();
});

test("RedisBroker: dead letters expire after deadMessageTtl", async () => {
  await using broker = makeBroker({ deadMessageTtl: 50 });
  broker.declareQueue("ttl");
  await broker.enqueue(msg("ttl", 1));
  const c = broker.consume("ttl");
  const [m] = await c.receive(1, { timeout: 500 });
  await c.nack(m);
  assert.equal((await broker.stats("ttl")).dead, 1);
  await sleep(80);
  await broker.maintain();
  assert.equal((await broker.stats("ttl")).dead, 0);
  assert.deepEqual(await broker.deadLetters("ttl"), []);
  await c.close();
});

test("RedisBroker: an undecodable message is dead-lettered instead of stalling the consumer", async () => {
  await using broker = makeBroker();
  const ns = broker.namespace;
  broker.declareQueue("bad");
  await withRedis(async (redis) => {
    await redis.send(["HSET", `${ns}:bad.msgs`, "pickled", new Uint8Array([0x80, 0x04, 0x95])]);
    await redis.send(["RPUSH", `${ns}:bad`, "pickled"]);
  });
  await broker.enqueue(msg("bad", 1));
  const c = broker.consume("bad");
  const got = await c.receive(10, { timeout: 500 });
  assert.deepEqual(got.map((m) => m.args[0]), [1]);
  await c.ack(got[0]);
  await c.close();
  await sleep(20);
  const s = await broker.stats("bad");
  assert.deepEqual([s.ready, s.inFlight, s.dead], [0, 0, 1]);
});

test("RedisBroker: messages are validated before anything is written (hazard H1)", async () => {
  await using broker = makeBroker();
  broker.declareQueue("valid");
  await assert.rejects(broker.enqueue(msg("valid", 1, { maxRetries: 3 })), /not snake_case/);
  await assert.rejects(broker.enqueue(msg("valid", 1, { time_limit: NaN })), /NaN/);
  const target = { ...msg("other", 2).asDict(), extra: 1 };
  await assert.rejects(
    broker.enqueue(msg("valid", 1, { pipe_target: target })),
    /unknown top-level key "extra"/,
  );
  await assert.rejects(
    broker.enqueue(new Message({ queueName: "valid", actorName: "a", args: "x" as never })),
    /args must be an array/,
  );
  assert.deepEqual(await broker.stats("valid"), {
    queueName: "valid",
    ready: 0,
    delayed: 0,
    inFlight: 0,
    dead: 0,
  });
});

test("RedisBroker: a wrong password gives one clear error, and no retry loop", async () => {
  const server = await TestRedis.start(["--requirepass", "right"]);
  try {
    const broker = new RedisBroker({ url: `redis://:wrong@127.0.0.1:${server.port}/0` });
    broker.declareQueue("auth");
    const first = await broker.enqueue(msg("auth", 1)).catch((e) => e);
    assert.ok(first instanceof ConnectionError, String(first));
    assert.match(first.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
    assert.match(first.message, /rejected the credentials/);
    await withRedis(async (admin) => {
      const connections = async () =>
        Number(
          /total_connections_received:(\d+)/.exec(await admin.send<string>(["INFO", "stats"]))![1],
        );
      const before = await connections();
      const again = await broker.enqueue(msg("auth", 2)).catch((e) => e);
      assert.equal(again, first, "the same error, without connecting again");
      await assert.rejects(broker.connect(), (e) => e === first);
      await sleep(200);
      assert.equal(await connections(), before);
    }, `redis://:right@127.0.0.1:${server.port}/0`);
    await broker.close();
  } finally {
    await server.kill();
  }
});

test("RedisBroker: a wrong port gives one clear error", async () => {
  const port = await freePort();
  const broker = new RedisBroker({ url: `redis://127.0.0.1:${port}/0` });
  broker.declareQueue("port");
  const error = await broker.connect().catch((e) => e);
  assert.ok(error instanceof ConnectionError, String(error));
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port}: connection refused`));
  await assert.rejects(broker.enqueue(msg("port", 1)), ConnectionError);
  await broker.close();
});

test("RedisBroker: brokerFromUrl and DRAMATIS_BROKER select it, with URL options", async () => {
  const ns = randomNamespace();
  namespaces.push(ns);
  const broker = brokerFromUrl(`${SHARED_URL}?namespace=${ns}&heartbeatTimeout=30000`);
  assert.ok(broker instanceof RedisBroker);
  assert.equal(broker.namespace, ns);
  assert.equal(broker.heartbeatTimeout, 30_000);
  await broker.close();
  assert.throws(() => brokerFromUrl(`${SHARED_URL}?nope=1`), /Unknown RedisBroker URL parameter/);
  const saved = process.env.DRAMATIS_BROKER;
  process.env.DRAMATIS_BROKER = `rediss://127.0.0.1:6380/2?namespace=${ns}`;
  try {
    const fromEnv = defaultBroker();
    assert.ok(fromEnv instanceof RedisBroker);
    assert.equal(fromEnv.client.address, "127.0.0.1:6380");
    await fromEnv.close();
  } finally {
    if (saved === undefined) delete process.env.DRAMATIS_BROKER;
    else process.env.DRAMATIS_BROKER = saved;
  }
});

test("RedisBroker: cleanup of the test namespaces", async () => {
  for (const ns of namespaces) await deleteKeys(`${ns}:`);
});
