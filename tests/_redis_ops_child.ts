// A child process for tests/redis_ops_test.ts, on the shared Redis:
//   unique NS QUEUE KEY N   sends N messages of unique key KEY at once; prints "sent <ids>"
//                           with the distinct message ids the sends resolved to.
//   watch NS QUEUE          takes one message of QUEUE, prints "got <id>", polls cancelled()
//                           every 50 ms as a Worker does, prints "seen <id>" once it is marked.
//   ticks NS QUEUE NAME     enqueueTick()s ticks 1, 2, 3, ... of schedule NAME one after another
//                           until killed; prints "ticking" after the first.
import { RedisBroker } from "../broker/redis/broker.ts";
import { Message } from "../message.ts";

const [mode, namespace, queue, ...rest] = process.argv.slice(2);
const broker = new RedisBroker({ url: process.env.OPS_CHILD_URL, namespace });
broker.declareQueue(queue!);
await broker.connect();
if (mode === "unique") {
  const [key, n] = rest;
  const sends = Array.from({ length: Number(n) }, (_, i) =>
    broker.enqueue(
      new Message({ queueName: queue!, actorName: "t", args: [i], options: { unique_key: key! } }),
    ));
  const ids = new Set((await Promise.all(sends)).map((m) => m.messageId));
  console.log(`sent ${[...ids].join(",")}`);
} else if (mode === "ticks") {
  const name = rest[0]!;
  for (let tick = 1;; tick++) {
    const options = { schedule_name: name, schedule_tick: tick };
    await broker.enqueueTick(
      name,
      tick,
      new Message({ queueName: queue!, actorName: "t", options }),
    );
    if (tick === 1) console.log("ticking");
  }
} else if (mode === "watch") {
  const consumer = broker.consume(queue!);
  let got: Awaited<ReturnType<typeof consumer.receive>> = [];
  while (got.length === 0) got = await consumer.receive(1, { timeout: 1_000 });
  const id = got[0]!.messageId;
  console.log(`got ${id}`);
  while ((await broker.cancelled([id])).size === 0) {
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`seen ${id}`);
  await consumer.ack(got[0]!);
  await consumer.close();
}
await broker.close();
