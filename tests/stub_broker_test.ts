import { test } from "node:test";
import assert from "node:assert/strict";
import { brokerSuite } from "./_broker_suite.ts";
import { actor, StubBroker, Worker } from "../mod.ts";

brokerSuite("StubBroker", () => new StubBroker());

test("StubBroker: join with failFast re-throws the actor's error", async () => {
  const broker = new StubBroker();
  class Boom extends Error {}
  const fails = actor(() => {
    throw new Boom("kaboom");
  }, { actorName: "fails", broker, maxRetries: 0 });
  await fails.send();
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  try {
    await assert.rejects(broker.join("default", { timeout: 5_000 }), (e: unknown) => {
      assert.ok(e instanceof Boom);
      assert.equal((e as Error).message, "kaboom");
      return true;
    });
    // failFast: false waits for the queue and does not throw.
    await broker.join("default", { timeout: 5_000, failFast: false });
  } finally {
    await worker.stop();
  }
  assert.equal(broker.deadLettersByQueue.get("default")?.length, 1);
  await broker.flushAll();
  assert.equal(broker.deadLettersByQueue.get("default")?.length, 0);
});
