// The RabbitmqBroker's connections and the operations its consumers share: two connections
// (publishing and consuming apart, as RabbitMQ advises: a connection blocked by a memory alarm
// stops publishing, not acking), lazy queue declarations, confirmed publishing with retries,
// message counts, and the local bookkeeping `stats()` and `join()` add to RabbitMQ's counts.
import { ConnectionError } from "../../errors.ts";
import { getLogger } from "../../util/log.ts";
import { pid } from "../../runtime/process.ts";
import type { Message } from "../../message.ts";
import { qName } from "../broker.ts";
import { AmqpClient, type AmqpClientEvent, type AmqpClientOptions } from "../amqp/client.ts";
import type { AmqpChannel } from "../amqp/channel.ts";
import { AmqpError, REPLY } from "../amqp/errors.ts";
import type { AmqpProperties } from "../amqp/_methods.ts";
import { declareQueues, type QueueSettings } from "./_queues.ts";

const logger = getLogger("dramatis.broker.RabbitmqBroker");

/** Publishes retried after a lost connection (each waits for the reconnection), as Dramatiq. */
const MAX_PUBLISH_ATTEMPTS = 6;

/** What a consumer reports to the core for `stats()` and `join()`. */
export interface LocalCounts {
  /** Canonical queue name. */
  readonly queue: string;
  /** True for a `q.DQ` consumer. */
  readonly delayed: boolean;
  /** Delivered by RabbitMQ, not handed out yet (or held until due, for `q.DQ`). */
  readonly waiting: number;
  /** Handed out by `receive`, not settled yet. */
  readonly handedOut: number;
}

export interface CoreOptions {
  url: string | string[];
  clientOptions: Omit<AmqpClientOptions, "url">;
  settings: QueueSettings;
}

/** Connections, declarations, publishing, counts. */
export class Core {
  readonly settings: QueueSettings;
  readonly consumers = new Set<LocalCounts & { drop(): void; close(): Promise<void> }>();
  readonly #options: CoreOptions;
  #pub: AmqpClient;
  #sub: AmqpClient | undefined;
  #publisher: AmqpChannel | undefined;
  #publisherOpening: Promise<AmqpChannel> | undefined;
  #control: Promise<AmqpChannel> | undefined;
  /** Queues declared on the server (canonical names), or being declared. */
  #declared = new Map<string, Promise<void> | true>();
  /** Publishes not confirmed yet, per canonical queue. */
  #publishing = new Map<string, number>();
  /** Bumped on any local change to a queue's messages (for join's consistency check). */
  #activity = new Map<string, number>();
  closing = false;

  constructor(options: CoreOptions) {
    this.#options = options;
    this.settings = options.settings;
    this.#pub = this.#client("publish"); // checks the URL and options now
  }

  #client(role: "publish" | "consume"): AmqpClient {
    const o = this.#options.clientOptions;
    const name = `${o.name ?? "dramatis"} (${role}, pid ${pid()})`;
    return new AmqpClient({
      ...o,
      url: this.#options.url,
      name,
      onEvent: (e) => {
        logEvent(role, e);
        o.onEvent?.(e);
      },
    });
  }

  /** The publishing connection (declares, publishes, counts, dead-letter browsing). */
  get pub(): AmqpClient {
    return this.#pub;
  }

  /** The consuming connection (one channel per consumer). */
  get sub(): AmqpClient {
    return this.#sub ??= this.#client("consume");
  }

  /** The confirm-mode channel all publishes go through. */
  publisher(): AmqpChannel | Promise<AmqpChannel> {
    if (this.#publisher && !this.#publisher.closed) return this.#publisher;
    return this.#publisherOpening ??= this.pub.channel({ confirm: true }).then((ch) => {
      this.#publisherOpening = undefined;
      return this.#publisher = ch;
    }, (e) => {
      this.#publisherOpening = undefined;
      throw e;
    });
  }

  /** The channel for declarations and counts (a 406 closes it; it opens again by itself). */
  control(): Promise<AmqpChannel> {
    return this.#control ??= this.pub.channel().then((ch) => ch, (e) => {
      this.#control = undefined;
      throw e;
    });
  }

  /** Declares `q`, `q.DQ` and `q.XQ` once (undefined when done already). */
  ensure(q: string): Promise<void> | undefined {
    const state = this.#declared.get(q);
    if (state === true) return undefined;
    if (state) return state;
    const p = this.control().then((ch) => declareQueues(ch, q, this.settings)).then(() => {
      this.#declared.set(q, true);
    }, (e) => {
      this.#declared.delete(q);
      throw e;
    });
    this.#declared.set(q, p);
    return p;
  }

  /** Forgets that `q` was declared (it was deleted): the next use declares it again. */
  forget(q: string): void {
    if (this.#declared.get(q) === true) this.#declared.delete(q);
  }

  /** Ready-message counts of `q`, `q.DQ`, `q.XQ` (a re-declare, as Dramatiq counts). */
  async counts(q: string): Promise<[number, number, number]> {
    const counts = await declareQueues(await this.control(), q, this.settings);
    this.#declared.set(q, true);
    return counts;
  }

  touch(q: string): void {
    this.#activity.set(q, (this.#activity.get(q) ?? 0) + 1);
  }

  activity(q: string): number {
    return this.#activity.get(q) ?? 0;
  }

  publishing(q: string): number {
    return this.#publishing.get(q) ?? 0;
  }

  /**
   * Publishes `body` to `routingKey` (persistent, mandatory) and resolves once RabbitMQ
   * confirmed it. A message returned because its queue is gone makes the broker declare the
   * queue again and publish once more; a publish cut off by a lost connection is published
   * again once reconnected (so it may be stored twice: delivery is at least once).
   */
  publish(
    routingKey: string,
    body: string | Uint8Array,
    properties: AmqpProperties,
  ): Promise<void> {
    const q = qName(routingKey);
    this.#publishing.set(q, this.publishing(q) + 1);
    const done = () => {
      this.#publishing.set(q, this.publishing(q) - 1);
      this.touch(q);
    };
    return this.#publish(routingKey, q, body, properties, 1).then(done, (e) => {
      done();
      throw e;
    });
  }

  #publish(
    routingKey: string,
    q: string,
    body: string | Uint8Array,
    properties: AmqpProperties,
    attempt: number,
  ): Promise<void> {
    const ready = this.ensure(q);
    const ch = this.publisher();
    const go = (ch: AmqpChannel) =>
      ch.publish(routingKey, body, { properties, mandatory: true }).catch((e) => {
        if (this.closing || attempt >= MAX_PUBLISH_ATTEMPTS) throw e;
        if (e instanceof AmqpError && e.code === REPLY.NO_ROUTE) {
          logger.warning(`Queue ${routingKey} does not exist (deleted?): declaring it again.`);
          this.forget(q);
        } else if (!(e instanceof ConnectionError)) {
          throw e;
        } else {
          logger.debug(`Publishing to ${routingKey} again after a lost connection: ${e.message}`);
        }
        return this.#publish(routingKey, q, body, properties, attempt + 1);
      });
    if (ready === undefined && !(ch instanceof Promise)) return go(ch);
    return Promise.all([ready, ch]).then(([, ch]) => go(ch));
  }

  /** Closes the connections (consumers first). */
  async close(): Promise<void> {
    this.closing = true;
    for (const c of [...this.consumers]) await c.close();
    await Promise.all([this.#sub?.close(), this.#pub.close()]);
  }
}

let lastEventLog = "";
function logEvent(role: string, e: AmqpClientEvent): void {
  const line = (() => {
    switch (e.type) {
      case "disconnect":
        return `Lost the ${role} connection to RabbitMQ at ${e.address}: ${e.error.message}`;
      case "reconnect":
        return `Reconnected the ${role} connection to RabbitMQ at ${e.address}.`;
      case "give-up":
        return `Gave up on the ${role} connection to RabbitMQ: ${e.error.message}`;
      case "blocked":
        return `RabbitMQ at ${e.address} blocks publishing (${e.reason}: a memory or disk ` +
          `alarm); sends wait until it clears.`;
      case "unblocked":
        return `RabbitMQ at ${e.address} accepts messages again.`;
      case "channel-error":
        // A declaration refused over its arguments becomes its own, clearer error.
        if (/inequivalent arg/.test(e.error.message)) return undefined;
        return `A ${role} channel failed: ${e.error.message}`;
      default:
        return undefined; // reconnecting: the disconnect was logged
    }
  })();
  if (line === undefined || line === lastEventLog) return;
  lastEventLog = line;
  if (e.type === "reconnect" || e.type === "unblocked") logger.info(line);
  else if (e.type === "give-up") logger.error(line);
  else logger.warning(line);
}

/** `broker_priority` of a message, as Dramatiq reads it (options first, then the actor's). */
export function brokerPriority(message: Message, actorDefault: unknown): number | undefined {
  const p = message.options.broker_priority ?? actorDefault;
  if (p === undefined || p === null) return undefined;
  if (typeof p !== "number" || !Number.isInteger(p) || p < 0 || p > 255) {
    throw new TypeError(
      `Message ${message.messageId}: broker_priority must be an integer from 0 to 255 ` +
        `(higher is delivered first), got ${JSON.stringify(p)}.`,
    );
  }
  return p;
}
