// `dramatis queues --running`: the messages the workers run now, read from the registry.
import type { Broker } from "../broker/broker.ts";
import { EXIT } from "../worker/_exit.ts";
import { ago, need } from "./_capability.ts";
import { clip, table } from "./_table.ts";

/** Prints what every worker in the registry runs now (`json`: a JSON array); exit code 0. */
export async function runningTable(broker: Broker, where: string, json: boolean): Promise<number> {
  need(broker, where, "workers", "list what its workers run");
  const rows = (await broker.workers()).flatMap((w) =>
    w.running.map((r) => ({ ...r, workerId: w.workerId, host: w.host, pid: w.pid }))
  ).sort((a, b) => a.since - b.since);
  if (json) {
    console.log(JSON.stringify(rows));
  } else if (rows.length === 0) {
    console.log(`No message is running on the ${where}.`);
  } else {
    const now = Date.now();
    console.log(`Running on the ${where}:`);
    console.log(table([
      ["message id", "actor", "queue", "since", "progress", "process"],
      ...rows.map((r) => [
        r.messageId,
        r.actorName,
        r.queueName,
        `${ago(r.since, now)} ago`,
        r.progress === undefined ? "-" : clip(JSON.stringify(r.progress), 40),
        `${r.host}:${r.pid}`,
      ]),
    ]));
  }
  return EXIT.OK;
}
