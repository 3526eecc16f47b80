/**
 * `Consumer`: how a worker takes messages off one queue of a broker. Every broker implements it.
 *
 * @example
 * ```ts
 * import type { Consumer } from "@dramatis/dramatis";
 * async function drainOnce(consumer: Consumer): Promise<number> {
 *   const batch = await consumer.receive(10, { timeout: 100 });
 *   for (const m of batch) await consumer.ack(m);
 *   return batch.length;
 * }
 * ```
 * @module
 */
import type { MessageProxy } from "../message.ts";
import type { Awaitable } from "../util/async.ts";

/**
 * Options of `Consumer.receive()`.
 *
 * @example
 * ```ts
 * import type { ReceiveOptions } from "@dramatis/dramatis";
 * const o: ReceiveOptions = { timeout: 1000 };
 * ```
 */
export interface ReceiveOptions {
  /** Longest wait for a first message, in ms; `receive` resolves with `[]` after it. */
  timeout: number;
  /** Aborting it makes a pending `receive` resolve with `[]` at once. */
  signal?: AbortSignal;
}

/**
 * A message as `Consumer.receiveRaw()` returns it: its receipt and its wire JSON, undecoded.
 *
 * @example
 * ```ts
 * import type { RawDelivery } from "@dramatis/dramatis";
 * function size(d: RawDelivery): number {
 *   return d.data.length;
 * }
 * ```
 */
export interface RawDelivery {
  /** Identifies this delivery to its consumer (as `MessageProxy.receipt` does). */
  receipt: unknown;
  /** The message as UTF-8 JSON (Dramatiq's wire format). */
  data: Uint8Array;
  /**
   * Decodes it into a `MessageProxy` with this receipt. A message that cannot be decoded is
   * moved to the dead letters (and logged): `undefined` then.
   */
  decode(): MessageProxy | undefined;
}

const rawEncoder = new TextEncoder();

/**
 * A decoded message as a `RawDelivery` (its JSON encoded again), for consumers that decode
 * before they can hand a message out.
 *
 * @example
 * ```ts
 * import { MessageProxy } from "@dramatis/dramatis";
 * import { toRawDelivery } from "./consumer.ts";
 * const m = new MessageProxy({ queueName: "default", actorName: "a" });
 * console.log(toRawDelivery(m).decode() === m); // true
 * ```
 */
export function toRawDelivery(m: MessageProxy): RawDelivery {
  return {
    receipt: m.receipt,
    data: rawEncoder.encode(JSON.stringify(m.asDict())),
    decode: () => m,
  };
}

/**
 * Takes messages off one queue for a worker. Every broker implements it.
 * A message is "in flight" from `receive` until `ack`, `nack` or `requeue`.
 *
 * @example
 * ```ts
 * import { StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * broker.declareQueue("default");
 * const consumer = broker.consume("default");
 * const batch = await consumer.receive(10, { timeout: 10 });
 * console.log(batch.length); // 0
 * await consumer.close();
 * ```
 */
export interface Consumer {
  /**
   * Waits up to `timeout` ms for messages and returns between 1 and `max` of them, or `[]`
   * when none came. On a delay queue (`q.DQ`) it returns only messages whose eta has passed,
   * or that will be due soon.
   */
  receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]>;
  /**
   * Optional. Like `receive`, but leaves each message's JSON undecoded. The CLI's worker process
   * uses it to forward messages to its Web Workers without parsing them; it falls back to
   * `receive` when a consumer lacks it.
   */
  receiveRaw?(max: number, options: ReceiveOptions): Promise<RawDelivery[]>;
  /**
   * The message was processed: remove it for good. Only its `receipt` is used, so a
   * `RawDelivery` can be acked too.
   */
  ack(message: MessageProxy | RawDelivery): Awaitable<void>;
  /** The message failed for good: move it to the dead-letter queue. */
  nack(message: MessageProxy): Awaitable<void>;
  /**
   * Hand messages back, unprocessed, to be delivered again (to any consumer). Only their
   * receipts are used.
   */
  requeue(messages: (MessageProxy | RawDelivery)[]): Awaitable<void>;
  /** Stops consuming; waits for pending acks to reach the broker. */
  close(): Awaitable<void>;
}

/**
 * Options of `broker.consume()`.
 *
 * @example
 * ```ts
 * import type { ConsumeOptions } from "@dramatis/dramatis";
 * const o: ConsumeOptions = { prefetch: 16 };
 * ```
 */
export interface ConsumeOptions {
  /** How many messages the consumer may hold unacked at once (a hint for the broker). */
  prefetch?: number;
}
