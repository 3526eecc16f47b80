// `dramatis queues [MODULE...]`: the counters of every queue (and which are paused), or with
// --running the messages the workers run now.
import type { QueueStats } from "../broker/broker.ts";
import { EXIT } from "../worker/_exit.ts";
import type { Run } from "./_commands.ts";
import { withBroker } from "./_broker.ts";
import { runningTable } from "./_running.ts";
import { table } from "./_table.ts";

export const run: Run = (parsed, context) =>
  withBroker(parsed.positionals, context, async (broker, where) => {
    if (parsed.flags.running) return await runningTable(broker, where, !!parsed.flags.json);
    const names = [...new Set([...broker.getDeclaredQueues(), ...await broker.listQueues()])]
      .sort();
    const stats: QueueStats[] = [];
    for (const q of names) stats.push(await broker.stats(q));
    const paused = broker.capabilities.pause ? await broker.pausedQueues() : new Set<string>();
    if (parsed.flags.json) {
      console.log(JSON.stringify(
        broker.capabilities.pause
          ? stats.map((s) => ({ ...s, paused: paused.has(s.queueName) }))
          : stats,
      ));
    } else if (stats.length === 0) {
      console.log(
        `No queues on the ${where}. If your modules declare them, name the modules: ` +
          `dramatis queues tasks.ts`,
      );
    } else {
      console.log(`Queues on the ${where}:`);
      console.log(table([
        ["queue", "ready", "delayed", "in flight", "dead", ...(paused.size ? ["paused"] : [])],
        ...stats.map((s) => [
          s.queueName,
          s.ready,
          s.delayed,
          s.inFlight,
          s.dead,
          ...(paused.size ? [paused.has(s.queueName) ? "paused" : ""] : []),
        ]),
      ]));
    }
    return EXIT.OK;
  });
