// The dashboard's HTTP actions without a browser, on real brokers: the FileBroker (a real
// directory) and the RedisBroker on the shared server (each test its own namespace, deleted
// after). What a broker cannot do is checked to answer "not supported" instead (capabilities).
//   deno test -A tests/dashboard_broker_test.ts        bun test tests/dashboard_broker_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import type { Broker } from "../broker/broker.ts";
import { NO_CAPABILITIES } from "../broker/ops.ts";
import { FileBroker } from "../broker/file/broker.ts";
import { RedisBroker } from "../broker/redis/broker.ts";
import { RedisClient } from "../broker/redis/client.ts";
import { RabbitmqBroker } from "../broker/rabbitmq/broker.ts";
import type { Consumer } from "../broker/consumer.ts";
import { SHARED_AMQP_URL, uniqueName } from "./_rabbitmq.ts";
import { brokerSource, dashboardHandler } from "../dashboard/mod.ts";
import { Message } from "../message.ts";
import { MemoryResultBackend } from "../results/backend.ts";
import { MetricsRegistry } from "../telemetry/registry.ts";
import { removeSchedule, schedule } from "../schedule/schedule.ts";
import { Client } from "./_dashboard.ts";
import { BROKERS, populate } from "./_dashboard_broker.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

interface Ctx {
  broker: Broker;
  c: Client;
  emails: string;
  reports: string;
  ids: Record<string, string>;
  release(): Promise<void>;
}

async function stats(ctx: Ctx, queue: string) {
  return await ctx.broker.stats(queue);
}

for (const [name, make] of BROKERS) {
  const t = (
    title: string,
    needs: ("browse" | "cancel" | "pause" | "workers")[],
    fn: (ctx: Ctx) => Promise<void>,
  ) =>
    test(`dashboard on ${name}: ${title}`, async () => {
      const { broker, cleanup } = make();
      try {
        for (const cap of needs) {
          if (!broker.capabilities[cap]) {
            console.log(`${name} has no ${cap}: the dashboard must say so`);
            return await unsupported(broker, cap);
          }
        }
        const suffix = crypto.randomUUID().slice(0, 8);
        const emails = `emails_${suffix}`, reports = `reports_${suffix}`;
        const { ids, consumer } = await populate(broker, emails, reports);
        const c = new Client(dashboardHandler(broker, { results: new MemoryResultBackend() }));
        await c.page("/");
        let released = false;
        const release = async () => {
          if (!released) await consumer.close();
          released = true;
        };
        try {
          await fn({ broker, c, emails, reports, ids, release });
        } finally {
          await release();
        }
      } finally {
        await cleanup();
      }
    });

  t("the overview keeps ready, delayed, in flight and dead apart", ["browse"], async (ctx) => {
    const { body } = await ctx.c.json<{ queues: Record<string, unknown>[] }>("/api/overview");
    const e = body.queues.find((q) => q.queueName === ctx.emails)!;
    const r = body.queues.find((q) => q.queueName === ctx.reports)!;
    assert.deepEqual(
      [e.ready, e.delayed, e.inFlight, e.dead, r.ready, r.delayed, r.inFlight, r.dead],
      [2, 0, 1, 2, 1, 1, 0, 1],
    );
    assert.equal(typeof e.oldestReadyTimestamp, "number");
    const live = await ctx.c.json<{ totals: Record<string, number> }>("/api/live");
    assert.ok(live.body.totals.dead! >= 3);
  });

  t(
    "search by id, actor, state, text (args and errors) and time range",
    ["browse"],
    async (ctx) => {
      const ids = async (path: string) => {
        const { status, body } = await ctx.c.json<
          { messages: { message: { message_id: string } }[]; total: number }
        >(path);
        assert.equal(status, 200, path);
        return new Set(body.messages.map((m) => m.message.message_id));
      };
      const q = `queue=${ctx.emails}`;
      assert.deepEqual(await ids(`/api/search?id=${ctx.ids.ready2}`), new Set([ctx.ids.ready2]));
      assert.deepEqual(await ids(`/api/search?q=${ctx.ids.dead3}`), new Set([ctx.ids.dead3]));
      assert.deepEqual(
        await ids(`/api/search?${q}&q=timeout`),
        new Set([ctx.ids.dead1, ctx.ids.dead2]),
      );
      assert.deepEqual(await ids(`/api/search?${q}&q=bob%40example`), new Set([ctx.ids.ready2]));
      assert.deepEqual(
        await ids(`/api/search?${q}&q=example&in=error`),
        new Set(),
      );
      assert.deepEqual(
        await ids(`/api/search?queue=${ctx.reports}&actor=build_report&state=delayed`),
        new Set([ctx.ids.delayed1]),
      );
      assert.deepEqual(
        await ids(`/api/search?${q}&state=running`),
        new Set([ctx.ids.run1]),
      );
      assert.equal(
        (await ids(`/api/search?${q}&from=${Date.now() + 60_000}`)).size,
        0,
      );
      const page = await ctx.c.page(`/search?${q}&q=timeout`);
      assert.match(page.html, /erin@example\.com/);
      // The message page: envelope, error, attempts, result (pending: not run).
      const m = await ctx.c.json<Record<string, unknown>>(`/api/messages/${ctx.ids.dead1}`);
      assert.equal(m.status, 200);
      assert.equal(m.body.state, "dead");
      const attempts = m.body.attempts as { outcome: string; error?: string }[];
      assert.equal(attempts.at(-1)!.outcome, "dead");
      assert.match(String(attempts.at(-1)!.error), /TimeoutError: SMTP server did not answer/);
      assert.deepEqual(m.body.result, { status: "pending" });
      assert.equal((await ctx.c.json(`/api/messages/nope-${ctx.ids.dead1}`)).status, 404);
    },
  );

  t(
    "bulk requeue of a search's dead letters: a count first, then atomic",
    ["browse"],
    async (ctx) => {
      const fields = {
        action: "requeue",
        scope: "query",
        queue: ctx.emails,
        q: "timeout",
      };
      const count = await ctx.c.post("/actions/messages", fields);
      assert.equal(count.status, 200, count.text);
      assert.equal(count.body.step, "confirm");
      assert.equal(count.body.count, 2);
      assert.equal((await stats(ctx, ctx.emails)).dead, 2, "nothing moved before the confirmation");
      const done = await ctx.c.post("/actions/messages", {
        ...fields,
        confirm: "1",
        expected: "2",
        asOf: String(count.body.asOf ?? Date.now()),
      });
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.done, 2);
      const s = await stats(ctx, ctx.emails);
      assert.equal(s.dead, 0);
      assert.equal(s.ready, 4);
      assert.equal((await stats(ctx, ctx.reports)).dead, 1, "the other queue's dead letter stays");
    },
  );

  t("delete, run now, move and retry single messages", ["browse"], async (ctx) => {
    const act = async (action: string, id: string, extra: Record<string, string> = {}) => {
      const r = await ctx.c.post("/actions/messages", {
        action,
        scope: "ids",
        ids: id,
        confirm: "1",
        ...extra,
      });
      assert.equal(r.status, 200, r.text);
      return r.body;
    };
    assert.equal((await act("run-now", ctx.ids.delayed1)).done, 1);
    let s = await stats(ctx, ctx.reports);
    assert.deepEqual([s.ready, s.delayed], [2, 0]);
    assert.equal((await act("move", ctx.ids.ready3, { target: ctx.emails })).done, 1);
    assert.equal((await stats(ctx, ctx.emails)).ready, 3);
    assert.equal((await act("delete", ctx.ids.ready1)).done, 1);
    assert.equal((await stats(ctx, ctx.emails)).ready, 2);
    assert.equal((await act("retry", ctx.ids.dead3)).done, 1);
    s = await stats(ctx, ctx.reports);
    assert.deepEqual([s.ready, s.dead], [2, 0]);
    // A running message cannot be deleted: skipped, still running.
    const skipped = await act("delete", ctx.ids.run1);
    assert.deepEqual([skipped.done, skipped.skipped], [0, 1]);
    assert.equal((await stats(ctx, ctx.emails)).inFlight, 1);
  });

  t("cancel a queued and a running message", ["browse", "cancel"], async (ctx) => {
    const r = await ctx.c.post("/actions/messages", [
      ["action", "cancel"],
      ["scope", "ids"],
      ["ids", ctx.ids.ready1],
      ["ids", ctx.ids.run1],
      ["confirm", "1"],
    ]);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.body.done, r.body.pending], [1, 1]);
    assert.deepEqual(await ctx.broker.cancelled([ctx.ids.run1]), new Set([ctx.ids.run1]));
    assert.equal((await stats(ctx, ctx.emails)).ready, 1);
    // In bulk on a search: the delayed report.
    assert.deepEqual(
      await bulk(ctx.c, { action: "cancel", scope: "query", queue: ctx.reports, state: "delayed" }),
      { counted: 1, done: 1 },
    );
    assert.equal((await stats(ctx, ctx.reports)).delayed, 0);
  });

  t("pause, resume and purge a queue", ["browse", "pause"], async (ctx) => {
    const q = async (action: string, extra: Record<string, string> = {}) => {
      const r = await ctx.c.post("/actions/queues", { queue: ctx.emails, action, ...extra });
      assert.equal(r.status, 200, r.text);
      return r.body;
    };
    await q("pause");
    assert.ok((await ctx.broker.pausedQueues()).has(ctx.emails));
    const { body } = await ctx.c.json<{ queues: { queueName: string; paused?: boolean }[] }>(
      "/api/overview",
    );
    assert.equal(body.queues.find((x) => x.queueName === ctx.emails)!.paused, true);
    await q("resume");
    assert.ok(!(await ctx.broker.pausedQueues()).has(ctx.emails));
    const count = await q("purge", { states: "dead" });
    assert.equal(count.step, "confirm");
    assert.equal(count.count, 2);
    assert.equal((await q("purge", { states: "dead", confirm: "1" })).done, 2);
    assert.equal((await q("purge", { confirm: "1" })).done, 2);
    const s = await stats(ctx, ctx.emails);
    assert.deepEqual([s.ready, s.delayed, s.dead, s.inFlight], [0, 0, 0, 1]);
  });

  t(
    "schedules: declared ones with their last tick; run now enqueues one tick; pause, resume",
    ["browse"],
    async (ctx) => {
      const name = `dash-${crypto.randomUUID().slice(0, 8)}`;
      schedule(
        name,
        "0 3 * * *",
        new Message({ queueName: ctx.reports, actorName: "build_report" }),
        {
          broker: ctx.broker,
        },
      );
      try {
        const list = await ctx.c.json<{ name: string; nextAt: number }[]>("/api/schedules");
        const s = list.body.find((x) => x.name === name)!;
        assert.ok(s.nextAt > Date.now());
        const before = (await stats(ctx, ctx.reports)).ready;
        const r = await ctx.c.post("/actions/schedules", { name, action: "run-now" });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.done, 1);
        assert.equal((await stats(ctx, ctx.reports)).ready, before + 1);
        if (ctx.broker.capabilities.schedules) {
          const after = await ctx.c.json<{ name: string; lastAt: number | null }[]>(
            "/api/schedules",
          );
          assert.equal(typeof after.body.find((x) => x.name === name)!.lastAt, "number");
          // Pause: stored by the broker, shown, the ticks refused; refused read-only and
          // without the CSRF token.
          const paused = async () =>
            (await ctx.c.json<{ name: string; paused: boolean; nextAt: number | null }[]>(
              "/api/schedules",
            )).body.find((x) => x.name === name)!;
          let p = await ctx.c.post("/actions/schedules", { name, action: "pause" });
          assert.equal(p.status, 200, p.text);
          assert.equal(p.body.done, 1);
          assert.equal((await ctx.broker.schedulePauses()).get(name)?.paused, true);
          assert.deepEqual([(await paused()).paused, (await paused()).nextAt], [true, null]);
          assert.match((await ctx.c.page("/schedules")).html, /badge warn">paused/);
          const tick = Date.now() + 1;
          assert.equal(
            await ctx.broker.enqueueTick(
              name,
              tick,
              new Message({
                queueName: ctx.reports,
                actorName: "build_report",
              }),
            ),
            false,
          );
          // Run now still sends it, and the schedule stays paused.
          const runs = (await stats(ctx, ctx.reports)).ready;
          p = await ctx.c.post("/actions/schedules", { name, action: "run-now" });
          assert.equal(p.body.done, 1);
          assert.equal((await stats(ctx, ctx.reports)).ready, runs + 1);
          assert.equal((await paused()).paused, true);
          const ro = new Client(dashboardHandler(brokerSource(ctx.broker), { readOnly: true }));
          await ro.page("/schedules");
          assert.equal(
            (await ro.post("/actions/schedules", { name, action: "resume" })).status,
            403,
          );
          const forged = await ctx.c.request("/actions/schedules", {
            method: "POST",
            body: new URLSearchParams({ name, action: "resume" }),
            headers: { accept: "application/json" },
          });
          assert.equal(forged.status, 403);
          assert.equal((await paused()).paused, true);
          p = await ctx.c.post("/actions/schedules", { name, action: "resume" });
          assert.equal(p.body.done, 1);
          assert.equal((await ctx.broker.schedulePauses()).get(name)?.paused, false);
          assert.equal(
            (await ctx.c.post("/actions/schedules", { name, action: "resume" })).body.skipped,
            1,
          );
        }
      } finally {
        removeSchedule(name);
      }
    },
  );

  t(
    "workers from the registry; a read-only dashboard refuses writes",
    ["browse", "workers"],
    async (ctx) => {
      const now = Date.now();
      await ctx.broker.publishWorker({
        workerId: `test-${now}`,
        host: "box-9",
        pid: 999,
        runtime: "python dramatiq",
        version: "2.0",
        queues: [ctx.emails],
        concurrency: 8,
        startedAt: now,
        heartbeatAt: now,
        running: [],
      }, 10_000);
      const { body } = await ctx.c.json<{ workerId: string; host: string }[]>("/api/workers");
      assert.ok(body.some((w) => w.host === "box-9"), JSON.stringify(body));
      await ctx.broker.removeWorker(`test-${now}`);
      const ro = new Client(dashboardHandler(brokerSource(ctx.broker), { readOnly: true }));
      await ro.page("/");
      const r = await ro.post("/actions/messages", {
        action: "delete",
        scope: "ids",
        ids: ctx.ids.dead1,
        confirm: "1",
      });
      assert.equal(r.status, 403);
      assert.equal((await stats(ctx, ctx.emails)).dead, 2);
    },
  );
}

/** A bulk action on a search: its count, then its confirmation. */
async function bulk(
  c: Client,
  fields: Record<string, string>,
): Promise<{ counted: unknown; done: unknown }> {
  const count = await c.post("/actions/messages", fields);
  assert.equal(count.body.step, "confirm", count.text);
  const done = await c.post("/actions/messages", {
    ...fields,
    confirm: "1",
    asOf: String(count.body.asOf),
  });
  assert.equal(done.status, 200, done.text);
  return { counted: count.body.count, done: done.body.done };
}

/** A FileBroker that says it has none of the operations: what the dashboard does on RabbitMQ. */
class CountsOnlyBroker extends FileBroker {
  override get capabilities() {
    return NO_CAPABILITIES;
  }
}

test("dashboard on a broker with counts and dead letters only (as RabbitMQ)", async () => {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-dash-`);
  const broker = new CountsOnlyBroker({ dir });
  const { ids, consumer } = await populate(broker, "emails", "reports");
  try {
    const c = new Client(dashboardHandler(broker));
    await c.page("/");
    const { body } = await c.json<{ queues: Record<string, unknown>[] }>("/api/overview");
    const e = body.queues.find((q) => q.queueName === "emails")!;
    assert.deepEqual([e.ready, e.delayed, e.inFlight, e.dead], [2, 0, 1, 2]);
    // Dead letters are listed and searched; other states say why not.
    const dead = await c.json<{ messages: unknown[] }>("/api/search?q=timeout");
    assert.equal(dead.body.messages.length, 2);
    const ready = await c.json<{ error?: string }>("/api/search?state=ready");
    assert.equal(ready.status, 400);
    assert.match(String(ready.body.error), /cannot list ready messages \(it lists dead\)/);
    const page = await c.page("/queues/emails");
    assert.equal(page.status, 200);
    const del = await c.post("/actions/messages", {
      action: "delete",
      scope: "ids",
      ids: ids.dead1!,
      confirm: "1",
    });
    assert.equal(del.status, 400);
    assert.match(String(del.body.error), /expected one of requeue/);
    const pause = await c.post("/actions/queues", { queue: "emails", action: "pause" });
    assert.equal(pause.status, 400);
    // Requeue (bulk on a search) and purge work.
    const fields = { action: "requeue", scope: "query", q: "timeout" };
    assert.deepEqual(await bulk(c, fields), { counted: 2, done: 2 });
    assert.deepEqual([(await broker.stats("emails")).dead, (await broker.stats("emails")).ready], [
      0,
      4,
    ]);
    const purge = await c.post("/actions/queues", {
      queue: "reports",
      action: "purge",
      states: "dead",
      confirm: "1",
    });
    assert.equal(purge.body.done, 1, purge.text);
    const workers = await c.json<{ unsupported?: string }>("/api/workers");
    assert.match(String(workers.body.unsupported), /registry of workers/);
  } finally {
    await consumer.close();
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A broker without `cap`: the pages and actions that need it answer 501, saying so. */
async function unsupported(broker: Broker, cap: string): Promise<void> {
  const c = new Client(dashboardHandler(broker));
  await c.page("/");
  if (cap === "browse") {
    const r = await c.json<{ unsupported?: string }>("/api/search?state=ready");
    assert.match(
      String(r.body.unsupported ?? JSON.stringify(r.body)),
      /browse|not supported|cannot/i,
    );
  }
  if (cap === "workers") {
    const r = await c.json<{ unsupported?: string }>("/api/workers");
    assert.match(String(r.body.unsupported), /registry of workers/);
  }
}

test("dashboard on RedisBroker: a Python Dramatiq worker's heartbeat is on the workers page", async () => {
  const namespace = randomNamespace("dash");
  const broker = new RedisBroker({ url: SHARED_URL, namespace });
  const redis = await RedisClient.connect(SHARED_URL);
  try {
    if (!broker.capabilities.workers) return;
    const pythonId = crypto.randomUUID(); // Dramatiq's worker id: a UUID4 of its own
    await redis.send(["ZADD", `${namespace}:__heartbeats__`, String(Date.now()), pythonId]);
    const c = new Client(dashboardHandler(broker));
    const { body } = await c.json<{ workerId: string; runtime?: string }[]>("/api/workers");
    const w = body.find((x) => x.workerId === pythonId);
    assert.equal(w?.runtime, "python dramatiq", JSON.stringify(body));
    const page = await c.page("/workers");
    assert.match(page.html, /python dramatiq/);
  } finally {
    await redis.close();
    await broker.close();
    await deleteKeys(`${namespace}:`);
  }
});

test("dashboard on FileBroker: charts and counters from the metrics in the workers' records", async () => {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-dash-`);
  const broker = new FileBroker({ dir });
  try {
    const c = new Client(dashboardHandler(broker, { refreshMs: 100 }));
    const none = await c.json<{ points: unknown }>("/api/overview");
    assert.match(JSON.stringify(none.body.points), /No worker publishes metrics/);
    const registry = new MetricsRegistry();
    const s = registry.series("emails", "send_email");
    s.processed = 5;
    s.errors = 1;
    const now = Date.now();
    const record = (at: number) => ({
      workerId: "w-metrics",
      host: "box",
      pid: 1,
      runtime: "deno",
      version: "0",
      queues: ["emails"],
      concurrency: 4,
      startedAt: now,
      heartbeatAt: at,
      running: [],
      metrics: registry.snapshot(),
    });
    await broker.publishWorker(record(now), 10_000);
    await c.json("/api/overview"); // the first sample
    s.processed = 105; // 100 more, published by the worker's next heartbeat
    await new Promise((r) => setTimeout(r, 150));
    await broker.publishWorker(record(Date.now()), 10_000);
    await new Promise((r) => setTimeout(r, 150));
    const got = await c.json<{ points: { processed: number }[] }>("/api/overview");
    assert.ok(
      got.body.points.some((p) => p.processed > 0),
      `a processed rate in ${JSON.stringify(got.body.points)}`,
    );
    const workers = await c.json<{ workerId: string; counters?: Record<string, number> }[]>(
      "/api/workers",
    );
    const w = workers.body.find((x) => x.workerId === "w-metrics")!;
    assert.deepEqual([w.counters?.processed, w.counters?.errors], [105, 1]);
  } finally {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "dashboard on RabbitmqBroker: counts, dead letters listed, requeued and purged; the rest refused",
  {
    timeout: 60_000,
  },
  async () => {
    const broker = new RabbitmqBroker({ url: SHARED_AMQP_URL });
    const emails = uniqueName("dash-e"), reports = uniqueName("dash-r");
    let consumer: Consumer | undefined;
    try {
      try {
        await broker.connect();
      } catch (e) {
        console.log(`RabbitMQ is not reachable (${(e as Error).message}): skipped`);
        return;
      }
      ({ consumer } = await populate(broker, emails, reports));
      const c = new Client(dashboardHandler(broker));
      await c.page("/");
      const { body } = await c.json<{ queues: Record<string, unknown>[] }>("/api/overview");
      const e = body.queues.find((q) => q.queueName === emails)!;
      assert.deepEqual([e.ready, e.delayed, e.inFlight, e.dead], [2, 0, 1, 2]);
      const dead = await c.json<{ messages: unknown[]; total: number }>(
        `/api/search?queue=${emails}&q=timeout`,
      );
      assert.equal(dead.body.total, 2);
      const ready = await c.json<{ error?: string }>(`/api/search?queue=${emails}&state=ready`);
      assert.equal(ready.status, 400);
      const del = await c.post("/actions/messages", { action: "delete", scope: "ids", ids: "x" });
      assert.equal(del.status, 400);
      const fields = { action: "requeue", scope: "query", queue: emails, q: "timeout" };
      assert.deepEqual(await bulk(c, fields), { counted: 2, done: 2 });
      assert.equal((await broker.stats(emails)).dead, 0);
      const purge = await c.post("/actions/queues", {
        queue: reports,
        action: "purge",
        states: "dead",
        confirm: "1",
      });
      assert.equal(purge.body.done, 1, purge.text);
    } finally {
      await consumer?.close();
      for (const q of [emails, reports]) await broker.deleteQueues(q).catch(() => {});
      await broker.close();
    }
  },
);

test("dashboard on FileBroker: a bounded search says how far it read", async () => {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-dash-`);
  const broker = new FileBroker({ dir });
  const { consumer } = await populate(broker, "emails", "reports");
  try {
    const c = new Client(dashboardHandler(broker, { scanLimit: 4 }));
    const { body } = await c.json<{ total: number; totalIsLowerBound?: boolean; note?: string }>(
      "/api/search?q=example",
    );
    assert.equal(body.totalIsLowerBound, true);
    assert.ok(body.total <= 4);
    assert.match(
      String(body.note),
      /read the newest 4 messages of 8 \(the dashboard's scanLimit\)/,
    );
    const page = await c.page("/search?q=example");
    assert.match(page.html, /at least/);
    assert.match(page.html, /narrow it by queue, state or time range/);
    const all = await new Client(dashboardHandler(broker)).json<{ total: number; note?: string }>(
      "/api/search?q=example",
    );
    assert.deepEqual([all.body.total, all.body.note], [5, undefined]);
  } finally {
    await consumer.close();
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
