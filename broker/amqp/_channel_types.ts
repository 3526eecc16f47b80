// The types of AmqpChannel's API: deliveries and the options of consume, publish and channels
// (re-exported by channel.ts), and what a channel needs from its client.
import type { AmqpChannel } from "./channel.ts";
import type { Connection } from "./_connection.ts";
import type { AmqpProperties } from "./_methods.ts";
import type { FieldTable } from "./_table.ts";

/**
 * A message from `basic.deliver` (a consumer) or `basic.get-ok`.
 *
 * @example
 * ```ts
 * import type { AmqpDelivery } from "./channel.ts";
 * const text = (d: AmqpDelivery) => new TextDecoder().decode(d.body);
 * ```
 */
export interface AmqpDelivery {
  /** The channel it came on (ack it there). */
  readonly channel: AmqpChannel;
  /** The channel's generation when it came; an ack from another generation is dropped. */
  readonly generation: number;
  /** Its delivery tag on that channel. */
  readonly deliveryTag: number;
  /** True when it was delivered before and not acked. */
  readonly redelivered: boolean;
  /** The exchange it was published to (`""`: the default exchange). */
  readonly exchange: string;
  /** Its routing key (the queue name, through the default exchange). */
  readonly routingKey: string;
  /** The consumer's tag ("" for `get`). */
  readonly consumerTag: string;
  /** `get` only: how many messages were left in the queue. */
  readonly messageCount?: number;
  /** Its properties (the content header). */
  readonly properties: AmqpProperties;
  /** Its body. */
  readonly body: Uint8Array;
}

/**
 * Options of `channel.consume()`.
 *
 * @example
 * ```ts
 * import type { AmqpConsumeOptions } from "./channel.ts";
 * const o: AmqpConsumeOptions = { tag: "worker-1", onCancel: (e) => console.log(e.message) };
 * ```
 */
export interface AmqpConsumeOptions {
  /** The consumer tag. Default: one the server makes up. */
  tag?: string;
  /** Deliveries need no ack (and are lost if the client dies). Default false. */
  noAck?: boolean;
  /** The only consumer of the queue. Default false. */
  exclusive?: boolean;
  /** `x-priority`, `x-consumer-timeout` (RabbitMQ 3.12+), ... */
  arguments?: FieldTable;
  /**
   * The consumer ended without `cancel()`: the server cancelled it (its queue was deleted), or
   * restoring it after a reconnection failed (`error.code` 404: the queue is gone).
   */
  onCancel?: (error: Error) => void;
}

/**
 * Options of `channel.publish()`.
 *
 * @example
 * ```ts
 * import type { AmqpPublishOptions } from "./channel.ts";
 * const o: AmqpPublishOptions = { properties: { deliveryMode: 2 }, mandatory: true };
 * ```
 */
export interface AmqpPublishOptions {
  /** Default: `""`, the default exchange (routing key = queue name). */
  exchange?: string;
  /** Message properties (`deliveryMode: 2` for a persistent message, `priority`, ...). */
  properties?: AmqpProperties;
  /** Return the message (the promise rejects with code 312) when no queue takes it. */
  mandatory?: boolean;
}

/**
 * Options of `client.channel()`.
 *
 * @example
 * ```ts
 * import type { AmqpChannelOptions } from "./channel.ts";
 * const o: AmqpChannelOptions = { confirm: true, prefetch: 16 };
 * ```
 */
export interface AmqpChannelOptions {
  /** Publisher confirms: `publish()` resolves once the server has the message. Default false. */
  confirm?: boolean;
  /** `basic.qos` prefetch count for consumers of this channel (per consumer). */
  prefetch?: number;
  /** Open again after a lost connection or a server-side close. Default true. */
  recover?: boolean;
  /** Runs after a recovery, before consumers are restored (declare the queues here). */
  onRecover?: (channel: AmqpChannel) => Promise<void>;
}

/** @internal What a channel needs from its client. */
export interface ChannelHost {
  address(): string;
  readonly maxWait: number;
  /** The live connection, waiting for one (up to maxWait) while reconnecting. */
  connection(): Promise<Connection>;
  /** A channel's recovery failed. */
  report(channel: AmqpChannel, error: Error): void;
  remove(channel: AmqpChannel): void;
}
