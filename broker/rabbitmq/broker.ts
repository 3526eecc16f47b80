/**
 * `RabbitmqBroker`: queues in RabbitMQ, wire-compatible with Python Dramatiq's RabbitmqBroker
 * (the same queues `q`, `q.DQ`, `q.XQ`, declared with the same arguments, the same JSON bodies
 * and properties), over dramatis's own AMQP 0-9-1 client. Publisher confirms are always on:
 * `send()` resolves once RabbitMQ has the message. See docs/rabbitmq.md.
 *
 * @example
 * ```ts
 * import { RabbitmqBroker } from "./broker.ts";
 * import { actor } from "../../actor.ts";
 * import { Worker } from "../../worker/worker.ts";
 *
 * const broker = new RabbitmqBroker({ url: "amqp://guest:guest@127.0.0.1:5672/%2F" });
 * const queueName = `example-${crypto.randomUUID()}`;
 * const hello = actor((name: string) => console.log(`hello ${name}`), {
 *   actorName: "hello",
 *   queueName,
 *   broker,
 * });
 * await hello.send("ada");
 * const worker = new Worker(broker, { workerTimeout: 100 });
 * await worker.start();
 * await broker.join(queueName);
 * await worker.stop();
 * await broker.deleteQueues(queueName);
 * await broker.close();
 * ```
 * @module
 */
import {
  Broker,
  type BrokerOptions,
  type ConsumeOptions,
  type Consumer,
  dqName,
  type JoinOptions,
  qName,
  type QueueStats,
  validateQueueName,
  xqName,
} from "../broker.ts";
import { BrokerError, QueueJoinTimeout, QueueNotFound } from "../../errors.ts";
import { type JsonObject, Message } from "../../message.ts";
import { getLogger } from "../../util/log.ts";
import { sleep } from "../../util/async.ts";
import type { AmqpClient, AmqpClientOptions } from "../amqp/client.ts";
import type { AmqpChannel, AmqpDelivery } from "../amqp/channel.ts";
import { brokerPriority, Core } from "./_core.ts";
import { RabbitmqConsumer } from "./_consumer.ts";
import { DelayConsumer } from "./_delay_consumer.ts";
import type { QueueSettings } from "./_queues.ts";

export type { RabbitmqReceipt } from "./_consumer.ts";

/**
 * Options of `new RabbitmqBroker()`.
 *
 * @example
 * ```ts
 * import type { RabbitmqBrokerOptions } from "./broker.ts";
 * const o: RabbitmqBrokerOptions = { url: "amqp://app:secret@mq:5672/prod", maxPriority: 10 };
 * ```
 */
export interface RabbitmqBrokerOptions extends BrokerOptions {
  /**
   * `amqp://[user:password@]host[:port][/vhost]` (`amqps://` for TLS), or several (an array or
   * `;`-separated) to fail over between. Default `amqp://guest:guest@127.0.0.1:5672/%2F`.
   */
  url?: string | string[] | undefined;
  /** More client settings (TLS, heartbeat, reconnection, `name`, ...), merged over `url`. */
  clientOptions?: Omit<AmqpClientOptions, "url">;
  /**
   * `x-max-priority` of every queue (1 to 255), for `broker_priority`. Every client of a queue,
   * Python included, must use the same value (or none). Default: none.
   */
  maxPriority?: number;
  /**
   * Prefetch (unacked deliveries) of each `q` consumer. Default: what the worker asks for
   * (concurrency + its own prefetch), else 16. Use 1 for strict `broker_priority` order.
   */
  prefetch?: number;
  /** Delayed messages one `q.DQ` consumer holds until due (at most 65,535). Default 8,000. */
  delayPrefetch?: number;
  /**
   * The server's `consumer_timeout` in ms (RabbitMQ's default: 30 min). Delayed messages held
   * this long are re-published before it fires; `Infinity` turns that off. Default 1,800,000.
   */
  consumerTimeout?: number;
  /** `x-message-ttl` of the dead-letter queues, in ms. Default 7 days, as Dramatiq. */
  deadMessageTtl?: number;
}

const logger = getLogger("dramatis.broker.RabbitmqBroker");
const SEVEN_DAYS = 7 * 24 * 3600 * 1000;

function integer(
  name: string,
  v: number | undefined,
  min: number,
  max: number,
): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new TypeError(
      `RabbitmqBroker: ${name} must be an integer from ${min} to ${max}, got ${v}.`,
    );
  }
  return v;
}

function checked(queueName: string): string {
  const q = qName(queueName);
  validateQueueName(q);
  return q;
}

/**
 * A broker on RabbitMQ, wire-compatible with Python Dramatiq's `RabbitmqBroker`.
 *
 * - Each queue `q` is three durable queues: `q`, `q.DQ` (delayed messages) and `q.XQ` (dead
 *   letters, kept `deadMessageTtl`), declared on first use exactly as Dramatiq declares them.
 * - `send()` resolves once RabbitMQ confirmed the message (persistent, published mandatory).
 * - Delivery is at least once: a worker that dies or loses its connection has its unacked
 *   messages delivered again by RabbitMQ at once.
 * - `stats()` and `join()` add this process's consumers to what RabbitMQ reports; messages
 *   another process holds unacked are invisible without the management API (see docs).
 *
 * @example
 * ```ts
 * import { RabbitmqBroker } from "./broker.ts";
 * import { Message } from "../../message.ts";
 *
 * await using broker = new RabbitmqBroker({ maxPriority: 10 });
 * const q = `example-${crypto.randomUUID()}`;
 * broker.declareQueue(q);
 * await broker.enqueue(new Message({ queueName: q, actorName: "a", options: { broker_priority: 5 } }));
 * console.log((await broker.stats(q)).ready); // 1
 * await broker.deleteQueues(q);
 * ```
 */
export class RabbitmqBroker extends Broker {
  /** `x-max-priority` of the queues, if any. */
  readonly maxPriority: number | undefined;
  /** Prefetch of `q` consumers, if set. */
  readonly prefetch: number | undefined;
  /** Delayed messages one delay-queue consumer may hold. */
  readonly delayPrefetch: number;
  /** The consumer timeout held messages are re-published within, in ms. */
  readonly consumerTimeout: number;
  /** Dead-letter TTL in ms. */
  readonly deadMessageTtl: number;
  #core: Core;
  #warned = new Set<string>();

  /** Creates the broker. It connects on first use (or `connect()`). */
  constructor(options: RabbitmqBrokerOptions = {}) {
    super(options);
    // The actor option `brokerPriority` (wire: broker_priority), for actors declared on it.
    this.addActorOptions(["brokerPriority"]);
    this.maxPriority = integer("maxPriority", options.maxPriority, 1, 255);
    this.prefetch = integer("prefetch", options.prefetch, 0, 65535);
    this.delayPrefetch = integer("delayPrefetch", options.delayPrefetch, 0, 65535) ?? 8000;
    const timeout = options.consumerTimeout ?? 1_800_000;
    if (!(timeout > 0)) {
      throw new TypeError(`RabbitmqBroker: consumerTimeout must be a positive number of ms.`);
    }
    this.consumerTimeout = timeout;
    this.deadMessageTtl = integer("deadMessageTtl", options.deadMessageTtl, 0, 2 ** 31 - 1) ??
      SEVEN_DAYS;
    const settings: QueueSettings = {
      maxPriority: this.maxPriority,
      deadMessageTtl: this.deadMessageTtl,
    };
    this.#core = new Core({
      url: options.url ?? "amqp://guest:guest@127.0.0.1:5672/%2F",
      clientOptions: options.clientOptions ?? {},
      settings,
    });
  }

  /** The publishing connection (declares, publishes, counts). */
  get client(): AmqpClient {
    return this.#core.pub;
  }

  /**
   * Connects now and declares every queue declared so far. Rejects with one `ConnectionError`
   * naming the server and the cause, or a `BrokerError` when a queue exists with other
   * arguments (another `maxPriority`, ...). Optional: every operation connects on first use.
   */
  async connect(): Promise<void> {
    await this.#core.pub.connect();
    for (const q of this.queues) await this.#core.ensure(q);
  }

  /** Publishes the message to `q` or `q.DQ` and resolves once RabbitMQ confirmed it. */
  protected _enqueue(message: Message): Promise<void> {
    let priority: number | undefined;
    try {
      const actor = this.actors.get(message.actorName);
      priority = brokerPriority(message, actor?.options.brokerPriority);
    } catch (e) {
      return Promise.reject(e);
    }
    const body = JSON.stringify(message.asDict());
    return this.#core.publish(
      message.queueName,
      body,
      priority === undefined ? { deliveryMode: 2 } : { deliveryMode: 2, priority },
    );
  }

  /** A consumer of `queueName` (`q` or `q.DQ`); the queue must be declared. */
  consume(queueName: string, options: ConsumeOptions = {}): Consumer {
    const q = qName(queueName);
    if (!this.queues.has(q) || (queueName !== q && queueName !== dqName(q))) {
      throw new QueueNotFound(queueName);
    }
    if (this.closed) throw new TypeError("This RabbitmqBroker is closed: create a new one.");
    if (queueName !== q) {
      return new DelayConsumer(this.#core, queueName, this.delayPrefetch, this.consumerTimeout);
    }
    this.#warnTimeLimits(q);
    const prefetch = Math.min(65535, this.prefetch ?? options.prefetch ?? 16);
    return new RabbitmqConsumer(this.#core, queueName, prefetch, this.consumerTimeout);
  }

  /** A job running longer than the consumer timeout makes RabbitMQ close its channel. */
  #warnTimeLimits(q: string): void {
    for (const actor of this.actors.values()) {
      const limit = (actor.options.timeLimit as number | undefined) ?? 600_000;
      if (
        actor.queueName !== q || limit < this.consumerTimeout || this.#warned.has(actor.actorName)
      ) {
        continue;
      }
      this.#warned.add(actor.actorName);
      logger.warning(
        `Actor ${actor.actorName} may run ${limit} ms, no less than RabbitMQ's consumer timeout ` +
          `(${this.consumerTimeout} ms): a message running that long makes RabbitMQ close the ` +
          `channel and deliver it again. Lower its timeLimit, or raise consumer_timeout on the ` +
          `server and consumerTimeout here.`,
      );
    }
  }

  #local(q: string): { ready: number; delayed: number; inFlight: number } {
    let ready = 0, delayed = 0, inFlight = 0;
    for (const c of this.#core.consumers) {
      if (c.queue !== q) continue;
      if (c.delayed) delayed += c.waiting;
      else ready += c.waiting;
      inFlight += c.handedOut;
    }
    return { ready, delayed, inFlight };
  }

  /**
   * Counters of `queueName`: RabbitMQ's ready counts plus this process's consumers (what they
   * hold unstarted is ready or delayed, what they handed out is in flight). Other processes'
   * unacked messages are not counted: AMQP does not report them.
   */
  async stats(queueName: string): Promise<QueueStats> {
    const q = checked(queueName);
    const [ready, delayed, dead] = await this.#core.counts(q);
    const local = this.#local(q);
    return {
      queueName: q,
      ready: ready + local.ready,
      delayed: delayed + local.delayed,
      inFlight: local.inFlight,
      dead,
    };
  }

  /**
   * Waits until `queueName` and its delay queue hold no message: none ready in RabbitMQ, and
   * none held, in flight or being published by this process. Messages other processes hold
   * unacked are not seen (as in Dramatiq). `failFast` rejects when a message is dead-lettered
   * meanwhile.
   */
  async join(queueName: string, options: JoinOptions = {}): Promise<void> {
    const q = checked(queueName);
    const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout;
    let dead0: number | undefined;
    let pause = 1;
    for (;;) {
      const before = this.#core.activity(q);
      const [ready, delayed, dead] = await this.#core.counts(q);
      const local = this.#local(q);
      dead0 ??= dead;
      if (options.failFast && dead > dead0) {
        const letters = await this.deadLetters(q);
        const m = letters[letters.length - 1];
        const tb = typeof m?.options.traceback === "string" ? `\n${m.options.traceback}` : "";
        throw new BrokerError(
          `A message of queue ${q} failed and was dead-lettered: ${m?.actorName} message ` +
            `${m?.messageId}${tb}`,
        );
      }
      const held = local.ready + local.delayed + local.inFlight + this.#core.publishing(q);
      if (ready + delayed + held === 0 && this.#core.activity(q) === before) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new QueueJoinTimeout(q);
      if (this.closed) throw new TypeError("This RabbitmqBroker was closed while joining.");
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, 50);
    }
  }

  /** Drops the ready messages of `queueName` and its delay queue (and what this process holds). */
  async flush(queueName: string): Promise<void> {
    const q = checked(queueName);
    await this.#core.ensure(q);
    const ch = await this.#core.control();
    await ch.purgeQueue(q);
    await ch.purgeQueue(dqName(q));
    for (const c of this.#core.consumers) if (c.queue === q) c.drop();
  }

  /** Flushes every declared queue and deletes its dead letters. */
  override async flushAll(): Promise<void> {
    for (const q of this.queues) {
      await this.flush(q);
      await this.purgeDeadLetters(q);
    }
  }

  /**
   * Takes up to `limit` messages off `q.XQ` on a channel of its own, runs `fn`, then closes the
   * channel: RabbitMQ puts back (in order) every message `fn` did not ack. AMQP has no way to
   * look at a queue without taking its messages; listed ones come back marked redelivered.
   */
  async #browse<T>(
    q: string,
    limit: number,
    fn: (ch: AmqpChannel, letters: { d: AmqpDelivery; m: Message }[]) => Promise<T>,
  ): Promise<T> {
    await this.#core.ensure(q);
    const ch = await this.#core.pub.channel({ recover: false });
    try {
      const letters: { d: AmqpDelivery; m: Message }[] = [];
      while (letters.length < limit) {
        const d = await ch.get(xqName(q));
        if (!d) break;
        try {
          letters.push({ d, m: Message.decode(d.body) });
        } catch (e) {
          logger.warning(`A dead letter of ${q} cannot be decoded: ${(e as Error).message}`);
        }
        if (d.messageCount === 0) break;
      }
      return await fn(ch, letters);
    } finally {
      await ch.close();
    }
  }

  /** The dead letters of `queueName`, oldest first (they stay in `q.XQ`). */
  deadLetters(queueName: string, options: { limit?: number } = {}): Promise<Message[]> {
    return this.#browse(
      checked(queueName),
      options.limit ?? Infinity,
      (_, letters) => Promise.resolve(letters.map((l) => l.m)),
    );
  }

  /**
   * Moves dead letters (all, or those whose message ids are given) back to their queue: each
   * is published to `q` (confirmed) before it is acked off `q.XQ`. Resolves with how many.
   */
  requeueDeadLetters(queueName: string, messageIds?: string[]): Promise<number> {
    const q = checked(queueName);
    const ids = messageIds && new Set(messageIds);
    return this.#browse(q, Infinity, async (ch, letters) => {
      let moved = 0;
      for (const { d, m } of letters) {
        if (ids && !ids.has(m.messageId)) continue;
        const options: JsonObject = { ...m.options };
        delete options.eta;
        await this.enqueue(m.copy({ queueName: q, options }));
        ch.ack(d);
        moved++;
      }
      return moved;
    });
  }

  /** Deletes the dead letters of `queueName`. Resolves with how many were deleted. */
  async purgeDeadLetters(queueName: string): Promise<number> {
    const q = checked(queueName);
    await this.#core.ensure(q);
    return await (await this.#core.control()).purgeQueue(xqName(q));
  }

  /**
   * Deletes the RabbitMQ queues of `queueName` (`q`, `q.DQ`, `q.XQ`) and their messages. For
   * tests and tools; a worker consuming them gets them declared again.
   */
  async deleteQueues(queueName: string): Promise<void> {
    const q = checked(queueName);
    const ch = await this.#core.control();
    for (const name of [q, dqName(q), xqName(q)]) await ch.deleteQueue(name);
    this.#core.forget(q);
  }

  /** Stops the consumers (RabbitMQ takes back what they held) and closes the connections. */
  override async close(): Promise<void> {
    if (this.closed) return;
    await super.close();
    await this.#core.close();
  }
}

/**
 * The options an `amqp://` or `amqps://` URL stands for. Query parameters set broker options
 * (`maxPriority`, `prefetch`, `delayPrefetch`, `consumerTimeout`, `deadMessageTtl`); the
 * client's (`heartbeat`, `connection_timeout`, `channel_max`, `frame_max`) stay in the URL.
 *
 * @example
 * ```ts
 * import { rabbitmqBrokerOptionsFromUrl } from "./broker.ts";
 * console.log(rabbitmqBrokerOptionsFromUrl("amqp://mq/%2F?maxPriority=10&heartbeat=30"));
 * // { url: "amqp://mq/%2F?heartbeat=30", maxPriority: 10 }
 * ```
 */
export function rabbitmqBrokerOptionsFromUrl(url: string): RabbitmqBrokerOptions {
  const options: RabbitmqBrokerOptions = {};
  const urls = url.split(";").map((one) => {
    const at = one.indexOf("?");
    if (at < 0) return one;
    const rest = new URLSearchParams();
    for (const [key, value] of new URLSearchParams(one.slice(at + 1))) {
      switch (key) {
        case "maxPriority":
        case "prefetch":
        case "delayPrefetch":
        case "consumerTimeout":
        case "deadMessageTtl": {
          const n = Number(value);
          if (value === "" || Number.isNaN(n)) {
            throw new TypeError(`RabbitMQ URL parameter ${key} must be a number, got ${value}.`);
          }
          options[key] = n;
          break;
        }
        default:
          rest.append(key, value);
      }
    }
    const query = rest.toString();
    return query ? `${one.slice(0, at)}?${query}` : one.slice(0, at);
  });
  return { url: urls.length === 1 ? urls[0] : urls, ...options };
}
