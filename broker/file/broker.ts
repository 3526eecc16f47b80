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
import { keepDecodable } from "../_undecodable.ts";
import type { JsonValue, Message } from "../../message.ts";
import {
  ALL_CAPABILITIES,
  type BrokerCapabilities,
  type BrokerEvent,
  type BrowseEntry,
  type BrowseOptions,
  type BrowsePage,
  type BrowseState,
  type CancelOutcome,
  type ProgressRecord,
  type SchedulePause,
  type WorkerRecord,
} from "../ops.ts";
import { type Durability, Engine, type FileReceipt } from "./_engine.ts";
import { accessModes, type FileAccess } from "../../runtime/fs.ts";
import { FileOps } from "./_ops.ts";
import { oldestReady } from "./_oldest.ts";
import { uniqueOf } from "../_unique.ts";

export type { Durability } from "./_engine.ts";
export type { FileAccess } from "../../runtime/fs.ts";

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
   * A consumer that is alive but stops renewing its lease (its event loop is blocked) for this
   * long, in ms, has its messages delivered to another consumer. Default 30_000. A consumer whose
   * process died (or, on Deno, whose Web Worker was terminated) loses them at once: its liveness
   * lock is free (see docs/file-broker.md).
   */
  leaseTimeout?: number;
  /** How long dead letters are kept, in ms. Default 7 days. */
  deadMessageTtl?: number;
  /** Size in bytes past which a segment file is sealed and a new one started. Default 8 MiB. */
  segmentSize?: number;
  /**
   * Who may use the queues: `"owner"` (default; the directory is created 0700 and its files
   * 0600, so other local users cannot read the messages), `"group"` (0770 and 0660: processes of
   * several users of the directory's group share them) or `"group-read"` (0750 and 0640: the
   * group may only read the files, e.g. a backup).
   */
  access?: FileAccess;
}

const SEVEN_DAYS = 7 * 24 * 3600 * 1000;
/** Every operation, and due delayed messages are run in place (`delaysUntilDue`). */
const FILE_CAPABILITIES: BrokerCapabilities = Object.freeze({
  ...ALL_CAPABILITIES,
  delaysUntilDue: true,
});

/** Runs `fn`, turning a synchronous throw into a rejected promise. */
function settle<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}

function checkedAccess(access: FileAccess | undefined): FileAccess {
  try {
    accessModes(access);
  } catch (e) {
    throw new TypeError(`FileBroker: ${(e as Error).message}`);
  }
  return access ?? "owner";
}

/** The directory option, without trailing slashes; an empty one is refused (it would mean `/`). */
function checkedDir(dir: string | undefined): string {
  if (dir === undefined) return "./.dramatis";
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(
      `FileBroker: dir must be a non-empty path, got ${JSON.stringify(dir)}: pass a directory ` +
        `such as "./.dramatis", or leave dir out for that default.`,
    );
  }
  return dir.replace(/\/+$/, "") || "/";
}

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
  #ops: FileOps;

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
    this.dir = checkedDir(options.dir);
    this.durability = durability;
    this.leaseTimeout = positive("leaseTimeout", options.leaseTimeout, 30_000);
    this.#engine = new Engine({
      dir: this.dir,
      durability,
      flushInterval: positive("flushInterval", options.flushInterval, 10),
      leaseTimeout: this.leaseTimeout,
      deadMessageTtl: positive("deadMessageTtl", options.deadMessageTtl, SEVEN_DAYS),
      segmentSize: positive("segmentSize", options.segmentSize, 8 * 1024 * 1024),
      access: checkedAccess(options.access),
    });
    this.#ops = new FileOps(this.#engine);
  }

  /** The message's priority: its option, else its actor's, else 0 (decided by the sender). */
  #priority(message: Message): number {
    const opt = message.options.priority;
    return typeof opt === "number" ? opt : (this.actors.get(message.actorName)?.priority ?? 0);
  }

  /**
   * Appends the message to the log; resolves per `durability`. A message with a `unique_key` is
   * decided under the lock (see docs/file-broker.md, "Operations").
   */
  protected _enqueue(message: Message): Promise<void | Message> {
    const priority = this.#priority(message);
    if (uniqueOf(message)) return this.#ops.enqueueUnique(message, priority);
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

  /** When the oldest ready message of `queueName` was enqueued (ms), null when none is ready. */
  oldestReadyTimestamp(queueName: string): Promise<number | null> {
    return Promise.resolve().then(() => oldestReady(this.#engine, checked(queueName)));
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
    const letters = keepDecodable(
      q,
      this.#engine.deadLetters(q).filter((l) => !ids || ids.has(l.message.messageId)),
      (l) => l.message,
    );
    const prepared: { id: number; message: Message; priority: number }[] = [];
    for (const l of letters) {
      const message = l.message.copy({ queueName: q });
      const before = this.emitBefore("enqueue", message, undefined);
      if (before) await before;
      prepared.push({ id: l.id, message, priority: this.#priority(message) });
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
      return this.#engine.compact();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  // ---- Operations (broker/ops.ts; docs/file-broker.md, "Operations"; code in _ops.ts) ----

  /** Every operation: the FileBroker has them all. */
  override get capabilities(): BrokerCapabilities {
    return FILE_CAPABILITIES;
  }

  /** Cancels a message, atomically across processes (finds it by a scan of the log). */
  override cancel(messageId: string): Promise<CancelOutcome> {
    return settle(() => this.#ops.cancel(messageId));
  }

  /** Which of `messageIds` have a cancel mark (cheap: reads only what was appended since). */
  override cancelled(messageIds: readonly string[]): Promise<Set<string>> {
    return settle(() => this.#ops.cancelled(messageIds));
  }

  /** Stores the progress of a message (kept an hour after its last write). */
  override setProgress(messageId: string, value: JsonValue): Promise<void> {
    return settle(() => this.#ops.setProgress(messageId, value));
  }

  /** The last progress stored for a message, or null. */
  override getProgress(messageId: string): Promise<ProgressRecord | null> {
    return settle(() => this.#ops.getProgress(messageId));
  }

  /** Pauses a queue in every process (a record in the log: it survives restarts). */
  override pauseQueue(queueName: string): Promise<void> {
    return settle(() => this.#ops.setPaused(checked(queueName), true));
  }

  /** Resumes a paused queue. */
  override resumeQueue(queueName: string): Promise<void> {
    return settle(() => this.#ops.setPaused(checked(queueName), false));
  }

  /** The paused queues. */
  override pausedQueues(): Promise<Set<string>> {
    return settle(() => this.#ops.pausedQueues());
  }

  /** Enqueues a schedule's message for `tick` once across processes (one locked append). */
  override async enqueueTick(name: string, tick: number, message: Message): Promise<boolean> {
    const before = this.emitBefore("enqueue", message, undefined);
    if (before) await before;
    const done = await this.#ops.enqueueTick(name, tick, message, this.#priority(message));
    const after = done ? this.emitAfter("enqueue", message, undefined) : undefined;
    if (after) await after;
    return done;
  }

  /** The last tick enqueued per schedule. */
  override lastTicks(): Promise<Map<string, number>> {
    return settle(() => this.#ops.lastTicks());
  }

  /** Pauses a schedule in every process (a record in the log: it survives restarts). */
  override pauseSchedule(name: string): Promise<void> {
    return settle(() => this.#ops.setSchedulePaused(name, true));
  }

  /** Resumes a paused schedule. */
  override resumeSchedule(name: string): Promise<void> {
    return settle(() => this.#ops.setSchedulePaused(name, false));
  }

  /** The schedules paused or resumed. */
  override schedulePauses(): Promise<Map<string, SchedulePause>> {
    return settle(() => this.#ops.schedulePauses());
  }

  /** Writes the worker's file in `<dir>/workers/`. */
  override publishWorker(record: WorkerRecord, ttl: number): Promise<void> {
    return settle(() => this.#ops.publishWorker(record, ttl));
  }

  /** The workers whose last heartbeat is within their ttl. */
  override workers(): Promise<WorkerRecord[]> {
    return settle(() => this.#ops.workers());
  }

  /** Deletes a worker's file. */
  override removeWorker(workerId: string): Promise<void> {
    return settle(() => this.#ops.removeWorker(workerId));
  }

  /** Appends events to `<dir>/events/`. */
  override publishEvents(events: readonly BrokerEvent[]): Promise<void> {
    return settle(() => this.#ops.publishEvents(events));
  }

  /** The events published from now on by every process (polled every 50 ms; `past`: kept first). */
  override events(
    options: { signal?: AbortSignal; past?: boolean } = {},
  ): AsyncIterable<BrokerEvent> {
    return this.#ops.events(options.signal, options.past);
  }

  /** One page of a queue's messages in `state`, newest first. */
  override browse(
    queueName: string,
    state: BrowseState,
    options?: BrowseOptions,
  ): Promise<BrowsePage> {
    return settle(() => this.#ops.browse(checked(queueName), state, options));
  }

  /** A message by id, wherever it is, or null. */
  override findMessage(messageId: string): Promise<BrowseEntry | null> {
    return settle(() => this.#ops.findMessage(messageId));
  }

  /** Deletes ready, delayed or dead messages by id. */
  override deleteMessages(messageIds: readonly string[]): Promise<number> {
    return settle(() => this.#ops.deleteMessages(messageIds));
  }

  /** Moves ready, delayed or dead messages to `queueName` (ready there). */
  override moveMessages(messageIds: readonly string[], queueName: string): Promise<number> {
    return settle(() => this.#ops.moveMessages(messageIds, checked(queueName)));
  }

  /** Makes delayed messages ready now. */
  override runNow(messageIds: readonly string[]): Promise<number> {
    return settle(() => this.#ops.runNow(messageIds));
  }

  /**
   * Writes what is buffered (and waits for its sync), hands messages it delivered but that were
   * never acked back to other consumers, and releases files, watchers and timers.
   */
  override async close(): Promise<void> {
    await super.close();
    this.#ops.close();
    await this.#engine.close();
  }
}

/**
 * The options a `file:` URL stands for: `file:///abs/path`, `file://./rel/path` or `file:rel`,
 * with optional query parameters `durability`, `flushInterval`, `leaseTimeout`,
 * `deadMessageTtl`, `segmentSize` and `access` (for example
 * `file://./.dramatis?durability=batch&access=group`).
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
      case "access":
        options.access = value as FileAccess;
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
            `use durability, flushInterval, leaseTimeout, deadMessageTtl, segmentSize or access.`,
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
