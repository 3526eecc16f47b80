// @cloudamqp/amqp-client, measured the way bench/rabbitmq.ts measures dramatis's AMQP client (it
// runs this script on Node, and on its own runtime: the library is plain ESM for all three).
//   <node|deno run -A|bun> bench/peers/amqp_client.mjs <url> publish <n> <in flight> <persistent 0|1>
//   <node|deno run -A|bun> bench/peers/amqp_client.mjs <url> consume <n> <prefetch>
// Prints {"rate": messages/s}. Each run declares a queue of its own and deletes it.
import { AMQPClient } from "./node_modules/@cloudamqp/amqp-client/lib/mjs/index.js";

const argv = (globalThis.Deno?.args ?? globalThis.process.argv.slice(2));
const [url, mode, a, b, c] = argv;
const body = JSON.stringify({
  queue_name: "default",
  actor_name: "noop",
  args: [],
  kwargs: {},
  options: {},
  message_id: crypto.randomUUID(),
  message_timestamp: Date.now(),
});
const client = new AMQPClient(url);
const conn = await client.connect();
const ch = await conn.channel();
await ch.confirmSelect();
const queue = `bench-amqp-client-${crypto.randomUUID().slice(0, 8)}`;
await ch.queueDeclare(queue, { durable: true });

async function publish(n, inflight, persistent) {
  let i = 0;
  const props = { deliveryMode: persistent ? 2 : 1 };
  await Promise.all(Array.from({ length: inflight }, async () => {
    while (i++ < n) await ch.basicPublish("", queue, body, props);
  }));
}

let rate;
if (mode === "publish") {
  const n = Number(a), inflight = Number(b), persistent = c === "1";
  await publish(2000, inflight, persistent); // warm-up
  await ch.queuePurge(queue);
  const t0 = performance.now();
  await publish(n, inflight, persistent);
  rate = n / (performance.now() - t0) * 1000;
} else if (mode === "consume") {
  const n = Number(a), prefetch = Number(b);
  await publish(n, 256, true);
  const consumer = await conn.channel();
  await consumer.prefetch(prefetch);
  let got = 0;
  let done;
  const finished = new Promise((r) => done = r);
  const t0 = performance.now();
  await consumer.basicConsume(queue, { noAck: false }, (msg) => {
    msg.ack();
    if (++got === n) done();
  });
  await finished;
  rate = n / (performance.now() - t0) * 1000;
  await consumer.close();
} else {
  throw new Error(`unknown mode ${mode}`);
}
await ch.queueDelete(queue);
await conn.close();
console.log(JSON.stringify({ rate }));
(globalThis.Deno ?? globalThis.process).exit(0);
