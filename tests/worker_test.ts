import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import {
  actor,
  ActorNotFound,
  type Broker,
  currentMessage,
  FileBroker,
  Message,
  StubBroker,
  Worker,
} from "../mod.ts";
import { drainWith, sleep } from "./_helpers.ts";

async function waitFor(check: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not true after ${timeout} ms: ${check}`);
    await sleep(10);
  }
}

test("Worker: never more than `concurrency` messages run at once", async () => {
  const broker = new StubBroker();
  let running = 0;
  let peak = 0;
  const a = actor(async function a() {
    peak = Math.max(peak, ++running);
    await sleep(5);
    running--;
  }, { broker });
  for (let i = 0; i < 60; i++) await a.send();
  await drainWith(broker, "default", { concurrency: 7 });
  assert.equal(peak, 7);
});

/**
 * A `gate` actor that holds the worker's slot until `release()`, and `low` (priority 10, on the
 * gate's queue) and `high` (priority 0, on another queue) actors that record their runs in `order`.
 */
function priorityActors(broker: Broker, gateQueue: string, highQueue: string) {
  const order: string[] = [];
  let release!: () => void;
  const gateOpen = new Promise<void>((r) => release = r);
  let gateStarted!: () => void;
  const started = new Promise<void>((r) => gateStarted = r);
  const gate = actor(async function gate() {
    gateStarted();
    await gateOpen;
  }, { broker, queueName: gateQueue });
  const low = actor(function low(n: number) {
    order.push(`low${n}`);
  }, { broker, priority: 10, queueName: gateQueue });
  const high = actor(function high(n: number) {
    order.push(`high${n}`);
  }, { broker, priority: 0, queueName: highQueue });
  return { order, release, started, gate, low, high };
}

test("Worker: lower priority runs first across actors and queues", async () => {
  const broker = new StubBroker();
  const { order, release, started, gate, low, high } = priorityActors(broker, "q1", "q2");
  const worker = new Worker(broker, { concurrency: 1, prefetch: 10, workerTimeout: 50 });
  await worker.start();
  await gate.send();
  await started;
  for (let i = 0; i < 3; i++) {
    await low.send(i);
    await high.send(i);
  }
  await sleep(50); // both consumers prefetch while the gate holds the only slot
  release();
  await broker.join("q1");
  await broker.join("q2");
  await worker.stop();
  assert.deepEqual(order, ["high0", "high1", "high2", "low0", "low1", "low2"]);
});

test("Worker: a delayed message runs after its delay, not before", async () => {
  const broker = new StubBroker();
  const ran: [string, number][] = [];
  const a = actor(function a(tag: string) {
    ran.push([tag, Date.now()]);
  }, { broker });
  const start = Date.now();
  await a.sendWithOptions({ args: ["later"], delay: 200 });
  await a.send("now");
  await drainWith(broker);
  assert.deepEqual(ran.map((r) => r[0]), ["now", "later"]);
  const waited = ran[1][1] - start;
  assert.ok(waited >= 195 && waited < 1_000, `ran after ${waited} ms`);
  const s = await broker.stats("default");
  assert.equal(s.ready + s.delayed + s.inFlight, 0);
});

test("Worker: pause() stops taking messages, resume() continues", async () => {
  const broker = new StubBroker();
  let ran = 0;
  const a = actor(function a() {
    ran++;
  }, { broker });
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  worker.pause();
  await a.send();
  await sleep(100);
  assert.equal(ran, 0);
  worker.resume();
  await broker.join("default", { timeout: 2_000 });
  assert.equal(ran, 1);
  await worker.stop();
});

for (
  const [name, make] of [
    ["StubBroker", () => ({ broker: new StubBroker() as Broker, cleanup: () => {} })],
    ["FileBroker", () => {
      const dir = mkdtempSync(join(tmpdir(), "dramatis-pause-"));
      return {
        broker: new FileBroker({ dir }) as Broker,
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    }],
  ] as const
) {
  test(`Worker (${name}): pause() stops the fetch waiting on the broker; resume() runs what is held in priority order`, async () => {
    const { broker, cleanup } = make();
    // A long workerTimeout: each consumer waits on the broker for seconds when idle.
    const worker = new Worker(broker, { concurrency: 1, prefetch: 20, workerTimeout: 10_000 });
    try {
      const { order, release, started, gate, low, high } = priorityActors(broker, "slow", "fast");
      await worker.start();
      await gate.send();
      await started;
      for (let i = 0; i < 3; i++) await low.send(i);
      await waitFor(async () => (await broker.stats("slow")).ready === 0); // held by the worker
      await worker.pause(); // the consumer of "fast" was waiting on the broker
      for (let i = 0; i < 3; i++) await high.send(i);
      release();
      await sleep(300);
      assert.deepEqual(order, [], "nothing starts while paused");
      const fast = await broker.stats("fast");
      assert.equal(fast.ready, 3, "a message sent after pause() resolved was taken");
      assert.equal(fast.inFlight, 0);
      worker.resume();
      await waitFor(() => order.length === 6);
      await broker.join("slow", { timeout: 5_000 });
      assert.deepEqual(order, ["high0", "high1", "high2", "low0", "low1", "low2"]);
    } finally {
      await worker.stop({ timeout: 1_000 });
      await broker.close();
      cleanup();
    }
  });
}

test("Worker: pause() before start() and twice is fine; stop() while paused hands messages back", async () => {
  const broker = new StubBroker();
  let ran = 0;
  const a = actor(function a() {
    ran++;
  }, { broker });
  await a.send();
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.pause();
  await worker.start();
  await worker.pause();
  await sleep(100);
  assert.equal(ran, 0);
  await worker.stop();
  assert.equal((await broker.stats("default")).ready, 1);
  await drainWith(broker);
  assert.equal(ran, 1);
});

test("Worker: stop() lets in-flight messages finish and acks them", async () => {
  const broker = new StubBroker();
  const finished: number[] = [];
  let startedCount = 0;
  const a = actor(async function a(n: number) {
    startedCount++;
    await sleep(150);
    finished.push(n);
  }, { broker });
  for (let i = 0; i < 10; i++) await a.send(i);
  const worker = new Worker(broker, { concurrency: 3, workerTimeout: 50 });
  await worker.start();
  await sleep(50);
  await worker.stop({ timeout: 5_000 });
  assert.equal(startedCount, 3);
  assert.equal(finished.length, 3, "in-flight messages finished");
  const s = await broker.stats("default");
  assert.equal(s.inFlight, 0);
  assert.equal(s.ready, 7, "unstarted messages were handed back");
  // A new worker picks up exactly the rest.
  await drainWith(broker, "default", { concurrency: 3 });
  assert.deepEqual(finished.sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("Worker: stop() past its timeout aborts in-flight work and hands it back", async () => {
  const broker = new StubBroker();
  let attempts = 0;
  const a = actor(async function stuck() {
    attempts++;
    if (attempts === 1) await sleep(2_000);
  }, { broker });
  await a.send();
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  await sleep(30);
  const t0 = Date.now();
  await worker.stop({ timeout: 100 });
  assert.ok(Date.now() - t0 < 1_000);
  assert.equal((await broker.stats("default")).ready, 1);
  assert.equal(broker.deadLettersByQueue.get("default")!.length, 0);
  await drainWith(broker);
  assert.equal(attempts, 2);
});

test("Worker: currentMessage() works in nested async calls", async () => {
  const broker = new StubBroker();
  const seen: (string | undefined)[] = [];
  async function deep() {
    await sleep(1);
    await Promise.resolve();
    return currentMessage()?.messageId;
  }
  const a = actor(async function a() {
    seen.push(await deep());
  }, { broker });
  const sent = [await a.send(), await a.send(), await a.send()];
  await drainWith(broker, "default", { concurrency: 3 });
  assert.deepEqual(seen.sort(), sent.map((m) => m.messageId).sort());
  assert.equal(currentMessage(), undefined);
});

test("Worker: a message for an unknown actor is dead-lettered and the worker goes on", async () => {
  const broker = new StubBroker();
  let ran = 0;
  const a = actor(function a() {
    ran++;
  }, { broker });
  await broker.enqueue(new Message({ queueName: "default", actorName: "nobody", args: [] }));
  await a.send();
  await drainWith(broker);
  assert.equal(ran, 1);
  const dead = broker.deadLettersByQueue.get("default")!;
  assert.equal(dead.length, 1);
  assert.ok(dead[0].error instanceof ActorNotFound);
});

test("Worker: rejects bad options", () => {
  const broker = new StubBroker();
  assert.throws(() => new Worker(broker, { concurrency: 0 }), /concurrency must be a positive/);
  assert.throws(() => new Worker(broker, { workerTimeout: 1.5 }), /workerTimeout/);
});
