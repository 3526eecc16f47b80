// A child process for tests/tracing_test.ts, on a FileBroker in <dir>, with Tracing recording
// spans (parentFromMessage):
//   _tracing_child.ts send <dir>: inside a "POST /orders" span, sends place_order(7) on "orders";
//   _tracing_child.ts work <dir>: runs a Worker until that message is processed.
// Prints {spans, ...} as JSON on stdout.
import { FileBroker } from "../broker/file/broker.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { Tracing } from "../middleware/tracing.ts";
import { otelApi, RecordingTracer } from "./_tracer.ts";

const [mode, dir] = (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(
  2,
);
const tracer = new RecordingTracer();
const broker = new FileBroker({ dir });
broker.addMiddleware(new Tracing({ tracer, otel: otelApi, parentFromMessage: true }));
const done = Promise.withResolvers<void>();
const placeOrder = actor(function place_order(_id: number) {
  done.resolve();
}, { broker, queueName: "orders" });

if (mode === "send") {
  const request = tracer.startSpan("POST /orders", { kind: 1 });
  tracer.active = { span: request.spanContext() };
  const message = await placeOrder.send(7);
  tracer.active = {};
  request.end();
  await broker.close();
  console.log(JSON.stringify({ spans: tracer.spans, messageId: message.messageId }));
} else {
  const worker = new Worker(broker, { queues: ["orders"], workerTimeout: 100 });
  await worker.start();
  await done.promise;
  await broker.join("orders", { timeout: 30_000 });
  await worker.stop();
  await broker.close();
  console.log(JSON.stringify({ spans: tracer.spans, pid: process.pid }));
}
