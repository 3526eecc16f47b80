// The operations as an in-code Worker uses them, on the StubBroker: cancelling running,
// prefetched, delayed and queued messages (Cancelled, no retry, a ResultFailure named
// Cancelled), progress, unique jobs sent by actors, the heartbeat record and events.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actor,
  type BrokerEvent,
  Cancelled,
  currentSignal,
  MemoryResultBackend,
  reportProgress,
  ResultFailure,
  Results,
  StubBroker,
  Worker,
} from "../mod.ts";
import { Metrics } from "../telemetry/mod.ts";
import { sleep } from "./_helpers.ts";

function setup() {
  const broker = new StubBroker();
  broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
  return broker;
}

/** Polls `check` every 20 ms until it is true; fails after 5 s. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function resultError(p: Promise<unknown>): Promise<ResultFailure> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ResultFailure) return e;
    throw e;
  }
  throw new Error("expected a ResultFailure");
}

test("Worker ops: a running actor sees Cancelled; acked, not retried, result Cancelled", async () => {
  const broker = setup();
  const reasons: string[] = [];
  let runs = 0;
  const wait = actor(async () => {
    runs++;
    const signal = currentSignal();
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
    reasons.push((signal.reason as Error).name);
  }, { actorName: "wait", broker, storeResults: true });
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  try {
    const msg = await wait.send();
    await until("the actor to start", () => runs === 1);
    assert.equal(await msg.cancel(), "running");
    await broker.join("default", { timeout: 5_000 });
    assert.deepEqual(reasons, ["Cancelled"]);
    const e = await resultError(msg.getResult({ block: true, timeout: 5_000 }));
    assert.equal(e.errorName, "Cancelled");
    const s = await broker.stats("default");
    assert.equal(s.dead + s.delayed + s.ready + s.inFlight, 0);
    assert.equal(runs, 1);
    assert.ok(["finished", "unknown"].includes(await msg.cancel()));
  } finally {
    await worker.stop({ timeout: 1_000 });
  }
});

test("Worker ops: an actor ignoring its signal is abandoned, as for a time limit", async () => {
  const broker = setup();
  let release!: () => void;
  const never = new Promise<void>((r) => release = r);
  let runs = 0;
  const stubborn = actor(async () => {
    runs++;
    await never; // ignores currentSignal()
  }, { actorName: "stubborn", broker, storeResults: true });
  const worker = new Worker(broker, { workerTimeout: 50, concurrency: 1 });
  await worker.start();
  try {
    const msg = await stubborn.send();
    const next = await stubborn.send();
    await until("the actor to start", () => runs === 1);
    assert.equal(await broker.cancel(msg.messageId), "running");
    // The worker stops waiting, takes the next message (which also waits: cancel it too).
    await until("the next message to start", () => runs === 2);
    await next.cancel();
    await broker.join("default", { timeout: 5_000 });
    assert.equal((await resultError(msg.getResult({ block: true }))).errorName, "Cancelled");
    assert.equal((await resultError(next.getResult({ block: true }))).errorName, "Cancelled");
    assert.equal((await broker.stats("default")).dead, 0);
  } finally {
    release();
    await worker.stop({ timeout: 1_000 });
  }
});

test("Worker ops: prefetched and delayed messages cancelled never run", async () => {
  const broker = setup();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const ran: number[] = [];
  const job = actor(async (n: number) => {
    ran.push(n);
    if (n === 1) await gate;
  }, { actorName: "job", broker, storeResults: true });
  const worker = new Worker(broker, { workerTimeout: 50, concurrency: 1, prefetch: 4 });
  await worker.start();
  try {
    const first = await job.send(1);
    const held = await job.send(2);
    const delayed = await job.sendWithOptions({ args: [3], delay: 60_000 });
    await until("the first to start", () => ran.length === 1);
    await until("the worker to hold the others", async () => {
      return (await broker.stats("default")).ready === 0;
    });
    assert.equal(await held.cancel(), "running"); // delivered to the worker
    // Held by the worker until its eta on some brokers, in the broker's delay queue on others.
    assert.ok(["running", "cancelled"].includes(await delayed.cancel()));
    await until("both to be settled", async () => (await broker.queueSize("default")) === 1);
    release();
    await broker.join("default", { timeout: 5_000 });
    assert.deepEqual(ran, [1]);
    assert.equal((await resultError(held.getResult())).errorName, "Cancelled");
    assert.equal((await resultError(delayed.getResult())).errorName, "Cancelled");
    assert.equal(await first.getResult(), null);
  } finally {
    release();
    await worker.stop({ timeout: 1_000 });
  }
});

test("Worker ops: a message cancelled while queued never runs; its result is Cancelled", async () => {
  const broker = setup();
  let runs = 0;
  const job = actor(() => void runs++, { actorName: "job", broker, storeResults: true });
  const msg = await job.send();
  const other = await job.send();
  assert.equal(await msg.cancel(), "cancelled");
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  try {
    await broker.join("default", { timeout: 5_000 });
    await worker.join();
  } finally {
    await worker.stop({ timeout: 1_000 });
  }
  assert.equal(runs, 1);
  assert.equal((await resultError(msg.getResult())).errorName, "Cancelled");
  assert.equal(await other.getResult(), null);
});

test("Worker ops: reportProgress in a loop; the last value is readable, also mid-run", async () => {
  const broker = new StubBroker();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let reported = false;
  let badValue = false;
  const work = actor(async () => {
    for (let i = 1; i <= 1000; i++) reportProgress({ done: i, of: 1000 });
    reported = true;
    try {
      reportProgress((() => {}) as never);
    } catch (e) {
      badValue = e instanceof TypeError;
    }
    await gate;
    reportProgress("finishing");
  }, { actorName: "work", broker });
  let writes = 0;
  const worker = new Worker(broker, {
    workerTimeout: 50,
    progress: (m, v) => {
      writes++;
      return broker.setProgress(m.messageId, v);
    },
  });
  await worker.start();
  try {
    const msg = await work.send();
    await until("the loop to end", () => reported);
    await until("the last value to be written", async () => {
      const p = await msg.getProgress();
      return JSON.stringify(p?.value) === JSON.stringify({ done: 1000, of: 1000 });
    });
    assert.ok(writes < 100, `${writes} writes for 1000 reports`);
    const running = worker.runningMessages();
    assert.equal(running.length, 1);
    assert.deepEqual(running[0].progress, { done: 1000, of: 1000 });
    release();
    await broker.join("default", { timeout: 5_000 });
    await worker.join();
    assert.equal((await msg.getProgress())?.value, "finishing");
    assert.equal(badValue, true);
  } finally {
    release();
    await worker.stop({ timeout: 1_000 });
  }
});

test("Worker ops: reportProgress outside a worker does nothing", () => {
  reportProgress(0.5);
});

test("Worker ops: actors with uniqueKey and debounce send unique jobs", async () => {
  const broker = new StubBroker();
  const sync = actor((_user: number) => {}, {
    actorName: "sync",
    broker,
    uniqueKey: (user: number) => `sync:${user}`,
  });
  const a = await sync.send(1);
  const b = await sync.send(1);
  const c = await sync.send(2);
  assert.equal(b.messageId, a.messageId);
  assert.notEqual(c.messageId, a.messageId);
  const d = await sync.sendWithOptions({ args: [3], uniqueKey: "custom" });
  const e = await sync.sendWithOptions({ args: [4], uniqueKey: "custom" });
  assert.equal(e.messageId, d.messageId);
  assert.equal((await broker.stats("default")).ready, 3);

  const save = actor((_doc: string, _text: string) => {}, {
    actorName: "save",
    broker,
    queueName: "saves",
    uniqueKey: (doc: string) => `save:${doc}`,
    debounce: 60_000,
  });
  const s1 = await save.send("d1", "hello");
  const s2 = await save.send("d1", "hello world");
  assert.equal(s2.messageId, s1.messageId);
  assert.deepEqual(s2.args, ["d1", "hello world"]);
  const st = await broker.stats("saves");
  assert.equal(st.delayed, 1);
  assert.equal(st.ready, 0);
  assert.throws(
    () => actor(() => {}, { actorName: "bad", broker, uniqueKey: 3 as never }),
    /uniqueKey must be a string or a function/,
  );
  const bad = actor((_n: number) => {}, {
    actorName: "bad2",
    broker,
    uniqueKey: (() => 3) as never,
  });
  await assert.rejects(bad.send(1), /uniqueKey option must return a string/);
});

test("Worker ops: the heartbeat record is published, lists running and metrics, then removed", async () => {
  const broker = new StubBroker();
  const metrics = new Metrics();
  broker.addMiddleware(metrics);
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let started = false;
  const job = actor(async () => {
    started = true;
    reportProgress(7);
    await gate;
  }, { actorName: "job", broker, queueName: "hb" });
  const worker = new Worker(broker, { workerTimeout: 50, concurrency: 3, heartbeat: 100 });
  await worker.start();
  try {
    await job.send();
    await until("the actor to start", () => started);
    await until("a record listing it", async () => {
      const w = (await broker.workers()).find((r) => r.workerId === worker.workerId);
      return w?.running.length === 1 && w.running[0].progress === 7;
    });
    const w = (await broker.workers()).find((r) => r.workerId === worker.workerId)!;
    assert.deepEqual(w.queues, ["hb"]);
    assert.equal(w.concurrency, 3);
    assert.match(w.runtime, /^(deno|bun) /);
    assert.ok(w.pid > 0);
    assert.ok(w.startedAt <= w.heartbeatAt);
    assert.equal(w.running[0].actorName, "job");
    assert.equal(w.running[0].queueName, "hb");
    assert.ok(Array.isArray(w.metrics?.series));
    release();
    await broker.join("hb", { timeout: 5_000 });
  } finally {
    release();
    await worker.stop({ timeout: 1_000 });
  }
  assert.ok(!(await broker.workers()).some((r) => r.workerId === worker.workerId));
});

test("Worker ops: events for completed, retried, dead-lettered and cancelled messages", async () => {
  const broker = new StubBroker();
  const stop = new AbortController();
  const seen: BrokerEvent[] = [];
  const reading = (async () => {
    for await (const e of broker.events({ signal: stop.signal })) seen.push(e);
  })();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let attempts = 0;
  const ok = actor(() => {}, { actorName: "ok", broker });
  const flaky = actor(() => {
    if (attempts++ === 0) throw new Error("first try fails\nsecond line");
  }, { actorName: "flaky", broker, minBackoff: 10, maxBackoff: 20 });
  const bad = actor(() => {
    throw new TypeError("always");
  }, { actorName: "bad", broker, maxRetries: 0 });
  const slow = actor(async () => {
    await gate;
  }, { actorName: "slow", broker });
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  try {
    const m1 = await ok.send();
    const m2 = await flaky.send();
    const m3 = await bad.send();
    const m4 = await slow.send();
    await until("slow to run", () => worker.runningMessages().some((r) => r.actorName === "slow"));
    assert.equal(await m4.cancel(), "running");
    await broker.join("default", { timeout: 5_000, failFast: false });
    await until("the events", () => seen.length >= 5);
    const types = (id: string) => seen.filter((e) => e.messageId === id).map((e) => e.type);
    assert.deepEqual(types(m1.messageId), ["completed"]);
    assert.deepEqual(types(m2.messageId), ["retried", "completed"]);
    assert.deepEqual(types(m3.messageId), ["dead-lettered"]);
    assert.deepEqual(types(m4.messageId), ["cancelled"]);
    const retried = seen.find((e) => e.type === "retried")!;
    assert.equal(retried.error, "Error: first try fails");
    assert.equal(retried.workerId, worker.workerId);
    assert.equal(retried.queueName, "default");
    assert.equal(seen.find((e) => e.type === "dead-lettered")!.error, "TypeError: always");
  } finally {
    release();
    await worker.stop({ timeout: 1_000 });
    stop.abort();
    await reading;
  }
});

test("Worker ops: worker.cancel() aborts a held message by id", async () => {
  const broker = new StubBroker();
  let reason: unknown;
  const job = actor(async () => {
    const signal = currentSignal();
    await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
    reason = signal.reason;
  }, { actorName: "job", broker });
  const worker = new Worker(broker, { workerTimeout: 50, cancelPoll: false });
  await worker.start();
  try {
    const msg = await job.send();
    await until("it to run", () => worker.runningMessages().length === 1);
    assert.equal(worker.cancel(["nope"]), 0);
    assert.equal(worker.cancel([msg.messageId]), 1);
    await broker.join("default", { timeout: 5_000 });
    assert.ok(reason instanceof Cancelled);
  } finally {
    await worker.stop({ timeout: 1_000 });
  }
});
