import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actor,
  type Broker,
  type Consumer,
  currentMessage,
  defaultMiddleware,
  Message,
  MessageProxy,
  Middleware,
  pipeline,
  RateLimitExceeded,
  type ReceiveOptions,
  SkipMessage,
  StubBroker,
  Worker,
} from "../mod.ts";
import { Metrics, type SeriesSnapshot } from "../telemetry/mod.ts";
import { drainWith, sleep } from "./_helpers.ts";

function seriesOf(metrics: Metrics, actorName: string, queue = "default"): SeriesSnapshot {
  const s = metrics.snapshot().series.find((x) => x.actor === actorName && x.queue === queue);
  assert.ok(s, `a series for ${queue}/${actorName}`);
  return s;
}

function count(h: { counts: number[] }): number {
  return h.counts.reduce((a, b) => a + b, 0);
}

class SkipSome extends Middleware {
  override beforeProcessMessage(_b: Broker, m: MessageProxy): void {
    if (m.actorName === "skipped") throw new SkipMessage("not today");
  }
}

test("Metrics: every counter, gauge and histogram count is exact after a drain", async () => {
  const metrics = new Metrics();
  const broker = new StubBroker();
  broker.addMiddleware(new SkipSome());
  broker.addMiddleware(metrics);
  const ok = actor(function ok() {}, { broker });
  const seen = new Map<number, number>();
  const flaky = actor(function flaky(i: number) {
    const n = (seen.get(i) ?? 0) + 1;
    seen.set(i, n);
    if (n === 1) throw new Error("first try fails");
  }, { broker, minBackoff: 10, maxBackoff: 20 });
  const doomed = actor(function doomed() {
    throw new TypeError("always");
  }, { broker, maxRetries: 1, minBackoff: 10, maxBackoff: 20 });
  const skipped = actor(function skipped() {}, { broker });
  for (let i = 0; i < 20; i++) await ok.send();
  for (let i = 0; i < 5; i++) await flaky.send(i);
  for (let i = 0; i < 3; i++) await doomed.send();
  await skipped.send();
  await drainWith(broker, "default", { concurrency: 4 });

  const o = seriesOf(metrics, "ok");
  assert.deepEqual(
    [o.enqueued, o.processed, o.errors, o.retries, o.rejects, o.succeeded, o.inProgress],
    [20, 20, 0, 0, 0, 20, 0],
  );
  assert.equal(count(o.runMs), 20);
  assert.equal(count(o.waitSeconds), 20);

  // Each flaky message: one failed run, one retry (counted once, although it went through
  // default.DQ and back), one successful run.
  const f = seriesOf(metrics, "flaky");
  assert.deepEqual(
    [f.enqueued, f.processed, f.errors, f.retries, f.rejects, f.succeeded, f.failed, f.delayed],
    [5, 10, 5, 5, 0, 5, 0, 0],
  );
  assert.equal(count(f.runMs), 10);
  assert.equal(count(f.waitSeconds), 10);

  // Each doomed message: two failed runs, one retry, then dead-lettered.
  const d = seriesOf(metrics, "doomed");
  assert.deepEqual(
    [d.enqueued, d.processed, d.errors, d.retries, d.rejects, d.succeeded, d.failed],
    [3, 6, 6, 3, 3, 0, 0],
  );

  const s = seriesOf(metrics, "skipped");
  assert.deepEqual([s.processed, s.skipped, s.succeeded, s.errors], [1, 1, 0, 0]);

  // Nothing is labelled with a delay queue, and the gauges are back at zero.
  for (const x of metrics.snapshot().series) {
    assert.equal(x.queue, "default");
    assert.equal(x.inProgress, 0, `${x.actor} inProgress`);
    assert.equal(x.delayed, 0, `${x.actor} delayed`);
  }
});

test("Metrics: the in-progress gauge counts running actors, run time is measured", async () => {
  const metrics = new Metrics();
  const broker = new StubBroker({ middleware: [metrics] });
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const slow = actor(async function slow() {
    await gate;
  }, { broker });
  for (let i = 0; i < 3; i++) await slow.send();
  const worker = new Worker(broker, { concurrency: 8, workerTimeout: 50 });
  await worker.start();
  try {
    for (let i = 0; i < 200 && seriesOf(metrics, "slow").inProgress < 3; i++) await sleep(10);
    assert.equal(seriesOf(metrics, "slow").inProgress, 3);
    await sleep(30);
    release();
    await broker.join("default");
    await worker.join();
  } finally {
    await worker.stop();
  }
  const s = seriesOf(metrics, "slow");
  assert.equal(s.inProgress, 0);
  assert.equal(count(s.runMs), 3);
  assert.ok(s.runMs.sum >= 3 * 25, `run time ${s.runMs.sum} ms covers the 30 ms wait`);
});

test("Metrics: the delayed gauge goes up while held and back to zero (Dramatiq #672)", async () => {
  const metrics = new Metrics();
  // A probe after Metrics sees the gauge while the worker holds the message: this broker hands a
  // delayed message to the worker once it is due, and the worker moves it to its queue at once.
  const heldSeen: number[] = [];
  class Probe extends Middleware {
    override beforeDelayMessage(_b: Broker, m: MessageProxy): void {
      heldSeen.push(seriesOf(metrics, m.actorName, "jobs").delayed);
    }
  }
  const broker = new StubBroker({ middleware: [metrics, new Probe()] });
  let startedAt = 0;
  let seenOptions: Record<string, unknown> = {};
  const later = actor(function later() {
    startedAt = Date.now();
    seenOptions = { ...currentMessage()!.options };
  }, { broker, queueName: "jobs" });
  const sent = await later.sendWithOptions({ args: [], delay: 1_000 });
  const eta = sent.options.eta as number;
  await drainWith(broker, "jobs");
  assert.deepEqual(heldSeen, [1], "held once, labelled with the canonical queue");
  const s = seriesOf(metrics, "later", "jobs");
  assert.equal(s.delayed, 0);
  assert.deepEqual([s.enqueued, s.processed, s.retries], [1, 1, 0]);
  // The wait runs from the eta (recorded as ready_timestamp when the worker moved the message
  // out of jobs.DQ), not from the send.
  assert.equal(seenOptions.ready_timestamp, eta);
  assert.equal(seenOptions.eta, undefined);
  assert.equal(count(s.waitSeconds), 1);
  assert.ok(
    Math.abs(s.waitSeconds.sum - (startedAt - eta) / 1000) < 0.05,
    `wait ${s.waitSeconds.sum} s vs start - eta ${(startedAt - eta) / 1000} s`,
  );
  assert.ok(s.waitSeconds.sum < (startedAt - sent.messageTimestamp) / 1000 - 0.9);
});

/** A q.DQ consumer that hands out delayed messages before their eta, as Python Dramatiq's do. */
class EarlyDelayConsumer implements Consumer {
  handedBack: MessageProxy[] = [];
  #pending: MessageProxy[];
  constructor(messages: MessageProxy[]) {
    this.#pending = messages;
  }
  async receive(max: number, { timeout, signal }: ReceiveOptions): Promise<MessageProxy[]> {
    if (this.#pending.length === 0) await sleep(Math.min(timeout, signal?.aborted ? 0 : 20));
    return this.#pending.splice(0, max);
  }
  ack(): void {}
  nack(): void {}
  requeue(messages: MessageProxy[]): void {
    this.handedBack.push(...messages);
  }
  close(): void {}
}

test("Metrics: a worker stopping with held delayed messages brings the gauge back to zero", async () => {
  const metrics = new Metrics();
  const broker = new StubBroker({ middleware: [metrics] });
  actor(function never() {}, { broker });
  const eta = Date.now() + 60_000;
  const early = new EarlyDelayConsumer(
    [1, 2].map(() =>
      new MessageProxy({ queueName: "default.DQ", actorName: "never", options: { eta } })
    ),
  );
  const worker = new Worker(broker, {
    workerTimeout: 50,
    consume: (q) => q.endsWith(".DQ") ? early : broker.consume(q),
  });
  await worker.start();
  for (let i = 0; i < 200 && seriesOf(metrics, "never").delayed < 2; i++) await sleep(5);
  assert.equal(seriesOf(metrics, "never").delayed, 2);
  await worker.stop();
  assert.equal(seriesOf(metrics, "never").delayed, 0);
  assert.equal(early.handedBack.length, 2, "handed back to the broker");
});

test("Metrics: a rate-limit delay is a requeue, not a retry; time limits are counted", async () => {
  const metrics = new Metrics();
  const broker = new StubBroker();
  broker.addMiddleware(metrics);
  let calls = 0;
  const limited = actor(function limited() {
    if (++calls === 1) throw new RateLimitExceeded("busy");
  }, { broker, rateLimitDelay: 10 });
  const slow = actor(async function slow() {
    await sleep(2_000);
  }, { broker, timeLimit: 50, maxRetries: 0 });
  await limited.send();
  await slow.send();
  await drainWith(broker, "default");
  const l = seriesOf(metrics, "limited");
  assert.deepEqual(
    [l.enqueued, l.processed, l.errors, l.retries, l.requeued, l.succeeded, l.failed],
    [1, 2, 1, 0, 1, 1, 0],
  );
  const s = seriesOf(metrics, "slow");
  assert.deepEqual([s.processed, s.errors, s.timeLimits, s.rejects], [1, 1, 1, 1]);
});

test("Metrics: a message handed back unfinished at shutdown counts as requeued", async () => {
  const metrics = new Metrics();
  const broker = new StubBroker({ middleware: [metrics] });
  const started = Promise.withResolvers<void>();
  const stuck = actor(async function stuck() {
    started.resolve();
    await sleep(10_000);
  }, { broker });
  await stuck.send();
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  await started.promise;
  assert.equal(seriesOf(metrics, "stuck").inProgress, 1);
  await worker.stop({ timeout: 50 });
  const s = seriesOf(metrics, "stuck");
  assert.deepEqual([s.inProgress, s.requeued, s.processed, s.succeeded], [0, 1, 0, 0]);
  assert.equal((await broker.stats("default")).ready, 1, "the message is back on its queue");
  await broker.flush("default");
});

test("Metrics: pipeline steps are sends; a message for an unknown actor is a reject", async () => {
  const metrics = new Metrics();
  const broker = new StubBroker();
  broker.addMiddleware(metrics);
  const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
  await pipeline([inc.message(1), inc.message(), inc.message()], { broker }).run();
  await broker.enqueue(new Message({ queueName: "default", actorName: "ghost" }));
  await drainWith(broker, "default");
  const s = seriesOf(metrics, "inc");
  assert.deepEqual([s.enqueued, s.processed, s.succeeded], [3, 3, 3]);
  const g = seriesOf(metrics, "ghost");
  assert.deepEqual([g.enqueued, g.processed, g.rejects], [1, 0, 1]);
});

test("Metrics: counts are the same wherever it sits in the middleware stack", async () => {
  for (const first of [true, false]) {
    const metrics = new Metrics();
    const stack = defaultMiddleware();
    const broker = new StubBroker({
      middleware: first ? [metrics, ...stack] : [...stack, metrics],
    });
    let calls = 0;
    const flaky = actor(function flaky() {
      if (++calls <= 2) throw new Error("fails twice");
    }, { broker, minBackoff: 10, maxBackoff: 20 });
    await flaky.send();
    await drainWith(broker, "default");
    const f = seriesOf(metrics, "flaky");
    assert.deepEqual(
      [f.enqueued, f.processed, f.errors, f.retries, f.succeeded, f.inProgress, f.delayed],
      [1, 3, 2, 2, 1, 0, 0],
      `Metrics ${first ? "first" : "last"}`,
    );
  }
});

test("Metrics: a retry or delay release whose copy runs before its afterEnqueue is still one", () => {
  // The CLI's race, hook by hook: with a short backoff, the copy a retry (then a delay release)
  // enqueues is delivered, run and acked in this isolate before that enqueue's afterEnqueue.
  const metrics = new Metrics();
  const broker = new StubBroker();
  const id = "x-1";
  const run1 = new MessageProxy({ queueName: "q", actorName: "a", messageId: id, options: {} });
  metrics.beforeProcessMessage(broker, run1);
  metrics.afterProcessMessage(broker, run1, { error: new Error("first try fails") });
  const retry = new Message({
    queueName: "q.DQ",
    actorName: "a",
    messageId: id,
    options: { retries: 1, eta: Date.now() + 10 },
  });
  metrics.beforeEnqueue(broker, retry, 10);
  // (retry stored; before its afterEnqueue:) the original is acked, the DQ copy is held ...
  metrics.afterAck(broker, run1);
  const held = new MessageProxy({
    queueName: "q.DQ",
    actorName: "a",
    messageId: id,
    options: { retries: 1, eta: Date.now() },
  });
  metrics.beforeDelayMessage(broker, held);
  assert.equal(seriesOf(metrics, "a", "q").delayed, 1);
  // ... released (stored; before its afterEnqueue:) and the released copy runs and succeeds.
  const release = new Message({
    queueName: "q",
    actorName: "a",
    messageId: id,
    options: { retries: 1 },
  });
  metrics.beforeEnqueue(broker, release, undefined);
  const run2 = new MessageProxy({
    queueName: "q",
    actorName: "a",
    messageId: id,
    options: { retries: 1 },
  });
  metrics.beforeProcessMessage(broker, run2);
  metrics.afterProcessMessage(broker, run2, {});
  metrics.afterAck(broker, run2);
  metrics.afterEnqueue(broker, release, undefined);
  metrics.afterEnqueue(broker, retry, 10);

  const s = seriesOf(metrics, "a", "q");
  assert.deepEqual(
    [s.processed, s.errors, s.retries, s.succeeded, s.enqueued, s.delayed, s.inProgress],
    [2, 1, 1, 1, 0, 0, 0],
  );
});
