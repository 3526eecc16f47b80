// A consumer process for tests/file_delays_test.ts: `_file_delay_child.ts <dir>`. Runs a Worker
// on queue "d" of the FileBroker in <dir>; its actor `delayed` prints "ran <name>" and, for a
// name starting with "hang", never finishes. Prints "ready" once the Worker runs.
import { FileBroker } from "../broker/file/broker.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { emit, scriptArgs } from "./_file_lib.ts";

const [dir] = scriptArgs();
const broker = new FileBroker({ dir: dir! });
actor(async function delayed(name: string) {
  emit(`ran ${name}\n`);
  if (name.startsWith("hang")) await new Promise(() => {});
}, { actorName: "delayed", queueName: "d", broker, maxRetries: 0 });
const worker = new Worker(broker, { queues: ["d"], concurrency: 4, workerTimeout: 50 });
await worker.start();
emit("ready\n");
