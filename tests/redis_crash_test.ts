// RedisBroker under failure, on private redis-servers: the server is SIGKILLed mid-stream and
// restarted from its append-only file; a fetch reply is lost on the wire. Runs on both
// `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisBroker } from "../broker/redis/broker.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { Message } from "../message.ts";
import { freePort, randomNamespace, TestRedis } from "./_redis_server.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("RedisBroker: survives a SIGKILLed Redis (AOF always): reconnects, loses nothing acked", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-redis-aof-"));
  let reconnects = 0;
  const server = await TestRedis.start([
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--dir",
    dir,
  ]);
  const broker = new RedisBroker({
    url: server.url,
    namespace: randomNamespace(),
    clientOptions: {
      reconnect: { initialDelay: 20, maxDelay: 200 },
      onEvent: (e) => void (e.type === "reconnect" && reconnects++),
    },
  });
  let worker: Worker | undefined;
  try {
    const runs = new Map<number, number>();
    let releaseGate!: () => void;
    const gate = new Promise<void>((r) => releaseGate = r);
    let gateStarted!: () => void;
    const inFlight = new Promise<void>((r) => gateStarted = r);
    const GATED = 30;
    const task = actor(async (n: number) => {
      if (n === GATED && !runs.has(n)) {
        gateStarted();
        await gate; // still running while Redis dies and comes back
      }
      runs.set(n, (runs.get(n) ?? 0) + 1);
    }, { actorName: "crashTask", queueName: "crash", broker, maxRetries: 0 });

    const acked = new Set<number>();
    for (let n = 0; n < 100; n++) {
      await task.send(n);
      acked.add(n);
    }
    worker = new Worker(broker, { queues: ["crash"], concurrency: 4, workerTimeout: 100 });
    await worker.start();
    await inFlight;

    // A producer that keeps sending through the crash: every send that resolved must run.
    let producing = true;
    const producer = (async () => {
      for (let n = 100; producing; n++) {
        try {
          await task.send(n);
          acked.add(n);
        } catch { /* not acked: may or may not run */ }
        await sleep(2);
      }
    })();
    await sleep(50);
    await server.kill();
    await sleep(300);
    await server.start(); // same port, same dir: replays the append-only file
    await sleep(100);
    releaseGate();
    await sleep(300);
    producing = false;
    await producer;

    await broker.join("crash", { timeout: 20_000 });
    await worker.join();
    const missing = [...acked].filter((n) => !runs.has(n));
    assert.deepEqual(missing, [], "acked messages that never ran");
    assert.equal(runs.get(GATED), 1, "the in-flight message completed, and its ack landed");
    assert.ok(acked.size > 110, `only ${acked.size} sends were acked`);
    assert.ok(reconnects >= 1, "the client never reconnected");
    const s = await broker.stats("crash");
    assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [0, 0, 0, 0]);
  } finally {
    await worker?.stop({ timeout: 1_000 });
    await broker.close();
    await server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A TCP proxy in front of a redis-server that, when armed, forwards the next command containing
 * `marker` and then cuts the connection instead of passing its reply back: the command ran,
 * the client never hears about it.
 */
async function lossyProxy(target: number) {
  const port = await freePort();
  const state = { armed: "", cut: 0 };
  const server = net.createServer((client) => {
    const upstream = net.createConnection({ host: "127.0.0.1", port: target });
    let dropReply = false;
    client.on("data", (d) => {
      if (state.armed && d.includes(state.armed)) {
        state.armed = "";
        dropReply = true;
      }
      upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (dropReply) {
        state.cut++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    port,
    state,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test("RedisBroker: messages taken by a fetch whose reply was lost are delivered again", async () => {
  const redis = await TestRedis.start();
  const proxy = await lossyProxy(redis.port);
  const broker = new RedisBroker({
    url: `redis://127.0.0.1:${proxy.port}/0`,
    namespace: randomNamespace(),
    clientOptions: { reconnect: { initialDelay: 10, maxDelay: 50 } },
  });
  try {
    broker.declareQueue("lost");
    for (let n = 0; n < 3; n++) {
      await broker.enqueue(new Message({ queueName: "lost", actorName: "a", args: [n] }));
    }
    const c = broker.consume("lost");
    await sleep(50); // let the consumer's first maintenance pass
    proxy.state.armed = "fetch";
    await assert.rejects(c.receive(2, { timeout: 500 }), /Lost the connection/);
    assert.equal(proxy.state.cut, 1);
    const s = await broker.stats("lost");
    assert.deepEqual([s.ready, s.inFlight], [1, 2], "the lost fetch did run");
    const got = await c.receive(10, { timeout: 500 });
    // Recovered ids come back in ack-set (set) order: every message, in some order.
    assert.deepEqual(got.map((m) => m.args[0] as number).sort((a, b) => a - b), [0, 1, 2]);
    for (const m of got) await c.ack(m);
    await c.close();
    assert.equal((await broker.stats("lost")).inFlight, 0);
  } finally {
    await broker.close();
    await proxy.close();
    await redis.kill();
  }
});
