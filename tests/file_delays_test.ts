// Delayed messages on the FileBroker (`capabilities.delaysUntilDue`): its delay queues hand a
// message out only once due, and a Worker runs it in place (acked on `q.DQ`, never copied to `q`)
// while the middleware sees it on `q`; a broker without the capability (the stub) still has its
// due messages moved to their queue first. Runs on both runtimes:
//   deno test -A tests/file_delays_test.ts        bun test tests/file_delays_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker } from "../broker/file/broker.ts";
import { bodyLength, Kind, REC_HEADER, SEG_HEADER } from "../broker/file/_format.ts";
import {
  type Broker,
  type Consumer,
  currentMessage,
  Message,
  type MessageProxy,
  Middleware,
  StubBroker,
  Worker,
} from "../mod.ts";
import { actor } from "../actor.ts";
import { Child } from "./_file_child.ts";
import { cleanup as cleanupCli, events, runCli, setup, startWorker, until } from "./_cli.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tempDir(): string {
  return fs.mkdtempSync(`${tmpdir()}/dramatis-delays-`);
}

/** The queue of every ENQ record in the log of `dir`, in log order. */
function enqueuedTo(dir: string): string[] {
  const out: string[] = [];
  const segs = fs.readdirSync(dir).filter((n) => n.endsWith(".seg")).sort();
  for (const seg of segs) {
    const bytes = new Uint8Array(fs.readFileSync(`${dir}/${seg}`));
    for (
      let p = SEG_HEADER;
      p + REC_HEADER <= bytes.length;
      p += REC_HEADER + bodyLength(bytes, p)
    ) {
      if (bytes[p + 2] !== Kind.ENQ) continue;
      const at = p + REC_HEADER;
      out.push(new TextDecoder().decode(bytes.subarray(at + 1, at + 1 + bytes[at]!)));
    }
  }
  return out;
}

/** What the Worker did with its consumers: the queue of every ack and nack. */
interface Spied {
  acks: string[];
  nacks: string[];
}

/** A Worker `consume` option that records on which queue's consumer each message is settled. */
function spyConsume(broker: Broker, spied: Spied): (queueName: string) => Consumer {
  return (queueName) => {
    const c = broker.consume(queueName, { prefetch: 16 });
    return {
      receive: (max, options) => c.receive(max, options),
      ack(m: MessageProxy) {
        spied.acks.push(queueName);
        return c.ack(m);
      },
      nack(m: MessageProxy) {
        spied.nacks.push(queueName);
        return c.nack(m);
      },
      requeue: (ms) => c.requeue(ms),
      close: () => c.close(),
    };
  };
}

/** Records the queue each hook saw, and the enqueues (with their delay). */
class Seen extends Middleware {
  processed: string[] = [];
  acked: string[] = [];
  enqueued: { queue: string; delay: number | undefined }[] = [];
  override beforeProcessMessage(_b: Broker, m: MessageProxy): void {
    this.processed.push(m.queueName);
  }
  override afterAck(_b: Broker, m: MessageProxy): void {
    this.acked.push(m.queueName);
  }
  override afterEnqueue(_b: Broker, m: Message, delay: number | undefined): void {
    this.enqueued.push({ queue: m.queueName, delay });
  }
}

async function withFileBroker(fn: (broker: FileBroker, dir: string) => Promise<void>) {
  const dir = tempDir();
  const broker = new FileBroker({ dir });
  try {
    await fn(broker, dir);
  } finally {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("FileBroker has delaysUntilDue; the stub does not", () => {
  const dir = tempDir();
  const broker = new FileBroker({ dir });
  assert.equal(broker.capabilities.delaysUntilDue, true);
  assert.notEqual(new StubBroker().capabilities.delaysUntilDue, true);
  void broker.close().then(() => fs.rmSync(dir, { recursive: true, force: true }));
});

test("FileBroker: a due delayed message runs once, in place: acked on q.DQ, no copy on q, seen on q", async () => {
  await withFileBroker(async (broker, dir) => {
    const seen = new Seen();
    broker.addMiddleware(seen);
    const ran: { queue: string | undefined; arg: number }[] = [];
    const later = actor((n: number) => {
      ran.push({ queue: currentMessage()?.queueName, arg: n });
    }, { actorName: "later", broker });
    await later.sendWithOptions({ args: [1], delay: 100 });
    const spied: Spied = { acks: [], nacks: [] };
    const worker = new Worker(broker, {
      workerTimeout: 50,
      consume: spyConsume(broker, spied),
    });
    await worker.start();
    await broker.join("default", { timeout: 5_000 });
    await worker.stop();
    assert.deepEqual(ran, [{ queue: "default", arg: 1 }]);
    assert.deepEqual(spied.acks, ["default.DQ"], "acked where it was delivered, once");
    assert.deepEqual(enqueuedTo(dir), ["default.DQ"], "no copy was enqueued on default");
    assert.deepEqual(seen.enqueued, [{ queue: "default.DQ", delay: 100 }]);
    assert.deepEqual(seen.processed, ["default"], "the middleware sees the message on its queue");
    assert.deepEqual(seen.acked, ["default"]);
    const s = await broker.stats("default");
    assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [0, 0, 0, 0]);
  });
});

test("StubBroker (no delaysUntilDue): a due delayed message is still moved to its queue, then run", async () => {
  const broker = new StubBroker();
  const seen = new Seen();
  broker.addMiddleware(seen);
  const ran: string[] = [];
  const later = actor(() => void ran.push(currentMessage()!.queueName), {
    actorName: "later",
    broker,
  });
  await later.sendWithOptions({ args: [], delay: 50 });
  const spied: Spied = { acks: [], nacks: [] };
  const worker = new Worker(broker, { workerTimeout: 20, consume: spyConsume(broker, spied) });
  await worker.start();
  await broker.join("default", { timeout: 5_000 });
  await worker.join();
  await worker.stop();
  assert.deepEqual(ran, ["default"]);
  assert.deepEqual(spied.acks.sort(), ["default", "default.DQ"]);
  assert.deepEqual(seen.enqueued.map((e) => e.queue), ["default.DQ", "default"]);
});

test("FileBroker: retries of a delayed message go through q.DQ and run in place; exhausted ones are dead letters of q", async () => {
  await withFileBroker(async (broker, dir) => {
    const seen = new Seen();
    broker.addMiddleware(seen);
    const runs: string[] = [];
    let flakyRuns = 0;
    const flaky = actor(() => {
      runs.push(`flaky ${currentMessage()!.queueName}`);
      if (++flakyRuns < 3) throw new Error("not yet");
    }, { actorName: "flaky", broker, maxRetries: 5, minBackoff: 10, maxBackoff: 20 });
    const doomed = actor(() => {
      runs.push(`doomed ${currentMessage()!.queueName}`);
      throw new Error("never");
    }, { actorName: "doomed", broker, maxRetries: 1, minBackoff: 10, maxBackoff: 20 });
    await flaky.sendWithOptions({ args: [], delay: 50 });
    const d = await doomed.sendWithOptions({ args: [], delay: 50 });
    const spied: Spied = { acks: [], nacks: [] };
    const worker = new Worker(broker, { workerTimeout: 50, consume: spyConsume(broker, spied) });
    await worker.start();
    await until("five runs", () => runs.length >= 5, 10_000);
    await broker.join("default", { timeout: 5_000, failFast: false });
    await worker.stop();
    assert.deepEqual(runs.filter((r) => r.startsWith("flaky")), Array(3).fill("flaky default"));
    assert.deepEqual(runs.filter((r) => r.startsWith("doomed")), Array(2).fill("doomed default"));
    // Every run came from default.DQ (the sends and the retries), settled there.
    assert.deepEqual(spied.acks, Array(4).fill("default.DQ"));
    assert.deepEqual(spied.nacks, ["default.DQ"]);
    assert.deepEqual(enqueuedTo(dir), Array(5).fill("default.DQ"));
    assert.ok(seen.enqueued.every((e) => e.delay !== undefined), "every enqueue is delayed");
    const dead = await broker.deadLetters("default");
    assert.deepEqual(dead.map((m) => [m.messageId, m.queueName]), [[d.messageId, "default"]]);
    const s = await broker.stats("default");
    assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [0, 0, 0, 1]);
  });
});

test("FileBroker: a delayed message cancelled or deleted before its eta never runs", async () => {
  await withFileBroker(async (broker) => {
    const ran: string[] = [];
    const later = actor((name: string) => void ran.push(name), { actorName: "later", broker });
    // A Worker consumes default.DQ meanwhile: it is not handed them before their eta.
    const worker = new Worker(broker, { workerTimeout: 50 });
    await worker.start();
    const cancelled = await later.sendWithOptions({ args: ["cancelled"], delay: 2_000 });
    const deleted = await later.sendWithOptions({ args: ["deleted"], delay: 2_000 });
    await later.sendWithOptions({ args: ["kept"], delay: 2_000 });
    assert.equal(await broker.cancel(cancelled.messageId), "cancelled");
    assert.equal(await broker.deleteMessages([deleted.messageId]), 1);
    await until("the kept message to run", () => ran.length > 0, 10_000);
    // join: nothing is left on default or default.DQ (a message still there would run first).
    await broker.join("default", { timeout: 5_000 });
    await worker.stop();
    assert.deepEqual(ran, ["kept"]);
  });
});

test("FileBroker: a due delayed message of a paused queue waits until the queue is resumed", async () => {
  await withFileBroker(async (broker) => {
    const ran: string[] = [];
    const later = actor(() => void ran.push("ran"), { actorName: "later", broker });
    const worker = new Worker(broker, { workerTimeout: 50 });
    await worker.start();
    await broker.pauseQueue("default");
    await later.sendWithOptions({ args: [], delay: 20 });
    // Well past its eta: a Worker would have run it in place by now, were default.DQ not paused.
    await sleep(500);
    assert.deepEqual(ran, [], "a delayed message of a paused queue ran");
    assert.equal((await broker.stats("default")).delayed, 1);
    await broker.resumeQueue("default");
    await broker.join("default", { timeout: 5_000 });
    await worker.stop();
    assert.deepEqual(ran, ["ran"]);
  });
});

test("FileBroker: due delayed messages run lowest priority first, with the ready ones", async () => {
  await withFileBroker(async (broker) => {
    const ran: number[] = [];
    actor((p: number) => void ran.push(p), { actorName: "p", broker });
    const m = (p: number) =>
      new Message({ queueName: "default", actorName: "p", args: [p], options: { priority: p } });
    for (const p of [5, 0, 9, 1]) await broker.enqueue(m(p), { delay: 20 });
    await broker.enqueue(m(3));
    // Every eta has passed before the Worker starts: its first fetch of each queue holds them all.
    await sleep(60);
    const worker = new Worker(broker, { concurrency: 1, prefetch: 10, workerTimeout: 50 });
    await worker.start();
    await broker.join("default", { timeout: 5_000 });
    await worker.stop();
    assert.deepEqual(ran, [0, 1, 3, 5, 9]);
  });
});

test(
  "FileBroker: a delayed message whose consumer is SIGKILLed is redelivered on q.DQ, run once more; one acked before is not",
  {
    timeout: 60_000,
  },
  async () => {
    const dir = tempDir();
    const broker = new FileBroker({ dir });
    const child = new Child("./_file_delay_child.ts", [dir]);
    try {
      broker.declareQueue("d");
      const send = (name: string) =>
        broker.enqueue(
          new Message({ queueName: "d", actorName: "delayed", args: [name] }),
          { delay: 100 },
        );
      await child.waitFor("the child to start", () => child.lines.includes("ready"));
      await send("acked");
      await send("hang");
      await child.waitFor("both to run", () => child.lines.includes("ran hang"));
      await child.waitFor("ran acked", () => child.lines.includes("ran acked"));
      // Wait until this process sees "acked" acknowledged: only "hang" is left, in flight.
      for (;;) {
        const s = await broker.stats("d");
        if (s.inFlight === 1 && s.delayed === 0 && s.ready === 0) break;
        await sleep(20);
      }
      child.kill("SIGKILL");
      await child.exited;
      const ran: string[] = [];
      actor((name: string) => void ran.push(name), {
        actorName: "delayed",
        queueName: "d",
        broker,
        maxRetries: 0,
      });
      const spied: Spied = { acks: [], nacks: [] };
      const worker = new Worker(broker, {
        queues: ["d"],
        workerTimeout: 50,
        consume: spyConsume(broker, spied),
      });
      await worker.start();
      await broker.join("d", { timeout: 20_000 });
      await worker.stop();
      assert.deepEqual(ran, ["hang"], "the killed one again, the acked one not");
      assert.deepEqual(spied.acks, ["d.DQ"], "redelivered and acked on d.DQ");
      assert.deepEqual(child.lines.filter((l) => l.startsWith("ran ")).sort(), [
        "ran acked",
        "ran hang",
      ]);
      assert.deepEqual(enqueuedTo(dir), ["d.DQ", "d.DQ"], "never copied to d");
      const s = await broker.stats("d");
      assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [0, 0, 0, 0]);
    } finally {
      child.kill();
      await broker.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("cli worker -t 2: runs delayed messages once each, in place (no copy on their queue)", {
  timeout: 60_000,
}, async () => {
  const e = setup();
  try {
    const w = startWorker(e, ["-t", "2", "-c", "4"]);
    await until("boot", () => /Worker process is ready for action/.test(w.log()), 20_000, w.log);
    for (let i = 0; i < 6; i++) {
      const r = await runCli(e, ["send", e.tasks, "work", JSON.stringify([i]), "--delay", "200"]);
      assert.equal(r.code, 0, r.out);
    }
    await until("6 runs", () => events(e).length >= 6, 20_000, w.log);
    process.kill(w.proc.pid!, "SIGTERM");
    assert.equal(await w.exited, 0, w.log());
    const ns = events(e).map((x) => x.n as number).sort((a, b) => a - b);
    assert.deepEqual(ns, [0, 1, 2, 3, 4, 5], "each delayed message exactly once");
    const dir = e.env.DRAMATIS_BROKER!.slice("file://".length);
    assert.deepEqual(enqueuedTo(dir), Array(6).fill("default.DQ"));
    const broker = new FileBroker({ dir });
    const s = await broker.stats("default");
    await broker.close();
    assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [0, 0, 0, 0]);
  } finally {
    cleanupCli(e);
  }
});

test(
  "FileBroker: compaction copies in slices and lets timers run in between; every live message is kept",
  {
    timeout: 60_000,
  },
  async () => {
    const dir = tempDir();
    const broker = new FileBroker({ dir, segmentSize: 1024 * 1024, durability: "none" });
    try {
      broker.declareQueue("c");
      const body = "x".repeat(150);
      const n = 30_000;
      for (let i = 0; i < n; i++) {
        await broker.enqueue(new Message({ queueName: "c", actorName: "a", args: [i, body] }));
      }
      // Every other message of the first 24,000 acked: their segments are half live, a run of
      // several MB to copy forward (1 MB a slice).
      const c = broker.consume("c");
      const kept: number[] = [];
      for (let got = 0; got < 24_000;) {
        const batch = await c.receive(1000, { timeout: 1000 });
        for (const m of batch) {
          const i = m.args[0] as number;
          if (i % 3 !== 0) c.ack(m);
          else kept.push(i);
        }
        got += batch.length;
      }
      // The others stay in flight, held by this consumer.
      const order: string[] = [];
      setTimeout(() => order.push("timer"), 0);
      const deleted = await broker.compact();
      order.push("compacted");
      assert.ok(deleted > 0, "nothing was deleted");
      assert.deepEqual(order, ["timer", "compacted"], "the pass held the thread from start to end");
      const s = await broker.stats("c");
      assert.deepEqual([s.ready, s.inFlight], [n - 24_000, kept.length]);
      await c.close();
      await broker.close();
      // A fresh replica reads the same from what is left on disk.
      const again = new FileBroker({ dir });
      const s2 = await again.stats("c");
      assert.equal(s2.ready, n - 24_000 + kept.length, "in flight ones come back as ready");
      await again.close();
    } finally {
      await broker.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("Worker: draining a backlog that is always ready lets timers run meanwhile", {
  timeout: 60_000,
}, async () => {
  const dir = tempDir();
  const broker = new FileBroker({ dir, durability: "none" });
  try {
    const n = 20_000;
    let done = 0;
    const job = actor(() => void done++, { actorName: "job", broker, maxRetries: 0 });
    for (let i = 0; i < n; i++) await job.send();
    const worker = new Worker(broker, { concurrency: 16, workerTimeout: 50 });
    await worker.start();
    // The receives always find messages: nothing but the Worker gives the event loop a turn.
    let doneAtTimer = -1;
    setTimeout(() => doneAtTimer = done, 0);
    await broker.join("default", { timeout: 30_000 });
    await worker.stop();
    assert.equal(done, n);
    assert.ok(doneAtTimer >= 0 && doneAtTimer < n, `the timer fired after ${doneAtTimer} of ${n}`);
  } finally {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
