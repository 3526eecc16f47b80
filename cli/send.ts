// `dramatis send MODULE ACTOR [JSON_ARGS]`: enqueues one message, after checking the arguments
// against the actor's parameters.
import type { JsonObject } from "../message.ts";
import { EXIT } from "../worker/_exit.ts";
import { int, str, UsageError } from "./_args.ts";
import type { Run } from "./_commands.ts";
import { withBroker } from "./_broker.ts";
import { checkQueues } from "./_queue.ts";
import { arity } from "./_signature.ts";

const EXAMPLE = `'["Ada", 3]'`;

export const run: Run = async (parsed, context) => {
  const p = parsed.positionals;
  let mod: string | undefined, actorName: string | undefined, json: string | undefined;
  if (context.bundled) {
    // A compiled binary holds its modules: `app send ACTOR [JSON_ARGS]`.
    if (p.length === 3 && /\.(ts|tsx|js|mjs|jsx)(:\w+)?$|\//.test(p[0]!)) {
      throw new UsageError(
        `this binary holds its modules: give the actor, not ${p[0]}: ` +
          `send ${p[1]} '${p[2]}'.`,
        "send",
      );
    }
    if (p.length > 2) {
      throw new UsageError(
        `send takes ACTOR and one JSON_ARGS (a JSON array, quoted: ${EXAMPLE}), got ` +
          `${p.length} arguments.`,
        "send",
      );
    }
    [actorName, json] = p;
  } else {
    [mod, actorName, json] = p;
    if (p.length > 3) {
      throw new UsageError(
        `send takes MODULE, ACTOR and one JSON_ARGS (a JSON array, quoted: ${EXAMPLE}), got ` +
          `${p.length} arguments.`,
        "send",
      );
    }
  }
  if (!actorName || (!mod && !context.bundled)) {
    throw new UsageError(
      context.bundled
        ? `send needs an actor: send greet ${EXAMPLE}.`
        : `send needs a module and an actor: dramatis send tasks.ts greet ${EXAMPLE}.`,
      "send",
    );
  }
  const args = json === undefined ? [] : jsonArg("JSON_ARGS", json);
  const list = Array.isArray(args) ? args : [args];
  const kwargsText = str(parsed, "kwargs");
  const kwargs = kwargsText === undefined ? {} : jsonArg("--kwargs", kwargsText);
  if (kwargs === null || typeof kwargs !== "object" || Array.isArray(kwargs)) {
    throw new UsageError(
      `--kwargs takes a JSON object, e.g. '{"greeting": "hi"}'; got ${kwargsText}.`,
      "send",
    );
  }
  const delay = int(parsed, "delay", 0);
  const queue = str(parsed, "queue");
  if (queue !== undefined) await checkQueues([queue], "--queue");
  const priority = parsed.flags.priority === undefined ? undefined : Number(parsed.flags.priority);
  if (priority !== undefined && !Number.isInteger(priority)) {
    throw new UsageError(
      `--priority takes a whole number (lower runs first), got ${
        JSON.stringify(parsed.flags.priority)
      }.`,
      "send",
    );
  }
  const name = actorName;
  return withBroker(mod ? [mod] : [], context, async (broker, where) => {
    if (!broker.hasActor(name)) {
      throw new UsageError(
        `no actor ${JSON.stringify(name)} in ${mod ?? "this binary"}. Declared: ${
          [...broker.getDeclaredActors()].sort().join(", ") || "none"
        }.`,
        "send",
      );
    }
    const actor = broker.getActor(name);
    const count = list.length + (Object.keys(kwargs).length > 0 ? 1 : 0);
    checkCount(name, actor.fn, count, list.length < count);
    let message = actor.messageWithOptions({
      args: list,
      kwargs: kwargs as JsonObject,
      ...(priority === undefined ? {} : { priority }),
    });
    if (queue !== undefined) {
      broker.declareQueue(queue);
      message = message.copy({ queueName: queue }) as typeof message;
    }
    const m = await broker.enqueue(message, { delay });
    if (parsed.flags.json) console.log(JSON.stringify(m.asDict()));
    else {
      const when = delay ? `, to run in ${delay} ms` : "";
      console.log(`Sent ${m} as ${m.messageId} to ${m.queueName}${when} (${where}).`);
    }
    return EXIT.OK;
  });
};

function jsonArg(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(
      what === "JSON_ARGS"
        ? `JSON_ARGS must be a JSON array of the actor's arguments, quoted for the shell ` +
          `(${EXAMPLE}); got ${text}.`
        : `${what} is not valid JSON: ${text}.`,
      "send",
    );
  }
}

/** Refuses `count` arguments (kwargs counted as one) that the actor's parameters cannot take. */
function checkCount(
  name: string,
  fn: (...args: never[]) => unknown,
  count: number,
  withKwargs: boolean,
): void {
  const a = arity(fn);
  if (count >= a.min && count <= a.max) return;
  const params = a.known
    ? a.names.length > 0 ? `(${a.names.join(", ")})` : "no parameters"
    : `at least ${a.min} parameter(s)`;
  const takes = a.max === a.min
    ? `${a.min} argument(s)`
    : a.max === Infinity
    ? `at least ${a.min} argument(s)`
    : `${a.min} to ${a.max} arguments`;
  throw new UsageError(
    `${name} takes ${takes} ${params}, got ${count}${withKwargs ? " (kwargs count as one)" : ""}.`,
    "send",
  );
}
