// The behaviour every broker must have: one suite, run against each broker
// (tests/stub_broker_test.ts, tests/file_broker_test.ts, tests/redis_broker_test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type Broker,
  Message,
  type MessageProxy,
  QueueJoinTimeout,
  QueueNotFound,
  Worker,
} from "../mod.ts";
import { actor } from "../actor.ts";

/** Options of the suite. */
export interface SuiteOptions {
  /** Skip tests that need the broker to order by priority (Redis has no broker priorities). */
  brokerPriorities?: boolean;
}

async function drain(broker: Broker, queue: string, max = 100): Promise<Message[]> {
  const c = broker.consume(queue);
  const out: Message[] = [];
  for (;;) {
    const batch = await c.receive(max, { timeout: 50 });
    if (batch.length === 0) break;
    for (const m of batch) {
      out.push(m);
      await c.ack(m);
    }
  }
  await c.close();
  return out;
}

function msg(queueName: string, n: number, options = {}): Message {
  return new Message({ queueName, actorName: "suiteActor", args: [n], options });
}

/** Registers the shared broker tests for one broker. */
export function brokerSuite(
  name: string,
  makeBroker: () => Broker | Promise<Broker>,
  options: SuiteOptions = {},
): void {
  const t = (title: string, fn: (broker: Broker) => Promise<void>) =>
    test(`${name}: ${title}`, async () => {
      const broker = await makeBroker();
      try {
        await fn(broker);
      } finally {
        await broker.close();
      }
    });

  t("enqueue to an undeclared queue throws QueueNotFound", async (broker) => {
    await assert.rejects(broker.enqueue(msg("nowhere", 1)), QueueNotFound);
  });

  t("messages come back in FIFO order with their fields intact", async (broker) => {
    broker.declareQueue("fifo");
    const sent: Message[] = [];
    for (let i = 0; i < 20; i++) {
      sent.push(
        await broker.enqueue(
          new Message({
            queueName: "fifo",
            actorName: "suiteActor",
            args: [i, "é✓", { nested: [true, null] }],
            kwargs: { k: i },
            options: { custom: "x" },
          }),
        ),
      );
    }
    const got = await drain(broker, "fifo");
    assert.deepEqual(got.map((m) => m.args[0]), sent.map((m) => m.args[0]));
    assert.deepEqual(got[3].args, [3, "é✓", { nested: [true, null] }]);
    assert.deepEqual(got[3].kwargs, { k: 3 });
    assert.equal(got[3].options.custom, "x");
    assert.equal(got[3].messageId, sent[3].messageId);
    assert.equal(got[3].messageTimestamp, sent[3].messageTimestamp);
    assert.equal(got[3].queueName, "fifo");
  });

  if (options.brokerPriorities !== false) {
    t("lower priority is delivered first, FIFO within a priority", async (broker) => {
      broker.declareQueue("prio");
      const order = [[5, 0], [0, 1], [5, 2], [1, 3], [0, 4]];
      for (const [p, n] of order) await broker.enqueue(msg("prio", n, { priority: p }));
      const got = await drain(broker, "prio");
      assert.deepEqual(got.map((m) => m.args[0]), [1, 4, 3, 0, 2]);
    });
  }

  t("receive waits up to its timeout and returns [] when nothing comes", async (broker) => {
    broker.declareQueue("empty");
    const c = broker.consume("empty");
    const start = Date.now();
    assert.deepEqual(await c.receive(10, { timeout: 100 }), []);
    assert.ok(Date.now() - start >= 90, "returned before the timeout");
    await c.close();
  });

  t("a waiting receive wakes when a message is enqueued", async (broker) => {
    broker.declareQueue("wake");
    const c = broker.consume("wake");
    const pending = c.receive(10, { timeout: 5_000 });
    await new Promise((r) => setTimeout(r, 50));
    const start = Date.now();
    await broker.enqueue(msg("wake", 1));
    const got = await pending;
    assert.equal(got.length, 1);
    assert.ok(Date.now() - start < 1_000, "woke too late");
    await c.ack(got[0]);
    await c.close();
  });

  t("an aborted signal ends a waiting receive", async (broker) => {
    broker.declareQueue("abort");
    const c = broker.consume("abort");
    const ac = new AbortController();
    const pending = c.receive(10, { timeout: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 30);
    const start = Date.now();
    assert.deepEqual(await pending, []);
    assert.ok(Date.now() - start < 2_000);
    await c.close();
  });

  t("receive returns at most max messages", async (broker) => {
    broker.declareQueue("max");
    for (let i = 0; i < 10; i++) await broker.enqueue(msg("max", i));
    const c = broker.consume("max");
    const batch = await c.receive(3, { timeout: 100 });
    assert.ok(batch.length >= 1 && batch.length <= 3, `got ${batch.length}`);
    await c.requeue(batch);
    await c.close();
    assert.equal((await drain(broker, "max")).length, 10);
  });

  t("requeued messages are delivered again, first", async (broker) => {
    broker.declareQueue("rq");
    for (let i = 0; i < 3; i++) await broker.enqueue(msg("rq", i));
    const c = broker.consume("rq");
    const first = await c.receive(1, { timeout: 100 });
    assert.equal(first[0].args[0], 0);
    await c.requeue(first);
    await c.close();
    const got = await drain(broker, "rq");
    assert.deepEqual(got.map((m) => m.args[0]).sort(), [0, 1, 2]);
  });

  t("a delayed message is invisible until due, then delivered on q.DQ", async (broker) => {
    broker.declareQueue("later");
    const sent = await broker.enqueue(msg("later", 1), { delay: 300 });
    assert.equal(sent.queueName, "later.DQ");
    assert.equal(typeof sent.options.eta, "number");
    const eta = sent.options.eta as number;
    const c = broker.consume("later.DQ");
    const start = Date.now();
    let got: Message[] = [];
    while (got.length === 0 && Date.now() - start < 5_000) {
      got = await c.receive(10, { timeout: 1_000 });
    }
    // Compared with the eta the broker stamped, not with when enqueue returned
    // (a slow fsync makes enqueue return late, which is not an early delivery).
    const early = eta - Date.now();
    assert.equal(got.length, 1, "the delayed message was not delivered within 5 s of its eta");
    assert.ok(early <= 0, `delivered ${early} ms before its eta`);
    await c.ack(got[0] as never);
    await c.close();
  });

  t("nack moves a message to the dead letters; they can be requeued and purged", async (broker) => {
    broker.declareQueue("dlq");
    await broker.enqueue(msg("dlq", 1));
    await broker.enqueue(msg("dlq", 2));
    const c = broker.consume("dlq");
    const got = await c.receive(2, { timeout: 200 });
    for (const m of got) await c.nack(m);
    await c.close();
    const stats = await broker.stats("dlq");
    assert.equal(stats.dead, got.length);
    const dead = await broker.deadLetters("dlq");
    assert.deepEqual(dead.map((m) => m.args[0]).sort(), got.map((m) => m.args[0]).sort());
    assert.equal(await broker.requeueDeadLetters("dlq", [dead[0].messageId]), 1);
    assert.equal((await broker.stats("dlq")).dead, got.length - 1);
    const again = await drain(broker, "dlq");
    assert.ok(again.some((m) => m.messageId === dead[0].messageId));
    assert.equal(await broker.purgeDeadLetters("dlq"), got.length - 1);
    assert.equal((await broker.stats("dlq")).dead, 0);
  });

  t("stats count ready, delayed and in-flight messages", async (broker) => {
    broker.declareQueue("stats");
    await broker.enqueue(msg("stats", 1));
    await broker.enqueue(msg("stats", 2));
    await broker.enqueue(msg("stats", 3), { delay: 60_000 });
    const c = broker.consume("stats");
    const got = await c.receive(1, { timeout: 200 });
    const s = await broker.stats("stats");
    assert.deepEqual(
      { ready: s.ready, delayed: s.delayed, inFlight: s.inFlight, dead: s.dead },
      { ready: 1, delayed: 1, inFlight: 1, dead: 0 },
    );
    await c.ack(got[0]);
    await c.close();
  });

  t("join waits for the queue to drain, and times out", async (broker) => {
    broker.declareQueue("join");
    await broker.enqueue(msg("join", 1));
    await assert.rejects(broker.join("join", { timeout: 100 }), QueueJoinTimeout);
    const c = broker.consume("join");
    const joined = broker.join("join", { timeout: 5_000 });
    const got = await c.receive(1, { timeout: 500 });
    await c.ack(got[0]);
    await joined;
    await c.close();
  });

  t("queueSize counts ready, delayed and in-flight messages, not dead letters", async (broker) => {
    broker.declareQueue("size");
    assert.equal(await broker.queueSize("size"), 0);
    for (let i = 0; i < 3; i++) await broker.enqueue(msg("size", i));
    await broker.enqueue(msg("size", 3), { delay: 60_000 });
    assert.equal(await broker.queueSize("size"), 4);
    assert.equal(await broker.queueSize("size.DQ"), 4, "any name of the queue");
    const c = broker.consume("size");
    const got: MessageProxy[] = [];
    while (got.length < 3) got.push(...await c.receive(3 - got.length, { timeout: 1_000 }));
    assert.equal(await broker.queueSize("size"), 4, "in flight still counts");
    await c.ack(got[0]);
    await c.nack(got[1]);
    assert.equal(await broker.queueSize("size"), 2);
    assert.equal((await broker.stats("size")).dead, 1);
    await c.requeue([got[2]]);
    assert.equal(await broker.queueSize("size"), 2);
    await c.close();
    await broker.flush("size");
    assert.equal(await broker.queueSize("size"), 0);
  });

  t("flush drops ready and delayed messages", async (broker) => {
    broker.declareQueue("flush");
    await broker.enqueue(msg("flush", 1));
    await broker.enqueue(msg("flush", 2), { delay: 60_000 });
    await broker.flush("flush");
    const s = await broker.stats("flush");
    assert.equal(s.ready + s.delayed, 0);
    await broker.join("flush", { timeout: 1_000 });
  });

  t("a Worker runs actors, retries failures and dead-letters them", async (broker) => {
    const seen: number[] = [];
    let failures = 0;
    const ok = actor((n: number) => void seen.push(n), {
      actorName: "suiteOk",
      queueName: "work",
      broker,
    });
    const bad = actor(() => {
      failures++;
      throw new Error("always fails");
    }, { actorName: "suiteBad", queueName: "work", broker, maxRetries: 2, minBackoff: 10 });
    for (let i = 0; i < 50; i++) await ok.send(i);
    await bad.send();
    const worker = new Worker(broker, { queues: ["work"], concurrency: 4, workerTimeout: 50 });
    await worker.start();
    try {
      await broker.join("work", { timeout: 10_000, failFast: false });
    } finally {
      await worker.stop({ timeout: 1_000 });
    }
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
    assert.equal(failures, 3);
    const dead = await broker.deadLetters("work");
    assert.equal(dead.length, 1);
    assert.equal(dead[0].actorName, "suiteBad");
    assert.equal(dead[0].options.retries, 2, "the retries done");
  });

  t("a stopped Worker hands unstarted messages back", async (broker) => {
    let started = 0;
    const slow = actor(async () => {
      started++;
      await new Promise((r) => setTimeout(r, 100));
    }, { actorName: "suiteSlow", queueName: "handback", broker });
    for (let i = 0; i < 20; i++) await slow.send();
    const worker = new Worker(broker, { queues: ["handback"], concurrency: 2, workerTimeout: 50 });
    await worker.start();
    await new Promise((r) => setTimeout(r, 50));
    await worker.stop({ timeout: 5_000 });
    const s = await broker.stats("handback");
    assert.equal(s.inFlight, 0);
    assert.equal(s.ready, 20 - started);
  });
}
