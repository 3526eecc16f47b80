// For tests/file_broker_test.ts: uses a FileBroker the way a program does (send, a waiting
// receive, a Worker, join, heartbeats), closes it, and must then exit by itself.
import { FileBroker } from "../broker/file/broker.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { emit, scriptArgs } from "./_file_lib.ts";

const [dir] = scriptArgs();
const broker = new FileBroker({ dir, leaseTimeout: 300, durability: "batch" });
const hello = actor(async function hello(_n: number) {
  await new Promise((r) => setTimeout(r, 150));
}, { broker });
const c = broker.consume("default");
const waiting = c.receive(1, { timeout: 2_000 });
await hello.send(1);
const [m] = await waiting;
await c.ack(m);
await c.close();
await hello.send(2);
const worker = new Worker(broker, { workerTimeout: 100 });
await worker.start();
await broker.join("default", { timeout: 5_000 });
await worker.stop();
await broker.stats("default");
await broker.close();
emit("closed\n");
