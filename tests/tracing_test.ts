import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  actor,
  type Broker,
  currentMessage,
  defaultMiddleware,
  Message,
  pipeline,
  StubBroker,
} from "../mod.ts";
import {
  currentProcessSpan,
  messagingSystem,
  parseTraceparent,
  SpanKind,
  SpanStatusCode,
  Tracing,
} from "../telemetry/mod.ts";
import { constantTracer, otelApi, type RecordedSpan, RecordingTracer } from "./_tracer.ts";
import { drainWith } from "./_helpers.ts";
import { runScript } from "./_runtime.ts";

function traced(options: { parentFromMessage?: boolean; otel?: boolean } = {}) {
  const tracer = new RecordingTracer();
  const broker = new StubBroker();
  broker.addMiddleware(
    new Tracing({
      tracer,
      otel: options.otel || options.parentFromMessage ? otelApi : undefined,
      parentFromMessage: options.parentFromMessage,
    }),
  );
  return { tracer, broker };
}

function one(spans: RecordedSpan[], what: string): RecordedSpan {
  assert.equal(spans.length, 1, `one ${what}: ${JSON.stringify(spans.map((s) => s.name))}`);
  return spans[0];
}

test("Tracing: a send span (PRODUCER) and a process span (CONSUMER) linked to it", async () => {
  const { tracer, broker } = traced();
  const hello = actor(function hello(_name: string) {}, { broker, queueName: "greetings" });
  const msg = await hello.send("ada");
  const send = one(tracer.named("send greetings"), "send span");
  assert.equal(send.kind, SpanKind.PRODUCER);
  assert.ok(send.ended);
  assert.deepEqual(send.attributes, {
    "messaging.system": "dramatis",
    "messaging.destination.name": "greetings",
    "messaging.operation.type": "send",
    "messaging.operation.name": "send",
    "messaging.message.id": msg.messageId,
    "dramatis.actor.name": "hello",
    "dramatis.send.reason": "user",
  });
  // The creation context travels in the message as a W3C traceparent.
  const tp = parseTraceparent((msg.options.trace_ctx as { traceparent: string }).traceparent);
  assert.deepEqual([tp?.traceId, tp?.spanId], [send.traceId, send.spanId]);

  await drainWith(broker, "greetings");
  const proc = one(tracer.named("process greetings"), "process span");
  assert.equal(proc.kind, SpanKind.CONSUMER);
  assert.ok(proc.ended);
  assert.deepEqual(proc.links, [{ traceId: send.traceId, spanId: send.spanId }]);
  // By default the run starts its own trace and only links to the send.
  assert.equal(proc.parentSpanId, undefined);
  assert.notEqual(proc.traceId, send.traceId);
  assert.equal(proc.attributes["messaging.operation.type"], "process");
  assert.equal(proc.attributes["messaging.operation.name"], "process");
  assert.equal(proc.attributes["messaging.destination.name"], "greetings");
  assert.equal(proc.attributes["messaging.message.id"], msg.messageId);
  assert.equal(proc.attributes["dramatis.outcome"], "success");
  assert.equal(proc.status.code, SpanStatusCode.UNSET);
});

test("Tracing: parentFromMessage makes the send the parent: one trace", async () => {
  const { tracer, broker } = traced({ parentFromMessage: true });
  const request = tracer.startSpan("GET /signup");
  tracer.active = { span: request.spanContext() };
  const hello = actor(function hello() {}, { broker });
  await hello.send();
  tracer.active = {};
  request.end();
  await drainWith(broker);
  const send = one(tracer.named("send default"), "send");
  const proc = one(tracer.named("process default"), "process");
  assert.equal(send.parentSpanId, request.spanContext().spanId, "send is a child of the request");
  assert.equal(proc.parentSpanId, send.spanId);
  assert.equal(proc.traceId, request.spanContext().traceId);
  assert.deepEqual(proc.links, [{ traceId: send.traceId, spanId: send.spanId }]);
});

test("Tracing: a retry is a send of its own; every attempt links to the first send", async () => {
  const { tracer, broker } = traced({ otel: true });
  let calls = 0;
  const flaky = actor(function flaky() {
    if (++calls === 1) throw new RangeError("first try fails");
  }, { broker, minBackoff: 10, maxBackoff: 20 });
  const msg = await flaky.send();
  const creation = msg.options.trace_ctx;
  await drainWith(broker);

  const sends = tracer.named("send default");
  assert.deepEqual(sends.map((s) => s.attributes["dramatis.send.reason"]), [
    "user",
    "retry",
    "delay_release",
  ]);
  const [first, retry, release] = sends;
  const procs = tracer.named("process default");
  assert.equal(procs.length, 2);
  const [failed, ok] = procs;
  assert.equal(failed.attributes["dramatis.outcome"], "retry");
  assert.equal(failed.attributes["error.type"], "RangeError");
  assert.equal(failed.status.code, SpanStatusCode.ERROR);
  assert.equal(failed.status.message, "first try fails");
  assert.deepEqual(failed.exceptions, ["RangeError: first try fails"]);
  assert.equal(ok.attributes["dramatis.outcome"], "success");
  assert.equal(ok.attributes["dramatis.message.retries"], 1);
  for (const p of procs) {
    assert.deepEqual(p.links, [{ traceId: first.traceId, spanId: first.spanId }]);
  }
  // With the OpenTelemetry API, the retry's send is a child of the failed run, and the release
  // a child of the creation context.
  assert.equal(retry.parentSpanId, failed.spanId);
  assert.equal(retry.kind, SpanKind.PRODUCER);
  assert.equal(retry.attributes["dramatis.message.retries"], 1);
  assert.ok(typeof retry.attributes["dramatis.message.delay_ms"] === "number");
  assert.ok(typeof retry.attributes["dramatis.message.eta"] === "number");
  assert.equal(release.parentSpanId, first.spanId);
  assert.ok(tracer.spans.every((s) => s.ended), "every span ended");
  assert.deepEqual(msg.options.trace_ctx, creation, "the creation context is never rewritten");
});

test("Tracing: retries are told apart wherever it sits in the middleware stack", async () => {
  for (const first of [true, false]) {
    const tracer = new RecordingTracer();
    const tracing = new Tracing({ tracer });
    const stack = defaultMiddleware();
    const broker = new StubBroker({
      middleware: first ? [tracing, ...stack] : [...stack, tracing],
    });
    let calls = 0;
    actor(function flaky() {
      if (++calls === 1) throw new Error("once");
    }, { broker, minBackoff: 10, maxBackoff: 20 });
    await broker.enqueue(new Message({ queueName: "default", actorName: "flaky" }));
    await drainWith(broker);
    const where = `Tracing ${first ? "first" : "last"}`;
    assert.deepEqual(
      tracer.named("send default").map((s) => s.attributes["dramatis.send.reason"]),
      ["user", "retry", "delay_release"],
      where,
    );
    assert.deepEqual(
      tracer.named("process default").map((s) => s.attributes["dramatis.outcome"]),
      ["retry", "success"],
      where,
    );
  }
});

test("Tracing: a message that fails for good ends its span as dead", async () => {
  const { tracer, broker } = traced();
  class Nope extends Error {}
  const doomed = actor(function doomed() {
    throw new Nope("no");
  }, { broker, maxRetries: 0 });
  await doomed.send();
  await drainWith(broker);
  const proc = one(tracer.named("process default"), "process");
  assert.equal(proc.attributes["dramatis.outcome"], "dead");
  assert.equal(proc.attributes["error.type"], "Nope");
  assert.equal(tracer.named("send default").length, 1, "no retry send");
});

test("Tracing: pipeline steps carry their own creation context, in the same trace", async () => {
  const { tracer, broker } = traced({ parentFromMessage: true });
  const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
  await pipeline([inc.message(1), inc.message(), inc.message()], { broker }).run();
  await drainWith(broker);
  const sends = tracer.named("send default");
  assert.deepEqual(sends.map((s) => s.attributes["dramatis.send.reason"]), [
    "user",
    "pipeline",
    "pipeline",
  ]);
  const procs = tracer.named("process default");
  assert.equal(procs.length, 3);
  for (let i = 0; i < 3; i++) {
    assert.equal(procs[i].parentSpanId, sends[i].spanId, `step ${i} runs under its send`);
    if (i > 0) {
      assert.equal(sends[i].parentSpanId, procs[i - 1].spanId, `step ${i} sent by ${i - 1}`);
    }
  }
  assert.equal(new Set(tracer.spans.map((s) => s.traceId)).size, 1, "one trace");
});

test("Tracing: a send from inside an actor is parented (or linked) on the running span", async () => {
  for (const otel of [true, false]) {
    const { tracer, broker } = traced({ otel });
    const child = actor(function child() {}, { broker });
    let spanInActor: unknown;
    const parent = actor(async function parent() {
      spanInActor = currentProcessSpan();
      await child.send();
    }, { broker });
    await parent.send();
    await drainWith(broker);
    const procParent = tracer.spans.find((s) =>
      s.name === "process default" && s.attributes["dramatis.actor.name"] === "parent"
    )!;
    const sendChild = tracer.spans.find((s) =>
      s.name === "send default" && s.attributes["dramatis.actor.name"] === "child"
    )!;
    assert.equal(sendChild.attributes["dramatis.send.reason"], "user");
    assert.ok(spanInActor, "currentProcessSpan() inside the actor");
    if (otel) {
      assert.equal(sendChild.parentSpanId, procParent.spanId);
    } else {
      assert.deepEqual(sendChild.links, [{
        traceId: procParent.traceId,
        spanId: procParent.spanId,
      }]);
    }
  }
  assert.equal(currentProcessSpan(), undefined, "none outside an actor");
});

test("Tracing: a bad trace_ctx, or a no-op tracer, never breaks a message", async () => {
  const tracer = new RecordingTracer();
  const broker = new StubBroker();
  const seen: unknown[] = [];
  actor(function a() {
    seen.push(currentMessage()!.options.trace_ctx);
  }, { broker });
  const garbage = () =>
    new Message({ queueName: "default", actorName: "a", options: { trace_ctx: "garbage" } });
  await broker.enqueue(garbage()); // sent by a producer without Tracing
  broker.addMiddleware(new Tracing({ tracer }));
  await broker.enqueue(garbage()); // sent with Tracing: the unreadable context is replaced
  await drainWith(broker);
  const procs = tracer.named("process default");
  const send = one(tracer.named("send default"), "send");
  assert.equal(procs.length, 2);
  assert.deepEqual(procs.map((p) => p.links.length).sort(), [0, 1]);
  assert.ok(procs.every((p) => p.attributes["dramatis.outcome"] === "success"));
  assert.deepEqual(
    seen.sort(),
    [
      "garbage",
      { traceparent: `00-${send.traceId}-${send.spanId}-01` },
    ].sort(),
  );

  // A no-op tracer (all-zero ids, as @opentelemetry/api's without an SDK) writes no context.
  const noop = constantTracer({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 });
  const b2 = new StubBroker();
  b2.addMiddleware(new Tracing({ tracer: noop }));
  const x = actor(function x() {}, { broker: b2 });
  const m = await x.send();
  assert.equal(m.options.trace_ctx, undefined);
  await drainWith(b2);
});

test("Tracing: clear errors for a missing tracer or parentFromMessage without the API", () => {
  assert.throws(() => new Tracing({} as never), /Tracing needs a tracer/);
  assert.throws(
    () => new Tracing({ tracer: new RecordingTracer(), parentFromMessage: true }),
    /parentFromMessage needs the @opentelemetry\/api module/,
  );
});

test("messagingSystem: rabbitmq, dramatiq on Redis, dramatis otherwise, or the broker's own", () => {
  assert.equal(messagingSystem(new StubBroker()), "dramatis");
  // Subclasses named like the other brokers (the name is what the default looks at).
  const fake = (name: string): Broker => new ({ [name]: class extends StubBroker {} }[name])();
  assert.equal(messagingSystem(fake("RedisBroker")), "dramatiq");
  assert.equal(messagingSystem(fake("RabbitmqBroker")), "rabbitmq");
  const own = new StubBroker() as StubBroker & { messagingSystem: string };
  own.messagingSystem = "kafka";
  assert.equal(messagingSystem(own), "kafka");
});

test("Tracing across processes: sent in one, run in another, one trace via the FileBroker", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-tracing-"));
  try {
    const script = new URL("./_tracing_child.ts", import.meta.url).pathname;
    const producer = await runScript(script, { args: ["send", dir], timeout: 60_000 });
    assert.equal(producer.code, 0, producer.stderr);
    const consumer = await runScript(script, { args: ["work", dir], timeout: 60_000 });
    assert.equal(consumer.code, 0, consumer.stderr);
    const sent = JSON.parse(producer.stdout) as { spans: RecordedSpan[]; messageId: string };
    const ran = JSON.parse(consumer.stdout) as { spans: RecordedSpan[]; pid: number };
    const request = one(sent.spans.filter((s) => s.name === "POST /orders"), "request span");
    const send = one(sent.spans.filter((s) => s.name === "send orders"), "send span");
    const proc = one(ran.spans.filter((s) => s.name === "process orders"), "process span");
    assert.equal(send.kind, SpanKind.PRODUCER);
    assert.equal(proc.kind, SpanKind.CONSUMER);
    // One trace: request -> send (producer process) -> process (consumer process).
    assert.equal(send.traceId, request.traceId);
    assert.equal(proc.traceId, send.traceId);
    assert.equal(send.parentSpanId, request.spanId);
    assert.equal(proc.parentSpanId, send.spanId);
    assert.deepEqual(proc.links, [{ traceId: send.traceId, spanId: send.spanId }]);
    for (const s of [send, proc]) {
      assert.equal(s.attributes["messaging.system"], "dramatis");
      assert.equal(s.attributes["messaging.destination.name"], "orders");
      assert.equal(s.attributes["messaging.message.id"], sent.messageId);
      assert.equal(s.attributes["dramatis.actor.name"], "place_order");
    }
    assert.equal(proc.attributes["dramatis.outcome"], "success");
    assert.ok(send.ended && proc.ended);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
