// Actor options belong to middleware: an actor may use the options of its broker's middleware
// (and actor()'s own), checked when it is declared, as in Dramatiq.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  actor,
  MemoryResultBackend,
  Message,
  Middleware,
  Results,
  Retries,
  setBroker,
  StubBroker,
} from "../mod.ts";
import { runScript } from "./_runtime.ts";

class Audit extends Middleware {
  override get actorOptions(): readonly string[] {
    return ["audit"];
  }
}

test("a broker's actorOptions are those of its middleware", () => {
  const broker = new StubBroker();
  for (const name of ["maxRetries", "timeLimit", "maxAge", "onSuccess", "pipeIgnore"]) {
    assert.ok(broker.actorOptions.has(name), name);
  }
  assert.equal(broker.actorOptions.has("storeResults"), false);
  broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
  assert.ok(broker.actorOptions.has("storeResults"));
  assert.ok(broker.actorOptions.has("resultTtl"));
  assert.deepEqual([...new StubBroker({ middleware: [] }).actorOptions], []);
});

test("an option of a middleware the actor's broker lacks is refused at declaration", () => {
  const audited = new StubBroker();
  audited.addMiddleware(new Audit());
  actor(function charge() {}, { broker: audited, audit: true });
  // Another broker's middleware does not make the option legal here.
  const plain = new StubBroker();
  assert.throws(
    () => actor(function refund() {}, { broker: plain, audit: true }),
    (e: unknown) =>
      e instanceof TypeError &&
      e.message.startsWith('actor(): Unknown option "audit" for actor "refund".') &&
      e.message.includes("add that middleware to the broker before declaring the actor"),
  );
  assert.throws(
    () => actor(function stored() {}, { broker: plain, storeResults: true }),
    /Unknown option "storeResults" for actor "stored"/,
  );
  // Without Retries, its options are unknown too; actor()'s own options always are known.
  const bare = new StubBroker({ middleware: [] });
  assert.throws(
    () => actor(function once() {}, { broker: bare, maxRetries: 0 }),
    /Unknown option "maxRetries"/,
  );
  actor(function own() {}, { broker: bare, actorName: "own2", queueName: "q", priority: 1 });
  bare.addMiddleware(new Retries());
  actor(function once() {}, { broker: bare, maxRetries: 0 });
  assert.deepEqual([...plain.getDeclaredActors()], []);
});

test("per-message options are checked against the broker the actor sends to", async () => {
  const audited = new StubBroker();
  audited.addMiddleware(new Audit());
  const task = actor(function task() {}, { broker: audited });
  const m = await task.sendWithOptions({ audit: true });
  assert.ok(m instanceof Message);
  assert.equal(m.options.audit, true);
  const other = actor(function other() {}, { broker: new StubBroker() });
  await assert.rejects(
    other.sendWithOptions({ audit: true }),
    /^TypeError: other: Unknown option "audit" for actor "other"/,
  );
});

test("actors without a broker option are checked against the global broker", async () => {
  const global = setBroker(new StubBroker());
  global.addMiddleware(new Audit());
  actor(function globallyAudited() {}, { audit: true });
  const next = setBroker(new StubBroker());
  // Declared once, checked once: a later global broker without Audit still gets the actor.
  assert.ok(next.hasActor("globallyAudited"));
  assert.throws(
    () => actor(function notAudited() {}, { audit: true }),
    /Unknown option "audit" for actor "notAudited"/,
  );
  await global.close();
  await next.close();
});

test("before any global broker is set, the default stack's options are the legal ones", async () => {
  const file = fileURLToPath(new URL("./fixtures/options_before_broker.ts", import.meta.url));
  const r = await runScript(file, { timeout: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /refused: actor\(\): Unknown option "storeResults" for actor "stored"/);
  assert.match(r.stdout, /declared: early late\n/);
});
