// For tests/file_broker_test.ts, crash test 5: fills queue "r" with 3 dead letters, 2 messages
// in flight (claimed, never acked), 10 ready and 5 delayed ones, prints "filled", and waits to
// be killed.
import { FileBroker } from "../broker/file/broker.ts";
import { Message } from "../message.ts";
import { emit, scriptArgs } from "./_file_lib.ts";

const [dir] = scriptArgs();
const broker = new FileBroker({ dir, leaseTimeout: 500 });
broker.declareQueue("r");
const m = (id: string) => new Message({ queueName: "r", actorName: "t", args: [id] });
const c = broker.consume("r");
for (const id of ["x0", "x1", "x2"]) await broker.enqueue(m(id));
for (const x of await c.receive(3, { timeout: 1_000 })) await c.nack(x);
for (const id of ["f0", "f1"]) await broker.enqueue(m(id));
const held = await c.receive(2, { timeout: 1_000 });
if (held.length !== 2) throw new Error(`expected 2 messages, got ${held.length}`);
for (let i = 0; i < 10; i++) await broker.enqueue(m(`r${i}`));
for (let i = 0; i < 5; i++) await broker.enqueue(m(`d${i}`), { delay: 600_000 });
await broker.stats("r"); // writes the buffered nacks
emit("filled\n");
await new Promise(() => {});
