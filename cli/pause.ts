// `dramatis pause QUEUE` and `dramatis resume QUEUE`: stop and restart the delivery of a queue.
import { EXIT } from "../worker/_exit.ts";
import { UsageError } from "./_args.ts";
import type { Parsed } from "./_args.ts";
import { checkQueues } from "./_queue.ts";
import type { Context, Run } from "./_commands.ts";
import { withBroker } from "./_broker.ts";
import { need } from "./_capability.ts";

async function toggle(action: "pause" | "resume", parsed: Parsed, context: Context) {
  const [queue, ...modules] = parsed.positionals;
  if (!queue) {
    throw new UsageError(`${action} needs a queue: dramatis ${action} default`, action);
  }
  await checkQueues([queue]);
  return withBroker(modules, context, async (broker, where) => {
    need(broker, where, "pause", `${action} queues`);
    if (action === "pause") {
      await broker.pauseQueue(queue);
      console.log(
        `Paused ${queue} on the ${where}: workers take none of its messages until ` +
          `dramatis resume ${queue}.`,
      );
    } else {
      const was = (await broker.pausedQueues()).has(queue);
      await broker.resumeQueue(queue);
      console.log(
        was ? `Resumed ${queue} on the ${where}.` : `${queue} was not paused on the ${where}.`,
      );
    }
    return EXIT.OK;
  });
}

export const pause: Run = (parsed, context) => toggle("pause", parsed, context);
export const resume: Run = (parsed, context) => toggle("resume", parsed, context);
