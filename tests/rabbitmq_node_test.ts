// RabbitmqBroker against a private RabbitMQ node (tests/_rabbitmq_node.ts), for what needs
// another server configuration than the shared node's: a 4 s consumer_timeout checked every
// 0.5 s (Dramatiq issue 827: held delayed messages are re-published before it fires, and
// without that RabbitMQ closes the channel), TLS (amqps://), a user and a vhost of its own, and
// a memory alarm (connection.blocked). Runs on both `deno test -A` and `bun test`.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { RabbitmqBroker } from "../broker/rabbitmq/broker.ts";
import { DelayConsumer } from "../broker/rabbitmq/_delay_consumer.ts";
import type { Consumer } from "../broker/broker.ts";
import type { AmqpClientEvent } from "../broker/amqp/client.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { Message } from "../message.ts";
import { ConnectionError } from "../errors.ts";
import { nodeSkip, TestRabbitmq } from "./_rabbitmq_node.ts";
import { until } from "./_rabbitmq.ts";

const skip = nodeSkip();
const CONSUMER_TIMEOUT = 4_000;
const node = skip ? undefined : await TestRabbitmq.start(
  [`consumer_timeout = ${CONSUMER_TIMEOUT}`],
  ["{channel_tick_interval, 500}"],
);
after(() => node?.stop());
const options = { skip, timeout: 120_000 };

/** Runs one message delayed 2.5 consumer timeouts through a Worker; reports what happened. */
async function delayedRun(consumerTimeout: number, queue: string) {
  const events: AmqpClientEvent[] = [];
  const broker = new RabbitmqBroker({
    url: node!.url,
    consumerTimeout,
    clientOptions: { onEvent: (e) => events.push(e) },
  });
  const consumers: Consumer[] = [];
  const ran: number[] = [];
  const delay = 2.5 * CONSUMER_TIMEOUT;
  const task = actor((sentAt: number) => void ran.push(Date.now() - sentAt), {
    actorName: "heldTask",
    queueName: queue,
    broker,
  });
  const worker = new Worker(broker, {
    queues: [queue],
    workerTimeout: 100,
    consume: (q) => {
      const c = broker.consume(q, { prefetch: 16 });
      consumers.push(c);
      return c;
    },
  });
  try {
    await worker.start();
    await task.sendWithOptions({ args: [Date.now()], delay });
    await until("the delayed message ran", () => ran.length > 0, delay + 15_000);
    await broker.join(queue, { timeout: 10_000 });
    const timedOut = events.filter((e) =>
      e.type === "channel-error" && /delivery acknowledgement .* timed out/.test(e.error.message)
    );
    const delays = consumers.filter((c): c is DelayConsumer => c instanceof DelayConsumer);
    return { ran, delay, timedOut: timedOut.length, released: delays[0].released };
  } finally {
    await worker.stop({ timeout: 1_000 });
    await broker.deleteQueues(queue);
    await broker.close();
  }
}

test(
  "RabbitmqBroker: a message delayed past the consumer timeout is re-published, not churned (Dramatiq 827)",
  options,
  async () => {
    const r = await delayedRun(CONSUMER_TIMEOUT, "held");
    assert.deepEqual(r.ran.length, 1, "it ran once");
    assert.ok(r.ran[0] >= r.delay - 50, `it ran after ${r.ran[0]} ms, before its eta`);
    assert.equal(r.timedOut, 0, "RabbitMQ closed the delay queue's channel");
    assert.ok(r.released >= 2, `re-published ${r.released} time(s)`);
  },
);

test(
  "RabbitmqBroker: without the re-publish, RabbitMQ closes the channel over a held message (what Dramatiq does)",
  options,
  async () => {
    const r = await delayedRun(Infinity, "churned");
    assert.deepEqual(r.ran.length, 1, "it still ran, after the churn");
    assert.ok(r.timedOut >= 1, "the consumer timeout never fired: the test above proves nothing");
    assert.equal(r.released, 0);
  },
);

test(
  "RabbitmqBroker: amqps:// with the server's CA; without it, a clear TLS error",
  options,
  async () => {
    const broker = new RabbitmqBroker({
      url: node!.tlsUrl,
      clientOptions: { tls: { ca: node!.ca } },
    });
    try {
      broker.declareQueue("tls");
      await broker.enqueue(new Message({ queueName: "tls", actorName: "a", args: [1] }));
      assert.equal((await broker.stats("tls")).ready, 1);
      await broker.deleteQueues("tls");
    } finally {
      await broker.close();
    }
    const untrusted = new RabbitmqBroker({ url: node!.tlsUrl });
    await assert.rejects(untrusted.connect(), (e: Error) =>
      e instanceof ConnectionError &&
      /TLS connection failed .*Check the certificates \(tls\.ca\)/.test(e.message));
    await untrusted.close();
  },
);

test(
  "RabbitmqBroker: a user and a vhost from the URL; missing permissions are named",
  options,
  async () => {
    await node!.ctl(["add_vhost", "app/prod"]);
    await node!.ctl(["add_user", "alice", "s@cret"]);
    await node!.ctl(["set_permissions", "-p", "app/prod", "alice", ".*", ".*", ".*"]);
    await node!.ctl(["add_user", "bob", "pw"]);
    const base = `127.0.0.1:${node!.port}/app%2Fprod`;
    const broker = new RabbitmqBroker({ url: `amqp://alice:s%40cret@${base}` });
    try {
      broker.declareQueue("jobs");
      await broker.enqueue(new Message({ queueName: "jobs", actorName: "a" }));
      assert.equal((await broker.stats("jobs")).ready, 1);
      assert.match(await node!.ctl(["list_queues", "-p", "app/prod", "name"]), /jobs\.XQ/);
    } finally {
      await broker.close();
    }
    const bob = new RabbitmqBroker({ url: `amqp://bob:pw@${base}` });
    await assert.rejects(
      bob.connect(),
      /refused user "bob" access to virtual host "app\/prod".*rabbitmqctl set_permissions -p app\/prod bob/,
    );
    await bob.close();
  },
);

test(
  "RabbitmqBroker: a memory alarm blocks sends (connection.blocked); they finish once it clears",
  options,
  async () => {
    const events: AmqpClientEvent[] = [];
    const broker = new RabbitmqBroker({
      url: node!.url,
      clientOptions: { onEvent: (e) => events.push(e) },
    });
    try {
      broker.declareQueue("alarm");
      await broker.enqueue(new Message({ queueName: "alarm", actorName: "a", args: [0] }));
      await node!.ctl(["set_vm_memory_high_watermark", "0.000001"]);
      let sent = false;
      const send = broker.enqueue(new Message({ queueName: "alarm", actorName: "a", args: [1] }))
        .then(() => sent = true);
      await until("blocked", () => events.some((e) => e.type === "blocked"), 20_000);
      assert.match(broker.client.blocked ?? "", /memory/i);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(sent, false, "a send resolved while RabbitMQ blocked publishing");
      await node!.ctl(["set_vm_memory_high_watermark", "0.4"]);
      await send;
      assert.ok(events.some((e) => e.type === "unblocked"));
      assert.equal(broker.client.blocked, undefined);
      assert.equal((await broker.stats("alarm")).ready, 2);
      await broker.deleteQueues("alarm");
    } finally {
      await node!.ctl(["set_vm_memory_high_watermark", "0.4"]);
      await broker.close();
    }
  },
);
