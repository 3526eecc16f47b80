// The semantics of the broker operations (OPS-SPEC.md, broker/ops.ts) every broker with them
// follows: one suite, each block gated by `broker.capabilities`, run against the StubBroker
// (tests/ops_stub_test.ts) and the file and Redis brokers.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type Broker,
  type BrokerCapabilities,
  type BrokerEvent,
  Message,
  type MessageProxy,
  type WorkerRecord,
} from "../mod.ts";
import { opsWorkerSuite } from "./_ops_worker_suite.ts";

/** Options of the suite. */
export interface OpsSuiteOptions {
  /** Skip the blocks that wait for timers (ttl expiry, pause settling). Default false. */
  quick?: boolean;
}

/** What a test body gets: the broker and a fresh queue name declared on it. */
export interface OpsContext {
  broker: Broker;
  /** A queue name no other test uses (declared). */
  queue: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function msg(queueName: string, n: number, options = {}): Message {
  return new Message({ queueName, actorName: "opsActor", args: [n], options });
}

/** Receives until `want` messages came or `timeout` ms passed (not acked). */
async function receiveSome(
  broker: Broker,
  queue: string,
  options: { want?: number; timeout?: number } = {},
): Promise<{ got: MessageProxy[]; close: () => Promise<void> }> {
  const { want = 1, timeout = 5_000 } = options;
  const c = broker.consume(queue);
  const got: MessageProxy[] = [];
  const deadline = Date.now() + timeout;
  while (got.length < want && Date.now() < deadline) {
    got.push(...await c.receive(want - got.length, { timeout: Math.min(200, timeout) }));
  }
  return { got, close: async () => await c.close() };
}

/** Registers the shared operation tests for one broker. */
export function opsSuite(
  name: string,
  makeBroker: () => Broker | Promise<Broker>,
  options: OpsSuiteOptions = {},
): void {
  const t = (
    cap: keyof BrokerCapabilities,
    title: string,
    fn: (ctx: OpsContext) => Promise<void>,
  ) =>
    test(`${name} ops (${cap}): ${title}`, async () => {
      const broker = await makeBroker();
      const queue = `ops_${crypto.randomUUID().slice(0, 8)}`;
      try {
        if (!broker.capabilities[cap]) return; // the broker does not have it: nothing to test
        broker.declareQueue(queue);
        await fn({ broker, queue });
      } finally {
        try {
          if (broker.getDeclaredQueues().has(queue)) {
            await broker.flush(queue);
            await broker.purgeDeadLetters(queue);
          }
        } finally {
          await broker.close();
        }
      }
    });

  // ---- cancel ----

  t("cancel", "a queued message is cancelled and never delivered", async ({ broker, queue }) => {
    const m = await broker.enqueue(msg(queue, 1));
    const keep = await broker.enqueue(msg(queue, 2));
    assert.equal(await broker.cancel(m.messageId), "cancelled");
    const s = await broker.stats(queue);
    assert.equal(s.ready, 1);
    assert.equal(s.dead, 0);
    const { got, close } = await receiveSome(broker, queue, { want: 2, timeout: 1_000 });
    await close();
    assert.deepEqual(got.map((x) => x.messageId), [keep.messageId]);
    assert.ok(["finished", "unknown"].includes(await broker.cancel(m.messageId)));
  });

  t("cancel", "a delayed message is cancelled", async ({ broker, queue }) => {
    const m = await broker.enqueue(msg(queue, 1), { delay: 60_000 });
    assert.equal((await broker.stats(queue)).delayed, 1);
    assert.equal(await broker.cancel(m.messageId), "cancelled");
    const s = await broker.stats(queue);
    assert.equal(s.delayed, 0);
    assert.equal(s.dead, 0);
    assert.equal(await broker.queueSize(queue), 0);
  });

  t("cancel", "a running message is marked; cancelled() lists it", async ({ broker, queue }) => {
    const m = await broker.enqueue(msg(queue, 1));
    const other = await broker.enqueue(msg(queue, 2));
    const { got, close } = await receiveSome(broker, queue, { want: 2 });
    try {
      assert.equal(got.length, 2);
      assert.deepEqual(await broker.cancelled([m.messageId, other.messageId]), new Set());
      assert.equal(await broker.cancel(m.messageId), "running");
      assert.deepEqual(
        await broker.cancelled([m.messageId, other.messageId, "nope"]),
        new Set([
          m.messageId,
        ]),
      );
      const c = broker.consume(queue);
      for (const x of got) await c.ack(x);
      await c.close();
    } finally {
      await close();
    }
    assert.equal(await broker.queueSize(queue), 0);
  });

  t("cancel", "an unknown id says unknown; a finished one finished or unknown", async (ctx) => {
    const { broker, queue } = ctx;
    assert.equal(await broker.cancel(crypto.randomUUID()), "unknown");
    const m = await broker.enqueue(msg(queue, 1));
    const { got, close } = await receiveSome(broker, queue);
    const c = broker.consume(queue);
    await c.ack(got[0]);
    await c.close();
    await close();
    assert.ok(["finished", "unknown"].includes(await broker.cancel(m.messageId)));
  });

  // ---- unique ----

  const uniq = (queue: string, n: number, key: string, more = {}) =>
    msg(queue, n, { unique_key: key, ...more });

  t("unique", "a second send while the holder is queued resolves to it", async (ctx) => {
    const { broker, queue } = ctx;
    const key = `k-${crypto.randomUUID()}`;
    const a = await broker.enqueue(uniq(queue, 1, key));
    const b = await broker.enqueue(uniq(queue, 2, key));
    assert.equal(b.messageId, a.messageId);
    assert.deepEqual(b.args, [1]);
    assert.equal((await broker.stats(queue)).ready, 1);
    // Another key, and no key at all, are not affected.
    await broker.enqueue(uniq(queue, 3, `${key}-other`));
    await broker.enqueue(msg(queue, 4));
    assert.equal((await broker.stats(queue)).ready, 3);
  });

  t("unique", "concurrent sends of one key enqueue exactly one", async ({ broker, queue }) => {
    const key = `k-${crypto.randomUUID()}`;
    const sent = await Promise.all(
      Array.from({ length: 10 }, (_, i) => broker.enqueue(uniq(queue, i, key))),
    );
    assert.equal(new Set(sent.map((m) => m.messageId)).size, 1);
    assert.equal((await broker.stats(queue)).ready, 1);
  });

  t("unique", "held while running; released once acked", async ({ broker, queue }) => {
    const key = `k-${crypto.randomUUID()}`;
    const a = await broker.enqueue(uniq(queue, 1, key));
    const { got, close } = await receiveSome(broker, queue);
    assert.equal(got[0].messageId, a.messageId);
    assert.equal((await broker.enqueue(uniq(queue, 2, key))).messageId, a.messageId);
    const c = broker.consume(queue);
    await c.ack(got[0]);
    await c.close();
    await close();
    const b = await broker.enqueue(uniq(queue, 3, key));
    assert.notEqual(b.messageId, a.messageId);
    assert.equal((await broker.stats(queue)).ready, 1);
  });

  t("unique", "released when the holder is dead-lettered or cancelled", async (ctx) => {
    const { broker, queue } = ctx;
    const key = `k-${crypto.randomUUID()}`;
    const a = await broker.enqueue(uniq(queue, 1, key));
    const { got, close } = await receiveSome(broker, queue);
    const c = broker.consume(queue);
    await c.nack(got[0]);
    await c.close();
    await close();
    const b = await broker.enqueue(uniq(queue, 2, key));
    assert.notEqual(b.messageId, a.messageId);
    assert.equal(await broker.cancel(b.messageId), "cancelled");
    const d = await broker.enqueue(uniq(queue, 3, key));
    assert.notEqual(d.messageId, b.messageId);
    assert.equal((await broker.stats(queue)).ready, 1);
  });

  t("unique", "the holder's own retry is enqueued and keeps the key", async (ctx) => {
    const { broker, queue } = ctx;
    const key = `k-${crypto.randomUUID()}`;
    const a = await broker.enqueue(uniq(queue, 1, key));
    const { got, close } = await receiveSome(broker, queue);
    // As Retries does: the same message (same id) again, delayed, then the delivery acked.
    const retry = await broker.enqueue(got[0].copy({ options: { ...got[0].options } }), {
      delay: 60_000,
    });
    assert.equal(retry.messageId, a.messageId);
    const c = broker.consume(queue);
    await c.ack(got[0]);
    await c.close();
    await close();
    assert.equal((await broker.stats(queue)).delayed, 1);
    assert.equal((await broker.enqueue(uniq(queue, 2, key))).messageId, a.messageId);
  });

  t("unique", "unique_for keeps the key after the holder finished", async ({ broker, queue }) => {
    const key = `k-${crypto.randomUUID()}`;
    const a = await broker.enqueue(uniq(queue, 1, key, { unique_for: 60_000 }));
    const { got, close } = await receiveSome(broker, queue);
    const c = broker.consume(queue);
    await c.ack(got[0]);
    await c.close();
    await close();
    assert.equal((await broker.enqueue(uniq(queue, 2, key))).messageId, a.messageId);
    assert.equal(await broker.queueSize(queue), 0);
    // A short unique_for lapses.
    const key2 = `k-${crypto.randomUUID()}`;
    const b = await broker.enqueue(uniq(queue, 3, key2, { unique_for: 200 }));
    assert.equal(await broker.cancel(b.messageId), "cancelled");
    assert.equal((await broker.enqueue(uniq(queue, 4, key2))).messageId, b.messageId);
    await sleep(400);
    assert.notEqual((await broker.enqueue(uniq(queue, 5, key2))).messageId, b.messageId);
  });

  t("unique", "debounce replaces the pending holder and moves its eta", async (ctx) => {
    const { broker, queue } = ctx;
    const key = `k-${crypto.randomUUID()}`;
    const a = await broker.enqueue(uniq(queue, 1, key, { debounce: 30_000 }), { delay: 30_000 });
    const before = Date.now();
    const b = await broker.enqueue(uniq(queue, 2, key, { debounce: 60_000 }), { delay: 60_000 });
    assert.equal(b.messageId, a.messageId);
    assert.deepEqual(b.args, [2]);
    assert.equal(b.options.debounce, 60_000);
    assert.ok((b.options.eta as number) >= before + 60_000 - 1_000, `eta ${b.options.eta}`);
    const s = await broker.stats(queue);
    assert.equal(s.delayed, 1);
    assert.equal(s.ready, 0);
    if (broker.capabilities.browse) {
      const found = await broker.findMessage(a.messageId);
      assert.equal(found?.state, "delayed");
      assert.deepEqual(found?.message.args, [2]);
    }
  });

  t("unique", "debounce with the holder running enqueues a new holder", async (ctx) => {
    const { broker, queue } = ctx;
    const key = `k-${crypto.randomUUID()}`;
    const a = await broker.enqueue(uniq(queue, 1, key, { debounce: 0 }));
    const { got, close } = await receiveSome(broker, queue);
    try {
      assert.equal(got[0].messageId, a.messageId);
      const b = await broker.enqueue(uniq(queue, 2, key, { debounce: 60_000 }), { delay: 60_000 });
      assert.notEqual(b.messageId, a.messageId);
      assert.equal((await broker.stats(queue)).delayed, 1);
      // The new one holds the key now.
      const c = await broker.enqueue(uniq(queue, 3, key));
      assert.equal(c.messageId, b.messageId);
    } finally {
      await close();
    }
  });

  // ---- progress ----

  t("progress", "the last value is kept with its time", async ({ broker }) => {
    const id = crypto.randomUUID();
    assert.equal(await broker.getProgress(id), null);
    const t0 = Date.now();
    await broker.setProgress(id, { done: 1, of: 10 });
    await broker.setProgress(id, { done: 2, of: 10, note: "é✓" });
    const p = await broker.getProgress(id);
    assert.deepEqual(p?.value, { done: 2, of: 10, note: "é✓" });
    assert.ok(p!.updatedAt >= t0 - 1_000 && p!.updatedAt <= Date.now() + 1_000);
    await broker.setProgress(id, 0.5);
    assert.equal((await broker.getProgress(id))?.value, 0.5);
  });

  // ---- pause ----

  t("pause", "a paused queue delivers nothing until resumed", async ({ broker, queue }) => {
    const other = `${queue}_free`;
    broker.declareQueue(other);
    try {
      await broker.pauseQueue(queue);
      await broker.pauseQueue(`${queue}_undeclared`); // allowed
      const paused = await broker.pausedQueues();
      assert.ok(paused.has(queue) && paused.has(`${queue}_undeclared`));
      assert.ok(!paused.has(other));
      if (!options.quick) await sleep(1_200); // "within ~1 s"
      await broker.enqueue(msg(queue, 1));
      await broker.enqueue(msg(other, 2));
      const held = await receiveSome(broker, queue, { timeout: 600 });
      assert.equal(held.got.length, 0);
      const free = await receiveSome(broker, other);
      assert.equal(free.got.length, 1);
      await free.close();
      await broker.resumeQueue(queue);
      await broker.resumeQueue(`${queue}_undeclared`);
      assert.ok(!(await broker.pausedQueues()).has(queue));
      const c = broker.consume(queue);
      const deadline = Date.now() + 5_000;
      let got: MessageProxy[] = [];
      while (got.length === 0 && Date.now() < deadline) {
        got = await c.receive(1, { timeout: 200 });
      }
      assert.equal(got.length, 1);
      await c.close();
      await held.close();
    } finally {
      await broker.resumeQueue(queue);
      await broker.flush(other);
    }
  });

  // ---- schedules ----

  t("schedules", "enqueueTick enqueues each tick once; lastTicks", async ({ broker, queue }) => {
    const name = `sched-${crypto.randomUUID()}`;
    const tick = 1_700_000_000_000;
    const m = () => msg(queue, 1, { schedule: name, schedule_tick: tick });
    assert.equal(await broker.enqueueTick(name, tick, m()), true);
    assert.equal(await broker.enqueueTick(name, tick, m()), false);
    assert.equal(await broker.enqueueTick(name, tick - 60_000, m()), false);
    assert.equal((await broker.lastTicks()).get(name), tick);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => broker.enqueueTick(name, tick + 60_000, m())),
    );
    assert.equal(results.filter((r) => r).length, 1);
    assert.equal((await broker.lastTicks()).get(name), tick + 60_000);
    assert.equal((await broker.stats(queue)).ready, 2);
    const { got, close } = await receiveSome(broker, queue, { want: 2 });
    await close();
    assert.equal(got[0].options.schedule, name);
  });

  // ---- workers ----

  const record = (over: Partial<WorkerRecord> = {}): WorkerRecord => ({
    workerId: `test:${crypto.randomUUID()}`,
    host: "test-host",
    pid: 4242,
    runtime: "deno 0.0.0",
    version: "0.0.0",
    queues: ["default"],
    concurrency: 8,
    startedAt: Date.now() - 1_000,
    heartbeatAt: Date.now(),
    running: [{ messageId: "m1", actorName: "a", queueName: "default", since: 1, progress: 3 }],
    ...over,
  });

  t("workers", "a published record is listed, then removed", async ({ broker }) => {
    const r = record();
    await broker.publishWorker(r, 10_000);
    const found = (await broker.workers()).find((w) => w.workerId === r.workerId);
    assert.deepEqual(found, r);
    const r2 = { ...r, heartbeatAt: Date.now(), running: [] };
    await broker.publishWorker(r2, 10_000);
    const again = (await broker.workers()).filter((w) => w.workerId === r.workerId);
    assert.equal(again.length, 1);
    assert.deepEqual(again[0].running, []);
    await broker.removeWorker(r.workerId);
    assert.ok(!(await broker.workers()).some((w) => w.workerId === r.workerId));
  });

  t("workers", "a record past its ttl is not listed", async ({ broker }) => {
    const stale = record({ heartbeatAt: Date.now() - 20_000 });
    await broker.publishWorker(stale, 10_000);
    assert.ok(!(await broker.workers()).some((w) => w.workerId === stale.workerId));
    if (options.quick) return;
    const short = record();
    await broker.publishWorker(short, 300);
    assert.ok((await broker.workers()).some((w) => w.workerId === short.workerId));
    await sleep(1_000);
    assert.ok(!(await broker.workers()).some((w) => w.workerId === short.workerId));
    await broker.removeWorker(short.workerId);
    await broker.removeWorker(stale.workerId);
  });

  // ---- events ----

  t("events", "events() yields what is published after the call", async ({ broker, queue }) => {
    const ev = (type: BrokerEvent["type"], messageId: string): BrokerEvent => ({
      type,
      messageId,
      actorName: "opsActor",
      queueName: queue,
      at: Date.now(),
      workerId: "w1",
      ...(type === "failed" ? { error: "Error: boom" } : {}),
    });
    const early = ev("completed", `early-${crypto.randomUUID()}`);
    await broker.publishEvents([early]);
    const stop = new AbortController();
    const seen: BrokerEvent[] = [];
    const mine = new Set<string>();
    const reading = (async () => {
      for await (const e of broker.events({ signal: stop.signal })) {
        if (e.queueName !== queue) continue; // other processes may publish too
        seen.push(e);
        if (seen.length >= 3) break;
      }
    })();
    await sleep(300); // let the reader subscribe
    const batch = [ev("completed", "a"), ev("failed", "b"), ev("cancelled", "c")];
    for (const e of batch) mine.add(e.messageId);
    await broker.publishEvents(batch);
    const timer = setTimeout(() => stop.abort(), 5_000);
    await reading;
    clearTimeout(timer);
    stop.abort();
    assert.deepEqual(seen.map((e) => e.messageId).sort(), ["a", "b", "c"]);
    assert.deepEqual(seen.find((e) => e.messageId === "b"), batch[1]);
    // The iterator ends when its signal aborts.
    const ended = new AbortController();
    const it = broker.events({ signal: ended.signal })[Symbol.asyncIterator]();
    const next = it.next();
    ended.abort();
    const r = await Promise.race([next, sleep(5_000).then(() => "timeout")]);
    assert.notEqual(r, "timeout");
  });

  t("events", "events({ past: true }) yields the kept events first, then new ones", async (ctx) => {
    const { broker, queue } = ctx;
    const id = crypto.randomUUID();
    const ev = (n: number): BrokerEvent => ({
      type: "retried",
      messageId: id,
      actorName: "opsActor",
      queueName: queue,
      at: Date.now(),
      durationMs: n,
    });
    await broker.publishEvents([ev(1), ev(2)]);
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), 10_000);
    const seen: number[] = [];
    for await (const e of broker.events({ signal: stop.signal, past: true })) {
      if (e.messageId !== id) continue;
      seen.push(e.durationMs!);
      if (seen.length === 2) await broker.publishEvents([ev(3)]);
      if (seen.length === 3) break;
    }
    clearTimeout(timer);
    stop.abort();
    assert.deepEqual(seen, [1, 2, 3]);
  });

  // ---- browse ----

  t("browse", "pages of ready, delayed, running and dead, newest first", async (ctx) => {
    const { broker, queue } = ctx;
    const ready: Message[] = [];
    for (let i = 0; i < 3; i++) ready.push(await broker.enqueue(msg(queue, i)));
    const delayed = await broker.enqueue(msg(queue, 10), { delay: 60_000 });
    const p1 = await broker.browse(queue, "ready", { limit: 2 });
    assert.equal(p1.total, 3);
    assert.deepEqual(p1.entries.map((e) => e.message.messageId), [
      ready[2].messageId,
      ready[1].messageId,
    ]);
    assert.ok(p1.next);
    const p2 = await broker.browse(queue, "ready", { limit: 2, cursor: p1.next });
    assert.deepEqual(p2.entries.map((e) => e.message.messageId), [ready[0].messageId]);
    assert.equal(p2.next, undefined);
    for (const e of [...p1.entries, ...p2.entries]) {
      assert.equal(e.state, "ready");
      assert.equal(e.message.queueName, queue);
    }
    const d = await broker.browse(queue, "delayed");
    assert.equal(d.total, 1);
    assert.equal(d.entries[0].message.messageId, delayed.messageId);
    assert.equal(d.entries[0].message.queueName, queue);
    assert.equal(d.entries[0].eta, delayed.options.eta);
    // Take the oldest two: one runs, one is dead-lettered.
    const { got, close } = await receiveSome(broker, queue, { want: 2 });
    try {
      const c = broker.consume(queue);
      await c.nack(got[1]);
      await c.close();
      const running = await broker.browse(queue, "running");
      assert.equal(running.total, 1);
      assert.equal(running.entries[0].message.messageId, got[0].messageId);
      const dead = await broker.browse(queue, "dead");
      assert.equal(dead.total, 1);
      assert.equal(dead.entries[0].message.messageId, got[1].messageId);
      assert.equal(dead.entries[0].state, "dead");
      assert.equal((await broker.findMessage(got[0].messageId))?.state, "running");
      assert.equal((await broker.findMessage(got[1].messageId))?.state, "dead");
      assert.equal((await broker.findMessage(delayed.messageId))?.state, "delayed");
      assert.equal((await broker.findMessage(ready[2].messageId))?.state, "ready");
      assert.equal(await broker.findMessage(crypto.randomUUID()), null);
    } finally {
      await close();
    }
  });

  t("browse", "delete, move and runNow skip running messages", async ({ broker, queue }) => {
    const target = `${queue}_to`;
    broker.declareQueue(target);
    const running = await broker.enqueue(msg(queue, 0));
    const { got, close } = await receiveSome(broker, queue);
    try {
      assert.equal(got[0].messageId, running.messageId);
      const a = await broker.enqueue(msg(queue, 1));
      const b = await broker.enqueue(msg(queue, 2), { delay: 60_000 });
      const c = await broker.enqueue(msg(queue, 3), { delay: 60_000 });
      const e = await broker.enqueue(msg(queue, 4));
      assert.equal(await broker.deleteMessages([a.messageId, running.messageId, "nope"]), 1);
      assert.equal(await broker.runNow([b.messageId, e.messageId]), 1);
      let s = await broker.stats(queue);
      assert.equal(s.ready, 2); // b (now ready) and e
      assert.equal(s.delayed, 1); // c
      assert.equal(
        await broker.moveMessages([c.messageId, e.messageId, running.messageId], target),
        2,
      );
      s = await broker.stats(queue);
      assert.equal(s.ready, 1);
      assert.equal(s.delayed, 0);
      const t2 = await broker.stats(target);
      assert.equal(t2.ready, 2);
      const moved = await broker.findMessage(c.messageId);
      assert.equal(moved?.state, "ready");
      assert.equal(moved?.message.queueName, target);
      assert.equal((await broker.findMessage(running.messageId))?.state, "running");
    } finally {
      await close();
      if (broker.getDeclaredQueues().has(target)) await broker.flush(target);
    }
  });

  t("browse", "dead letters can be deleted and moved", async ({ broker, queue }) => {
    const a = await broker.enqueue(msg(queue, 1));
    const b = await broker.enqueue(msg(queue, 2));
    const { got, close } = await receiveSome(broker, queue, { want: 2 });
    const c = broker.consume(queue);
    for (const m of got) await c.nack(m);
    await c.close();
    await close();
    assert.equal((await broker.stats(queue)).dead, 2);
    assert.equal(await broker.deleteMessages([a.messageId]), 1);
    assert.equal(await broker.moveMessages([b.messageId], queue), 1);
    const s = await broker.stats(queue);
    assert.equal(s.dead, 0);
    assert.equal(s.ready, 1);
  });

  opsWorkerSuite(name, makeBroker);
}
