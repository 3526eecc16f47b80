// `cli.ts worker -p 2 -t 2 --metrics 127.0.0.1:0`: 1,000 messages, of which 100 fail once and 10
// for good; /metrics then says exactly what happened, summed over every worker process, and
// the workers' records (broker.workers()) say the same.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  cleanup,
  e2e,
  type Env,
  oneLine,
  runCli,
  setup,
  signal,
  startWorker,
  until,
} from "./_cli.ts";
import { type Family, parseExposition, valueOf } from "./_prometheus_parser.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";
import { actor } from "../actor.ts";
import type { Broker } from "../broker/broker.ts";
import { FileBroker } from "../broker/file/broker.ts";
import { RedisBroker } from "../broker/redis/broker.ts";
import type { WorkerRecord } from "../broker/ops.ts";
import { mergeSnapshots, type SeriesSnapshot } from "../telemetry/registry.ts";

const SENT = 1000;
const FAIL_ONCE = 100;
const DEAD = 10;
const MAX_RETRIES = 2;
// Runs: every message once, the fail-once ones twice, the dead ones 1 + MAX_RETRIES times.
const RUNS = SENT + FAIL_ONCE + DEAD * MAX_RETRIES;
const ERRORS = FAIL_ONCE + DEAD * (MAX_RETRIES + 1);
const RETRIES = FAIL_ONCE + DEAD * MAX_RETRIES;
const SUCCEEDED = SENT - DEAD;

/** What the scenario checks, on one broker. */
interface Target {
  env: Record<string, string>;
  queue: string;
  /** A broker of the test process, to send and to read the records. */
  broker: Broker;
}

async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return parseExposition(await res.text());
}

function sum(f: Map<string, Family>, name: string): number {
  let total = 0;
  for (const fam of f.values()) for (const s of fam.samples) if (s.name === name) total += s.value;
  return total;
}

async function scenario(e: Env, t: Target): Promise<void> {
  Object.assign(e.env, t.env, { METRICS_QUEUE: t.queue });
  const w = startWorker(e, ["-p", "2", "-t", "2", "--metrics", "127.0.0.1:0"]);
  let url = "";
  await until(
    "the metrics endpoint",
    () => {
      const m = /Serving metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(w.log());
      if (m) url = m[1]!;
      return !!m && /ready for action/.test(w.log());
    },
    30_000,
    w.log,
  );

  const flaky = actor(function flaky(_n: number) {}, {
    actorName: "flaky",
    queueName: t.queue,
    broker: t.broker,
  });
  for (let n = 0; n < SENT; n++) await flaky.send(n);

  const q = { queue_name: t.queue, actor_name: "flaky" };
  let f = new Map<string, Family>();
  const done = () =>
    valueOf(f, "dramatiq_messages_total", q) === RUNS &&
    valueOf(f, "dramatiq_message_rejects_total", q) === DEAD &&
    valueOf(f, "dramatis_queue_messages", { queue_name: t.queue, state: "dead" }) === DEAD &&
    valueOf(f, "dramatis_queue_messages", { queue_name: t.queue, state: "ready" }) === 0 &&
    valueOf(f, "dramatis_queue_messages", { queue_name: t.queue, state: "delayed" }) === 0 &&
    valueOf(f, "dramatis_queue_messages", { queue_name: t.queue, state: "in_flight" }) === 0 &&
    valueOf(f, "dramatiq_messages_inprogress", q) === 0;
  const deadline = Date.now() + 90_000;
  for (;;) {
    f = await scrape(url);
    try {
      if (done()) break;
    } catch { /* no series yet */ }
    if (Date.now() > deadline) {
      assert.fail(`not done in time; last scrape:\n${[...f.keys()].join(" ")}\n${w.log()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  // Each process publishes its counters every second, and a scrape is cached for one: by now
  // every process has published what it counted by the time the last message finished.
  await new Promise((r) => setTimeout(r, 2_500));
  f = await scrape(url);

  // Dramatiq's seven: a retry counted once, the delayed gauge back at zero.
  assert.equal(valueOf(f, "dramatiq_messages_total", q), RUNS);
  assert.equal(valueOf(f, "dramatiq_message_errors_total", q), ERRORS);
  assert.equal(valueOf(f, "dramatiq_message_retries_total", q), RETRIES);
  assert.equal(valueOf(f, "dramatiq_message_rejects_total", q), DEAD);
  assert.equal(valueOf(f, "dramatiq_messages_inprogress", q), 0);
  assert.equal(valueOf(f, "dramatiq_delayed_messages_inprogress", q), 0);
  assert.equal(valueOf(f, "dramatiq_message_duration_milliseconds_count", q), RUNS);
  assert.equal(
    valueOf(f, "dramatiq_message_duration_milliseconds_bucket", { ...q, le: "+Inf" }),
    RUNS,
  );
  // One series per actor, not one per process.
  assert.equal(f.get("dramatiq_messages_total")!.samples.length, 1);
  // dramatis' own.
  const outcome = (o: string) =>
    valueOf(f, "dramatis_message_outcomes_total", { ...q, outcome: o });
  assert.equal(outcome("success"), SUCCEEDED);
  assert.equal(outcome("retry"), RETRIES);
  assert.equal(outcome("dead"), DEAD);
  assert.equal(outcome("skipped"), 0);
  assert.equal(outcome("requeued"), 0);
  assert.equal(outcome("failed"), 0);
  assert.equal(valueOf(f, "dramatis_message_time_limits_total", q), 0);
  // The sends were made by this process, whose counters no worker record carries.
  assert.equal(valueOf(f, "dramatis_messages_enqueued_total", q), 0);
  assert.equal(valueOf(f, "dramatis_message_wait_seconds_count", q), RUNS);
  const byState = (state: string) =>
    valueOf(f, "dramatis_queue_messages", { queue_name: t.queue, state });
  assert.deepEqual(
    [byState("ready"), byState("delayed"), byState("in_flight"), byState("dead")],
    [0, 0, 0, DEAD],
  );

  assert.equal(
    valueOf(f, "dramatis_queue_oldest_message_age_seconds", { queue_name: t.queue }),
    0,
  );

  // Live workers: one record per process (-p 2), each summing its Web Workers.
  const records: WorkerRecord[] = await t.broker.workers();
  const mine = records.filter((r) => r.queues.includes(t.queue));
  assert.equal(mine.length, 2);
  assert.equal(valueOf(f, "dramatis_workers"), records.length);
  assert.equal(sum(f, "dramatis_worker_slots"), 2 * 2 * 8); // -p 2 -t 2, -c 8 (the default)
  assert.equal(sum(f, "dramatis_worker_slots_busy"), 0);

  // The records say the same.
  const merged = mergeSnapshots(mine.map((r) => r.metrics!));
  assert.equal(merged.series.length, 1);
  expectSeries(merged.series[0]!, t.queue);

  // And so does `dramatis workers --json`.
  const listed = await runCli(e, ["workers", e.tasks, "--json"]);
  assert.equal(listed.code, 0, listed.out);
  const fromCli = (JSON.parse(listed.stdout) as WorkerRecord[])
    .filter((r) => r.queues.includes(t.queue));
  assert.equal(fromCli.length, 2);
  const m = mergeSnapshots(fromCli.map((r) => r.metrics!));
  assert.equal(m.series.length, 1);
  expectSeries(m.series[0]!, t.queue);

  signal(w, "SIGTERM");
  assert.equal(await w.exited, 0, w.log());
}

function expectSeries(s: SeriesSnapshot, queue: string): void {
  assert.equal(s.queue, queue);
  assert.equal(s.actor, "flaky");
  assert.deepEqual(
    {
      processed: s.processed,
      errors: s.errors,
      retries: s.retries,
      rejects: s.rejects,
      succeeded: s.succeeded,
      inProgress: s.inProgress,
      delayed: s.delayed,
      runs: s.runMs.counts.reduce((a, b) => a + b, 0),
      waits: s.waitSeconds.counts.reduce((a, b) => a + b, 0),
    },
    {
      processed: RUNS,
      errors: ERRORS,
      retries: RETRIES,
      rejects: DEAD,
      succeeded: SUCCEEDED,
      inProgress: 0,
      delayed: 0,
      runs: RUNS,
      waits: RUNS,
    },
  );
}

test(
  "cli worker --metrics on the file broker: every counter, gauge and histogram count exactly",
  { ...e2e, timeout: 180_000 },
  async () => {
    const e = setup("metrics_tasks.ts");
    const broker = new FileBroker({ dir: join(e.dir, "broker") });
    try {
      await scenario(e, { env: {}, queue: "metrics", broker });
    } finally {
      await broker.close();
      cleanup(e);
    }
  },
);

test("cli worker --metrics: a bad address is one line and exit code 64", e2e, async () => {
  const e = setup("metrics_tasks.ts");
  try {
    const r = await runCli(e, ["worker", e.tasks, "--metrics", "nowhere"]);
    oneLine(r, 64, /--metrics "nowhere": expected HOST:PORT/);
  } finally {
    cleanup(e);
  }
});

const redisNs = randomNamespace("climetrics");
const redis = new RedisBroker({ url: SHARED_URL, namespace: redisNs });
const redisSkip = redis.capabilities.workers
  ? false
  : "RedisBroker has no worker registry yet (capabilities.workers is false)";

test(
  "cli worker --metrics on Redis: every counter, gauge and histogram count exactly",
  { ...e2e, timeout: 180_000, skip: e2e.skip || redisSkip },
  async () => {
    const e = setup("metrics_tasks.ts");
    try {
      await redis.connect();
      await scenario(e, {
        env: { DRAMATIS_BROKER: `${SHARED_URL}?namespace=${redisNs}` },
        queue: `m${redisNs}`,
        broker: redis,
      });
    } finally {
      cleanup(e);
      await deleteKeys(`${redisNs}:`);
    }
  },
);

test.after(async () => {
  await redis.close();
});
