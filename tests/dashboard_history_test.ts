// The dashboard on the file and Redis brokers: a message found by id in every state (the file
// broker's lookup by id, Redis' keys by message id), the attempts of a message from the events
// (one that failed twice and then succeeded, run by a real Worker), and the recently finished
// list. Runs on both runtimes:
//   deno test -A tests/dashboard_history_test.ts        bun test tests/dashboard_history_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import { actor, Worker } from "../mod.ts";
import { brokerSource, dashboardHandler } from "../dashboard/mod.ts";
import { Client } from "./_dashboard.ts";
import { BROKERS, populate } from "./_dashboard_broker.ts";
import { sleep } from "./_helpers.ts";

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

for (const [name, make] of BROKERS) {
  test(`dashboard on ${name}: search by id finds ready, delayed, running and dead messages`, async () => {
    const { broker, cleanup } = make();
    try {
      const { ids, consumer } = await populate(broker, "emails", "reports");
      const c = new Client(dashboardHandler(broker));
      const want = { ready1: "ready", delayed1: "delayed", run1: "running", dead3: "dead" };
      for (const [key, state] of Object.entries(want)) {
        const r = await c.request(`/api/search?id=${ids[key]}`);
        const page = await r.json();
        assert.equal(page.total, 1, key);
        assert.equal(page.messages[0].message.message_id, ids[key]);
        assert.equal(page.messages[0].state, state, key);
        const m = await (await c.request(`/api/messages/${ids[key]}`)).json();
        assert.equal(m.state, state, key);
      }
      const none = await (await c.request(`/api/search?id=${crypto.randomUUID()}`)).json();
      assert.equal(none.total, 0);
      await consumer.close();
    } finally {
      await cleanup();
    }
  });

  test(`dashboard on ${name}: every attempt from the events, and the finished list`, {
    timeout: 30_000,
  }, async () => {
    const { broker, cleanup } = make();
    broker.declareQueue("jobs");
    let tries = 0;
    const flaky = actor(async () => {
      await sleep(5);
      if (tries++ < 2) throw new Error(`try ${tries} failed`);
    }, { actorName: "flaky", broker, queueName: "jobs", minBackoff: 10, maxBackoff: 20 });
    const doomed = actor(() => {
      throw new TypeError("never works");
    }, { actorName: "doomed", broker, queueName: "jobs", maxRetries: 0 });
    const worker = new Worker(broker, { workerTimeout: 50, queues: ["jobs"] });
    try {
      const c = new Client(dashboardHandler(brokerSource(broker)));
      // The dashboard follows the events from its first message page: before the messages run.
      assert.equal((await c.request(`/api/messages/${crypto.randomUUID()}`)).status, 404);
      await worker.start();
      const m = await flaky.send();
      const d = await doomed.send();
      const finished = async () =>
        (await (await c.request("/api/finished?queue=jobs")).json()).messages as {
          messageId: string;
          outcome: string;
          attempts: number;
          durationMs?: number;
        }[];
      await until("both finished", async () => (await finished()).length === 2);
      const list = await finished();
      const of = (id: string) => list.find((f) => f.messageId === id)!;
      assert.equal(of(m.messageId).outcome, "completed");
      assert.equal(of(m.messageId).attempts, 3);
      assert.equal(of(d.messageId).outcome, "dead-lettered");
      assert.ok(of(m.messageId).durationMs! >= 0);
      // The message page of the finished one: three attempts, with duration, worker and error.
      const page = await (await c.request(`/api/messages/${m.messageId}`)).json();
      assert.equal(page.state, "done");
      assert.equal(page.fromEvents, true);
      const attempts = page.attempts as {
        outcome: string;
        durationMs?: number;
        workerId?: string;
        error?: string;
        startedAt?: number;
      }[];
      assert.deepEqual(attempts.map((a) => a.outcome), ["retry", "retry", "success"]);
      for (const a of attempts) {
        assert.ok(a.durationMs! >= 0 && a.startedAt! > 0, JSON.stringify(a));
        assert.equal(a.workerId, worker.workerId);
      }
      assert.deepEqual(attempts.map((a) => a.error), [
        "Error: try 1 failed",
        "Error: try 2 failed",
        undefined,
      ]);
      // The dead letter is still on the broker: its page has its attempt from the events.
      const dead = await (await c.request(`/api/messages/${d.messageId}`)).json();
      assert.equal(dead.state, "dead");
      assert.equal(dead.attempts.length, 1);
      assert.equal(dead.attempts[0].outcome, "dead");
      assert.equal(dead.attempts[0].workerId, worker.workerId);
      assert.match(dead.attempts[0].error, /never works/);
      // The HTML pages.
      const html = await (await c.request("/finished")).text();
      assert.match(html, /Recently finished/);
      assert.match(html, /the last 10,000 events/);
      assert.ok(html.includes(m.messageId.slice(0, 8)));
      const mhtml = await (await c.request(`/messages/${m.messageId}`)).text();
      assert.match(mhtml, /Not kept: this message finished/);
      assert.match(mhtml, /try 2 failed/);
    } finally {
      await worker.stop({ timeout: 1_000 });
      await cleanup();
    }
  });
}
