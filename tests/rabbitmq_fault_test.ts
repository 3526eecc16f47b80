// RabbitmqBroker under failure, on the shared RabbitMQ without restarting it: this test's own
// connections closed from the server (`rabbitmqctl close_connection`, found by their
// connection_name) while a producer sends and a worker holds messages; a TCP connection cut in
// the middle of a frame (through a proxy); a `cli.ts worker` process killed with SIGKILL while
// it holds messages. Nothing confirmed may be lost; what was unacked runs again elsewhere.
// Runs on both `deno test -A` and `bun test`.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { RabbitmqBroker } from "../broker/rabbitmq/broker.ts";
import type { RabbitmqReceipt } from "../broker/rabbitmq/_consumer.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { currentMessage } from "../worker/context.ts";
import type { MessageProxy } from "../broker/broker.ts";
import { type Child, eventFile, startCliWorker } from "./_python.ts";
import {
  closeConnections,
  deleteDramatiqQueues,
  SHARED_AMQP_URL,
  tcpProxy,
  uniqueName,
  until,
} from "./_rabbitmq.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const created: string[] = [];
after(() => deleteDramatiqQueues(created));

test(
  "RabbitmqBroker: connections closed by the server; it reconnects, loses nothing confirmed, redelivers the unacked",
  {
    timeout: 120_000,
  },
  async () => {
    const name = uniqueName("fault");
    const queue = uniqueName("fault-q");
    created.push(queue);
    let reconnects = 0;
    const broker = new RabbitmqBroker({
      url: SHARED_AMQP_URL,
      clientOptions: {
        name,
        reconnect: { initialDelay: 50, maxDelay: 500 },
        onEvent: (e) => void (e.type === "reconnect" && reconnects++),
      },
    });
    let worker: Worker | undefined;
    try {
      const runs = new Map<number, number>();
      const redelivered = new Set<number>();
      let release!: () => void;
      const gate = new Promise<void>((r) => release = r);
      let started!: () => void;
      const gateStarted = new Promise<void>((r) => started = r);
      const GATED = 30;
      const task = actor(async (n: number) => {
        const r = (currentMessage() as MessageProxy).receipt as RabbitmqReceipt;
        if (r.redelivered) redelivered.add(n);
        if (n === GATED && !runs.has(n)) {
          started();
          await gate; // still running while its connection is closed
        }
        runs.set(n, (runs.get(n) ?? 0) + 1);
      }, { actorName: "faultTask", queueName: queue, broker, maxRetries: 0 });

      const confirmed = new Set<number>();
      for (let n = 0; n < 100; n++) {
        await task.send(n);
        confirmed.add(n);
      }
      worker = new Worker(broker, { queues: [queue], concurrency: 4, workerTimeout: 100 });
      await worker.start();
      await gateStarted;

      let producing = true;
      let failedSends = 0;
      const producer = (async () => {
        for (let n = 100; producing; n++) {
          try {
            await task.send(n);
            confirmed.add(n);
          } catch {
            failedSends++; // not confirmed: may or may not run
          }
          await sleep(2);
        }
      })();
      await sleep(100);
      assert.equal(await closeConnections(name), 2, "the publish and consume connections");
      await until("both connections are back", () => reconnects >= 2, 30_000);
      await sleep(200);
      release(); // its ack goes to a channel that is gone: RabbitMQ delivers it again
      await sleep(300);
      producing = false;
      await producer;

      await until(
        "every confirmed message ran",
        () => [...confirmed].every((n) => runs.has(n)),
        30_000,
      );
      await broker.join(queue, { timeout: 20_000 });
      await worker.join();
      assert.ok(
        confirmed.size > 110,
        `only ${confirmed.size} sends confirmed (${failedSends} failed)`,
      );
      assert.ok(runs.get(GATED)! >= 2, "the message held unacked at the cut ran again");
      assert.ok(redelivered.has(GATED), "and RabbitMQ marked it redelivered");
      const s = await broker.stats(queue);
      assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [0, 0, 0, 0]);
    } finally {
      await worker?.stop({ timeout: 1_000 });
      await broker.close();
    }
  },
);

test("RabbitmqBroker: a TCP connection cut in the middle of a frame; it reconnects and goes on", {
  timeout: 60_000,
}, async () => {
  const proxy = await tcpProxy();
  const queue = uniqueName("cut-q");
  created.push(queue);
  const broker = new RabbitmqBroker({
    url: proxy.url,
    clientOptions: { reconnect: { initialDelay: 20, maxDelay: 200 } },
  });
  let worker: Worker | undefined;
  try {
    const runs = new Map<number, number>();
    const task = actor(async (n: number) => {
      await sleep(5);
      runs.set(n, (runs.get(n) ?? 0) + 1);
    }, { actorName: "cutTask", queueName: queue, broker, maxRetries: 0 });
    for (let n = 0; n < 200; n++) await task.send(n);
    worker = new Worker(broker, { queues: [queue], concurrency: 8, workerTimeout: 100 });
    await worker.start();
    await until("some ran", () => runs.size >= 20);
    const before = proxy.state.connections;
    proxy.cut(); // the next chunk from RabbitMQ (deliveries) arrives half, then the socket dies
    await until("the cut happened", () => proxy.state.cuts === 1);
    await until("it reconnected", () => proxy.state.connections > before, 20_000);
    await until("all 200 ran", () => runs.size === 200, 30_000);
    await broker.join(queue, { timeout: 20_000 });
    assert.ok([...runs.values()].every((n) => n >= 1));
  } finally {
    await worker?.stop({ timeout: 1_000 });
    await broker.close();
    await proxy.close();
  }
});

test(
  "RabbitmqBroker: SIGKILL of a cli.ts worker process; its messages run on another worker within seconds",
  {
    timeout: 120_000,
  },
  async () => {
    const queue = uniqueName("kill-q");
    created.push(queue);
    const events = eventFile();
    const tasks = fileURLToPath(new URL("./fixtures/interop_tasks.ts", import.meta.url));
    const env = { DRAMATIS_BROKER: SHARED_AMQP_URL, INTEROP_QUEUE: queue, OUT_FILE: events.path };
    const broker = new RabbitmqBroker({ url: SHARED_AMQP_URL });
    broker.declareQueue(queue);
    const workers: Child[] = [];
    try {
      const a = await startCliWorker(tasks, ["-t", "1", "-c", "2"], env);
      workers.push(a);
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const m = await broker.enqueue(
          new (await import("../message.ts")).Message({
            queueName: queue,
            actorName: "ts_slow",
            args: [300, i],
          }),
        );
        ids.push(m.messageId);
      }
      const ended = () =>
        new Set(events.read().filter((e) => e.actor === "ts_slow").map((e) => e.message_id));
      await until(
        "worker A started some",
        () => events.read().some((e) => e.actor === "ts_slow_start"),
      );
      // A holds the rest prefetched: a second worker gets nothing while A lives.
      const b = await startCliWorker(tasks, ["-t", "1", "-c", "4"], env);
      workers.push(b);
      const doneBeforeKill = ended().size;
      assert.ok(doneBeforeKill < 20, "A finished everything before the kill");
      const killedAt = Date.now();
      await a.kill(); // SIGKILL: supervisor and worker process
      await until("every message ran", () => ended().size === 20, 30_000);
      const took = Date.now() - killedAt;
      assert.ok(took < 15_000, `the rest took ${took} ms after the kill`);
      const pids = new Set(events.read().map((e) => e.pid));
      assert.ok(pids.size >= 2, "both workers ran messages");
      assert.deepEqual([...ended()].sort(), [...ids].sort());
    } finally {
      for (const w of workers) await w.kill();
      await broker.close();
      events.remove();
    }
  },
);
