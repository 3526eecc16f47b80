// RabbitmqBroker on the shared RabbitMQ (127.0.0.1:5672): the shared broker suite (in a vhost of
// its own, since the suite uses fixed queue names), then RabbitMQ-specific behaviour on the
// default vhost with unique queue names: Dramatiq's declarations and wire format, confirms,
// broker priorities, the clear 406, dead letters as they failed, delayed messages, returned
// publishes after a queue is deleted. Runs on both `deno test -A` and `bun test`.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { brokerSuite } from "./_broker_suite.ts";
import { RabbitmqBroker, rabbitmqBrokerOptionsFromUrl } from "../broker/rabbitmq/broker.ts";
import { AmqpClient } from "../broker/amqp/client.ts";
import { brokerFromUrl } from "../broker/url.ts";
import { BrokerError, ConnectionError } from "../errors.ts";
import { Message } from "../message.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import type { MessageProxy } from "../broker/broker.ts";
import {
  deleteDramatiqQueues,
  SHARED_AMQP_URL,
  tempVhost,
  uniqueName,
  until,
} from "./_rabbitmq.ts";

const vhost = await tempVhost();
after(() => vhost.delete());

brokerSuite("RabbitmqBroker", () => new RabbitmqBroker({ url: vhost.url }), {
  brokerPriorities: false,
});

const created: string[] = [];
after(() => deleteDramatiqQueues(created));

/** A broker on the default vhost, and a queue name for this test (deleted after the file). */
function setup(options: ConstructorParameters<typeof RabbitmqBroker>[0] = {}) {
  const q = uniqueName("rmq");
  created.push(q);
  const broker = new RabbitmqBroker({ url: SHARED_AMQP_URL, ...options });
  broker.declareQueue(q);
  return { broker, q };
}

function msg(queueName: string, n: number, options = {}): Message {
  return new Message({ queueName, actorName: "rmqActor", args: [n], options });
}

async function withChannel<T>(fn: (ch: Awaited<ReturnType<AmqpClient["channel"]>>) => Promise<T>) {
  const client = await AmqpClient.connect(SHARED_AMQP_URL);
  try {
    return await fn(await client.channel());
  } finally {
    await client.close();
  }
}

test("RabbitmqBroker: declares q, q.DQ and q.XQ exactly as Dramatiq does", async () => {
  const { broker, q } = setup({ maxPriority: 10 });
  try {
    await broker.enqueue(msg(q, 1));
    // Dramatiq's own declarations, passive-free: any difference would be a 406.
    await withChannel(async (ch) => {
      const args = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": `${q}.XQ`,
        "x-max-priority": 10,
      };
      assert.equal((await ch.declareQueue(q, { durable: true, arguments: args })).messageCount, 1);
      await ch.declareQueue(`${q}.DQ`, { durable: true, arguments: args });
      await ch.declareQueue(`${q}.XQ`, {
        durable: true,
        arguments: { "x-message-ttl": 604_800_000 },
      });
      // And what Python would find: the JSON body, persistent, no other properties.
      const got = await ch.get(q);
      assert.ok(got);
      assert.deepEqual(got.properties, { deliveryMode: 2 });
      const body = JSON.parse(new TextDecoder().decode(got.body));
      assert.deepEqual(Object.keys(body), [
        "queue_name",
        "actor_name",
        "args",
        "kwargs",
        "options",
        "message_id",
        "message_timestamp",
      ]);
      assert.equal(body.queue_name, q);
      ch.ack(got);
    });
  } finally {
    await broker.close();
  }
});

test("RabbitmqBroker: a queue declared with another x-max-priority gives one clear error", async () => {
  const { broker: withPriority, q } = setup({ maxPriority: 10 });
  await withPriority.enqueue(msg(q, 1));
  await withPriority.close();
  const plain = new RabbitmqBroker({ url: SHARED_AMQP_URL });
  plain.declareQueue(q);
  try {
    const error = await plain.enqueue(msg(q, 2)).then(() => undefined, (e) => e);
    assert.ok(error instanceof BrokerError, String(error));
    assert.match(
      error.message,
      new RegExp(`queue "${q}" \\(vhost "/"\\) exists with x-max-priority = 10`),
    );
    assert.match(error.message, /declares it with x-max-priority = none \(maxPriority unset\)/);
    assert.match(error.message, /set maxPriority: 10 on this RabbitmqBroker/);
    assert.match(error.message, /Python: RabbitmqBroker\(max_priority=10\)/);
    assert.match(error.message, /rabbitmqctl delete_queue/);
    // connect() checks every declared queue up front (the CLI exits 3 with this message).
    await assert.rejects(plain.connect(), /exists with x-max-priority = 10/);
    const other = new RabbitmqBroker({ url: SHARED_AMQP_URL, maxPriority: 5 });
    other.declareQueue(q);
    await assert.rejects(
      other.connect(),
      /x-max-priority = 10, but this broker declares it with x-max-priority = 5/,
    );
    await other.close();
  } finally {
    await plain.close();
  }
});

test("RabbitmqBroker: broker_priority orders a queue with maxPriority, higher first", async () => {
  const { broker, q } = setup({ maxPriority: 10, prefetch: 1 });
  try {
    for (const p of [0, 5, 9, 1, 5]) {
      await broker.enqueue(msg(q, p, { broker_priority: p }));
    }
    await broker.enqueue(msg(q, -1)); // no priority: 0
    const c = broker.consume(q);
    const order: number[] = [];
    for (;;) {
      const [m] = await c.receive(1, { timeout: 500 });
      if (!m) break;
      order.push(m.args[0] as number);
      await c.ack(m);
    }
    await c.close();
    assert.deepEqual(order, [9, 5, 5, 1, 0, -1]);
    await assert.rejects(broker.enqueue(msg(q, 1, { broker_priority: 256 })), /0 to 255/);
  } finally {
    await broker.close();
  }
});

test("RabbitmqBroker: the actor option brokerPriority sets the AMQP priority", async () => {
  const { broker, q } = setup({ maxPriority: 10 });
  try {
    const urgent = actor((n: number) => n, {
      actorName: "rmqUrgent",
      queueName: q,
      broker,
      brokerPriority: 7,
    });
    await urgent.send(1);
    await urgent.sendWithOptions({ args: [2], brokerPriority: 3 });
    await withChannel(async (ch) => {
      const a = await ch.get(q), b = await ch.get(q);
      assert.deepEqual([a?.properties.priority, b?.properties.priority], [7, 3]);
      assert.equal(JSON.parse(new TextDecoder().decode(b!.body)).options.broker_priority, 3);
    });
  } finally {
    await broker.close();
  }
});

test("RabbitmqBroker: a failed message is dead-lettered as it failed; an undecodable one via RabbitMQ", async () => {
  const { broker, q } = setup();
  try {
    let runs = 0;
    actor(() => {
      runs++;
      throw new Error("boom");
    }, {
      actorName: "rmqFails",
      queueName: q,
      broker,
      maxRetries: 1,
      minBackoff: 10,
      maxBackoff: 20,
    });
    await broker.enqueue(new Message({ queueName: q, actorName: "rmqFails" }));
    await broker.enqueue(new Message({ queueName: q, actorName: "rmqNobody" })); // unknown actor
    await withChannel(async (ch) => {
      await ch.publish(q, "not json", { properties: { deliveryMode: 2 } });
    });
    const worker = new Worker(broker, { queues: [q], workerTimeout: 50 });
    await worker.start();
    await until("three dead letters", async () => (await broker.stats(q)).dead === 3);
    await worker.stop();
    assert.equal(runs, 2);
    const dead = await broker.deadLetters(q);
    assert.equal(dead.length, 2, "the undecodable one is not a message");
    const failed = dead.find((m) => m.actorName === "rmqFails")!;
    assert.equal(failed.options.retries, 1, "the retries done");
    assert.match(String(failed.options.traceback), /boom/);
    assert.ok(dead.some((m) => m.actorName === "rmqNobody"));
    // The undecodable one was dead-lettered by RabbitMQ (x-death); the others were stored.
    await withChannel(async (ch) => {
      const reasons: unknown[] = [];
      for (let d; (d = await ch.get(`${q}.XQ`));) {
        const death = d.properties.headers?.["x-death"] as { reason: string }[] | undefined;
        reasons.push(death?.[0]?.reason ?? "none");
      }
      assert.deepEqual(reasons.sort(), ["none", "none", "rejected"]);
    }); // closing the channel puts them back
    assert.equal((await broker.stats(q)).dead, 3, "listing does not remove");
    assert.equal(await broker.purgeDeadLetters(q), 3);
  } finally {
    await broker.close();
  }
});

test("RabbitmqBroker: a delayed message waits in q.DQ, then a Worker moves and runs it", async () => {
  const { broker, q } = setup();
  try {
    const ran: number[] = [];
    const later = actor((n: number) => void ran.push(Date.now() - n), {
      actorName: "rmqLater",
      queueName: q,
      broker,
    });
    const sent = await later.sendWithOptions({ args: [Date.now()], delay: 400 });
    assert.equal(sent.queueName, `${q}.DQ`);
    assert.equal((await broker.stats(q)).delayed, 1);
    const worker = new Worker(broker, { queues: [q], workerTimeout: 50 });
    await worker.start();
    await until("the delayed message ran", () => ran.length === 1, 10_000);
    await broker.join(q, { timeout: 5_000 });
    await worker.stop();
    assert.ok(ran[0] >= 390, `ran after ${ran[0]} ms`);
    const s = await broker.stats(q);
    assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [0, 0, 0, 0]);
  } finally {
    await broker.close();
  }
});

test("RabbitmqBroker: sends through a deleted queue declare it again (mandatory + return)", async () => {
  const { broker, q } = setup();
  try {
    await broker.enqueue(msg(q, 1));
    await broker.deleteQueues(q);
    await withChannel(async (ch) => {
      // Deleted behind the broker's back: it still thinks the queue exists.
      await ch.deleteQueue(q);
    });
    await broker.enqueue(msg(q, 2));
    const s = await broker.stats(q);
    assert.equal(s.ready, 1);
  } finally {
    await broker.close();
  }
});

test("RabbitmqBroker: many concurrent sends are pipelined and each one is confirmed", async () => {
  const { broker, q } = setup();
  try {
    const sends = Array.from({ length: 2_000 }, (_, i) => broker.enqueue(msg(q, i)));
    await Promise.all(sends);
    assert.equal((await broker.stats(q)).ready, 2_000);
  } finally {
    await broker.close();
  }
});

test("RabbitmqBroker: a consumer of a deleted queue declares it again and goes on", async () => {
  const { broker, q } = setup();
  try {
    const c = broker.consume(q);
    assert.deepEqual(await c.receive(1, { timeout: 50 }), []);
    await withChannel((ch) => ch.deleteQueue(q)); // RabbitMQ cancels the consumer
    let got: MessageProxy[] = [];
    await until("the consumer works again", async () => {
      await broker.enqueue(msg(q, 1)).catch(() => {});
      got = [...got, ...await c.receive(10, { timeout: 100 })];
      return got.length > 0;
    });
    for (const m of got) await c.ack(m);
    await c.close();
  } finally {
    await broker.close();
  }
});

test("RabbitmqBroker: URLs, and clear connection errors", async () => {
  assert.deepEqual(
    rabbitmqBrokerOptionsFromUrl("amqp://h/v?maxPriority=10&heartbeat=5&prefetch=1"),
    {
      url: "amqp://h/v?heartbeat=5",
      maxPriority: 10,
      prefetch: 1,
    },
  );
  const fromUrl = brokerFromUrl("amqps://u:p@mq.example.com/prod?delayPrefetch=100");
  assert.ok(fromUrl instanceof RabbitmqBroker);
  assert.equal((fromUrl as RabbitmqBroker).delayPrefetch, 100);
  await fromUrl.close();
  assert.throws(
    () => new RabbitmqBroker({ maxPriority: 300 }),
    /maxPriority must be an integer from 1 to 255/,
  );
  assert.throws(() => brokerFromUrl("amqp://h/a/b"), /write it as %2F/);
  assert.throws(() => brokerFromUrl("amqp://h/?bogus=1"), /Unknown AMQP URL parameter "bogus"/);

  const refused = new RabbitmqBroker({ url: "amqp://127.0.0.1:1" });
  await assert.rejects(
    refused.connect(),
    (e: Error) =>
      e instanceof ConnectionError && /RabbitMQ at 127.0.0.1:1: connection refused/.test(e.message),
  );
  await refused.close();
  const badPassword = new RabbitmqBroker({ url: "amqp://guest:wrong@127.0.0.1:5672/%2F" });
  await assert.rejects(
    badPassword.connect(),
    /refused the login of user "guest".*Check the user name and password/,
  );
  await badPassword.close();
  const noVhost = new RabbitmqBroker({
    url: `amqp://guest:guest@127.0.0.1:5672/${uniqueName("nope")}`,
  });
  await assert.rejects(
    noVhost.connect(),
    /has no virtual host "dramatis-nope-.*rabbitmqctl add_vhost/,
  );
  await noVhost.close();
});
