// `dramatis dead-letters list|requeue|purge QUEUE [MODULE...]`.
import type { Message } from "../message.ts";
import { EXIT } from "../worker/_exit.ts";
import { int, UsageError } from "./_args.ts";
import { checkQueues } from "./_queue.ts";
import type { Run } from "./_commands.ts";
import { withBroker } from "./_broker.ts";
import { clip, table } from "./_table.ts";

const ACTIONS = ["list", "requeue", "purge"];

export const run: Run = async (parsed, context) => {
  const [action, queue, ...modules] = parsed.positionals;
  if (action === undefined || !ACTIONS.includes(action) || !queue) {
    throw new UsageError(
      action && !ACTIONS.includes(action)
        ? `unknown action ${JSON.stringify(action)}: use list, requeue or purge.`
        : "dead-letters needs an action and a queue: dramatis dead-letters list default",
      "dead-letters",
    );
  }
  await checkQueues([queue]);
  const limit = int(parsed, "limit");
  if (limit !== undefined && action !== "list") {
    throw new UsageError("--limit is for dead-letters list.", "dead-letters");
  }
  const json = !!parsed.flags.json;
  return withBroker(modules, context, async (broker, where) => {
    broker.declareQueue(queue);
    if (action === "list") {
      const dead = await broker.deadLetters(queue, { limit });
      if (json) console.log(JSON.stringify(dead.map((m) => m.asDict())));
      else if (dead.length === 0) console.log(`No dead letters in ${queue} (${where}).`);
      else console.log(deadTable(dead));
    } else if (action === "requeue") {
      const n = await broker.requeueDeadLetters(queue);
      console.log(
        json ? JSON.stringify({ requeued: n }) : `Requeued ${n} dead letter(s) on ${queue}.`,
      );
    } else {
      const n = await broker.purgeDeadLetters(queue);
      console.log(
        json ? JSON.stringify({ purged: n }) : `Purged ${n} dead letter(s) from ${queue}.`,
      );
    }
    return EXIT.OK;
  });
};

function deadTable(dead: Message[]): string {
  return table([
    ["message id", "actor", "retries", "enqueued", "last error", "args"],
    ...dead.map((m) => [
      m.messageId,
      m.actorName,
      retriesDone(m),
      new Date(m.messageTimestamp).toISOString(),
      clip(lastError(m.options.traceback), 60),
      clip(JSON.stringify(m.args), 40),
    ]),
  ]);
}

/**
 * The retries a dead letter had, as Dramatiq counts them (what `onRetryExhausted` gets): its
 * `retries` option, as Dramatiq's Redis and RabbitMQ brokers and the `Retries` middleware store it.
 */
export function retriesDone(m: Message): number {
  const r = m.options.retries;
  return typeof r === "number" && r > 0 ? r : 0;
}

/** The error line of a traceback: the first line of a JS stack, the last of a Python one. */
export function lastError(traceback: unknown): string {
  if (typeof traceback !== "string" || traceback.trim() === "") return "-";
  const lines = traceback.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines[0]!.startsWith("Traceback (most recent call last)")
    ? lines[lines.length - 1]!
    : lines[0]!;
}
