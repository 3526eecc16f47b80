import { test } from "node:test";
import assert from "node:assert/strict";
import {
  mergeSnapshots,
  metricsHandler,
  MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
  type QueueMetrics,
  renderPrometheus,
  RUN_TIME_BUCKETS_MS,
  WAIT_TIME_BUCKETS_SECONDS,
} from "../telemetry/mod.ts";
import { VERSION } from "../version.ts";
import { parseExposition, valueOf } from "./_prometheus_parser.ts";
import { isBun } from "./_runtime.ts";

const NOW = 1_800_000_000_000;

function sample(): { text: string; queues: QueueMetrics[] } {
  // Two "processes", the same actor in both, plus an actor with awkward characters in its name.
  const p1 = new MetricsRegistry(), p2 = new MetricsRegistry();
  const a1 = p1.series("emails", "send_email");
  a1.processed = 10;
  a1.errors = 3;
  a1.retries = 2;
  a1.rejects = 1;
  a1.succeeded = 7;
  a1.inProgress = 1;
  a1.delayed = 2;
  a1.enqueued = 12;
  for (const ms of [3, 5, 6, 80, 1000, 1e6]) a1.runMs.observe(ms);
  a1.waitSeconds.observe(0.001);
  a1.waitSeconds.observe(100_000);
  const a2 = p2.series("emails", "send_email");
  a2.processed = 5;
  a2.succeeded = 5;
  a2.inProgress = 2;
  a2.runMs.observe(5);
  const odd = p2.series("default", 'we"ird\\actor\nname');
  odd.processed = 1;
  odd.skipped = 1;
  odd.timeLimits = 1;
  odd.requeued = 2;
  odd.failed = 1;
  const queues: QueueMetrics[] = [
    {
      queueName: "emails",
      ready: 4,
      delayed: 2,
      inFlight: 3,
      dead: 1,
      oldestReadyTimestamp: NOW - 2500,
    },
    {
      queueName: "default",
      ready: 0,
      delayed: 0,
      inFlight: 0,
      dead: 0,
      oldestReadyTimestamp: null,
    },
  ];
  const text = renderPrometheus({
    metrics: mergeSnapshots([p1.snapshot(), p2.snapshot()]),
    queues,
    workers: [{ workerId: "box:42", slots: 16, busy: 3, lastSeen: NOW - 1500 }],
  }, { now: NOW });
  return { text, queues };
}

test("the exposition passes a strict 0.0.4 parser and every value is the merged one", () => {
  const { text } = sample();
  const f = parseExposition(text);
  const l = { queue_name: "emails", actor_name: "send_email" };
  assert.equal(valueOf(f, "dramatiq_messages_total", l), 15);
  assert.equal(valueOf(f, "dramatiq_message_errors_total", l), 3);
  assert.equal(valueOf(f, "dramatiq_message_retries_total", l), 2);
  assert.equal(valueOf(f, "dramatiq_message_rejects_total", l), 1);
  assert.equal(valueOf(f, "dramatiq_messages_inprogress", l), 3);
  assert.equal(valueOf(f, "dramatiq_delayed_messages_inprogress", l), 2);
  const d = "dramatiq_message_duration_milliseconds";
  assert.equal(valueOf(f, `${d}_count`, l), 7);
  assert.equal(valueOf(f, `${d}_sum`, l), 3 + 5 + 6 + 80 + 1000 + 1e6 + 5);
  assert.equal(valueOf(f, `${d}_bucket`, { ...l, le: "5.0" }), 3);
  assert.equal(valueOf(f, `${d}_bucket`, { ...l, le: "10.0" }), 4);
  assert.equal(valueOf(f, `${d}_bucket`, { ...l, le: "1000.0" }), 6);
  assert.equal(valueOf(f, `${d}_bucket`, { ...l, le: "900000.0" }), 6);
  assert.equal(valueOf(f, `${d}_bucket`, { ...l, le: "+Inf" }), 7);
  assert.equal(valueOf(f, "dramatis_messages_enqueued_total", l), 12);
  const o = "dramatis_message_outcomes_total";
  assert.equal(valueOf(f, o, { ...l, outcome: "success" }), 12);
  assert.equal(valueOf(f, o, { ...l, outcome: "retry" }), 2);
  assert.equal(valueOf(f, o, { ...l, outcome: "dead" }), 1);
  const w = "dramatis_message_wait_seconds";
  assert.equal(valueOf(f, `${w}_bucket`, { ...l, le: "0.005" }), 1);
  assert.equal(valueOf(f, `${w}_bucket`, { ...l, le: "86400.0" }), 1);
  assert.equal(valueOf(f, `${w}_count`, l), 2);
  const q = "dramatis_queue_messages";
  assert.equal(valueOf(f, q, { queue_name: "emails", state: "ready" }), 4);
  assert.equal(valueOf(f, q, { queue_name: "emails", state: "delayed" }), 2);
  assert.equal(valueOf(f, q, { queue_name: "emails", state: "in_flight" }), 3);
  assert.equal(valueOf(f, q, { queue_name: "emails", state: "dead" }), 1);
  const age = "dramatis_queue_oldest_message_age_seconds";
  assert.equal(valueOf(f, age, { queue_name: "emails" }), 2.5);
  assert.equal(valueOf(f, age, { queue_name: "default" }), 0);
  assert.equal(valueOf(f, "dramatis_worker_slots", { worker_id: "box:42" }), 16);
  assert.equal(valueOf(f, "dramatis_worker_slots_busy", { worker_id: "box:42" }), 3);
  assert.equal(valueOf(f, "dramatis_worker_heartbeat_age_seconds", { worker_id: "box:42" }), 1.5);
  const runtime = isBun ? "bun" : "deno";
  assert.equal(valueOf(f, "dramatis_build_info", { version: VERSION, runtime }), 1);
  for (const [name, fam] of f) {
    assert.ok(fam.help, `${name} has HELP`);
    assert.notEqual(fam.type, "untyped", `${name} has TYPE`);
  }
});

test("label values with quotes, backslashes and line feeds are escaped and round-trip", () => {
  const { text } = sample();
  assert.ok(text.includes('actor_name="we\\"ird\\\\actor\\nname"'), "escaped in the text");
  const f = parseExposition(text);
  const l = { queue_name: "default", actor_name: 'we"ird\\actor\nname' };
  assert.equal(valueOf(f, "dramatiq_messages_total", l), 1);
  const o = "dramatis_message_outcomes_total";
  assert.equal(valueOf(f, o, { ...l, outcome: "skipped" }), 1);
  assert.equal(valueOf(f, o, { ...l, outcome: "requeued" }), 2);
  assert.equal(valueOf(f, o, { ...l, outcome: "failed" }), 1);
  assert.equal(valueOf(f, "dramatis_message_time_limits_total", l), 1);
});

test("Dramatiq's seven metrics: HELP, TYPE, labels and buckets byte for byte", () => {
  const { text } = sample();
  const expected = [
    ["dramatiq_messages_total", "counter", "The total number of messages processed."],
    ["dramatiq_message_errors_total", "counter", "The total number of errored messages."],
    ["dramatiq_message_retries_total", "counter", "The total number of retried messages."],
    ["dramatiq_message_rejects_total", "counter", "The total number of dead-lettered messages."],
    ["dramatiq_messages_inprogress", "gauge", "The number of messages in progress."],
    ["dramatiq_delayed_messages_inprogress", "gauge", "The number of delayed messages in memory."],
    ["dramatiq_message_duration_milliseconds", "histogram", "The time spent processing messages."],
  ];
  for (const [name, type, help] of expected) {
    assert.ok(text.includes(`# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`), name);
  }
  // Labels in Dramatiq's order (queue_name, actor_name), then le; bounds as client_python writes them.
  const les = [...text.matchAll(
    /^dramatiq_message_duration_milliseconds_bucket\{queue_name="emails",actor_name="send_email",le="([^"]+)"\}/gm,
  )].map((m) => m[1]);
  assert.deepEqual(les, [
    "5.0",
    "10.0",
    "25.0",
    "50.0",
    "75.0",
    "100.0",
    "250.0",
    "500.0",
    "750.0",
    "1000.0",
    "2500.0",
    "5000.0",
    "7500.0",
    "10000.0",
    "30000.0",
    "60000.0",
    "600000.0",
    "900000.0",
    "+Inf",
  ]);
  assert.equal(les.length, RUN_TIME_BUCKETS_MS.length + 1);
  const waitLes = [...text.matchAll(
    /^dramatis_message_wait_seconds_bucket\{queue_name="emails",actor_name="send_email",le="([^"]+)"\}/gm,
  )];
  assert.equal(waitLes.length, WAIT_TIME_BUCKETS_SECONDS.length + 1);
});

test("an empty snapshot renders HELP/TYPE lines only, and still parses", () => {
  const text = renderPrometheus({ metrics: new MetricsRegistry().snapshot() }, {
    buildInfo: false,
  });
  const f = parseExposition(text);
  assert.ok(f.has("dramatiq_messages_total"));
  for (const fam of f.values()) assert.equal(fam.samples.length, 0);
  assert.ok(!text.includes("dramatis_worker_slots"), "no worker families without workers");
});

test("the strict parser rejects what Prometheus rejects (so the tests above can fail)", () => {
  const ok = "# HELP a_total x\n# TYPE a_total counter\na_total 1\n";
  assert.doesNotThrow(() => parseExposition(ok));
  const bad: [string, RegExp][] = [
    ["# TYPE a_total counter\na_total 1", /end with/],
    ['# TYPE a gauge\na{l="x\\t"} 1\n', /bad escape/],
    ['# TYPE a gauge\na{l="1",l="2"} 1\n', /label l twice/],
    ['# TYPE a gauge\na{__x="1"} 1\n', /reserved/],
    ["# TYPE a gauge\na 1\na 2\n", /duplicate series/],
    ["# TYPE a gauge\n# TYPE a gauge\n", /second TYPE/],
    ['# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="1"} 2\n', /two groups/],
    ["# TYPE a_total counter\na_total -1\n", /below zero/],
    ["# TYPE a gauge\na one\n", /bad value/],
    [
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 1\n',
      /cumulative/,
    ],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_count 1\nh_sum 1\n', /no \+Inf/],
    ['# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 1\nh_sum 1\n', /!= count/],
    ["# TYPE h histogram\nh_bucket 1\n", /le goes on _bucket/],
  ];
  for (const [text, why] of bad) assert.throws(() => parseExposition(text), why, text);
});

test("metricsHandler: GET renders, HEAD has no body, POST is 405, a failing source is 500", async () => {
  const registry = new MetricsRegistry();
  registry.series("default", "add").processed = 4;
  const handler = metricsHandler({
    snapshot: () => registry.snapshot(),
    queueStats: () =>
      Promise.resolve([{ queueName: "default", ready: 1, delayed: 0, inFlight: 0, dead: 0 }]),
  });
  const res = await handler(new Request("http://x/metrics"));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
  const f = parseExposition(await res.text());
  assert.equal(valueOf(f, "dramatiq_messages_total", { actor_name: "add" }), 4);
  assert.equal(valueOf(f, "dramatis_queue_messages", { state: "ready" }), 1);
  const head = await handler(new Request("http://x/metrics", { method: "HEAD" }));
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
  const post = await handler(new Request("http://x/metrics", { method: "POST" }));
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
  const broken = metricsHandler({
    snapshot: () => Promise.reject(new Error("broker unreachable\nstack...")),
  });
  const err = await broken(new Request("http://x/metrics"));
  assert.equal(err.status, 500);
  assert.equal(await err.text(), "Could not collect the metrics: broker unreachable\n");
});

test("metricsHandler serves a real scrape through this runtime's HTTP server", async () => {
  const registry = new MetricsRegistry();
  registry.series("default", "add").processed = 9;
  const handler = metricsHandler(registry);
  type Server = { port: number; stop(): Promise<void> };
  let server: Server;
  if (isBun) {
    const bun = (globalThis as unknown as {
      Bun: {
        serve(o: object): { port: number; stop(force?: boolean): Promise<void> | void };
      };
    }).Bun;
    const s = bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler });
    server = { port: s.port, stop: async () => void await s.stop(true) };
  } else {
    const deno = (globalThis as unknown as {
      Deno: {
        serve(
          o: object,
          h: (r: Request) => Promise<Response>,
        ): { addr: { port: number }; shutdown(): Promise<void> };
      };
    }).Deno;
    const s = deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
    server = { port: s.addr.port, stop: () => s.shutdown() };
  }
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    assert.equal(res.headers.get("content-type"), PROMETHEUS_CONTENT_TYPE);
    const f = parseExposition(await res.text());
    assert.equal(valueOf(f, "dramatiq_messages_total", { actor_name: "add" }), 9);
  } finally {
    await server.stop();
  }
});
