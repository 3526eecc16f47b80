// RedisBroker operations beyond the shared suite (tests/redis_ops_suite_test.ts): a Python
// Dramatiq worker listed from Dramatiq's heartbeat set, unique sends racing from 8 processes,
// a cancel seen by another process, browse paging over thousands of messages, the keys kept
// apart from Dramatiq's. Each test uses its own namespace, deleted afterwards.
//   deno test -A tests/redis_ops_test.ts        bun test tests/redis_ops_test.ts
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { RedisBroker } from "../broker/redis/broker.ts";
import { Message } from "../message.ts";
import { cleanupPython, pythonSkip, startPythonWorker } from "./_python.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";
import { scriptArgs } from "./_runtime.ts";

const CHILD = fileURLToPath(new URL("./_redis_ops_child.ts", import.meta.url));
const namespaces: string[] = [];
after(async () => {
  for (const ns of namespaces) await deleteKeys(`${ns}:`);
  cleanupPython();
});

function makeBroker(namespace = randomNamespace("rops")): RedisBroker {
  namespaces.push(namespace);
  return new RedisBroker({ url: SHARED_URL, namespace });
}

function msg(queueName: string, n: number, options = {}): Message {
  return new Message({ queueName, actorName: "t", args: [n], options });
}

/** Runs the child script with `args`; `onLine` sees each line of its output as it comes. */
function child(args: string[], onLine: (line: string) => void = () => {}) {
  const proc = spawn(process.execPath, [...scriptArgs(CHILD), ...args], {
    env: { ...process.env, NO_COLOR: "1", OPS_CHILD_URL: SHARED_URL },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "", err = "", partial = "";
  proc.stdout!.on("data", (d) => {
    out += d;
    partial += d;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const l of lines) onLine(l);
  });
  proc.stderr!.on("data", (d) => err += d);
  const timer = setTimeout(() => proc.kill("SIGKILL"), 120_000);
  const done = new Promise<string>((resolve, reject) =>
    proc.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`child ${args[0]} exited ${code}:\n${out}\n${err}`));
    })
  );
  return { done, kill: () => proc.kill("SIGKILL") };
}

test("a unique send from 8 processes x 1,000 sends of one key enqueues one message", {
  timeout: 180_000,
}, async () => {
  const broker = makeBroker();
  const ns = broker.namespace;
  try {
    broker.declareQueue("u");
    const key = `key-${crypto.randomUUID()}`;
    const outs = await Promise.all(
      Array.from({ length: 8 }, () => child(["unique", ns, "u", key, "1000"]).done),
    );
    const ids = new Set<string>();
    for (const out of outs) {
      const line = out.split("\n").find((l) => l.startsWith("sent "))!;
      for (const id of line.slice(5).split(",")) ids.add(id);
    }
    assert.equal(ids.size, 1, `the sends resolved to ${ids.size} ids`);
    const s = await broker.stats("u");
    assert.equal(s.ready, 1);
    const page = await broker.browse("u", "ready");
    assert.equal(page.entries[0]!.message.messageId, [...ids][0]);
  } finally {
    await broker.close();
  }
});

test("enqueueTick in processes SIGKILLed at random points: every claimed tick is enqueued once", {
  timeout: 120_000,
}, async () => {
  const broker = makeBroker();
  const ns = broker.namespace;
  try {
    broker.declareQueue("s");
    for (let round = 0; round < 4; round++) {
      const name = `sched-${round}`;
      let started!: () => void;
      const ticking = new Promise<void>((r) => started = r);
      const proc = child(["ticks", ns, "s", name], (l) => l === "ticking" && started());
      await ticking;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 300));
      proc.kill();
      await proc.done.catch(() => {});
      const last = (await broker.lastTicks()).get(name)!;
      const payloads = await broker.client.send(["HVALS", `${ns}:s.msgs`]) as string[];
      const ticks = payloads.map((p) => JSON.parse(p).options)
        .filter((o) => o.schedule_name === name).map((o) => o.schedule_tick as number)
        .sort((a, b) => a - b);
      console.log(`round ${round}: killed after tick ${last}`);
      // Tick 1..last each once: none claimed without its message, none twice, none unclaimed.
      assert.deepEqual(ticks, Array.from({ length: last }, (_, i) => i + 1));
    }
  } finally {
    await broker.close();
  }
});

test("a cancel of a message running in another process is seen there within 1 s", {
  timeout: 60_000,
}, async () => {
  const broker = makeBroker();
  try {
    broker.declareQueue("c");
    const m = await broker.enqueue(msg("c", 1));
    let got!: () => void;
    const gotIt = new Promise<void>((r) => got = r);
    let seenAt = 0;
    const watcher = child(["watch", broker.namespace, "c"], (line) => {
      if (line === `got ${m.messageId}`) got();
      if (line === `seen ${m.messageId}`) seenAt = Date.now();
    });
    await gotIt;
    const start = Date.now();
    assert.equal(await broker.cancel(m.messageId), "running");
    await watcher.done;
    const ms = seenAt - start;
    console.log(`cancel seen by the other process after ${ms} ms`);
    assert.ok(seenAt > 0 && ms < 1_000, `seen after ${ms} ms`);
    await broker.join("c", { timeout: 5_000 });
  } finally {
    await broker.close();
  }
});

test("browse pages over 3,000 ready messages list each once, newest first", async () => {
  const broker = makeBroker();
  try {
    broker.declareQueue("b");
    const sent: string[] = [];
    await Promise.all(Array.from({ length: 3_000 }, async (_, i) => {
      const m = await broker.enqueue(msg("b", i));
      sent[i] = m.messageId;
    }));
    const listed: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await broker.browse("b", "ready", { limit: 7, ...(cursor ? { cursor } : {}) });
      assert.equal(page.total, 3_000);
      assert.ok(page.entries.length <= 7);
      for (const e of page.entries) listed.push(e.message.messageId);
      cursor = page.next;
      pages++;
    } while (cursor);
    assert.equal(pages, Math.ceil(3_000 / 7));
    assert.equal(listed.length, 3_000);
    assert.equal(new Set(listed).size, 3_000);
    assert.deepEqual(new Set(listed), new Set(sent));
    // Newest first: the reverse of the list's order (the order Redis stored the sends in).
    const rids = await broker.client.send(["LRANGE", `${broker.namespace}:b`, 0, -1]) as string[];
    const payloads = await broker.client.send(["HMGET", `${broker.namespace}:b.msgs`, ...rids]);
    const stored = (payloads as string[]).map((p) => JSON.parse(String(p)).message_id as string);
    assert.deepEqual(listed, stored.reverse());
    const found = await broker.findMessage(listed[1_500]!);
    assert.equal(found?.state, "ready");
    assert.equal(await broker.deleteMessages(listed.slice(0, 10)), 10);
    assert.equal((await broker.stats("b")).ready, 2_990);
  } finally {
    await broker.close();
  }
});

test("the operations' keys are under ns:__dramatis__. and not listed as queues", async () => {
  const broker = makeBroker();
  try {
    broker.declareQueue("k");
    await broker.enqueue(msg("k", 1, { unique_key: "x" }));
    await broker.pauseQueue("k");
    await broker.setProgress("m1", 1);
    await broker.publishEvents([{
      type: "completed",
      messageId: "m1",
      actorName: "t",
      queueName: "k",
      at: Date.now(),
    }]);
    assert.deepEqual(await broker.listQueues(), ["k"]);
    let cursor = "0";
    const keys: string[] = [];
    do {
      const [next, batch] = await broker.client.send(
        ["SCAN", cursor, "MATCH", `${broker.namespace}:*`, "COUNT", 1000],
      ) as [string, string[]];
      cursor = String(next);
      keys.push(...batch.map(String));
    } while (cursor !== "0");
    const extra = keys.filter((k) => !k.startsWith(`${broker.namespace}:k`)).sort();
    const day = Math.floor((Date.now() + 7 * 86_400_000) / 86_400_000);
    assert.deepEqual(extra, [
      `${broker.namespace}:__dramatis__.events`,
      `${broker.namespace}:__dramatis__.holders`,
      `${broker.namespace}:__dramatis__.holders.${day}`,
      `${broker.namespace}:__dramatis__.paused`,
      `${broker.namespace}:__dramatis__.progress.m1`,
    ]);
    await broker.resumeQueue("k");
  } finally {
    await broker.close();
  }
});

const skip = await pythonSkip(["redis"]);

test("a Python Dramatiq worker is listed by workers() from Dramatiq's heartbeat set", {
  skip,
  timeout: 120_000,
}, async () => {
  const broker = makeBroker();
  const python = await startPythonWorker({
    DRAMATIS_TEST_BROKER: "redis",
    DRAMATIS_TEST_URL: SHARED_URL,
    DRAMATIS_TEST_NAMESPACE: broker.namespace,
    DRAMATIS_TEST_QUEUE: "py",
  });
  try {
    broker.declareQueue("py");
    // This broker consumes too: it is in the heartbeat set, and must not be listed as Python.
    const consumer = broker.consume("py");
    await consumer.receive(1, { timeout: 100 });
    const deadline = Date.now() + 30_000;
    let listed = await broker.workers();
    while (!listed.some((w) => w.runtime === "python dramatiq") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      listed = await broker.workers();
    }
    const py = listed.filter((w) => w.runtime === "python dramatiq");
    assert.ok(py.length >= 1, `workers(): ${JSON.stringify(listed)}`);
    assert.ok(!listed.some((w) => w.workerId === broker.brokerId));
    assert.ok(Date.now() - py[0]!.heartbeatAt < 60_000);
    await consumer.close();
    // What it runs is listed from its ack set of the queue.
    const slow = await broker.enqueue(
      new Message({ queueName: "py", actorName: "py_slow", args: [3_000] }),
    );
    const until = Date.now() + 30_000;
    let running = false;
    while (!running && Date.now() < until) {
      const w = (await broker.workers()).filter((x) => x.runtime === "python dramatiq");
      running = w.some((x) =>
        x.running.some((r) => r.messageId === slow.messageId && r.actorName === "py_slow") &&
        x.queues.includes("py")
      );
      if (!running) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(running, "the Python worker's running message is listed");
    await broker.join("py", { timeout: 30_000 });
  } finally {
    await python.stop();
    await broker.close();
  }
});

test("a pause is kept in Redis: a new broker (a restart) sees it and its consumer gets nothing", async () => {
  const a = makeBroker();
  const b = new RedisBroker({ url: SHARED_URL, namespace: a.namespace });
  try {
    a.declareQueue("p");
    b.declareQueue("p");
    await a.pauseQueue("p");
    await a.enqueue(msg("p", 1));
    await a.close();
    assert.deepEqual(await b.pausedQueues(), new Set(["p"]));
    const c = b.consume("p");
    assert.deepEqual(await c.receive(1, { timeout: 500 }), []);
    await b.resumeQueue("p");
    const got = await c.receive(1, { timeout: 5_000 });
    assert.equal(got.length, 1);
    await c.ack(got[0]!);
    await c.close();
  } finally {
    await a.close();
    await b.close();
  }
});

test("a unique holder keeps its key when its delay ends and it moves to its queue", async () => {
  const broker = makeBroker();
  try {
    broker.declareQueue("d");
    const key = `key-${crypto.randomUUID()}`;
    const a = await broker.enqueue(msg("d", 1, { unique_key: key }), { delay: 100 });
    // What a Worker does with a due delayed message: takes it from q.DQ, enqueues it on q.
    const dq = broker.consume("d.DQ");
    let due: Awaited<ReturnType<typeof dq.receive>> = [];
    const deadline = Date.now() + 5_000;
    while (due.length === 0 && Date.now() < deadline) due = await dq.receive(1, { timeout: 500 });
    assert.equal(due[0]?.messageId, a.messageId);
    const options = { ...due[0]!.options };
    delete options.eta;
    await broker.enqueue(due[0]!.copy({ queueName: "d", options }));
    await dq.ack(due[0]!);
    await dq.close();
    const s = await broker.stats("d");
    assert.equal(s.ready, 1);
    assert.equal(s.delayed, 0);
    // The record followed the move: the key is still held by a.
    assert.equal((await broker.enqueue(msg("d", 2, { unique_key: key }))).messageId, a.messageId);
    assert.equal((await broker.stats("d")).ready, 1);
  } finally {
    await broker.close();
  }
});
