// The consumer of a delay queue (`q.DQ`), as Dramatiq's workers consume it: delayed messages
// are held unacked in memory, ordered by eta, and handed out once due (the worker then publishes
// them to `q`, waits for the confirm, and acks). Fixes Dramatiq issue 827: RabbitMQ closes a
// channel that holds a delivery unacked past its consumer timeout (30 min by default), which
// hands every held message back and starts the churn again; so a message held for 3/4 of the
// timeout, and not due before it, is re-published to `q.DQ` with the same eta (confirmed), and
// then the old delivery is acked. A Python worker sees an ordinary delayed message.
import { Heap } from "../../util/queue.ts";
import { getLogger } from "../../util/log.ts";
import {
  dqName,
  type MessageProxy,
  type RawDelivery,
  type ReceiveOptions,
  toRawDelivery,
} from "../broker.ts";
import type { AmqpDelivery } from "../amqp/channel.ts";
import { RabbitmqConsumer } from "./_consumer.ts";

const logger = getLogger("dramatis.broker.RabbitmqBroker");

interface Held {
  d: AmqpDelivery;
  message: MessageProxy;
  eta: number;
  /** performance.now() when it came. */
  at: number;
  seq: number;
  /** Being re-published, or re-published already: skip it. */
  gone: boolean;
}

/** How many re-leases a consumer may have in flight at once. */
const RELEASE_BATCH = 500;

/** Consumes `q.DQ`: holds messages until due. */
export class DelayConsumer extends RabbitmqConsumer {
  override readonly delayed = true;
  #held = new Heap<Held>((a, b) => a.eta < b.eta || (a.eta === b.eta && a.seq < b.seq));
  /** Live held entries by message id and eta (a re-lease cut off by a reconnection can leave two). */
  #byKey = new Map<string, Held>();
  #seq = 0;
  #releasing = 0;
  /** What `take` handed out, for `receive` to return. */
  #taken = new Map<AmqpDelivery, MessageProxy>();
  /** Re-leases done (for tests and logs). */
  released = 0;

  override get waiting(): number {
    return this.#byKey.size + this.#releasing;
  }

  protected override reset(generation: number): void {
    super.reset(generation);
    this.#held.clear();
    this.#byKey.clear();
  }

  protected override accept(d: AmqpDelivery): void {
    const message = this.decode(d);
    if (!message) return;
    const eta = typeof message.options.eta === "number" ? message.options.eta : 0;
    const key = `${message.messageId}\n${eta}`;
    if (this.#byKey.has(key)) {
      // Two copies of one delayed message: a re-lease whose old delivery could not be acked.
      logger.debug(`Dropping a second copy of delayed message ${message.messageId}.`);
      d.channel.ack(d);
      return;
    }
    const held: Held = { d, message, eta, at: performance.now(), seq: this.#seq++, gone: false };
    this.#held.push(held);
    this.#byKey.set(key, held);
  }

  #head(): Held | undefined {
    let h: Held | undefined;
    while ((h = this.#held.peek()) !== undefined && h.gone) this.#held.pop();
    return h;
  }

  protected override hasReady(_now: number): boolean {
    const head = this.#head();
    return head !== undefined && head.eta <= Date.now() + 1;
  }

  protected override nextDue(_now: number): number {
    const head = this.#head();
    return head === undefined ? Infinity : Math.max(1, head.eta - Date.now());
  }

  protected override take(max: number): AmqpDelivery[] {
    const out: AmqpDelivery[] = [];
    const now = Date.now();
    let h: Held | undefined;
    while (out.length < max && (h = this.#head()) !== undefined && h.eta <= now + 1) {
      this.#held.pop();
      this.#byKey.delete(`${h.message.messageId}\n${h.eta}`);
      this.#taken.set(h.d, h.message);
      out.push(h.d);
    }
    return out;
  }

  /** Held messages are decoded already (their eta decides when they are handed out). */
  override async receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]> {
    const batch = await this.deliveries(max, options);
    const out: MessageProxy[] = [];
    for (const d of batch) {
      const m = this.#taken.get(d);
      this.#taken.delete(d);
      if (!m) continue;
      m.receipt = this.receiptOf(d);
      out.push(m);
    }
    return out;
  }

  override async receiveRaw(max: number, options: ReceiveOptions): Promise<RawDelivery[]> {
    return (await this.receive(max, options)).map(toRawDelivery);
  }

  /** Re-publishes messages held for 3/4 of the consumer timeout that are not due before it. */
  protected override refresh(now: number): void {
    const timeout = this.consumerTimeout;
    const ch = this.channel;
    if (!ch || this.#byKey.size === 0) return;
    const due: Held[] = [];
    const wall = Date.now();
    for (const h of this.#byKey.values()) {
      if (now - h.at < timeout * 0.75) continue;
      // Handed out before the timeout anyway: leave it.
      if (h.eta - wall < timeout - (now - h.at) - timeout * 0.1) continue;
      due.push(h);
      if (due.length + this.#releasing >= RELEASE_BATCH) break;
    }
    for (const h of due) void this.#release(h);
  }

  async #release(h: Held): Promise<void> {
    const key = `${h.message.messageId}\n${h.eta}`;
    h.gone = true;
    this.#byKey.delete(key);
    this.#releasing++;
    try {
      await this.core.publish(dqName(this.queue), h.d.body, {
        ...h.d.properties,
        deliveryMode: 2,
      });
      h.d.channel.ack(h.d);
      this.released++;
      logger.debug(
        `Re-published delayed message ${h.message.messageId} (due ${
          new Date(h.eta).toISOString()
        }) ` +
          `before RabbitMQ's consumer timeout.`,
      );
    } catch (e) {
      if (!this.closed && h.d.generation === this.generation) {
        const back = { ...h, gone: false, seq: this.#seq++ };
        this.#held.push(back);
        this.#byKey.set(key, back);
      }
      logger.warning(
        `Could not re-publish delayed message ${h.message.messageId} before RabbitMQ's consumer ` +
          `timeout: ${(e as Error).message}`,
      );
    } finally {
      this.#releasing--;
    }
  }

  override drop(): void {
    for (const h of this.#byKey.values()) h.d.channel.ack(h.d);
    this.#held.clear();
    this.#byKey.clear();
  }
}
