import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actor,
  AgeLimit,
  computeBackoff,
  ConcurrentRateLimiter,
  currentMessage,
  currentSignal,
  MemoryRateLimiterBackend,
  MemoryResultBackend,
  Message,
  type MessageProxy,
  Middleware,
  ResultFailure,
  Results,
  Retries,
  Retry,
  Shutdown,
  SkipMessage,
  StubBroker,
  TimeLimit,
  TimeLimitExceeded,
  Worker,
} from "../mod.ts";
import type { Broker } from "../mod.ts";
import { drainWith, sleep } from "./_helpers.ts";

test("the default stack is Dramatiq's, in order", () => {
  const broker = new StubBroker();
  assert.deepEqual(broker.middleware.map((m) => m.constructor.name), [
    "AgeLimit",
    "TimeLimit",
    "ShutdownNotifications",
    "Callbacks",
    "Pipelines",
    "Retries",
  ]);
});

test("computeBackoff stays within [min*2^n, 2*min*2^n) and under maxBackoff", () => {
  for (let n = 0; n < 40; n++) {
    for (const r of [0, 0.5, 0.999999]) {
      const b = computeBackoff(n, { minBackoff: 100, maxBackoff: 10_000, random: () => r });
      assert.ok(b <= 10_000, `backoff ${b} above max at n=${n}`);
      const base = 100 * 2 ** Math.min(n, 32);
      if (base * 2 <= 10_000) assert.ok(b >= base && b < 2 * base, `n=${n} r=${r} b=${b}`);
      else assert.ok(b >= 5_000, `capped backoff ${b} below max/2`);
    }
  }
  assert.ok(computeBackoff(100, { minBackoff: 15_000, maxBackoff: 1e12 }) <= 7 * 86_400_000);
});

test("Retries: retried maxRetries times with growing delays, then dead-lettered", async () => {
  const broker = new StubBroker();
  const times: number[] = [];
  const retriesSeen: unknown[] = [];
  const flaky = actor(function flaky() {
    times.push(Date.now());
    retriesSeen.push(currentMessage()?.options.retries);
    throw new Error("nope");
  }, { broker, maxRetries: 3, minBackoff: 20, maxBackoff: 1_000 });
  await flaky.send();
  await drainWith(broker);
  assert.equal(times.length, 4, "1 attempt + 3 retries");
  assert.deepEqual(retriesSeen, [undefined, 1, 2, 3]);
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  // Backoff after n failures is in [20*2^n, 40*2^n) ms (timers may fire a little late).
  gaps.forEach((g, n) => assert.ok(g >= 20 * 2 ** n - 2, `gap ${n} = ${g} ms too short`));
  const dead = broker.deadLettersByQueue.get("default")!;
  assert.equal(dead.length, 1);
  assert.equal(dead[0].options.retries, 3, "the retries done, as Dramatiq's brokers store it");
  assert.match(String(dead[0].options.traceback), /Error: nope/);
});

test("Retries: maxRetries per message overrides the actor's; 0 means no retry", async () => {
  const broker = new StubBroker();
  let calls = 0;
  const a = actor(function a() {
    calls++;
    throw new Error("x");
  }, { broker, maxRetries: 5, minBackoff: 1 });
  await a.sendWithOptions({ maxRetries: 0 });
  await drainWith(broker);
  assert.equal(calls, 1);
});

test("Retries: retryWhen decides instead of maxRetries", async () => {
  const broker = new StubBroker();
  const seen: [number, string][] = [];
  const a = actor(function a() {
    throw new TypeError(`attempt ${seen.length}`);
  }, {
    broker,
    minBackoff: 1,
    maxRetries: 0,
    retryWhen: (n, e) => {
      seen.push([n, (e as Error).name]);
      return n < 2;
    },
  });
  await a.send();
  await drainWith(broker);
  assert.deepEqual(seen, [[0, "TypeError"], [1, "TypeError"], [2, "TypeError"]]);
  assert.equal(broker.deadLettersByQueue.get("default")!.length, 1);
});

test("Retries: errors in `throws` are never retried", async () => {
  const broker = new StubBroker();
  class Fatal extends Error {}
  let calls = 0;
  const a = actor(function a(kind: string) {
    calls++;
    throw kind === "fatal" ? new Fatal("bad input") : new Error("transient");
  }, { broker, throws: [Fatal], maxRetries: 1, minBackoff: 1 });
  await a.send("fatal");
  await drainWith(broker);
  assert.equal(calls, 1);
  await a.send("other");
  await drainWith(broker);
  assert.equal(calls, 3);
});

test("Retries: an actor throwing Retry({ delay }) is retried after that delay", async () => {
  const broker = new StubBroker();
  const times: number[] = [];
  const a = actor(function a() {
    times.push(Date.now());
    if (times.length === 1) throw new Retry({ delay: 150 });
  }, { broker, minBackoff: 1 });
  await a.send();
  await drainWith(broker);
  assert.equal(times.length, 2);
  assert.ok(times[1] - times[0] >= 145, `retried after ${times[1] - times[0]} ms`);
});

test("Retries: onRetryExhausted gets the message and the retry counts", async () => {
  const broker = new StubBroker();
  const got: unknown[][] = [];
  const exhausted = actor(function exhausted(...args: unknown[]) {
    got.push(args);
  }, { broker });
  const a = actor(function a() {
    throw new Error("x");
  }, { broker, maxRetries: 1, minBackoff: 1, onRetryExhausted: exhausted });
  const sent = await a.send();
  await drainWith(broker);
  assert.equal(got.length, 1);
  const [msg, info] = got[0] as [Record<string, unknown>, unknown];
  assert.equal(msg.message_id, sent.messageId);
  assert.equal(msg.actor_name, "a");
  assert.deepEqual(info, { retries: 1, max_retries: 1 });
});

test("AgeLimit: a message older than maxAge is skipped and dead-lettered", async () => {
  const broker = new StubBroker({ middleware: [new AgeLimit(), new Retries()] });
  let ran = 0;
  const a = actor(function a() {
    ran++;
  }, { broker, maxAge: 50 });
  await a.send();
  await sleep(80);
  await a.send();
  await drainWith(broker);
  assert.equal(ran, 1);
  assert.equal(broker.deadLettersByQueue.get("default")!.length, 1);
});

test("AgeLimit: a skipped message stores Dramatiq's failure when results are on", async () => {
  const broker = new StubBroker();
  broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
  let ran = 0;
  const a = actor(function report() {
    ran++;
    return "fresh";
  }, { broker, maxAge: 1_000, storeResults: true });
  const old = await broker.enqueue(
    new Message({
      queueName: "default",
      actorName: "report",
      messageTimestamp: Date.now() - 5_000,
    }),
  );
  const fresh = await a.send();
  await drainWith(broker);
  assert.equal(ran, 1);
  assert.equal(await fresh.getResult(), "fresh");
  await assert.rejects(old.getResult({ broker }), (e: unknown) => {
    assert.ok(e instanceof ResultFailure);
    assert.equal(e.message, "actor raised SkipMessage: Message age limit exceeded");
    assert.equal(e.errorName, "SkipMessage");
    return true;
  });
  const dead = broker.deadLettersByQueue.get("default")!;
  assert.deepEqual(dead.map((m) => m.messageId), [old.messageId]);
  assert.ok(dead[0].error instanceof SkipMessage);
});

test("TimeLimit: aborts the signal and fails the message, even if the actor ignores it", async () => {
  const broker = new StubBroker();
  let signalReason: unknown;
  let lateFinish = false;
  const polite = actor(async function polite() {
    const signal = currentSignal();
    await new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => {
        signalReason = signal.reason;
        resolve();
      })
    );
    throw signal.reason;
  }, { broker, timeLimit: 50, maxRetries: 0 });
  const rude = actor(async function rude() {
    await sleep(400); // ignores its signal
    lateFinish = true;
  }, { broker, timeLimit: 50, maxRetries: 0 });
  await polite.send();
  await rude.send();
  const start = Date.now();
  await drainWith(broker);
  assert.ok(Date.now() - start < 350, "the worker waited for the actor that ignored its signal");
  assert.ok(signalReason instanceof TimeLimitExceeded);
  const dead = broker.deadLettersByQueue.get("default")!;
  assert.equal(dead.length, 2);
  for (const m of dead) assert.ok(m.error instanceof TimeLimitExceeded, String(m.error));
  assert.equal(lateFinish, false);
});

test("TimeLimit: a message that exceeds it is retried per its options", async () => {
  const broker = new StubBroker({ middleware: [new TimeLimit(), new Retries({ minBackoff: 1 })] });
  let calls = 0;
  const slowOnce = actor(async function slowOnce() {
    calls++;
    if (calls === 1) await sleep(200);
  }, { broker, timeLimit: 30, maxRetries: 2 });
  await slowOnce.send();
  await drainWith(broker);
  assert.equal(calls, 2);
  assert.equal(broker.deadLettersByQueue.get("default")!.length, 0);
});

test("Callbacks: onSuccess gets the result, onFailure the error", async () => {
  const broker = new StubBroker();
  const successes: unknown[][] = [];
  const failures: unknown[][] = [];
  const ok = actor(function ok(msg: unknown, result: unknown) {
    successes.push([msg, result]);
  }, { broker });
  const _ko = actor(function ko(msg: unknown, err: unknown) {
    failures.push([msg, err]);
  }, { broker });
  const div = actor(function div(a: number, b: number) {
    if (b === 0) throw new RangeError("division by zero");
    return a / b;
  }, { broker, onSuccess: ok, onFailure: "ko", maxRetries: 0 });
  await div.send(6, 3);
  await div.send(1, 0);
  await drainWith(broker);
  assert.equal(successes.length, 1);
  assert.equal(successes[0][1], 2);
  assert.deepEqual((successes[0][0] as { args: unknown }).args, [6, 3]);
  assert.equal(failures.length, 1);
  const err = failures[0][1] as { type: string; message: string };
  assert.equal(err.type, "RangeError");
  assert.equal(err.message, "division by zero");
});

test("SkipMessage from beforeProcessMessage skips the actor and acks the message", async () => {
  const broker = new StubBroker();
  const skipped: string[] = [];
  class SkipOdd extends Middleware {
    override beforeProcessMessage(_b: Broker, m: MessageProxy) {
      if ((m.args[0] as number) % 2 === 1) throw new SkipMessage("odd");
    }
    override afterSkipMessage(_b: Broker, m: MessageProxy) {
      skipped.push(String(m.args[0]));
    }
  }
  broker.addMiddleware(new SkipOdd());
  const ran: number[] = [];
  const a = actor(function a(n: number) {
    ran.push(n);
  }, { broker });
  for (let i = 0; i < 4; i++) await a.send(i);
  await drainWith(broker, "default", { concurrency: 1 });
  assert.deepEqual(ran, [0, 2]);
  assert.deepEqual(skipped, ["1", "3"]);
  assert.equal(broker.deadLettersByQueue.get("default")!.length, 0);
});

test("before hooks run in stack order, after hooks in reverse; async hooks are awaited", async () => {
  const broker = new StubBroker({ middleware: [] });
  const calls: string[] = [];
  class M extends Middleware {
    constructor(readonly tag: string) {
      super();
    }
    override async beforeProcessMessage() {
      await sleep(1);
      calls.push(`before ${this.tag}`);
    }
    override afterProcessMessage() {
      calls.push(`after ${this.tag}`);
    }
    override afterAck() {
      calls.push(`ack ${this.tag}`);
    }
  }
  broker.addMiddleware(new M("a"));
  broker.addMiddleware(new M("c"));
  broker.addMiddleware(new M("b"), { after: M });
  assert.throws(
    () => broker.addMiddleware(new M("x"), { before: Retries }),
    /no middleware of class Retries/,
  );
  const a = actor(function a() {
    calls.push("actor");
  }, { broker });
  await a.send();
  await drainWith(broker);
  assert.deepEqual(calls, [
    "before a",
    "before b",
    "before c",
    "actor",
    "after c",
    "after b",
    "after a",
    "ack c",
    "ack b",
    "ack a",
  ]);
});

test("an error in an after hook is logged, not thrown; the message is still acked", async () => {
  const broker = new StubBroker();
  class Broken extends Middleware {
    override afterProcessMessage(): void {
      throw new Error("middleware bug");
    }
  }
  broker.addMiddleware(new Broken());
  let ran = 0;
  const a = actor(function a() {
    ran++;
  }, { broker });
  await a.send();
  await drainWith(broker);
  assert.equal(ran, 1);
  assert.equal(broker.deadLettersByQueue.get("default")!.length, 0);
});

test("ShutdownNotifications: notifyShutdown actors see their signal abort at stop()", async () => {
  const broker = new StubBroker();
  let reason: unknown;
  let started!: () => void;
  const isStarted = new Promise<void>((r) => started = r);
  const long = actor(async function long() {
    started();
    const signal = currentSignal();
    await new Promise((r) => signal.addEventListener("abort", r));
    reason = signal.reason;
    throw signal.reason;
  }, { broker, notifyShutdown: true });
  await long.send();
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  await isStarted;
  const t0 = Date.now();
  await worker.stop({ timeout: 5_000 });
  assert.ok(Date.now() - t0 < 1_000, "stop waited for the shutdown timeout");
  assert.ok(reason instanceof Shutdown);
  // Handed back, not retried and not dead-lettered.
  const s = await broker.stats("default");
  assert.equal(s.ready, 1);
  assert.equal(broker.deadLettersByQueue.get("default")!.length, 0);
});

test("Retries: rateLimitDelay re-runs a rate-limited actor later without counting a retry", async () => {
  const broker = new StubBroker();
  const mutex = new ConcurrentRateLimiter(new MemoryRateLimiterBackend(), "one", { limit: 1 });
  const order: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  const guarded = actor(async function guarded(tag: string) {
    await mutex.acquire(async () => {
      order.push(tag);
      if (tag === "first") await held;
    });
  }, { broker, maxRetries: 0, rateLimitDelay: 40 });
  await guarded.send("first");
  await guarded.send("second");
  setTimeout(release, 100);
  await drainWith(broker, "default", { concurrency: 2 });
  assert.deepEqual(order, ["first", "second"]);
  assert.equal(broker.deadLettersByQueue.get("default")!.length, 0, "not dead-lettered");
});
