// Queue names: a queue `q`, its delay queue `q.DQ` and its dead letters `q.XQ`, as in Dramatiq;
// and the queue `Broker.enqueue` puts a message on.
import type { JsonObject, Message } from "../message.ts";

/**
 * The canonical queue name: `q` for `q`, `q.DQ` and `q.XQ`.
 *
 * @example
 * ```ts
 * import { qName } from "@dramatis/dramatis";
 * console.log(qName("emails.DQ")); // emails
 * ```
 */
export function qName(queueName: string): string {
  return queueName.endsWith(".DQ") || queueName.endsWith(".XQ")
    ? queueName.slice(0, -3)
    : queueName;
}

/**
 * The delay queue's name: `q.DQ`.
 *
 * @example
 * ```ts
 * import { dqName } from "@dramatis/dramatis";
 * console.log(dqName("emails")); // emails.DQ
 * ```
 */
export function dqName(queueName: string): string {
  return `${qName(queueName)}.DQ`;
}

/**
 * The dead-letter queue's name: `q.XQ`.
 *
 * @example
 * ```ts
 * import { xqName } from "@dramatis/dramatis";
 * console.log(xqName("emails")); // emails.XQ
 * ```
 */
export function xqName(queueName: string): string {
  return `${qName(queueName)}.XQ`;
}

const QUEUE_NAME = /^[A-Za-z0-9_.\-:]+$/;
/** Throws a `TypeError` unless `name` is a usable queue name. */
export function validateQueueName(name: string): void {
  if (typeof name !== "string" || !QUEUE_NAME.test(name) || name.length > 200) {
    throw new TypeError(
      `Invalid queue name ${
        JSON.stringify(name)
      }: use 1 to 200 letters, digits, '_', '-', '.', ':'.`,
    );
  }
}

/**
 * `message` as `Broker.enqueue` stores it on queue `q` (canonical): on `q.DQ` with `options.eta`
 * set when `delay` (ms) is given, else on `q`. Throws a `TypeError` for a bad delay.
 *
 * @example
 * ```ts
 * import { Message } from "../message.ts";
 * import { routed } from "./queue_name.ts";
 * const m = new Message({ queueName: "emails", actorName: "send" });
 * console.log(routed(m, "emails", 1000).queueName); // emails.DQ
 * ```
 */
export function routed(message: Message, q: string, delay: number | undefined): Message {
  if (delay !== undefined) {
    if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
      throw new TypeError(
        `broker.enqueue(): delay must be a non-negative number of ms, got ${delay}.`,
      );
    }
    const opts: JsonObject = { ...message.options, eta: Date.now() + Math.round(delay) };
    return message.copy({ queueName: dqName(q), options: opts });
  }
  return message.queueName !== q ? message.copy({ queueName: q }) : message;
}
