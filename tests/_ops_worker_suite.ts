// The operations as a `Worker` uses them, on any broker that has them: cancelling a running
// actor, progress, the heartbeat record and events. Part of `opsSuite` (tests/_ops_suite.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actor,
  type Broker,
  type BrokerCapabilities,
  type BrokerEvent,
  currentSignal,
  MemoryResultBackend,
  reportProgress,
  ResultFailure,
  Results,
  Worker,
} from "../mod.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 20 ms until it is true; fails after 10 s. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface Ctx {
  broker: Broker;
  queue: string;
  worker: () => Promise<Worker>;
  /** Opened by the test; resolves what waits on it at the end too. */
  gate: { wait: Promise<void>; open: () => void };
}

/** Registers the Worker-level operation tests for one broker. */
export function opsWorkerSuite(
  name: string,
  makeBroker: () => Broker | Promise<Broker>,
): void {
  const t = (cap: keyof BrokerCapabilities, title: string, fn: (ctx: Ctx) => Promise<void>) =>
    test(`${name} worker ops (${cap}): ${title}`, async () => {
      const broker = await makeBroker();
      const queue = `opsw_${crypto.randomUUID().slice(0, 8)}`;
      let open!: () => void;
      const gate = { wait: new Promise<void>((r) => open = r), open: () => open() };
      let worker: Worker | undefined;
      try {
        if (!broker.capabilities[cap]) return;
        if (!broker.middleware.some((m) => m instanceof Results)) {
          broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
        }
        broker.declareQueue(queue);
        await fn({
          broker,
          queue,
          gate,
          worker: async () => {
            worker = new Worker(broker, { queues: [queue], workerTimeout: 100, heartbeat: 200 });
            await worker.start();
            return worker;
          },
        });
      } finally {
        gate.open();
        try {
          await worker?.stop({ timeout: 2_000 });
          if (broker.getDeclaredQueues().has(queue)) {
            await broker.flush(queue);
            await broker.purgeDeadLetters(queue);
          }
        } finally {
          await broker.close();
        }
      }
    });

  t(
    "cancel",
    "a running actor sees Cancelled; acked, not retried, result Cancelled",
    async (ctx) => {
      const { broker, queue } = ctx;
      let runs = 0;
      const reasons: string[] = [];
      const wait = actor(async () => {
        runs++;
        const signal = currentSignal();
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
        reasons.push((signal.reason as Error).name);
      }, { actorName: `wait_${queue}`, queueName: queue, broker, storeResults: true });
      await ctx.worker();
      const msg = await wait.send();
      await until("the actor to start", () => runs === 1);
      assert.equal(await msg.cancel({ broker }), "running");
      await until("the actor to see it", () => reasons.length === 1);
      assert.deepEqual(reasons, ["Cancelled"]);
      await broker.join(queue, { timeout: 10_000, failFast: false });
      try {
        await msg.getResult({ broker, block: true, timeout: 5_000 });
        assert.fail("expected a ResultFailure");
      } catch (e) {
        assert.ok(e instanceof ResultFailure, String(e));
        assert.equal(e.errorName, "Cancelled");
      }
      const s = await broker.stats(queue);
      assert.equal(s.dead, 0);
      assert.equal(await broker.queueSize(queue), 0);
      assert.equal(runs, 1);
    },
  );

  t("cancel", "an actor ignoring its signal is abandoned; the worker goes on", async (ctx) => {
    const { broker, queue, gate } = ctx;
    const ran: number[] = [];
    const stubborn = actor(async (n: number) => {
      ran.push(n);
      if (n === 1) await gate.wait; // ignores currentSignal()
    }, { actorName: `stubborn_${queue}`, queueName: queue, broker });
    const w = new Worker(broker, { queues: [queue], workerTimeout: 100, concurrency: 1 });
    await w.start();
    try {
      const msg = await stubborn.send(1);
      await until("the actor to start", () => ran.length === 1);
      await stubborn.send(2);
      assert.equal(await broker.cancel(msg.messageId), "running");
      await until("the next message to run", () => ran.length === 2);
      await broker.join(queue, { timeout: 10_000, failFast: false });
      assert.equal((await broker.stats(queue)).dead, 0);
    } finally {
      gate.open();
      await w.stop({ timeout: 2_000 });
    }
  });

  t("cancel", "a message cancelled while queued never runs", async (ctx) => {
    const { broker, queue } = ctx;
    let runs = 0;
    const job = actor(() => void runs++, { actorName: `job_${queue}`, queueName: queue, broker });
    const msg = await job.send();
    await job.send();
    assert.equal(await msg.cancel({ broker }), "cancelled");
    await ctx.worker();
    await broker.join(queue, { timeout: 10_000 });
    await sleep(200);
    assert.equal(runs, 1);
  });

  t("progress", "reportProgress in a loop: the last value is readable", async (ctx) => {
    const { broker, queue, gate } = ctx;
    let reported = false;
    const work = actor(async () => {
      for (let i = 1; i <= 500; i++) reportProgress({ done: i, of: 500 });
      reported = true;
      await gate.wait;
    }, { actorName: `work_${queue}`, queueName: queue, broker });
    await ctx.worker();
    const msg = await work.send();
    await until("the loop to end", () => reported);
    await until("the last value", async () => {
      const p = await msg.getProgress({ broker });
      return JSON.stringify(p?.value) === JSON.stringify({ done: 500, of: 500 });
    });
    gate.open();
    await broker.join(queue, { timeout: 10_000 });
  });

  t("workers", "a Worker's heartbeat lists it and what it runs; stop removes it", async (ctx) => {
    const { broker, queue, gate } = ctx;
    let started = false;
    const job = actor(async () => {
      started = true;
      await gate.wait;
    }, { actorName: `hb_${queue}`, queueName: queue, broker });
    const worker = await ctx.worker();
    await job.send();
    await until("the actor to start", () => started);
    await until("its record", async () => {
      const w = (await broker.workers()).find((r) => r.workerId === worker.workerId);
      return w?.running.length === 1;
    });
    const w = (await broker.workers()).find((r) => r.workerId === worker.workerId)!;
    assert.deepEqual(w.queues, [queue]);
    assert.equal(w.running[0].queueName, queue);
    gate.open();
    await broker.join(queue, { timeout: 10_000 });
    await worker.stop({ timeout: 2_000 });
    assert.ok(!(await broker.workers()).some((r) => r.workerId === worker.workerId));
  });

  t("events", "a Worker publishes completed and dead-lettered events", async (ctx) => {
    const { broker, queue } = ctx;
    const stop = new AbortController();
    const seen: BrokerEvent[] = [];
    const reading = (async () => {
      for await (const e of broker.events({ signal: stop.signal })) {
        if (e.queueName === queue) seen.push(e);
      }
    })();
    try {
      await sleep(300); // let the reader subscribe
      const ok = actor(() => {}, { actorName: `ok_${queue}`, queueName: queue, broker });
      const bad = actor(() => {
        throw new Error("nope");
      }, { actorName: `bad_${queue}`, queueName: queue, broker, maxRetries: 0 });
      await ctx.worker();
      const a = await ok.send();
      const b = await bad.send();
      await broker.join(queue, { timeout: 10_000, failFast: false });
      await until("the events", () => seen.length >= 2);
      assert.equal(seen.find((e) => e.messageId === a.messageId)?.type, "completed");
      assert.equal(seen.find((e) => e.messageId === b.messageId)?.type, "dead-lettered");
    } finally {
      stop.abort();
      await reading;
    }
  });
}
