/**
 * `RedisBroker`: queues in Redis, wire-compatible with Python Dramatiq's Redis broker (same keys,
 * same JSON, same script semantics), so TypeScript and Python producers and workers can share
 * queues in both directions. See docs/redis.md for the design and what it does better than
 * Dramatiq (no polling, deterministic recovery of dead workers, exactly-once delay moves).
 *
 * @example
 * ```ts
 * import { RedisBroker } from "./broker.ts";
 * import { actor } from "../../actor.ts";
 * import { Worker } from "../../worker/worker.ts";
 *
 * const broker = new RedisBroker({ url: "redis://127.0.0.1:6379/0" });
 * const hello = actor((name: string) => console.log(`hello ${name}`), {
 *   actorName: "hello",
 *   broker,
 * });
 * await hello.send("ada");
 * const worker = new Worker(broker);
 * await worker.start();
 * await broker.join("default");
 * await worker.stop();
 * await broker.close();
 * ```
 * @module
 */
import { oldestReady } from "./_oldest.ts";
import {
  Broker,
  type ConsumeOptions,
  type Consumer,
  dqName,
  type JoinOptions,
  qName,
  type QueueStats,
  validateQueueName,
} from "../broker.ts";
import { QueueJoinTimeout, QueueNotFound } from "../../errors.ts";
import type { JsonValue, Message } from "../../message.ts";
import { sleep } from "../../util/async.ts";
import { getLogger } from "../../util/log.ts";
import type { RedisClient } from "./client.ts";
import { keepDecodable } from "../_undecodable.ts";
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
import { RedisOps } from "./_ops.ts";
import { uniqueOf } from "../_unique.ts";
import { Core } from "./_core.ts";
import { deadLetterError, readDead, revive } from "./_dead.ts";
import { DelayConsumer, RedisConsumer } from "./_consumer.ts";
import {
  positive,
  type RedisBrokerOptions,
  redisBrokerOptionsFromUrl,
  type RedisReceipt,
} from "./_broker_options.ts";
import { encodeWire, keyedRid, MOVE_MARK, str } from "./_wire.ts";

export { type RedisBrokerOptions, redisBrokerOptionsFromUrl, type RedisReceipt };

const logger = getLogger("dramatis.broker.RedisBroker");
/** The "stats" script's reply: LLEN and HLEN of the queue, then of its delay queue, dead count. */
type Stats = [number, number, number, number, number];
const SEVEN_DAYS = 7 * 24 * 3600 * 1000;
/**
 * A broker that keeps queues in Redis, wire-compatible with Python Dramatiq's `RedisBroker`:
 * the same keys under `namespace`, the same JSON messages, the same effect of every operation.
 * Needs Redis 6.2 or later; Redis Cluster is not supported.
 *
 * - Delivery is at least once. A message is in flight from `receive` until `ack` / `nack` /
 *   `requeue`; a worker that stops heartbeating for `heartbeatTimeout` ms has its messages
 *   delivered again, within that timeout plus a few seconds.
 * - An idle consumer blocks on the queue (no polling) and wakes within a millisecond of an
 *   enqueue, from dramatis or Python producers alike.
 * - `join(queue, { failFast })` defaults `failFast` to false, like the FileBroker.
 *
 * @example
 * ```ts
 * import { RedisBroker } from "./broker.ts";
 * import { Message } from "../../message.ts";
 *
 * await using broker = new RedisBroker({ url: "redis://127.0.0.1:6379/0", namespace: "demo" });
 * broker.declareQueue("emails");
 * await broker.enqueue(new Message({ queueName: "emails", actorName: "send", args: [1] }));
 * console.log(await broker.stats("emails")); // { queueName: "emails", ready: 1, ... }
 * await broker.flushAll();
 * ```
 */
export class RedisBroker extends Broker {
  /** The key prefix (`ns` in `ns:queue`). */
  readonly namespace: string;
  /** This broker's id (a UUID4): its ack sets are `ns:__acks__.<id>.<queue>`. */
  readonly brokerId: string;
  /** Heartbeat timeout in ms. */
  readonly heartbeatTimeout: number;
  /** Dead-letter TTL in ms. */
  readonly deadMessageTtl: number;
  /** Heartbeat period in ms. */
  readonly heartbeatInterval: number;
  /** Maintenance period in ms. */
  readonly maintenanceInterval: number;
  /** Delayed messages one delay-queue consumer may hold. */
  readonly delayPrefetch: number;
  #core: Core;
  #ops: RedisOps;

  /** Creates the broker. It connects on first use (or `connect()`). */
  constructor(options: RedisBrokerOptions = {}) {
    super(options);
    const ns = options.namespace ?? "dramatiq";
    if (typeof ns !== "string" || ns === "" || /[*?[\]\\\s]/.test(ns)) {
      throw new TypeError(
        `RedisBroker: invalid namespace ${JSON.stringify(ns)}: use a non-empty name without ` +
          `spaces or the glob characters * ? [ ] \\.`,
      );
    }
    this.namespace = ns;
    this.heartbeatTimeout = positive("heartbeatTimeout", options.heartbeatTimeout, 60_000);
    this.deadMessageTtl = positive("deadMessageTtl", options.deadMessageTtl, SEVEN_DAYS);
    const period = Math.max(10, Math.min(5_000, this.heartbeatTimeout / 12));
    this.heartbeatInterval = positive("heartbeatInterval", options.heartbeatInterval, period);
    this.maintenanceInterval = positive("maintenanceInterval", options.maintenanceInterval, period);
    this.delayPrefetch = Math.floor(positive("delayPrefetch", options.delayPrefetch, 8000));
    this.#core = new Core(this, options, ns);
    this.brokerId = this.#core.id;
    const core = this.#core;
    this.#ops = new RedisOps({
      ns,
      client: core.client,
      commandTimeout: core.commandTimeout,
      heartbeatTimeout: this.heartbeatTimeout,
      ready: () => core.ready(),
      newBlockingClient: () => core.newBlockingClient(),
      declaredQueues: () => [...this.queues],
      listQueues: () => this.listQueues(),
      encode: encodeWire,
      enqueue: (m) => this.enqueue(m),
    });
    core.isPaused = (q) => this.#ops.isPaused(q);
  }

  /** The client the broker sends its commands on. */
  get client(): RedisClient {
    return this.#core.client;
  }

  /**
   * Connects now and checks the server (Redis 6.2+). Rejects with one `ConnectionError` naming
   * the server and the cause (refused, unknown host, wrong password, ...). Optional: every
   * operation connects on first use.
   */
  async connect(): Promise<void> {
    await this.#core.ready();
  }

  /**
   * Stores the message on its queue (`q`, or `q.DQ` when delayed) with a fresh
   * `redis_message_id`, in one script call (batched with concurrent enqueues). A due delayed
   * message coming back from a worker is moved from `q.DQ` to `q` atomically instead.
   */
  protected _enqueue(message: Message): Promise<void | Message> {
    const from = message.options[MOVE_MARK];
    const queue = message.queueName;
    if (typeof from !== "string" || queue.endsWith(".DQ")) {
      const unique = this.#ops.uniqueSend(message);
      if (unique) return unique;
    }
    // A unique message's copy keeps a random id (its holder record names it; see _unique.ts).
    const { rid, payload } = encodeWire(
      message,
      uniqueOf(message) ? crypto.randomUUID() : keyedRid(message),
    );
    if (typeof from === "string" && !queue.endsWith(".DQ")) {
      const move = this.#ops.uniqueMove(message, dqName(queue), from, rid, payload) ??
        this.#core.run("move", dqName(queue), [from, rid, payload]);
      return move.then((moved) => {
        if (!moved) {
          logger.debug(`Delayed message ${message.messageId} was already moved or flushed.`);
        }
      });
    }
    return this.#core.enqueues.add(queue, [rid, payload]);
  }

  /** A consumer of `queueName` (`q` or `q.DQ`); the queue must be declared. */
  consume(queueName: string, _options?: ConsumeOptions): Consumer {
    const q = qName(queueName);
    if (!this.queues.has(q) || (queueName !== q && queueName !== dqName(q))) {
      throw new QueueNotFound(queueName);
    }
    if (this.closed) {
      throw new TypeError("This RedisBroker is closed: create a new one to consume.");
    }
    const consumer = queueName === q
      ? new RedisConsumer(this.#core, queueName)
      : new DelayConsumer(this.#core, queueName, this.delayPrefetch);
    this.#core.consumers.add(consumer);
    this.#core.startTimers();
    return consumer;
  }

  /**
   * Waits until `queueName` and its delay queue hold no message (ready, delayed or in flight,
   * on any worker). `failFast` (default false) rejects when a message of the queue is
   * dead-lettered while waiting.
   */
  async join(queueName: string, options: JoinOptions = {}): Promise<void> {
    const q = checked(queueName);
    const start = Date.now();
    const deadline = options.timeout === undefined ? Infinity : start + options.timeout;
    let pause = 1;
    for (;;) {
      const [, hlen, , dqhlen, dead] = await this.#core.run("stats", q) as Stats;
      if (options.failFast && dead > 0) {
        const [letter] = await readDead(this.#core, q, 1, start - 1);
        if (letter) throw deadLetterError(q, letter);
      }
      if (hlen + dqhlen === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new QueueJoinTimeout(q);
      if (this.closed) throw new TypeError("This RedisBroker was closed while joining.");
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, 50);
    }
  }

  /**
   * Drops the ready messages of `queueName` and every message of its delay queue (messages in
   * flight stay, and can still be acked).
   */
  async flush(queueName: string): Promise<void> {
    await this.#core.run("flush", checked(queueName));
  }

  /** Flushes every declared queue and deletes its dead letters. */
  override async flushAll(): Promise<void> {
    for (const q of this.queues) {
      await this.flush(q);
      await this.purgeDeadLetters(q);
    }
  }

  /** Queue names (canonical) that have keys under this namespace, declared here or not. */
  override async listQueues(): Promise<string[]> {
    const prefix = `${this.namespace}:`;
    const found = new Set<string>();
    let cursor = "0";
    do {
      const [next, keys] = await this.#core.client.send(
        ["SCAN", cursor, "MATCH", `${prefix}*`, "COUNT", 1000],
        { timeout: this.#core.commandTimeout },
      ) as [string, string[]];
      cursor = str(next);
      for (const raw of keys) {
        let name = str(raw).slice(prefix.length);
        if (name.startsWith("__acks__.") || name === "__heartbeats__") continue;
        if (name.startsWith("__dramatis__.")) continue; // the operations' keys
        if (name.endsWith(".msgs")) name = name.slice(0, -5);
        found.add(qName(name));
      }
    } while (cursor !== "0");
    return [...found].sort();
  }

  /** When the oldest ready message of `queueName` was enqueued (ms), null when none is ready. */
  async oldestReadyTimestamp(queueName: string): Promise<number | null> {
    const q = checked(queueName);
    await this.#core.ready();
    return await oldestReady(this.client, this.namespace, q);
  }

  /** Counters of `queueName`, counting every worker's in-flight messages. */
  async stats(queueName: string): Promise<QueueStats> {
    const q = checked(queueName);
    const [llen, hlen, , dqhlen, dead] = await this.#core.run("stats", q) as Stats;
    return {
      queueName: q,
      ready: llen,
      delayed: dqhlen,
      inFlight: Math.max(0, hlen - llen),
      dead,
    };
  }

  /** The dead letters of `queueName`, oldest first, as they were when they failed. */
  async deadLetters(queueName: string, options: { limit?: number } = {}): Promise<Message[]> {
    const limit = options.limit ?? -1;
    return (await readDead(this.#core, checked(queueName), limit)).map((d) => d.message);
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
      (await readDead(this.#core, q, -1)).filter((d) => !ids || ids.has(d.message.messageId)),
      (d) => d.message,
    );
    return await revive(this.#core, q, letters);
  }

  /** Deletes the dead letters of `queueName`. Resolves with how many were deleted. */
  async purgeDeadLetters(queueName: string): Promise<number> {
    return await this.#core.run("purge_dead", checked(queueName)) as number;
  }

  /**
   * Runs maintenance now: recovers the unacked messages of every worker silent for longer than
   * `heartbeatTimeout` (all their queues) and drops expired dead letters of the queues this
   * broker consumes. Consumers do this every `maintenanceInterval` ms on their own. Resolves
   * with how many messages were recovered.
   */
  maintain(): Promise<number> {
    return this.#core.maintain();
  }

  // ---- Operations (broker/ops.ts; broker/redis/_ops.ts) ----

  /** The RedisBroker has every operation. */
  override get capabilities(): BrokerCapabilities {
    return ALL_CAPABILITIES;
  }

  /** Cancels a message: a queued or delayed one is removed; a running one is marked. */
  override cancel(messageId: string): Promise<CancelOutcome> {
    return this.#ops.cancel(messageId);
  }

  /** Which of `messageIds` carry a cancel mark (one MGET). */
  override cancelled(messageIds: readonly string[]): Promise<Set<string>> {
    return this.#ops.cancelled(messageIds);
  }

  /** Stores the progress of a message (kept an hour). */
  override setProgress(messageId: string, value: JsonValue): Promise<void> {
    return this.#ops.setProgress(messageId, value);
  }

  /** The last progress of a message, or null. */
  override getProgress(messageId: string): Promise<ProgressRecord | null> {
    return this.#ops.getProgress(messageId);
  }

  /** Pauses a queue for every dramatis consumer (Python workers do not know of it). */
  override pauseQueue(queueName: string): Promise<void> {
    return this.#ops.pauseQueue(queueName);
  }

  /** Resumes a paused queue. */
  override resumeQueue(queueName: string): Promise<void> {
    return this.#ops.resumeQueue(queueName);
  }

  /** The paused queues. */
  override pausedQueues(): Promise<Set<string>> {
    return this.#ops.pausedQueues();
  }

  /**
   * Enqueues `message` for `tick` of schedule `name` unless that tick (or a later one) was: the
   * claim and the push are one script call, so a crash cannot lose or double the tick (a unique
   * message is claimed, then sent: see `RedisOps.enqueueTick`).
   */
  override async enqueueTick(name: string, tick: number, message: Message): Promise<boolean> {
    if (this.closed) {
      throw new TypeError(
        "broker.enqueueTick(): this broker is closed; create a new one to enqueue.",
      );
    }
    const q = qName(message.queueName);
    if (!this.queues.has(q)) throw new QueueNotFound(q);
    if (message.queueName !== q) message = message.copy({ queueName: q });
    if (uniqueOf(message)) return this.#ops.enqueueTick(name, tick, message);
    const before = this.emitBefore("enqueue", message, undefined);
    if (before) await before;
    const done = await this.#ops.claimTick(name, tick, q, encodeWire(message));
    const after = done ? this.emitAfter("enqueue", message, undefined) : undefined;
    if (after) await after;
    return done;
  }

  /** The last tick per schedule. */
  override lastTicks(): Promise<Map<string, number>> {
    return this.#ops.lastTicks();
  }

  /** Pauses a schedule for every process (a hash field: it survives restarts). */
  override pauseSchedule(name: string): Promise<void> {
    return this.#ops.setSchedulePaused(name, true);
  }

  /** Resumes a paused schedule. */
  override resumeSchedule(name: string): Promise<void> {
    return this.#ops.setSchedulePaused(name, false);
  }

  /** The schedules paused or resumed. */
  override schedulePauses(): Promise<Map<string, SchedulePause>> {
    return this.#ops.schedulePauses();
  }

  /** Stores a worker's record for `ttl` ms. */
  override publishWorker(record: WorkerRecord, ttl: number): Promise<void> {
    return this.#ops.publishWorker(record, ttl);
  }

  /** The live workers, Python Dramatiq ones (from its heartbeat set) included. */
  override workers(): Promise<WorkerRecord[]> {
    return this.#ops.workers();
  }

  /** Removes a worker's record. */
  override removeWorker(workerId: string): Promise<void> {
    return this.#ops.removeWorker(workerId);
  }

  /** Appends events to the namespace's event stream. */
  override publishEvents(events: readonly BrokerEvent[]): Promise<void> {
    return this.#ops.publishEvents(events);
  }

  /** The events appended from now on by every process (with `past`: the kept ones first). */
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
    return this.#ops.browse(queueName, state, options);
  }

  /** A message by id, wherever it is, or null. */
  override findMessage(messageId: string): Promise<BrowseEntry | null> {
    return this.#ops.findMessage(messageId);
  }

  /** Deletes waiting messages (ready, delayed or dead) by id. */
  override deleteMessages(messageIds: readonly string[]): Promise<number> {
    return this.#ops.deleteMessages(messageIds);
  }

  /** Moves waiting messages to `queueName`, ready now. */
  override moveMessages(messageIds: readonly string[], queueName: string): Promise<number> {
    return this.#ops.moveMessages(messageIds, queueName);
  }

  /** Makes delayed messages ready now. */
  override runNow(messageIds: readonly string[]): Promise<number> {
    return this.#ops.runNow(messageIds);
  }

  /**
   * Stops consuming, waits for pending writes, hands every message this broker fetched but
   * nobody settled back to its queue (so it need not wait for the heartbeat timeout), and
   * closes the connections.
   */
  override async close(): Promise<void> {
    if (this.closed) return;
    await super.close();
    const core = this.#core;
    core.closing = true;
    core.stopTimers();
    this.#ops.close();
    for (const c of [...core.consumers]) await c.close();
    await Promise.all([core.enqueues.drain(), core.acks.drain()]);
    const unsettled: RedisReceipt[] = [];
    for (const map of core.held.values()) unsettled.push(...map.values());
    try {
      if (unsettled.length > 0) await core.requeue(unsettled);
      if (core.fetchedFrom.size > 0) await core.run("leave", "", [...core.fetchedFrom]);
    } catch (e) {
      logger.warning(
        `Could not hand ${unsettled.length} unacked message(s) back on close (${
          (e as Error).message
        }); they are recovered after the heartbeat timeout.`,
      );
    }
    if (core.ownsClient) await core.client.close();
  }
}

function checked(queueName: string): string {
  const q = qName(queueName);
  validateQueueName(q);
  return q;
}
