// A producer process for tests/file_broker_test.ts:
//   _file_producer.ts <dir> <name> <count (0 = forever)> <concurrency> <durability> [print]
//     [segmentSize]
// Sends record("<name>-<i>") on queue "q"; with "print", writes each id once send() resolved.
import { FileBroker } from "../broker/file/broker.ts";
import { actor } from "../actor.ts";
import { emit, scriptArgs } from "./_file_lib.ts";

const [dir, name, count, concurrency, durability, print, segmentSize] = scriptArgs();
const broker = new FileBroker({
  dir,
  durability: durability as "always" | "batch" | "none",
  segmentSize: segmentSize ? Number(segmentSize) : undefined,
});
const record = actor(function record(_id: string) {}, {
  actorName: "record",
  queueName: "q",
  broker,
  maxRetries: 0,
});
const total = Number(count);
let next = 0;
await Promise.all(Array.from({ length: Number(concurrency) }, async () => {
  while (total === 0 || next < total) {
    const id = `${name}-${next++}`;
    await record.send(id);
    if (print === "print") emit(`${id}\n`);
  }
}));
await broker.close();
emit("done\n");
