// A child process for tests/file_ops_test.ts (the FileBroker's operations across processes):
//   _file_ops_child.ts <dir> unique <key> <count>   sends <count> messages with one unique key, at once
//   _file_ops_child.ts <dir> tick <name> <tick>     enqueueTick once; prints true/false
//   _file_ops_child.ts <dir> cancel <messageId>     prints the outcome
//   _file_ops_child.ts <dir> hold                   receives one message of "q", prints "got <id>",
//                                                   polls cancelled() until it is marked, prints
//                                                   "cancelled <id>" and acks it
//   _file_ops_child.ts <dir> consume                receives and acks the messages of "p", printing
//                                                   "got <args[0]>" for each, until killed
//   _file_ops_child.ts <dir> events <n>             publishes events "0".."n-1", one batch each
//   _file_ops_child.ts <dir> state                  pauses "p", ticks "s"=5, holds key "k"; then
//                                                   prints "ready" and waits to be killed
// unique and tick take a last argument: the time (ms since the epoch) to start at.
import { FileBroker } from "../broker/file/broker.ts";
import { Message } from "../message.ts";
import type { MessageProxy } from "../broker/broker.ts";
import { emit, scriptArgs } from "./_file_lib.ts";

const [dir, what, a, b, startAt] = scriptArgs();
const broker = new FileBroker({ dir });
broker.declareQueue("q");
broker.declareQueue("p");

/** Waits until the time (ms since the epoch) given as the last argument, so that all start at once. */
async function go(): Promise<void> {
  const at = Number(startAt ?? 0);
  if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
}

function unique(key: string, n: number): Message {
  return new Message({ queueName: "q", actorName: "t", args: [n], options: { unique_key: key } });
}

switch (what) {
  case "unique": {
    await go();
    const count = Number(b);
    await Promise.all(Array.from({ length: count }, (_, i) => broker.enqueue(unique(a, i))));
    emit("done\n");
    break;
  }
  case "tick": {
    await go();
    const m = new Message({
      queueName: "q",
      actorName: "t",
      options: { schedule: a, schedule_tick: Number(b) },
    });
    emit(`${await broker.enqueueTick(a, Number(b), m)}\n`);
    break;
  }
  case "cancel":
    emit(`${await broker.cancel(a)}\n`);
    break;
  case "hold": {
    const c = broker.consume("q");
    let got: MessageProxy[] = [];
    while (got.length === 0) got = await c.receive(1, { timeout: 1000 });
    const id = got[0].messageId;
    emit(`got ${id}\n`);
    while (!(await broker.cancelled([id])).has(id)) await new Promise((r) => setTimeout(r, 50));
    emit(`cancelled ${id}\n`);
    c.ack(got[0]);
    c.close();
    break;
  }
  case "consume": {
    const c = broker.consume("p");
    emit("ready\n");
    for (;;) {
      for (const m of await c.receive(10, { timeout: 1000 })) {
        emit(`got ${m.args[0]}\n`);
        c.ack(m);
      }
    }
  }
  case "events":
    for (let i = 0; i < Number(a); i++) {
      await broker.publishEvents([{
        type: "completed",
        messageId: String(i),
        actorName: "t",
        queueName: "q",
        at: Date.now(),
      }]);
    }
    emit("done\n");
    break;
  case "state": {
    await broker.pauseQueue("p");
    await broker.enqueueTick("s", 5, new Message({ queueName: "q", actorName: "t" }));
    await broker.enqueue(unique("k", 0));
    emit("ready\n");
    await new Promise(() => {}); // until SIGKILL
  }
}
await broker.close();
