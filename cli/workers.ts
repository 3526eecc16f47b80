// `dramatis workers [MODULE...]`: the worker processes in the broker's registry.
import { EXIT } from "../worker/_exit.ts";
import type { Run } from "./_commands.ts";
import { withBroker } from "./_broker.ts";
import { ago, need } from "./_capability.ts";
import { clip, table } from "./_table.ts";

export const run: Run = (parsed, context) =>
  withBroker(parsed.positionals, context, async (broker, where) => {
    need(broker, where, "workers", "list its workers");
    const workers = (await broker.workers()).sort((a, b) =>
      a.host.localeCompare(b.host) || a.pid - b.pid
    );
    if (parsed.flags.json) {
      console.log(JSON.stringify(workers));
    } else if (workers.length === 0) {
      console.log(`No workers on the ${where}.`);
    } else {
      const now = Date.now();
      console.log(`Workers on the ${where}:`);
      console.log(table([
        ["host", "pid", "runtime", "queues", "concurrency", "running", "heartbeat"],
        ...workers.map((w) => [
          w.host,
          w.pid,
          w.runtime,
          clip(w.queues.join(",") || "-", 40),
          w.concurrency,
          w.running.length,
          `${ago(w.heartbeatAt, now)} ago`,
        ]),
      ]));
    }
    return EXIT.OK;
  });
