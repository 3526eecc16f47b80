// Queue names: a queue `q`, its delay queue `q.DQ` and its dead letters `q.XQ`, as in Dramatiq.

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
