// What dramatis logs, and at which level, written from Dramatiq's worker and broker (issue 10).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actor,
  type Broker,
  ConcurrentRateLimiter,
  MemoryRateLimiterBackend,
  MemoryResultBackend,
  Message,
  Middleware,
  pipeline,
  Results,
  Retries,
  StubBroker,
  TimeLimit,
} from "../mod.ts";
import { drainWith } from "./_helpers.ts";
import { matching, withLogs } from "./_logs.ts";

test("an error listed in `throws` is logged at INFO as an expected failure, not as unhandled", async () => {
  class PaymentDeclined extends Error {
    override name = "PaymentDeclined";
  }
  const broker = new StubBroker();
  let calls = 0;
  const charge = actor(function charge(_order: number) {
    calls++;
    throw calls === 1 ? new PaymentDeclined("card refused") : new RangeError("bug");
  }, { broker, throws: PaymentDeclined, maxRetries: 0 });
  await withLogs(async (lines) => {
    const declined = await charge.send(7);
    await drainWith(broker);
    const expected = matching(lines, /with expected exception/);
    assert.equal(expected.length, 1, lines.join("\n"));
    assert.match(
      expected[0],
      new RegExp(
        `\\[dramatis\\.worker\\.Worker\\] \\[INFO\\] Failed to process message charge\\(7\\) ` +
          `\\(${declined.messageId}\\) with expected exception PaymentDeclined\\.$`,
      ),
    );
    assert.deepEqual(matching(lines, /unhandled exception/), []);
    // An error that is not listed is still an unhandled exception, with its stack.
    await charge.send(8);
    await drainWith(broker);
    const unhandled = matching(lines, /unhandled exception/);
    assert.equal(unhandled.length, 1);
    assert.match(unhandled[0], /\[WARNING\] Failed to process message charge\(8\)/);
  });
  assert.equal(calls, 2, "neither was retried");
  assert.equal(broker.deadLettersByQueue.get("default")!.length, 2);
});

test("RateLimitExceeded escaping an actor is logged at DEBUG, not as an unhandled exception", async () => {
  const broker = new StubBroker();
  const backend = new MemoryRateLimiterBackend();
  const mutex = new ConcurrentRateLimiter(backend, "reports", { limit: 1 });
  const lease = await mutex.lease(); // held: the actor cannot get it
  const report = actor(async function report() {
    await mutex.acquire(() => "never");
  }, { broker, maxRetries: 0 });
  await withLogs(async (lines) => {
    const m = await report.send();
    await drainWith(broker);
    const limited = matching(lines, /Rate limit exceeded in message/);
    assert.equal(limited.length, 1, lines.join("\n"));
    assert.match(
      limited[0],
      new RegExp(`\\[DEBUG\\] Rate limit exceeded in message report\\(\\) \\(${m.messageId}\\): `),
    );
    assert.deepEqual(matching(lines, /unhandled exception/), []);
  });
  await lease.release();
});

class SetEta extends Middleware {
  constructor(readonly eta: unknown) {
    super();
  }
  override beforeEnqueue(_b: Broker, message: Message, delay: number | undefined): void {
    if (delay !== undefined) message.options.eta = this.eta as never;
  }
}

test("a message whose eta is not a number runs now, with a warning, on any queue", async () => {
  const broker = new StubBroker();
  const ran: string[] = [];
  const work = actor(function work(tag: string) {
    ran.push(tag);
  }, { broker });
  await withLogs(async (lines) => {
    // On the queue itself (a producer wrote a bad eta on a message that is not delayed)...
    const plain = await broker.enqueue(
      new Message({
        queueName: "default",
        actorName: "work",
        args: ["plain"],
        options: { eta: "soon" },
      }),
    );
    // ...and on the delay queue.
    broker.addMiddleware(new SetEta({ at: "tomorrow" }));
    const delayed = await work.sendWithOptions({ args: ["delayed"], delay: 60_000 });
    assert.equal(delayed.queueName, "default.DQ");
    await drainWith(broker, "default", { timeout: 5_000 });
    assert.deepEqual(ran.sort(), ["delayed", "plain"]);
    const warnings = matching(lines, /Invalid eta value/);
    assert.equal(warnings.length, 2, lines.join("\n"));
    assert.ok(
      warnings.some((l) =>
        l.includes(`[WARNING] Invalid eta value for message ${plain.messageId}: "soon".`)
      ),
    );
    assert.ok(
      warnings.some((l) =>
        l.includes(`Invalid eta value for message ${delayed.messageId}: {"at":"tomorrow"}.`)
      ),
    );
  });
  // A null eta means "none", as in Dramatiq: it runs, without a warning.
  await withLogs(async (lines) => {
    await broker.enqueue(
      new Message({
        queueName: "default",
        actorName: "work",
        args: ["null"],
        options: { eta: null },
      }),
    );
    await drainWith(broker);
    assert.ok(ran.includes("null"));
    assert.deepEqual(matching(lines, /Invalid eta/), []);
  });
});

test("a returned value no Results middleware stores is reported once per actor", async () => {
  const broker = new StubBroker();
  const total = actor(function total(a: number, b: number) {
    return a + b;
  }, { broker });
  const other = actor(function other() {
    return "x";
  }, { broker });
  const quiet = actor(function quiet() {}, { broker });
  const sink = actor(function sink(_n: number) {}, { broker });
  await withLogs(async (lines) => {
    for (let i = 0; i < 3; i++) await total.send(i, 1);
    await other.send();
    for (let i = 0; i < 3; i++) await quiet.send();
    // A result piped into the next step is not discarded.
    await pipeline([total.message(1, 2), sink.message()], { broker }).run();
    await drainWith(broker);
    const warned = matching(lines, /discarded/);
    assert.equal(warned.length, 2, warned.join("\n"));
    assert.match(
      warned.find((l) => l.includes('"total"'))!,
      /\[WARNING\] Actor "total" returned a value, but the broker has no Results middleware, so the value has been discarded\. Add one/,
    );
    assert.ok(warned.some((l) => l.includes('Actor "other"')));
  });
});

test("with Results but without storeResults, a returned value is reported once per actor", async () => {
  const broker = new StubBroker();
  broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
  const kept = actor(function kept() {
    return 1;
  }, { broker, storeResults: true });
  const lost = actor(function lost() {
    return 2;
  }, { broker });
  const done = actor(function done(_m: unknown, _r: unknown) {}, { broker });
  const passed = actor(function passed() {
    return 3;
  }, { broker, onSuccess: done });
  await withLogs(async (lines) => {
    await kept.send();
    await lost.send();
    await lost.send();
    await passed.send();
    await drainWith(broker);
    const warned = matching(lines, /discarded/);
    assert.equal(warned.length, 1, warned.join("\n"));
    assert.match(
      warned[0],
      /\[dramatis\.middleware\.results\.Results\] \[WARNING\] Actor "lost" returned a value, but its `storeResults` option is not true/,
    );
  });
});

test("adding a second middleware of the same class logs a warning", async () => {
  await withLogs((lines) => {
    const broker = new StubBroker(); // the default stack: one of each
    assert.deepEqual(matching(lines, /same type twice/), []);
    broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
    assert.deepEqual(matching(lines, /same type twice/), []);
    broker.addMiddleware(new Retries({ maxRetries: 1 }));
    broker.addMiddleware(new TimeLimit(), { before: Retries });
    const warned = matching(lines, /same type twice/);
    assert.equal(warned.length, 2);
    assert.match(
      warned[0],
      /\[dramatis\.broker\.Broker\] \[WARNING\] You're adding a middleware of the same type twice: Retries\. It may have unexpected results\./,
    );
    assert.match(warned[1], /twice: TimeLimit\./);
    // The middleware is still added, as in Dramatiq.
    assert.equal(broker.middleware.filter((m) => m instanceof Retries).length, 2);
  });
});
