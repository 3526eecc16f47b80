// Consumers of a RabbitmqBroker queue: one channel and one `basic.consume` each (manual acks,
// per-consumer prefetch), restored after reconnections. Deliveries wait in a buffer until a
// worker's `receive` takes them. Deliveries left waiting for most of the server's consumer
// timeout are handed back so that RabbitMQ does not close the channel over them.
import { formatError, getLogger } from "../../util/log.ts";
import { Deque } from "../../util/queue.ts";
import { unrefTimer } from "../../runtime/process.ts";
import {
  type Consumer,
  MessageProxy,
  qName,
  type RawDelivery,
  type ReceiveOptions,
  xqName,
} from "../broker.ts";
import type { AmqpChannel, AmqpDelivery } from "../amqp/channel.ts";
import { AmqpError, REPLY } from "../amqp/errors.ts";
import { declareQueues } from "./_queues.ts";
import type { Core, LocalCounts } from "./_core.ts";

const logger = getLogger("dramatis.broker.RabbitmqBroker");

/**
 * What identifies one delivery of a RabbitmqBroker message (`MessageProxy.receipt`). Only the
 * consumer that received it can settle it: AMQP delivery tags belong to one channel.
 *
 * @example
 * ```ts
 * import type { RabbitmqReceipt } from "./_consumer.ts";
 * const r: RabbitmqReceipt = { consumer: 1, generation: 1, tag: 42, redelivered: false };
 * ```
 */
export interface RabbitmqReceipt {
  /** The id of the consumer that received it. */
  consumer: number;
  /** Its channel's generation then: after a reconnection, RabbitMQ has taken it back. */
  generation: number;
  /** The AMQP delivery tag. */
  tag: number;
  /** True when RabbitMQ delivered it before (to a consumer that did not ack it). */
  redelivered: boolean;
}

interface Waiting {
  d: AmqpDelivery;
  /** performance.now() when it came. */
  at: number;
}

let ids = 0;

/** Consumes `q` (or, subclassed, `q.DQ`). */
export class RabbitmqConsumer implements Consumer, LocalCounts {
  readonly id = ++ids;
  /** The canonical queue name. */
  readonly queue: string;
  readonly delayed: boolean = false;
  protected closed = false;
  protected channel: AmqpChannel | undefined;
  #starting: Promise<AmqpChannel> | undefined;
  #tag: string | undefined;
  #buffer = new Deque<Waiting>();
  /** Handed out and not settled, by delivery tag (of the current generation). */
  protected out = new Map<number, AmqpDelivery>();
  protected generation = 0;
  #wake: (() => void) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #resubscribing = false;

  constructor(
    protected readonly core: Core,
    readonly queueName: string,
    readonly prefetch: number,
    /** The server's consumer timeout in ms (Infinity: none). */
    protected readonly consumerTimeout: number,
  ) {
    this.queue = qName(queueName);
    core.consumers.add(this);
    if (Number.isFinite(consumerTimeout)) {
      const every = Math.max(250, Math.min(60_000, consumerTimeout / 8));
      this.#timer = setInterval(() => this.refresh(performance.now()), every);
      unrefTimer(this.#timer);
    }
  }

  get waiting(): number {
    return this.#buffer.length;
  }

  get handedOut(): number {
    return this.out.size;
  }

  #start(): Promise<AmqpChannel> {
    return this.#starting ??= (async () => {
      const settings = this.core.settings;
      await this.core.ensure(this.queue);
      const ch = this.channel ?? await this.core.sub.channel({
        prefetch: this.prefetch,
        onRecover: (c) => declareQueues(c, this.queue, settings).then(() => {}),
      });
      this.channel = ch;
      if (this.closed) return ch;
      await this.#subscribe(ch);
      return ch;
    })().catch((e) => {
      this.#starting = undefined;
      if (e instanceof AmqpError && e.code === REPLY.NOT_FOUND) this.core.forget(this.queue);
      throw e;
    });
  }

  async #subscribe(ch: AmqpChannel): Promise<void> {
    this.#tag = await ch.consume(this.queueName, (d) => this.#arrived(d), {
      onCancel: (e) => this.#cancelled(e),
    });
  }

  /** RabbitMQ ended the consumer (its queue was deleted): declare it again and consume again. */
  #cancelled(e: Error): void {
    this.#tag = undefined;
    if (this.closed || this.#resubscribing) return;
    this.#resubscribing = true;
    logger.warning(
      `RabbitMQ stopped the consumer of ${this.queueName} (${e.message}); restarting it.`,
    );
    this.core.forget(this.queue);
    const retry = async (pause: number) => {
      if (this.closed) return void (this.#resubscribing = false);
      try {
        await this.core.ensure(this.queue);
        await this.#subscribe(this.channel!);
        this.#resubscribing = false;
      } catch (err) {
        if (err instanceof AmqpError && err.code === REPLY.NOT_FOUND) this.core.forget(this.queue);
        logger.warning(`Could not consume ${this.queueName} again: ${(err as Error).message}`);
        setTimeout(() => retry(Math.min(pause * 2, 10_000)), pause);
      }
    };
    void retry(500);
  }

  #arrived(d: AmqpDelivery): void {
    if (d.generation !== this.generation) this.reset(d.generation);
    this.core.touch(this.queue);
    this.accept(d);
    this.#wake?.();
  }

  /** The channel was opened again: what this consumer held belongs to RabbitMQ again. */
  protected reset(generation: number): void {
    this.generation = generation;
    this.#buffer.clear();
    this.out.clear();
  }

  /** Takes a new delivery in. */
  protected accept(d: AmqpDelivery): void {
    this.#buffer.push({ d, at: performance.now() });
  }

  /** True when `receive` has something to hand out now. */
  protected hasReady(_now: number): boolean {
    return this.#buffer.length > 0;
  }

  /** Ms until something may become ready without a new delivery (Infinity: never). */
  protected nextDue(_now: number): number {
    return Infinity;
  }

  /** Up to `max` deliveries to hand out now. */
  protected take(max: number): AmqpDelivery[] {
    const out: AmqpDelivery[] = [];
    while (out.length < max && this.#buffer.length > 0) out.push(this.#buffer.shift()!.d);
    return out;
  }

  /**
   * Hands deliveries that waited most of the consumer timeout back to the queue (RabbitMQ would
   * close the channel over them, and hand back everything else too).
   */
  protected refresh(now: number): void {
    const limit = this.consumerTimeout * 0.75;
    const ch = this.channel;
    if (!ch || this.#buffer.length === 0 || now - this.#buffer.peek()!.at < limit) return;
    let n = 0;
    while (this.#buffer.length > 0 && now - this.#buffer.peek()!.at >= limit) {
      ch.nack(this.#buffer.shift()!.d, { requeue: true });
      n++;
    }
    logger.info(
      `Handed ${n} message(s) of ${this.queueName} back to RabbitMQ after ` +
        `${Math.round(limit / 1000)} s unstarted, before its consumer timeout.`,
    );
  }

  /** Waits for deliveries (setup not counted in the timeout) and takes up to `max`. */
  protected async deliveries(max: number, options: ReceiveOptions): Promise<AmqpDelivery[]> {
    if (this.closed || max <= 0) return [];
    if (!this.#tag || !this.channel) await this.#start();
    const deadline = performance.now() + options.timeout;
    const signal = options.signal;
    for (;;) {
      const now = performance.now();
      if (this.closed) return [];
      if (this.hasReady(now)) break;
      const left = deadline - now;
      if (left <= 0 || signal?.aborted) return [];
      await new Promise<void>((resolve) => {
        const wait = Math.min(left, this.nextDue(now));
        const timer = setTimeout(done, Math.max(1, wait));
        signal?.addEventListener("abort", done, { once: true });
        this.#wake = done;
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          resolve();
        }
      });
      this.#wake = undefined;
    }
    const batch = this.take(max);
    for (const d of batch) this.out.set(d.deliveryTag, d);
    return batch;
  }

  receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]> {
    return this.deliveries(max, options).then((batch) => {
      const out: MessageProxy[] = [];
      for (const d of batch) {
        const m = this.decode(d);
        if (m) out.push(m);
      }
      return out;
    });
  }

  receiveRaw(max: number, options: ReceiveOptions): Promise<RawDelivery[]> {
    return this.deliveries(max, options).then((batch) =>
      batch.map((d) => ({ receipt: this.receiptOf(d), data: d.body, decode: () => this.decode(d) }))
    );
  }

  protected receiptOf(d: AmqpDelivery): RabbitmqReceipt {
    return {
      consumer: this.id,
      generation: d.generation,
      tag: d.deliveryTag,
      redelivered: d.redelivered,
    };
  }

  /** Decodes a delivery; one that is not a message is dead-lettered (and logged) instead. */
  protected decode(d: AmqpDelivery): MessageProxy | undefined {
    try {
      const m = MessageProxy.decode(d.body) as MessageProxy;
      m.receipt = this.receiptOf(d);
      return m;
    } catch (e) {
      logger.error(
        `A message on ${this.queueName} cannot be decoded (${(e as Error).message}); moving it ` +
          `to the dead-letter queue ${xqName(this.queue)}.`,
      );
      this.out.delete(d.deliveryTag);
      d.channel.nack(d, { requeue: false });
      return undefined;
    }
  }

  /** The receipt of `m`, checked to be one of this consumer's. */
  #receipt(m: MessageProxy | RawDelivery): RabbitmqReceipt {
    const r = m.receipt as RabbitmqReceipt | undefined;
    if (!r || typeof r !== "object" || r.consumer !== this.id) {
      const id = m instanceof MessageProxy ? `Message ${m.messageId}` : "A message";
      throw new TypeError(
        `${id} was not received by this RabbitMQ consumer of ${this.queueName} (receipt ` +
          `${JSON.stringify(r)}): AMQP acks only work on the channel that delivered a message.`,
      );
    }
    return r;
  }

  /** Settles on the channel; false (nothing sent) when the delivery is from a lost channel. */
  #settle(r: RabbitmqReceipt, how: "ack" | "nack" | "requeue"): boolean {
    this.out.delete(r.tag);
    this.core.touch(this.queue);
    const ch = this.channel;
    const d = { deliveryTag: r.tag, generation: r.generation };
    const sent = !!ch && (how === "ack" ? ch.ack(d) : ch.nack(d, { requeue: how === "requeue" }));
    if (!sent) {
      logger.debug(
        `Not ${how}ing delivery ${r.tag} of ${this.queueName}: its channel was lost, and ` +
          `RabbitMQ delivers the message again.`,
      );
    }
    return sent;
  }

  ack(m: MessageProxy | RawDelivery): void {
    this.#settle(this.#receipt(m), "ack");
  }

  /**
   * The message failed for good: it is stored in `q.XQ` as it failed (its `retries` and
   * `traceback`: published, confirmed, then the delivery is acked), so the dead letter is there
   * when this resolves. (A nack would let RabbitMQ dead-letter the copy as delivered, later.) If
   * that publish fails, the delivery is nacked and RabbitMQ dead-letters it as delivered.
   */
  async nack(m: MessageProxy): Promise<void> {
    const r = this.#receipt(m);
    if (r.generation !== this.generation || !this.out.has(r.tag)) {
      this.#settle(r, "nack"); // from a lost channel: RabbitMQ delivers it again
      return;
    }
    try {
      await this.core.publish(xqName(this.queue), JSON.stringify(m.asDict()), { deliveryMode: 2 });
    } catch (e) {
      logger.warning(
        `Could not store failed message ${m.messageId} in ${xqName(this.queue)} ` +
          `(${formatError(e)}); dead-lettering it as it was delivered instead.`,
      );
      this.#settle(r, "nack");
      return;
    }
    this.#settle(r, "ack");
  }

  requeue(messages: (MessageProxy | RawDelivery)[]): void {
    for (const m of messages) this.#settle(this.#receipt(m), "requeue");
  }

  /** Drops what this consumer holds unstarted (`flush`): acked, so it is gone. */
  drop(): void {
    const ch = this.channel;
    for (const w of this.#buffer.clear()) ch?.ack(w.d);
  }

  /** Stops consuming; RabbitMQ takes back every unacked delivery when the channel closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.#timer);
    this.#wake?.();
    this.core.consumers.delete(this);
    await this.#starting?.catch(() => {});
    const ch = this.channel;
    if (!ch) return;
    try {
      if (this.#tag) await ch.cancel(this.#tag);
    } catch { /* closing anyway */ }
    this.#buffer.clear();
    this.out.clear();
    await ch.close();
  }
}
