// The errors an AmqpChannel (broker/amqp/channel.ts) rejects with or reports: each says what
// happened on the channel and what it means for the call or the message.
import { ConnectionError } from "../../errors.ts";
import { AmqpError, REPLY } from "./errors.ts";
import { type Method, methodName } from "./_methods.ts";

/** The error of a synchronous method `name` in flight when the channel was lost with `error`. */
export function rpcError(name: string, error: Error): Error {
  if (error instanceof AmqpError && !error.connectionLevel) return error;
  return new ConnectionError(
    `Lost the connection to RabbitMQ during ${name}; it may or may not have been done ` +
      `(${error.message}).`,
    { cause: error },
  );
}

/** The error of a publish to `routingKey` not confirmed when the channel was lost with `error`. */
export function unconfirmedError(error: Error, address: string, routingKey: string): Error {
  return error instanceof AmqpError && !error.connectionLevel ? error : new ConnectionError(
    `Lost the connection to RabbitMQ at ${address} before it confirmed a ` +
      `message to ${JSON.stringify(routingKey)}; it may or may not have been stored ` +
      `(${error.message}).`,
    { cause: error },
  );
}

/** The server's `channel.close` (`m`) of channel `channel`, as an error. */
export function channelClosedError(channel: number, m: Method): AmqpError {
  const { replyCode, replyText, classId, methodId } = m.args;
  return new AmqpError(
    `RabbitMQ closed channel ${channel}: ${replyCode} ${replyText}` +
      (classId ? ` (after ${methodName((classId << 16) | methodId)})` : ""),
    { code: replyCode, text: replyText, classId, methodId },
  );
}

/** A publish the server refused (`basic.nack`). */
export function nackedError(): AmqpError {
  return new AmqpError(
    "RabbitMQ refused to take a message (basic.nack): an internal error in the queue; " +
      "publish it again.",
    { code: REPLY.INTERNAL_ERROR, text: "basic.nack", classId: 60, methodId: 40 },
  );
}

/** The server cancelled consumer `tag` of `queue` (`basic.cancel`). */
export function serverCancelError(tag: string, queue: string): AmqpError {
  return new AmqpError(
    `RabbitMQ cancelled consumer ${tag} of queue ${JSON.stringify(queue)} ` +
      `(the queue was deleted, or it became unavailable).`,
    { code: REPLY.NOT_FOUND, text: "basic.cancel", classId: 60, methodId: 30 },
  );
}

/** Throws a `TypeError` unless `n` is a prefetch count `basic.qos` can carry. */
export function checkPrefetch(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new TypeError(
      `AMQP prefetch must be an integer from 0 (no limit) to 65535 (basic.qos has 16 bits), ` +
        `got ${n}.`,
    );
  }
}
