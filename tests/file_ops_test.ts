// FileBroker operations (broker/ops.ts): cancel, unique jobs, progress, pause, schedule ticks,
// the worker registry, events and browsing; within one process, across real child processes, after
// SIGKILL and across compaction. Runs on both runtimes:
//   deno test -A tests/file_ops_test.ts        bun test tests/file_ops_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker, type FileBrokerOptions } from "../broker/file/broker.ts";
import { Message } from "../message.ts";
import type { BrokerEvent, WorkerRecord } from "../broker/ops.ts";
import { Child } from "./_file_child.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tempDir(): string {
  return fs.mkdtempSync(`${tmpdir()}/dramatis-ops-`);
}

/** Runs `fn` with a fresh directory and a broker on it (queues q, p, other); removes both. */
async function withBroker(
  fn: (broker: FileBroker, dir: string) => Promise<void>,
  options: FileBrokerOptions = {},
): Promise<void> {
  const dir = tempDir();
  const broker = open(dir, options);
  try {
    await fn(broker, dir);
  } finally {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function open(dir: string, options: FileBrokerOptions = {}): FileBroker {
  const broker = new FileBroker({ dir, ...options });
  for (const q of ["q", "p", "other"]) broker.declareQueue(q);
  return broker;
}

function msg(n: number, options = {}, queueName = "q"): Message {
  return new Message({ queueName, actorName: "t", args: [n], options });
}

async function receiveAll(broker: FileBroker, queue = "q", timeout = 50) {
  const c = broker.consume(queue);
  try {
    return await c.receive(100, { timeout });
  } finally {
    c.close();
  }
}

test("cancel: a queued and a delayed message never run; a running one is marked", async () => {
  await withBroker(async (broker) => {
    const a = await broker.enqueue(msg(1));
    const b = await broker.enqueue(msg(2), { delay: 60_000 });
    const c = await broker.enqueue(msg(3));
    assert.equal(await broker.cancel(a.messageId), "cancelled");
    assert.equal(await broker.cancel(b.messageId), "cancelled");
    assert.deepEqual(await broker.stats("q"), {
      queueName: "q",
      ready: 1,
      delayed: 0,
      inFlight: 0,
      dead: 0,
    });
    const consumer = broker.consume("q");
    const got = await consumer.receive(10, { timeout: 100 });
    assert.deepEqual(got.map((m) => m.messageId), [c.messageId]);
    assert.equal(await broker.cancel(c.messageId), "running");
    assert.equal(await broker.cancel(c.messageId), "running");
    const marked = await broker.cancelled([a.messageId, b.messageId, c.messageId, "nope"]);
    assert.deepEqual([...marked].sort(), [a.messageId, b.messageId, c.messageId].sort());
    consumer.ack(got[0]);
    consumer.close();
    assert.equal(await broker.cancel(c.messageId), "finished");
    assert.equal(await broker.cancel(a.messageId), "finished");
    assert.equal(await broker.cancel("no-such-id"), "unknown");
    assert.equal((await broker.stats("q")).dead, 0);
  });
});

test("cancel: a retry pending while its first delivery still runs is removed", async () => {
  await withBroker(async (broker) => {
    const a = await broker.enqueue(msg(1));
    const c = broker.consume("q");
    const [got] = await c.receive(1, { timeout: 1000 });
    // As Retries does: the same message again, delayed, before the delivery is acked.
    await broker.enqueue(got!.copy({ options: { ...got!.options } }), { delay: 60_000 });
    assert.equal(await broker.cancel(a.messageId), "cancelled");
    assert.equal((await broker.stats("q")).delayed, 0);
    assert.deepEqual([...await broker.cancelled([a.messageId])], [a.messageId]);
    c.ack(got!);
    c.close();
  });
});

test("unique: a duplicate is not enqueued while the holder is pending, running or in unique_for", async () => {
  await withBroker(async (broker) => {
    const first = await broker.enqueue(msg(1, { unique_key: "k" }));
    await broker.enqueue(msg(2, { unique_key: "k" }));
    await broker.enqueue(msg(3, { unique_key: "other" }));
    assert.equal((await broker.stats("q")).ready, 2);
    const c = broker.consume("q");
    const got = await c.receive(10, { timeout: 100 });
    assert.equal(got.length, 2);
    await broker.enqueue(msg(4, { unique_key: "k" })); // the holder runs
    assert.equal((await broker.stats("q")).ready, 0);
    for (const m of got) c.ack(m);
    await broker.enqueue(msg(5, { unique_key: "k" })); // released
    const again = await c.receive(10, { timeout: 100 });
    assert.deepEqual(again.map((m) => m.args[0]), [5]);
    assert.notEqual(again[0].messageId, first.messageId);
    c.ack(again[0]);
    // unique_for: held after the holder finished, until message_timestamp + unique_for.
    await broker.enqueue(msg(6, { unique_key: "u", unique_for: 400 }));
    const u = await c.receive(10, { timeout: 100 });
    c.ack(u[0]);
    await broker.enqueue(msg(7, { unique_key: "u", unique_for: 400 }));
    assert.equal((await broker.stats("q")).ready, 0);
    await sleep(500);
    await broker.enqueue(msg(8, { unique_key: "u", unique_for: 400 }));
    assert.equal((await broker.stats("q")).ready, 1);
    c.close();
  });
});

test("unique: a cancelled holder releases its key; debounce replaces a pending holder", async () => {
  await withBroker(async (broker) => {
    const a = await broker.enqueue(msg(1, { unique_key: "k" }));
    assert.equal(await broker.cancel(a.messageId), "cancelled");
    await broker.enqueue(msg(2, { unique_key: "k" }));
    assert.equal((await broker.stats("q")).ready, 1);

    const d1 = await broker.enqueue(msg(10, { unique_key: "d", debounce: 60_000 }));
    await broker.enqueue(msg(11, { unique_key: "d", debounce: 60_000 }));
    const s = await broker.stats("q");
    assert.equal(s.delayed, 1);
    const page = await broker.browse("q", "delayed");
    assert.equal(page.total, 1);
    assert.deepEqual(page.entries[0].message.args, [11]);
    assert.ok(page.entries[0].eta! > Date.now() + 50_000);
    const found = await broker.findMessage(page.entries[0].message.messageId);
    assert.equal(found?.state, "delayed");
    assert.equal(page.entries[0].message.messageId, d1.messageId); // replaced, same id
  });
});

test("runNow and moveMessages take a unique key along with its message", async () => {
  await withBroker(async (broker) => {
    const a = await broker.enqueue(msg(1, { unique_key: "k" }), { delay: 60_000 });
    assert.equal(await broker.runNow([a.messageId]), 1);
    assert.equal((await broker.findMessage(a.messageId))?.state, "ready");
    const dup = await broker.enqueue(msg(2, { unique_key: "k" }));
    assert.equal(dup.messageId, a.messageId, "still held after runNow");
    assert.equal(await broker.moveMessages([a.messageId], "other"), 1);
    const dup2 = await broker.enqueue(msg(3, { unique_key: "k" }));
    assert.equal(dup2.messageId, a.messageId, "still held after the move");
    assert.equal(await broker.queueSize("q"), 0);
    assert.equal(await broker.queueSize("other"), 1);
    assert.equal(await broker.deleteMessages([a.messageId]), 1);
    const fresh = await broker.enqueue(msg(4, { unique_key: "k" }));
    assert.notEqual(fresh.messageId, a.messageId, "released once deleted");
  });
});

test("enqueueTick: once per tick; lastTicks", async () => {
  await withBroker(async (broker) => {
    const m = () => msg(0, { schedule: "s", schedule_tick: 1000 });
    assert.equal(await broker.enqueueTick("s", 1000, m()), true);
    assert.equal(await broker.enqueueTick("s", 1000, m()), false);
    assert.equal(await broker.enqueueTick("s", 999, m()), false);
    assert.equal(await broker.enqueueTick("s", 2000, m()), true);
    assert.equal(await broker.enqueueTick("t", 5, m()), true);
    assert.deepEqual([...(await broker.lastTicks())].sort(), [["s", 2000], ["t", 5]]);
    assert.equal((await broker.stats("q")).ready, 3);
  });
});

test("pause: no consumer gets a paused queue's messages; it survives a reopen", async () => {
  const dir = tempDir();
  try {
    const a = open(dir);
    await a.enqueue(msg(1, {}, "p"));
    await a.pauseQueue("p");
    assert.deepEqual([...(await a.pausedQueues())], ["p"]);
    const b = open(dir);
    assert.deepEqual(await receiveAll(b, "p", 200), []);
    // A consumer waiting when the pause comes stops too.
    await a.resumeQueue("p");
    await a.enqueue(msg(2, {}, "p"));
    await a.pauseQueue("p");
    assert.deepEqual(await receiveAll(b, "p", 200), []);
    await a.close();
    await b.close();
    const c = open(dir);
    assert.deepEqual([...(await c.pausedQueues())], ["p"]);
    const waiting = receiveAll(c, "p", 5000);
    await sleep(100);
    const d = open(dir);
    await d.resumeQueue("p");
    const got = await waiting;
    assert.ok(got.length >= 1, "a waiting consumer gets messages within the poll after a resume");
    await c.close();
    await d.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("progress: set in one instance, read in another", async () => {
  await withBroker(async (broker, dir) => {
    assert.equal(await broker.getProgress("m1"), null);
    await broker.setProgress("m1", { done: 1 });
    await broker.setProgress("m1", { done: 2, of: 3 });
    const other = open(dir);
    const p = await other.getProgress("m1");
    assert.deepEqual(p?.value, { done: 2, of: 3 });
    assert.ok(Math.abs(p!.updatedAt - Date.now()) < 60_000);
    await other.close();
  });
});

test("worker registry: publish, list within ttl, remove", async () => {
  await withBroker(async (broker, dir) => {
    const rec = (id: string, heartbeatAt: number): WorkerRecord => ({
      workerId: id,
      host: "box",
      pid: 1,
      runtime: "test",
      version: "0",
      queues: ["q"],
      concurrency: 1,
      startedAt: 1,
      heartbeatAt,
      running: [],
    });
    await broker.publishWorker(rec("box:1/a", Date.now()), 10_000);
    await broker.publishWorker(rec("box:2", Date.now() - 20_000), 10_000);
    const other = open(dir);
    assert.deepEqual((await other.workers()).map((w) => w.workerId), ["box:1/a"]);
    await broker.removeWorker("box:1/a");
    assert.deepEqual(await other.workers(), []);
    await other.close();
  });
});

test("events: what one instance publishes, another one's reader gets", async () => {
  await withBroker(async (broker, dir) => {
    const other = open(dir);
    const stop = new AbortController();
    const got: BrokerEvent[] = [];
    const iter = other.events({ signal: stop.signal });
    const reading = (async () => {
      for await (const e of iter) {
        got.push(e);
        if (got.length === 3) stop.abort();
      }
    })();
    const ev = (id: string): BrokerEvent => ({
      type: "completed",
      messageId: id,
      actorName: "t",
      queueName: "q",
      at: Date.now(),
    });
    await broker.publishEvents([ev("a"), ev("b")]);
    await broker.publishEvents([ev("c")]);
    await reading;
    assert.deepEqual(got.map((e) => e.messageId), ["a", "b", "c"]);
    await other.close();
  });
});

test("events: a reader follows the file across rotations; the directory keeps two files", async () => {
  await withBroker(async (broker, dir) => {
    const stop = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of broker.events({ signal: stop.signal })) {
        seen.push(e.messageId);
        if (seen.length === 12_000) stop.abort();
      }
    })();
    const pad = "y".repeat(100);
    for (let b = 0; b < 24; b++) {
      await broker.publishEvents(Array.from({ length: 500 }, (_, i) => ({
        type: "failed" as const,
        messageId: String(b * 500 + i),
        actorName: "t",
        queueName: "q",
        at: Date.now(),
        error: pad,
      })));
      await sleep(5);
    }
    await reading;
    assert.equal(seen.length, 12_000);
    assert.ok(seen.every((id, i) => id === String(i)), "in order, none lost");
    const files = fs.readdirSync(`${dir}/events`);
    assert.ok(files.length <= 2, `files: ${files}`);
  });
});

test("browse: small pages over 3,000 messages list each once, newest first", async () => {
  await withBroker(async (broker) => {
    for (let i = 0; i < 3000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, k) => broker.enqueue(msg(i + k))));
    }
    const seen: number[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 1000; pages++) {
      const page = await broker.browse("q", "ready", { limit: 7, cursor });
      assert.equal(page.total, 3000);
      seen.push(...page.entries.map((e) => e.message.args[0] as number));
      if (!page.next) break;
      cursor = page.next;
    }
    assert.deepEqual(seen, Array.from({ length: 3000 }, (_, i) => 2999 - i));
  }, { durability: "none" });
});

test("browse, findMessage, deleteMessages, moveMessages, runNow", async () => {
  await withBroker(async (broker) => {
    const ready = [];
    for (let i = 0; i < 5; i++) ready.push(await broker.enqueue(msg(i)));
    const late = await broker.enqueue(msg(9), { delay: 60_000 });
    const p1 = await broker.browse("q", "ready", { limit: 2 });
    assert.equal(p1.total, 5);
    assert.deepEqual(p1.entries.map((e) => e.message.args[0]), [4, 3]);
    const p2 = await broker.browse("q", "ready", { limit: 2, cursor: p1.next });
    assert.deepEqual(p2.entries.map((e) => e.message.args[0]), [2, 1]);
    const p3 = await broker.browse("q", "ready", { limit: 2, cursor: p2.next });
    assert.deepEqual(p3.entries.map((e) => e.message.args[0]), [0]);
    assert.equal(p3.next, undefined);
    const d = await broker.browse("q", "delayed");
    assert.equal(d.entries[0].message.queueName, "q");
    assert.equal(d.entries[0].state, "delayed");

    assert.equal((await broker.findMessage(ready[2].messageId))?.state, "ready");
    assert.equal(await broker.findMessage("nope"), null);
    assert.equal(await broker.deleteMessages([ready[0].messageId, "nope"]), 1);
    assert.equal(await broker.deleteMessages([ready[0].messageId]), 0);
    assert.equal(await broker.moveMessages([ready[1].messageId], "other"), 1);
    assert.equal((await broker.findMessage(ready[1].messageId))?.message.queueName, "other");
    assert.equal(await broker.runNow([late.messageId, ready[2].messageId]), 1);
    const s = await broker.stats("q");
    assert.equal(s.ready, 4);
    assert.equal(s.delayed, 0);
    const c = broker.consume("q");
    const got = await c.receive(10, { timeout: 100 });
    assert.deepEqual(got.map((m) => m.args[0]).sort(), [2, 3, 4, 9]);
    // Running ones are skipped.
    assert.equal(await broker.deleteMessages([got[0].messageId]), 0);
    assert.equal((await broker.browse("q", "running")).total, 4);
    for (const m of got) c.ack(m);
    c.close();
  });
});

// ---------------------------------------------------------------------------------------------
// Across processes

function child(dir: string, ...args: string[]): Child {
  return new Child("./_file_ops_child.ts", [dir, ...args]);
}

async function finished(c: Child): Promise<string[]> {
  const { code } = await c.exited;
  assert.equal(code, 0, c.stderr.slice(-2000));
  return c.lines;
}

test("cancel across processes: a queued one, and a running one whose holder polls cancelled()", async () => {
  await withBroker(async (broker, dir) => {
    const holder = child(dir, "hold");
    const running = await broker.enqueue(msg(1));
    await holder.waitFor("the child to get the message", () => holder.lines.length > 0);
    assert.equal(holder.lines[0], `got ${running.messageId}`);
    const queued = await broker.enqueue(msg(2));
    const other = child(dir, "cancel", queued.messageId);
    assert.deepEqual(await finished(other), ["cancelled"]);
    assert.equal((await broker.stats("q")).ready, 0);
    assert.equal(await broker.cancel(running.messageId), "running");
    assert.deepEqual((await finished(holder)).slice(1), [`cancelled ${running.messageId}`]);
    await broker.join("q", { timeout: 5000 });
    assert.deepEqual(await receiveAll(broker), []);
    assert.equal(await broker.cancel(running.messageId), "finished");
  });
});

test("events across processes: a reader here gets what another process publishes", {
  timeout: 60_000,
}, async () => {
  await withBroker(async (broker, dir) => {
    const stop = new AbortController();
    const seen: string[] = [];
    const events = broker.events({ signal: stop.signal });
    const reading = (async () => {
      for await (const e of events) {
        seen.push(e.messageId);
        if (seen.length === 20) stop.abort();
      }
    })();
    assert.deepEqual(await finished(child(dir, "events", "20")), ["done"]);
    await Promise.race([reading, sleep(10_000)]);
    stop.abort();
    assert.deepEqual(seen, Array.from({ length: 20 }, (_, i) => String(i)));
  });
});

test("unique across processes: 8 processes send one key 1,000 times each at once: one message", {
  timeout: 120_000,
}, async () => {
  await withBroker(async (broker, dir) => {
    const at = String(Date.now() + 3000);
    const children = Array.from({ length: 8 }, () => child(dir, "unique", "same", "1000", at));
    for (const c of children) assert.deepEqual(await finished(c), ["done"]);
    assert.equal(await broker.queueSize("q"), 1);
    const got = await receiveAll(broker);
    assert.equal(got.length, 1);
    assert.equal(got[0].options.unique_key, "same");
  });
});

test(
  "enqueueTick across processes: 3 processes, the same tick, one message",
  { timeout: 60_000 },
  async () => {
    await withBroker(async (broker, dir) => {
      const at = String(Date.now() + 2000);
      const children = Array.from({ length: 3 }, () => child(dir, "tick", "nightly", "1000", at));
      const said = [];
      for (const c of children) said.push(...await finished(c));
      assert.deepEqual(said.sort(), ["false", "false", "true"]);
      assert.equal(await broker.queueSize("q"), 1);
      assert.deepEqual([...await broker.lastTicks()], [["nightly", 1000]]);
    });
  },
);

test("pause across processes: a consumer in another process stops within a second", {
  timeout: 60_000,
}, async () => {
  await withBroker(async (broker, dir) => {
    const c = child(dir, "consume");
    try {
      await c.waitFor("the consumer to start", () => c.lines.includes("ready"));
      await broker.enqueue(msg(1, {}, "p"));
      await c.waitFor("message 1", () => c.lines.includes("got 1"));
      await broker.pauseQueue("p");
      await sleep(1200); // the contract: consumers stop within ~1 s
      await broker.enqueue(msg(2, {}, "p"));
      await sleep(1500);
      assert.ok(!c.lines.includes("got 2"), "a paused queue's message was delivered");
      assert.equal((await broker.stats("p")).ready, 1);
      await broker.resumeQueue("p");
      await c.waitFor("message 2 after the resume", () => c.lines.includes("got 2"), 5000);
    } finally {
      c.kill();
      await c.exited;
    }
  });
});

test(
  "a SIGKILLed process's pause, tick and unique holder survive a reopen",
  { timeout: 60_000 },
  async () => {
    const dir = tempDir();
    try {
      const c = child(dir, "state");
      await c.waitFor("the child to set its state", () => c.lines.includes("ready"));
      c.kill("SIGKILL");
      await c.exited;
      const broker = open(dir);
      assert.deepEqual([...await broker.pausedQueues()], ["p"]);
      assert.deepEqual([...await broker.lastTicks()], [["s", 5]]);
      assert.equal(await broker.enqueueTick("s", 5, msg(0)), false);
      const size = await broker.queueSize("q");
      const dup = await broker.enqueue(msg(9, { unique_key: "k" }));
      assert.deepEqual(dup.args, [0], "the key is held by the killed process's message");
      assert.equal(await broker.queueSize("q"), size);
      await broker.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("compaction keeps the operations' live records (marks, holders, ticks, pauses, progress)", {
  timeout: 60_000,
}, async () => {
  const dir = tempDir();
  try {
    const broker = open(dir, { segmentSize: 64 * 1024 });
    await broker.pauseQueue("p");
    await broker.enqueueTick("s", 7, msg(0, {}, "other"));
    await broker.pauseSchedule("s");
    await broker.pauseSchedule("r");
    await broker.resumeSchedule("r");
    const pauses = await broker.schedulePauses();
    await broker.enqueue(msg(1, { unique_key: "k" }, "other"));
    const run = await broker.enqueue(msg(2));
    const c = broker.consume("q");
    const [held] = await c.receive(1, { timeout: 1000 });
    assert.equal(held.messageId, run.messageId);
    assert.equal(await broker.cancel(run.messageId), "running");
    await broker.setProgress(run.messageId, 42);
    // Fill several segments with messages that are then acked, and compact them away.
    const filler = "x".repeat(2000);
    for (let round = 0; round < 4; round++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => broker.enqueue(msg(i, { filler }))));
      let left = 50;
      while (left > 0) {
        const got = await c.receive(left, { timeout: 1000 });
        for (const m of got) c.ack(m);
        left -= got.length;
      }
    }
    let deleted = 0;
    for (let i = 0; i < 5; i++) deleted += await broker.compact();
    assert.ok(deleted > 0, "compaction deleted segments");
    const after = open(dir);
    assert.deepEqual([...await after.pausedQueues()], ["p"]);
    assert.deepEqual([...await after.lastTicks()], [["s", 7]]);
    assert.deepEqual(await after.schedulePauses(), pauses);
    assert.deepEqual([...pauses.values()].map((p) => p.paused), [true, false]);
    assert.deepEqual([...await after.cancelled([run.messageId])], [run.messageId]);
    assert.equal((await after.getProgress(run.messageId))?.value, 42);
    const dup = await after.enqueue(msg(3, { unique_key: "k" }, "other"));
    assert.deepEqual(dup.args, [1]);
    c.ack(held);
    c.close();
    await after.close();
    await broker.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
