import { test } from "node:test";
import assert from "node:assert/strict";
import { actor, getBroker, Message, setBroker, StubBroker, Worker } from "../mod.ts";

test("actor() works as a function and as a decorator, and stays callable", async () => {
  const broker = new StubBroker();
  const add = actor(function add(a: number, b: number) {
    return a + b;
  }, { broker });
  const mul = actor({ actorName: "mul", queueName: "math", priority: 3, broker })(
    (a: number, b: number) => a * b,
  );
  assert.equal(add(2, 3), 5);
  assert.equal(mul(2, 3), 6);
  assert.equal(add.actorName, "add");
  assert.equal(add.queueName, "default");
  assert.equal(add.priority, 0);
  assert.equal(mul.queueName, "math");
  assert.equal(mul.priority, 3);
  assert.deepEqual([...broker.getDeclaredActors()].sort(), ["add", "mul"]);
  assert.deepEqual([...broker.getDeclaredQueues()].sort(), ["default", "math"]);
  const m = await mul.send(4, 5);
  assert.ok(m instanceof Message);
  assert.equal(m.queueName, "math");
  assert.deepEqual(m.args, [4, 5]);
  assert.equal((await broker.stats("math")).ready, 1);
});

test("actor() rejects bad declarations with clear errors", () => {
  const broker = new StubBroker();
  assert.throws(() => actor(() => 1, { broker }), /no name/);
  assert.throws(
    () => actor(function f() {}, { broker, maxRetires: 3 }),
    /Unknown option "maxRetires" for actor "f"/,
  );
  assert.throws(() => actor(function f() {}, { broker, timeLimit: -1 }), /timeLimit/);
  assert.throws(
    () => actor(function f() {}, { broker, queueName: "bad name!" }),
    /Invalid queue name/,
  );
  assert.throws(() => actor(function f() {}, { broker, retryWhen: 3 as never }), /retryWhen/);
});

test("send() rejects non-JSON arguments naming the actor and path, enqueueing nothing", async () => {
  const broker = new StubBroker();
  const store = actor(function store(_x: unknown) {}, { broker });
  const bad: [unknown, RegExp][] = [
    [undefined, /store: argument args\[0\] is undefined/],
    [{ at: new Date() }, /args\[0\]\.at is an instance of Date/],
    [{ n: 10n }, /args\[0\]\.n is a BigInt/],
    [[1, NaN], /args\[0\]\[1\] is NaN/],
    [() => 1, /args\[0\] is a function/],
  ];
  for (const [value, re] of bad) {
    await assert.rejects(
      store.send(value),
      (e: unknown) => e instanceof TypeError && re.test(String(e)),
    );
  }
  await assert.rejects(
    async () => await store.sendWithOptions({ args: [1], kwargs: { when: new Map() } }),
    /kwargs\.when is an instance of Map/,
  );
  assert.equal((await broker.stats("default")).ready, 0);
});

test("sendWithOptions: delay becomes eta on q.DQ, options go on the wire in snake_case", async () => {
  const broker = new StubBroker();
  const task = actor(function task(_n: number) {}, { broker });
  const other = actor(function other() {}, { broker });
  const before = Date.now();
  const m = await task.sendWithOptions({
    args: [1],
    delay: 5_000,
    maxRetries: 1,
    timeLimit: 100,
    onSuccess: other,
  });
  assert.equal(m.queueName, "default.DQ");
  assert.ok((m.options.eta as number) >= before + 5_000);
  assert.equal(m.options.max_retries, 1);
  assert.equal(m.options.time_limit, 100);
  assert.equal(m.options.on_success, "other");
  assert.equal(m.options.delay, undefined);
  await assert.rejects(
    task.sendWithOptions({ args: [1], throws: [Error] }),
    /only be set on the actor/,
  );
  await assert.rejects(task.sendWithOptions({ args: [1], bogus: 1 }), /Unknown option "bogus"/);
  await assert.rejects(task.sendWithOptions({ args: [1], delay: -5 }), /delay/);
  assert.throws(() => task.message(undefined as never), /not a JSON value/);
});

test("actors declared before setBroker() are declared on the global broker", async () => {
  const early = actor(function declaredEarly() {
    return "ok";
  });
  const broker = setBroker(new StubBroker());
  assert.equal(getBroker(), broker);
  assert.ok(broker.getDeclaredActors().has("declaredEarly"));
  const m = await early.send();
  assert.equal(m.actorName, "declaredEarly");
  const late = actor(function declaredLate() {});
  assert.ok(broker.getDeclaredActors().has("declaredLate"));
  assert.equal(late.broker, broker);
});

test("kwargs reach a TS actor as one trailing object", async () => {
  const broker = new StubBroker();
  const got: unknown[][] = [];
  const k = actor(function kw(...args: unknown[]) {
    got.push(args);
  }, { broker });
  await k.sendWithOptions({ args: [1], kwargs: { b: 2 } });
  await k.send(3);
  const w = new Worker(broker, { workerTimeout: 50, concurrency: 1 });
  await w.start();
  await broker.join("default");
  await w.stop();
  assert.deepEqual(got, [[1, { b: 2 }], [3]]);
});

test("a second actor under a name already registered on the broker throws, naming it", async () => {
  const broker = new StubBroker();
  const first = actor(function report() {
    return 1;
  }, { broker });
  assert.throws(
    () => actor(function report() {}, { broker }),
    (e: unknown) =>
      e instanceof TypeError && /An actor named "report" is already registered/.test(e.message),
  );
  assert.throws(
    () => actor(() => 2, { actorName: "report", broker, queueName: "other" }),
    /An actor named "report" is already registered/,
  );
  // The first one is still the one the broker runs, and nothing of the second was declared.
  assert.equal(broker.getActor("report"), first);
  assert.deepEqual([...broker.getDeclaredQueues()], ["default"]);
  // The same name on another broker is fine, and re-declaring the same actor is a no-op.
  actor(function report() {}, { broker: new StubBroker() });
  broker.declareActor(first);
  assert.equal(broker.getActor("report"), first);
  // Actors on the global broker too, whether or not a global broker is set yet.
  actor(function globalDuplicate() {});
  assert.throws(
    () => actor(function globalDuplicate() {}),
    /"globalDuplicate" is already registered/,
  );
  const before = setBroker(new StubBroker());
  assert.ok(before.hasActor("globalDuplicate"));
  setBroker(before); // setting the same broker again declares nothing twice
  await before.close();
});

test("actor names with control characters are refused at declaration", () => {
  const broker = new StubBroker();
  for (
    const [name, code] of [
      ["forged\n[2026-01-01 00:00:00,000] [PID 1] [MainThread] [dramatis] [ERROR] x", "U+000A"],
      ["cr\rname", "U+000D"],
      ["tab\tname", "U+0009"],
      ["esc\x1b[31mred", "U+001B"],
      ["nul\0", "U+0000"],
      ["c1\x85", "U+0085"],
      ["sep\u2028line", "U+2028"],
    ]
  ) {
    assert.throws(
      () => actor(() => {}, { actorName: name, broker }),
      (e: unknown) =>
        e instanceof TypeError && e.message.startsWith("Invalid actor name") &&
        e.message.includes(code),
      JSON.stringify(name),
    );
  }
  assert.equal(broker.getDeclaredActors().size, 0);
  // Names Python Dramatiq users have (dots, unicode letters) are fine.
  actor(() => {}, { actorName: "tasks.send_email", broker });
  actor(() => {}, { actorName: "envoyer_é", broker });
  assert.equal(broker.getDeclaredActors().size, 2);
});
