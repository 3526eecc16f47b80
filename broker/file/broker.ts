/**
 * `FileBroker`: the embedded broker, and the default one. Queues live in an append-only log in a
 * directory (`./.dramatis` by default) that any number of processes and Web Workers on one
 * machine share, on Deno and Bun. No server. See docs/file-broker.md for the design.
 *
 * @example
 * ```ts
 * import { FileBroker } from "./broker.ts";
 * import { actor } from "../../actor.ts";
 * import { Worker } from "../../worker/worker.ts";
 *
 * const broker = new FileBroker({ dir: await Deno.makeTempDir() });
 * const hello = actor((name: string) => console.log(`hello ${name}`), {
 *   actorName: "hello",
 *   broker,
 * });
 * await hello.send("ada");
 * const worker = new Worker(broker, { workerTimeout: 100 });
 * await worker.start();
 * await broker.join("default");
 * await worker.stop();
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
  type MessageProxy,
  qName,
  type QueueStats,
  type RawDelivery,
  type ReceiveOptions,
  validateQueueName,
} from "../broker.ts";
import { QueueNotFound } from "../../errors.ts";
import type { Message } from "../../message.ts";
import { type Durability, Engine, type FileReceipt } from "./_engine.ts";

export type { Durability } from "./_engine.ts";

/**
 * Options of `new FileBroker()`.
 *
 * @example
 * ```ts
 * import type { FileBrokerOptions } from "./broker.ts";
 * const o: FileBrokerOptions = { dir: "/var/lib/app/queues", durability: "batch" };
 * ```
 */
export interface FileBrokerOptions extends BrokerOptions {
  /** The directory holding the queues; created if missing. Default `./.dramatis`. */
  dir?: string;
  /**
   * When `send()` resolves: `"always"` (default) after `fdatasync`, so the message survives a
   * power loss; `"batch"` at once, with an `fdatasync` at most every `flushInterval` ms;
   * `"none"` at once, leaving write-back to the kernel.
   */
  durability?: Durability;
  /** `batch` mode: longest time between a write and its `fdatasync`, in ms. Default 10. */
  flushInterval?: number;
  /**
   * A consumer that stops renewing its lease (because its process died) for this long, in ms,
   * has its messages delivered to another consumer. Default 30_000.
   */
  leaseTimeout?: number;
  /** How long dead letters are kept, in ms. Default 7 days. */
  deadMessageTtl?: number;
  /** Size in bytes past which a segment file is sealed and a new one started. Default 8 MiB. */
  segmentSize?: number;
}

const SEVEN_DAYS = 7 * 24 * 3600 * 1000;

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`FileBroker: ${name} must be a positive number, got ${value}.`);
  }
  return value;
}

/**
 * The embedded, log-structured broker: durable, at-least-once, FIFO within a priority level,
 * shared by every process and Web Worker that opens the same directory.
 *
 * `join(queue, { failFast })` defaults `failFast` to false (a dead letter written by another
 * process is not an error of this one); with `failFast: true` it rejects with an Error describing
 * the first message dead-lettered while it waited.
 *
 * @example
 * ```ts
 * import { FileBroker } from "./broker.ts";
 * import { Message } from "../../message.ts";
 *
 * await using broker = new FileBroker({ dir: await Deno.makeTempDir() });
 * broker.declareQueue("emails");
 * await broker.enqueue(new Message({ queueName: "emails", actorName: "send", args: [1] }));
 * console.log(await broker.stats("emails")); // { queueName: "emails", ready: 1, ... }
 * ```
 */
export class FileBroker extends Broker {
  /** The directory holding the queues. */
  readonly dir: string;
  /** When `send()` resolves; see `FileBrokerOptions.durability`. */
  readonly durability: Durability;
  /** The lease timeout in ms. */
  readonly leaseTimeout: number;
  #engine: Engine;

  /** Creates the broker. The directory is opened on first use. */
  constructor(options: FileBrokerOptions = {}) {
    super(options);
    const durability = options.durability ?? "always";
    if (durability !== "always" && durability !== "batch" && durability !== "none") {
      throw new TypeError(
        `FileBroker: durability must be "always", "batch" or "none", got ${
          JSON.stringify(durability)
        }.`,
      );
    }
    this.dir = (options.dir ?? "./.dramatis").replace(/\/+$/, "") || "/";
    this.durability = durability;
    this.leaseTimeout = positive("leaseTimeout", options.leaseTimeout, 30_000);
    this.#engine = new Engine({
      dir: this.dir,
      durability,
      flushInterval: positive("flushInterval", options.flushInterval, 10),
      leaseTimeout: this.leaseTimeout,
      deadMessageTtl: positive("deadMessageTtl", options.deadMessageTtl, SEVEN_DAYS),
      segmentSize: positive("segmentSize", options.segmentSize, 8 * 1024 * 1024),
    });
  }

  /** Appends the message to the log; resolves per `durability`. */
  protected _enqueue(message: Message): Promise<void> {
    const opt = message.options.priority;
    const priority = typeof opt === "number"
      ? opt
      : (this.actors.get(message.actorName)?.priority ?? 0);
    const eta = typeof message.options.eta === "number" ? message.options.eta : 0;
    return this.#engine.enqueue(
      message.queueName,
      priority,
      eta,
      JSON.stringify(message.asDict()),
    );
  }

  /** A consumer of `queueName` (`q` or `q.DQ`); the queue must be declared. */
  consume(queueName: string, _options?: ConsumeOptions): Consumer {
    const q = qName(queueName);
    if (!this.queues.has(q) || (queueName !== q && queueName !== dqName(q))) {
      throw new QueueNotFound(queueName);
    }
    return new FileConsumer(this.#engine, queueName);
  }

  /**
   * Waits until `queueName` and its delay queue hold no ready, delayed or in-flight message,
   * counting every process that shares the directory. `failFast` defaults to false.
   */
  join(queueName: string, options: JoinOptions = {}): Promise<void> {
    const q = checked(queueName);
    try {
      return this.#engine.join(q, {
        timeout: options.timeout,
        failFast: options.failFast ?? false,
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Drops the ready and delayed messages of `queueName` (in-flight ones stay). */
  flush(queueName: string): Promise<void> {
    return this.#engine.flushQueue(checked(queueName));
  }

  /** Drops every ready and delayed message of every queue in the directory, and every dead letter. */
  override flushAll(): Promise<void> {
    return this.#engine.flushQueue(undefined);
  }

  /** The queues declared here and those the directory holds (any process's). */
  override listQueues(): Promise<string[]> {
    try {
      return Promise.resolve([...new Set([...this.queues, ...this.#engine.queueNames()])]);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The counters of `queueName`. Cheap: the records appended since the last call are read. */
  stats(queueName: string): Promise<QueueStats> {
    try {
      const q = checked(queueName);
      return Promise.resolve({ queueName: q, ...this.#engine.stats(q) });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The dead letters of `queueName`, oldest first, as they were when they failed. */
  deadLetters(queueName: string, options: { limit?: number } = {}): Promise<Message[]> {
    try {
      const list = this.#engine.deadLetters(checked(queueName), options.limit);
      return Promise.resolve(list.map((l) => l.message));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Moves dead letters (all, or those whose message ids are given) back to the end of their
   * queue. Resolves with how many moved.
   */
  async requeueDeadLetters(queueName: string, messageIds?: string[]): Promise<number> {
    const q = checked(queueName);
    const ids = messageIds && new Set(messageIds);
    const letters = this.#engine.deadLetters(q).filter((l) => !ids || ids.has(l.message.messageId));
    const prepared: { id: number; message: Message; priority: number }[] = [];
    for (const l of letters) {
      const message = l.message.copy({ queueName: q });
      const before = this.emitBefore("enqueue", message, undefined);
      if (before) await before;
      const opt = message.options.priority;
      const priority = typeof opt === "number"
        ? opt
        : (this.actors.get(message.actorName)?.priority ?? 0);
      prepared.push({ id: l.id, message, priority });
    }
    if (prepared.length === 0) return 0;
    const n = await this.#engine.requeueDead(q, prepared);
    for (const p of prepared) {
      const after = this.emitAfter("enqueue", p.message, undefined);
      if (after) await after;
    }
    return n;
  }

  /** Deletes the dead letters of `queueName`. Resolves with how many were deleted. */
  purgeDeadLetters(queueName: string): Promise<number> {
    try {
      return this.#engine.purge(checked(queueName));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Reclaims disk now instead of waiting for the periodic pass: deletes segments whose messages
   * are all settled (after copying the few live ones forward). Resolves with how many segment
   * files were deleted.
   */
  compact(): Promise<number> {
    try {
      return Promise.resolve(this.#engine.compact());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Writes what is buffered (and waits for its sync), hands messages it delivered but that were
   * never acked back to other consumers, and releases files, watchers and timers.
   */
  override async close(): Promise<void> {
    await super.close();
    await this.#engine.close();
  }
}

/**
 * The options a `file:` URL stands for: `file:///abs/path`, `file://./rel/path` or `file:rel`,
 * with optional query parameters `durability`, `flushInterval`, `leaseTimeout`,
 * `deadMessageTtl` and `segmentSize` (for example `file://./.dramatis?durability=batch`).
 *
 * @example
 * ```ts
 * import { fileBrokerOptionsFromUrl } from "./broker.ts";
 * console.log(fileBrokerOptionsFromUrl("file:///var/lib/app?durability=batch"));
 * // { dir: "/var/lib/app", durability: "batch" }
 * ```
 */
export function fileBrokerOptionsFromUrl(url: string): FileBrokerOptions {
  if (!/^file:/i.test(url)) {
    throw new TypeError(
      `Not a file: URL: ${JSON.stringify(url)}. Use file:///abs/path or file://./rel.`,
    );
  }
  let rest = url.slice(5);
  let query = "";
  const qAt = rest.indexOf("?");
  if (qAt >= 0) {
    query = rest.slice(qAt + 1);
    rest = rest.slice(0, qAt);
  }
  if (rest.startsWith("//")) {
    rest = rest.slice(2);
    if (rest.startsWith("localhost/")) rest = rest.slice(9);
  }
  const dir = decodeURIComponent(rest);
  if (dir === "") {
    throw new TypeError(
      `The file: URL ${
        JSON.stringify(url)
      } names no directory: use file:///abs/path or file://./rel.`,
    );
  }
  const options: FileBrokerOptions = { dir };
  for (const [key, value] of new URLSearchParams(query)) {
    switch (key) {
      case "durability":
        options.durability = value as Durability;
        break;
      case "flushInterval":
      case "leaseTimeout":
      case "deadMessageTtl":
      case "segmentSize":
        options[key] = Number(value);
        break;
      default:
        throw new TypeError(
          `Unknown FileBroker URL parameter ${JSON.stringify(key)} in ${JSON.stringify(url)}: ` +
            `use durability, flushInterval, leaseTimeout, deadMessageTtl or segmentSize.`,
        );
    }
  }
  return options;
}

function checked(queueName: string): string {
  const q = qName(queueName);
  validateQueueName(q);
  return q;
}

class FileConsumer implements Consumer {
  #closed = false;
  constructor(private readonly engine: Engine, private readonly queueName: string) {}

  receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]> {
    return this.engine.receive(this.queueName, max, {
      timeout: options.timeout,
      signal: options.signal,
      closed: () => this.#closed,
    });
  }

  receiveRaw(max: number, options: ReceiveOptions): Promise<RawDelivery[]> {
    return this.engine.receiveRaw(this.queueName, max, {
      timeout: options.timeout,
      signal: options.signal,
      closed: () => this.#closed,
    });
  }

  ack(message: MessageProxy | RawDelivery): void {
    this.#check();
    this.engine.ack(message.receipt as FileReceipt);
  }

  nack(message: MessageProxy): void {
    this.#check();
    this.engine.nack(message);
  }

  requeue(messages: (MessageProxy | RawDelivery)[]): void {
    this.#check();
    this.engine.requeue(messages.map((m) => m.receipt as FileReceipt));
  }

  close(): void {
    this.#closed = true;
    if (!this.engine.closed) this.engine.flush();
    this.engine.wake();
  }

  #check(): void {
    if (this.engine.closed) {
      throw new TypeError(
        "The FileBroker was closed: the message was handed back and will be delivered again.",
      );
    }
  }
}
