import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actor,
  type Broker,
  group,
  GroupCallbacks,
  MemoryRateLimiterBackend,
  MemoryResultBackend,
  type MessageProxy,
  Middleware,
  pipeline,
  type ProcessOutcome,
  ResultFailure,
  ResultMissing,
  Results,
  ResultTimeout,
  StubBroker,
  Worker,
} from "../mod.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { FileResultBackend } from "../results/file.ts";
import { RedisResultBackend } from "../results/redis.ts";
import type { ResultBackend } from "../results/backend.ts";
import { drainWith, sleep } from "./_helpers.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

function resultBroker() {
  const broker = new StubBroker();
  broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
  broker.addMiddleware(new GroupCallbacks({ backend: new MemoryRateLimiterBackend() }));
  return broker;
}

test("Results: getResult returns the value; ResultMissing before it exists", async () => {
  const broker = resultBroker();
  const add = actor(function add(a: number, b: number) {
    return a + b;
  }, { broker, storeResults: true });
  const m = await add.send(2, 3);
  await assert.rejects(m.getResult(), ResultMissing);
  await drainWith(broker);
  assert.equal(await m.getResult(), 5);
});

test("Results: a final failure raises ResultFailure with the error's name and message", async () => {
  const broker = resultBroker();
  const bad = actor(function bad() {
    throw new RangeError("out of range");
  }, { broker, storeResults: true, maxRetries: 0 });
  const m = await bad.send();
  await drainWith(broker);
  await assert.rejects(m.getResult(), (e: unknown) => {
    assert.ok(e instanceof ResultFailure);
    assert.equal(e.errorName, "RangeError");
    assert.equal(e.errorMessage, "out of range");
    assert.match(e.message, /actor raised RangeError: out of range/);
    return true;
  });
});

test("Results: blocking getResult waits for the worker, or times out", async () => {
  const broker = resultBroker();
  const slow = actor(async function slow() {
    await sleep(100);
    return "done";
  }, { broker, storeResults: true });
  const never = actor(function never() {}, { broker, storeResults: true, queueName: "idle" });
  const m = await slow.send();
  const worker = new Worker(broker, { queues: ["default"], workerTimeout: 50 });
  await worker.start();
  assert.equal(await m.getResult({ block: true, timeout: 5_000 }), "done");
  await worker.stop();
  const n = await never.send();
  const t0 = Date.now();
  await assert.rejects(n.getResult({ block: true, timeout: 100 }), ResultTimeout);
  assert.ok(Date.now() - t0 >= 95);
});

test("Results: a blocking read does not miss a result stored in the same tick", async () => {
  const broker = resultBroker();
  const instant = actor(function instant(n: number) {
    return n;
  }, { broker, storeResults: true });
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  for (let i = 0; i < 50; i++) {
    const m = await instant.send(i);
    assert.equal(await m.getResult({ block: true, timeout: 2_000 }), i);
  }
  await worker.stop();
});

test("pipeline: each result is passed to the next step; pipeIgnore opts out", async () => {
  const broker = resultBroker();
  const calls: unknown[][] = [];
  const add = actor(function add(a: number, b: number) {
    calls.push(["add", a, b]);
    return a + b;
  }, { broker, storeResults: true });
  const double = actor(function double(n: number) {
    calls.push(["double", n]);
    return n * 2;
  }, { broker, storeResults: true });
  const ping = actor(function ping(...args: unknown[]) {
    calls.push(["ping", ...args]);
    return "pong";
  }, { broker, storeResults: true });
  const p = await pipeline([
    add.message(1, 2),
    double.message(),
    ping.messageWithOptions({ pipeIgnore: true }),
    ping.message("last"),
  ], { broker }).run();
  await drainWith(broker);
  assert.deepEqual(calls, [["add", 1, 2], ["double", 3], ["ping"], ["ping", "last", "pong"]]);
  assert.deepEqual(await p.getResults(), [3, 6, "pong", "pong"]);
  assert.equal(await p.getResult(), "pong");
});

test("Results: a result that is not JSON is stored as a failure, not lost", async () => {
  const broker = resultBroker();
  const bad = actor(function badResult() {
    return new Map();
  }, { broker, storeResults: true });
  const m = await bad.send();
  await drainWith(broker);
  await assert.rejects(m.getResult(), /returned an instance of Map/);
});

test("pipeline: a failing step stops the pipeline", async () => {
  const broker = resultBroker();
  let ranAfter = false;
  const boom = actor(function boom() {
    throw new Error("step failed");
  }, { broker, maxRetries: 0, storeResults: true });
  const after = actor(function after() {
    ranAfter = true;
  }, { broker });
  const p = await pipeline([boom.message(), after.message()], { broker }).run();
  await drainWith(broker);
  assert.equal(ranAfter, false);
  await assert.rejects(p.getResults(), ResultFailure);
});

/** Marks a message failed after its actor returned `"invalid"`: a failure without an error. */
class RejectInvalid extends Middleware {
  override afterProcessMessage(_b: Broker, message: MessageProxy, { result }: ProcessOutcome) {
    if (result === "invalid") message.fail();
  }
}

test("pipeline: a step a middleware marks failed after it ran stops the pipeline", async () => {
  const broker = resultBroker();
  broker.addMiddleware(new RejectInvalid());
  const ran: string[] = [];
  const validate = actor(function validate(input: string) {
    ran.push(`validate ${input}`);
    return input === "ok" ? "valid" : "invalid";
  }, { broker, storeResults: true });
  const save = actor(function save(verdict: string) {
    ran.push(`save ${verdict}`);
  }, { broker });
  const good = await pipeline([validate.message("ok"), save.message()], { broker }).run();
  const bad = await pipeline([validate.message("x"), save.message()], { broker }).run();
  await drainWith(broker);
  assert.deepEqual(ran.sort(), ["save valid", "validate ok", "validate x"]);
  assert.equal(await good.messages[0].getResult({ broker }), "valid");
  // The failed step went to the dead letters, its result is a failure, and nothing followed it.
  const dead = broker.deadLettersByQueue.get("default")!;
  assert.deepEqual(dead.map((m) => m.messageId), [bad.messages[0].messageId]);
  await assert.rejects(bad.messages[0].getResult({ broker }), ResultFailure);
  await assert.rejects(bad.getResult({ broker }), ResultMissing);
  // A group member marked failed does not count towards the group's completion.
  let called = 0;
  const finished = actor(function finished() {
    called++;
  }, { broker });
  const g = group([validate.message("ok"), validate.message("y")], { broker })
    .addCompletionCallback(finished.message());
  await g.run();
  await drainWith(broker);
  assert.equal(called, 0);
});

test("group: members run in parallel, results come back in order", async () => {
  const broker = resultBroker();
  const square = actor(async function square(n: number) {
    await sleep(10 - n);
    return n * n;
  }, { broker, storeResults: true });
  const inc = actor(function inc(n: number) {
    return n + 1;
  }, { broker, storeResults: true });
  const g = await group([
    square.message(1),
    square.message(2),
    pipeline([square.message(3), inc.message()], { broker }),
  ], { broker }).run();
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  await g.wait({ timeout: 5_000 });
  assert.deepEqual(await g.getResults(), [1, 4, 10]);
  await worker.stop();
});

test("group: completion callbacks run once, after every member succeeded", async () => {
  const broker = resultBroker();
  let completed = 0;
  const done: number[] = [];
  const member = actor(async function member(n: number) {
    await sleep(n * 5);
    done.push(n);
  }, { broker });
  const finished = actor(function finished(tag: string) {
    assert.equal(done.length, 5, "callback ran before every member finished");
    assert.equal(tag, "all done");
    completed++;
  }, { broker });
  const g = group([0, 1, 2, 3, 4].map((n) => member.message(n)), { broker });
  g.addCompletionCallback(finished.message("all done"));
  await g.run();
  await drainWith(broker, "default", { concurrency: 5 });
  assert.equal(completed, 1);
});

test("group: completion callbacks without GroupCallbacks give a clear error", async () => {
  const broker = new StubBroker();
  const a = actor(function a() {}, { broker });
  const g = group([a.message()], { broker }).addCompletionCallback(a.message());
  await assert.rejects(g.run(), /GroupCallbacks middleware/);
});

/** A result backend for each kind, with the keys a test stored, to clean up after. */
const resultBackends: [string, () => { backend: ResultBackend; cleanup: () => Promise<void> }][] = [
  ["memory", () => ({ backend: new MemoryResultBackend(), cleanup: async () => {} })],
  ["file", () => {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-composition-"));
    return {
      backend: new FileResultBackend({ dir }),
      cleanup: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
    };
  }],
  ["redis", () => {
    const namespace = randomNamespace("composition-");
    // Readable keys, so that every key the test stored can be found and deleted.
    const backend = new RedisResultBackend({
      url: SHARED_URL,
      namespace,
      useNamespacePrefixKeys: true,
    });
    return {
      backend,
      cleanup: async () => {
        await backend.close();
        await deleteKeys(`${namespace}:`);
      },
    };
  }],
];

for (const [kind, make] of resultBackends) {
  test(`completedCount and completed, as Dramatiq counts them (${kind} results)`, async () => {
    const { backend, cleanup } = make();
    const broker = new StubBroker();
    broker.addMiddleware(new Results({ backend, storeResults: true }));
    const worker = new Worker(broker, { workerTimeout: 50, concurrency: 4 });
    let open!: () => void;
    const gate = new Promise<void>((r) => open = r);
    try {
      const step = actor(function step(n: number) {
        return n + 1;
      }, { broker });
      const held = actor(async function held(n: number) {
        await gate;
        return n * 10;
      }, { broker });
      const fail = actor(function fail(_n: number) {
        throw new Error("no");
      }, { broker, maxRetries: 0 });
      const p = pipeline([step.message(1), held.message(), step.message()], { broker });
      const failing = pipeline([step.message(1), fail.message(), step.message()], { broker });
      const inner = group([step.message(5), held.message(6)], { broker });
      const g = group([step.message(1), pipeline([step.message(2), held.message()]), inner], {
        broker,
      });
      assert.equal(await p.completedCount(), 0);
      assert.equal(await p.completed(), false);
      assert.equal(await g.completedCount(), 0);
      await p.run();
      await failing.run();
      await g.run();
      await worker.start();
      // Everything that does not wait on the gate finishes; the held steps hold the rest.
      await waitUntil(async () => await g.completedCount() === 1 && await p.completedCount() === 1);
      assert.equal(await p.completed(), false);
      assert.equal(await inner.completedCount(), 1);
      assert.equal(await g.completed(), false);
      // A failed step has finished: the pipeline stopped there (its last step never runs).
      await waitUntil(async () => await failing.completedCount() === 2);
      assert.equal(await failing.completed(), false);
      open();
      await g.wait({ timeout: 10_000 });
      assert.equal(await p.getResult({ block: true, timeout: 10_000 }), 21);
      assert.equal(await p.completedCount(), 3);
      assert.equal(await p.completed(), true);
      assert.equal(await g.completedCount(), 3);
      assert.equal(await g.completed(), true);
      assert.deepEqual(await g.getResults(), [2, 30, [6, 60]]);
    } finally {
      open();
      await worker.stop({ timeout: 1_000 });
      await cleanup();
    }
  });
}

test("group: groups nest, with pipelines, results in the same shape and callbacks at each level", async () => {
  const broker = resultBroker();
  const done: string[] = [];
  const callbacks: { tag: string; doneSoFar: string[] }[] = [];
  const work = actor(async function work(tag: string, ms: number) {
    await sleep(ms);
    done.push(tag);
    return tag;
  }, { broker, storeResults: true });
  const upper = actor(function upper(s: string) {
    return s.toUpperCase();
  }, { broker, storeResults: true });
  const notify = actor(function notify(tag: string) {
    callbacks.push({ tag, doneSoFar: [...done] });
  }, { broker });
  const innermost = group([work.message("d", 30)], { broker })
    .addCompletionCallback(notify.message("innermost"));
  const inner = group([work.message("b", 5), innermost, work.message("c", 1)], { broker });
  const outer = group([
    work.message("a", 20),
    pipeline([work.message("p", 1), upper.message()], { broker }),
    inner,
    group([], { broker }),
  ], { broker }).addCompletionCallback(notify.message("outer"));
  // An empty member group cannot complete: refused, with a clear error, and nothing enqueued.
  await assert.rejects(outer.run(), /needs at least one member/);
  assert.equal((await broker.stats("default")).ready, 0);
  outer.children.pop();
  inner.addCompletionCallback(notify.message("inner"));
  await outer.run();
  await drainWith(broker, "default", { concurrency: 8 });
  assert.deepEqual(await outer.getResults(), ["a", "P", ["b", ["d"], "c"]]);
  await outer.wait({ timeout: 1_000 });
  // Each callback ran once, after everything it waits for: innermost after d, inner after b, c
  // and d, outer after all of it.
  assert.deepEqual(callbacks.map((c) => c.tag).sort(), ["inner", "innermost", "outer"]);
  const at = (tag: string) => callbacks.find((c) => c.tag === tag)!.doneSoFar;
  assert.ok(at("innermost").includes("d"));
  for (const t of ["b", "c", "d"]) assert.ok(at("inner").includes(t), `inner before ${t}`);
  assert.deepEqual(at("outer").sort(), ["a", "b", "c", "d", "p"]);
  // Running the group again completes it again, with new barriers.
  await outer.run();
  await drainWith(broker, "default", { concurrency: 8 });
  assert.equal(callbacks.filter((c) => c.tag === "outer").length, 2);
});

async function waitUntil(check: () => Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not true after ${timeout} ms: ${check}`);
    await sleep(20);
  }
}
