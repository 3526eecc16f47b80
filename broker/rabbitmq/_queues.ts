// Dramatiq's three queues per queue name, declared exactly as Dramatiq declares them (so that a
// Python and a TypeScript client never disagree), and the 406 a disagreement causes, turned into
// an error that names the queue, both values, and what to do.
import { BrokerError } from "../../errors.ts";
import { AmqpError, REPLY } from "../amqp/errors.ts";
import type { AmqpChannel } from "../amqp/channel.ts";
import type { FieldTable } from "../amqp/_table.ts";
import { dqName, xqName } from "../broker.ts";

/** What decides the declarations: every client of a queue must use the same values. */
export interface QueueSettings {
  /** `x-max-priority` of `q` and `q.DQ`, if any. */
  maxPriority: number | undefined;
  /** `x-message-ttl` of `q.XQ`, in ms. */
  deadMessageTtl: number;
}

/** The arguments of `q` and `q.DQ`: dead letters go to `q.XQ` through the default exchange. */
export function queueArguments(q: string, s: QueueSettings): FieldTable {
  const args: FieldTable = {
    "x-dead-letter-exchange": "",
    "x-dead-letter-routing-key": xqName(q),
  };
  if (s.maxPriority) args["x-max-priority"] = s.maxPriority;
  return args;
}

/** The arguments of `q.XQ`: a TTL, no dead-letter exchange, no priorities. */
export function deadQueueArguments(s: QueueSettings): FieldTable {
  return { "x-message-ttl": s.deadMessageTtl };
}

/**
 * Declares `q`, `q.DQ` and `q.XQ` (in that order, durable, as Dramatiq does); resolves with
 * their ready-message counts. A 406 becomes a BrokerError saying what differs and what to do.
 */
export async function declareQueues(
  ch: AmqpChannel,
  q: string,
  s: QueueSettings,
): Promise<[number, number, number]> {
  const counts: number[] = [];
  const plan: [string, FieldTable][] = [
    [q, queueArguments(q, s)],
    [dqName(q), queueArguments(q, s)],
    [xqName(q), deadQueueArguments(s)],
  ];
  for (const [name, args] of plan) {
    try {
      counts.push((await ch.declareQueue(name, { durable: true, arguments: args })).messageCount);
    } catch (e) {
      throw e instanceof AmqpError && e.code === REPLY.PRECONDITION_FAILED
        ? inequivalent(name, e, s)
        : e;
    }
  }
  return counts as [number, number, number];
}

const INEQUIVALENT =
  /inequivalent arg '([^']+)' for queue '[^']*' in vhost '([^']*)': received (none|the value '([^']*)' of type '[^']*'|'([^']*)') but current is (none|the value '([^']*)' of type '[^']*'|'([^']*)')/;

/** The clear error for `PRECONDITION_FAILED - inequivalent arg ...` on `queue`. */
export function inequivalent(queue: string, e: AmqpError, s: QueueSettings): BrokerError {
  const m = INEQUIVALENT.exec(e.replyText);
  if (!m) {
    return new BrokerError(
      `RabbitMQ refused to declare queue ${JSON.stringify(queue)}: ${e.replyText}`,
      { cause: e },
    );
  }
  const [, arg, vhost] = m;
  const ours = m[3] === "none" ? "none" : m[4] ?? m[5];
  const theirs = m[6] === "none" ? "none" : m[7] ?? m[8];
  let fix: string;
  if (arg === "x-max-priority") {
    fix = theirs === "none"
      ? `remove maxPriority from this RabbitmqBroker (Python: no max_priority)`
      : `set maxPriority: ${theirs} on this RabbitmqBroker (Python: RabbitmqBroker(max_priority=${theirs}))`;
  } else if (arg === "x-message-ttl") {
    fix = `set deadMessageTtl: ${theirs} on this RabbitmqBroker (Python: the environment ` +
      `variable dramatiq_dead_message_ttl=${theirs})`;
  } else {
    fix = `declare it the way Dramatiq does (this queue was made by another tool)`;
  }
  return new BrokerError(
    `RabbitMQ queue ${JSON.stringify(queue)} (vhost ${JSON.stringify(vhost)}) exists with ` +
      `${arg} = ${theirs}, but this broker declares it with ${arg} = ${ours}` +
      `${s.maxPriority === undefined && arg === "x-max-priority" ? " (maxPriority unset)" : ""}. ` +
      `Every Dramatiq and dramatis client of a queue must declare it alike: ${fix}, or delete ` +
      `the queue (rabbitmqctl delete_queue ${queue}; its messages are lost) so it is declared anew.`,
    { cause: e },
  );
}
