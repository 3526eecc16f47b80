// The consumers of an AmqpChannel (broker/amqp/channel.ts): who receives the deliveries of each
// consumer tag, which tags need no acks, and starting them all again on a re-opened channel.
import { AmqpError } from "./errors.ts";
import type { AmqpConsumeOptions, AmqpDelivery } from "./_channel_types.ts";

/** One consumer of the channel. */
export interface ConsumerEntry {
  queue: string;
  options: AmqpConsumeOptions;
  onDelivery: (d: AmqpDelivery) => void;
}

/** The `basic.consume` arguments of a consumer. */
export function consumeArgs(
  queue: string,
  tag: string,
  o: AmqpConsumeOptions,
): Record<string, unknown> {
  return {
    queue,
    consumerTag: tag,
    noAck: o.noAck ?? false,
    exclusive: o.exclusive ?? false,
    arguments: o.arguments ?? {},
  };
}

/** The consumers of one channel, by consumer tag; they outlive its recoveries. */
export class ChannelConsumers {
  readonly #entries = new Map<string, ConsumerEntry>();
  /** Tags of consumers that needed no acks (their late deliveries must not be nacked). */
  readonly #noAck = new Set<string>();

  /** Registers the consumer the server tagged `tag`. */
  add(
    tag: string,
    queue: string,
    options: AmqpConsumeOptions,
    onDelivery: (d: AmqpDelivery) => void,
  ): void {
    this.#entries.set(tag, { queue, options: { ...options, tag }, onDelivery });
    if (options.noAck) this.#noAck.add(tag);
  }

  /** The consumer tagged `tag`, if any. */
  get(tag: string): ConsumerEntry | undefined {
    return this.#entries.get(tag);
  }

  /** Removes and returns the consumer tagged `tag`. */
  take(tag: string): ConsumerEntry | undefined {
    const c = this.#entries.get(tag);
    this.#entries.delete(tag);
    return c;
  }

  /** Removes the consumer tagged `tag`; false when there was none. */
  delete(tag: string): boolean {
    return this.#entries.delete(tag);
  }

  /** Whether the consumer tagged `tag` took its deliveries without acks. */
  noAck(tag: string): boolean {
    return this.#noAck.has(tag);
  }

  clear(): void {
    this.#entries.clear();
  }

  /**
   * Starts every consumer again on a re-opened channel, one `basic.consume` (`consume`) at a
   * time; stops when `stale()` says the channel was lost meanwhile. A consumer the server
   * refuses then (its queue is gone: the server closed the channel) is ended with its
   * `onCancel`. Resolves true when all are running on a channel still current.
   */
  async restore(
    consume: (args: Record<string, unknown>) => Promise<unknown>,
    stale: () => boolean,
  ): Promise<boolean> {
    for (const [tag, c] of [...this.#entries]) {
      if (stale()) return false;
      try {
        await consume(consumeArgs(c.queue, tag, c.options));
      } catch (e) {
        if (!stale() || !(e instanceof AmqpError)) throw e;
        // The server refused it (the queue is gone) and closed the channel: end this consumer.
        this.#entries.delete(tag);
        c.options.onCancel?.(e);
        return false;
      }
    }
    return !stale();
  }
}
