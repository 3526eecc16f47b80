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
  type BrokerOptions,
  type ConsumeOptions,
  type Consumer,
  dqName,
  type JoinOptions,
  MessageProxy,
  qName,
  type QueueStats,
  type RawDelivery,
  type ReceiveOptions,
  toRawDelivery,
  validateQueueName,
} from "../broker.ts";
import { BrokerError, ConnectionError, QueueJoinTimeout, QueueNotFound } from "../../errors.ts";
import { findNonJson, type JsonObject, type JsonValue, Message } from "../../message.ts";
import { Heap } from "../../_queue.ts";
import { sleep } from "../../_async.ts";
import { formatError, getLogger } from "../../_log.ts";
import {
  type Arg,
  RedisClient,
  type RedisClientOptions,
  RedisError,
  type RedisScript,
  type Reply,
} from "./client.ts";
import { DISPATCH_LUA } from "./_dispatch.lua.ts";
import { keepDecodable, undecodableLetter } from "../_undecodable.ts";
import type {
  BrokerCapabilities,
  BrokerEvent,
  BrowseEntry,
  BrowseOptions,
  BrowsePage,
  BrowseState,
  CancelOutcome,
  ProgressRecord,
  WorkerRecord,
} from "../ops.ts";
import { RedisOps } from "./_ops.ts";
import { dramatisBrokerId } from "./_registry.ts";

/**
 * Options of `new RedisBroker()`.
 *
 * @example
 * ```ts
 * import type { RedisBrokerOptions } from "./broker.ts";
 * const o: RedisBrokerOptions = { url: "redis://:secret@127.0.0.1:6379/0", namespace: "app" };
 * ```
 */
export interface RedisBrokerOptions extends BrokerOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://...`. Default `redis://127.0.0.1:6379/0`. */
  url?: string;
  /**
   * Use this client instead of opening one from `url` (the broker does not close it). Blocking
   * waits run on connections from its `duplicate()`.
   */
  client?: RedisClient;
  /** More client settings (TLS, reconnection, ...), merged over `url`. */
  clientOptions?: Omit<RedisClientOptions, "url">;
  /** Key prefix. Default `"dramatiq"`, as in Dramatiq: use the same value on every client. */
  namespace?: string;
  /**
   * A worker whose last heartbeat is older than this, in ms, is dead: its unacked messages go
   * back to their queues. Default 60_000, as in Dramatiq; use one value for the whole fleet.
   */
  heartbeatTimeout?: number;
  /** How long dead letters are kept, in ms. Default 7 days, as in Dramatiq. */
  deadMessageTtl?: number;
  /** How often a broker that consumes sends a heartbeat, in ms. Default: heartbeatTimeout / 12, at most 5_000. */
  heartbeatInterval?: number;
  /**
   * How often a broker that consumes runs maintenance (recovery of dead workers' messages,
   * dead-letter expiry), in ms. Default: heartbeatTimeout / 12, at most 5_000.
   */
  maintenanceInterval?: number;
  /** How many delayed messages one delay-queue consumer may hold until due. Default 8000. */
  delayPrefetch?: number;
  /** Limit for one Redis command, in ms. Default 10_000. */
  commandTimeout?: number;
}

/**
 * What identifies one delivery of a RedisBroker message (`MessageProxy.receipt`). A plain,
 * structured-cloneable object: any RedisBroker on the same Redis and namespace can ack, nack
 * or requeue with it, for example the CLI's worker process on behalf of a Web Worker.
 *
 * @example
 * ```ts
 * import type { RedisReceipt } from "./broker.ts";
 * const r: RedisReceipt = { rid: "0f6c…", owner: "7c1e…", queue: "default" };
 * ```
 */
export interface RedisReceipt {
  /** The `redis_message_id` of the stored copy (the list element and hash field). */
  rid: string;
  /** The id of the broker that fetched it (its ack set is `ns:__acks__.<owner>.<queue>`). */
  owner: string;
  /** The queue it was fetched from (`q` or `q.DQ`). */
  queue: string;
}

const logger = getLogger("dramatis.broker.RedisBroker");
/** The "stats" script's reply: LLEN and HLEN of the queue, then of its delay queue, dead count. */
type Stats = [number, number, number, number, number];
const SEVEN_DAYS = 7 * 24 * 3600 * 1000;
const ALL_CAPABILITIES: BrokerCapabilities = Object.freeze({
  cancel: true,
  unique: true,
  progress: true,
  pause: true,
  schedules: true,
  workers: true,
  events: true,
  browse: true,
});
/** Most messages taken or written by one script call. */
const BATCH = 1000;
/**
 * Set on a due delayed message handed to a worker: the id of its `q.DQ` entry. When the worker
 * enqueues the message on `q`, the broker moves it in one atomic step instead (see `move`).
 * Never written to Redis.
 */
const MOVE_MARK = "dramatis_dq_rid";
const WIRE_KEYS = [
  "queue_name",
  "actor_name",
  "args",
  "kwargs",
  "options",
  "message_id",
  "message_timestamp",
];
const WIRE_KEY_SET: ReadonlySet<string> = new Set(WIRE_KEYS);
const textDecoder = new TextDecoder();

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`RedisBroker: ${name} must be a positive number of ms, got ${value}.`);
  }
  return value;
}

function str(reply: Reply): string {
  return reply instanceof Uint8Array ? textDecoder.decode(reply) : String(reply);
}

function isReceipt(r: unknown): r is RedisReceipt {
  return r !== null && typeof r === "object" && typeof (r as RedisReceipt).rid === "string" &&
    typeof (r as RedisReceipt).owner === "string" && typeof (r as RedisReceipt).queue === "string";
}

function receiptOf(m: MessageProxy | RawDelivery): RedisReceipt {
  const r = m.receipt;
  if (!isReceipt(r)) {
    const id = m instanceof MessageProxy ? `Message ${m.messageId}` : "A message";
    throw new TypeError(
      `${id} was not delivered by a RedisBroker consumer (its receipt is ${
        JSON.stringify(r)
      }): ack, nack and requeue need the MessageProxy that receive() returned.`,
    );
  }
  return r;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const SNAKE = /^[a-z0-9_]+$/;

/**
 * Checks a wire message before it is enqueued (Python's consumer crashes on malformed ones,
 * and strands its batch-mates: hazard H1). Throws a TypeError saying what to fix.
 */
function checkWire(o: Record<string, unknown>, where: () => string): void {
  const fail = (what: string): never => {
    throw new TypeError(`Cannot enqueue ${where()}: ${what}`);
  };
  for (const key of Object.keys(o)) {
    if (!WIRE_KEY_SET.has(key)) {
      fail(
        `unknown top-level key ${JSON.stringify(key)}. A message has exactly the keys ` +
          `${WIRE_KEYS.join(", ")}; Python Dramatiq cannot decode anything else.`,
      );
    }
  }
  if (typeof o.queue_name !== "string" || o.queue_name === "") fail("queue_name must be a name.");
  if (typeof o.actor_name !== "string" || o.actor_name === "") fail("actor_name must be a name.");
  if (!Array.isArray(o.args)) fail("args must be an array.");
  if (!isPlainObject(o.kwargs)) fail("kwargs must be a plain object.");
  if (!isPlainObject(o.options)) fail("options must be a plain object.");
  if (typeof o.message_id !== "string" || o.message_id === "") fail("message_id must be a string.");
  if (typeof o.message_timestamp !== "number" || !Number.isFinite(o.message_timestamp)) {
    fail("message_timestamp must be a number of ms.");
  }
  const options = o.options as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!SNAKE.test(key)) {
      fail(
        `option ${JSON.stringify(key)} is not snake_case. Options travel under their wire names ` +
          `(maxRetries -> max_retries), which Python Dramatiq reads.`,
      );
    }
  }
  for (const part of ["args", "kwargs", "options"] as const) {
    const bad = findNonJson(o[part]);
    if (bad) fail(`${part}${bad.path} is ${bad.problem}, which is not JSON.`);
  }
  const target = options.pipe_target;
  if (target !== undefined && target !== null) {
    if (!isPlainObject(target)) fail("options.pipe_target must be a message object.");
    checkWire(target as Record<string, unknown>, () => `${where()} (its pipe_target)`);
  }
  const callbacks = options.group_completion_callbacks;
  if (callbacks !== undefined && callbacks !== null) {
    if (!Array.isArray(callbacks)) fail("options.group_completion_callbacks must be an array.");
    for (const c of callbacks as unknown[]) {
      if (!isPlainObject(c)) fail("options.group_completion_callbacks must hold message objects.");
      checkWire(c as Record<string, unknown>, () => `${where()} (a group completion callback)`);
    }
  }
}

/** True for a connection failure that retrying cannot fix (credentials, ACL, database). */
function isPermanent(e: unknown): boolean {
  return e instanceof ConnectionError && e.cause instanceof RedisError;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: items added while a call for their key is in flight go out together in the
 * next call. An item added while none is in flight goes out at once (`eager`, for lowest
 * latency) or at the end of the current microtask queue (collecting what the same tick adds).
 * One call in flight per key, so a key's calls run in order.
 */
class GroupCommit<T> {
  #pending = new Map<string, { items: T[]; waiters: Waiter[] }>();
  #busy = new Set<string>();
  #idle: (() => void)[] = [];

  constructor(
    private readonly send: (key: string, items: T[]) => Promise<unknown>,
    private readonly max: number,
    private readonly eager: boolean,
  ) {}

  add(key: string, item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.eager && !this.#busy.has(key)) {
        this.#busy.add(key);
        this.#call(key, [item], [{ resolve, reject }]);
        return;
      }
      let batch = this.#pending.get(key);
      if (!batch) this.#pending.set(key, batch = { items: [], waiters: [] });
      batch.items.push(item);
      batch.waiters.push({ resolve, reject });
      if (!this.#busy.has(key)) {
        this.#busy.add(key);
        queueMicrotask(() => this.#next(key));
      }
    });
  }

  #call(key: string, items: T[], waiters: Waiter[]): void {
    let sent: Promise<unknown>;
    try {
      sent = this.send(key, items);
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then(
      () => {
        for (const w of waiters) w.resolve();
        this.#next(key);
      },
      (e) => {
        for (const w of waiters) w.reject(e);
        this.#next(key);
      },
    );
  }

  #next(key: string): void {
    const batch = this.#pending.get(key);
    if (!batch) {
      this.#busy.delete(key);
      if (this.#busy.size === 0) { for (const w of this.#idle.splice(0)) w(); }
      return;
    }
    let { items, waiters } = batch;
    if (items.length > this.max) {
      batch.items = items.slice(this.max);
      batch.waiters = waiters.slice(this.max);
      items = items.slice(0, this.max);
      waiters = waiters.slice(0, this.max);
    } else {
      this.#pending.delete(key);
    }
    this.#call(key, items, waiters);
  }

  /** Resolves once nothing is pending or in flight. */
  drain(): Promise<void> {
    if (this.#busy.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}

/** The broker's state and Redis operations, shared with its consumers. */
class Core {
  readonly id: string = dramatisBrokerId();
  /** Whether canonical queue `q` is paused (the operations' hook; consumers of it get nothing). */
  isPaused: (q: string) => boolean | Promise<boolean> = () => false;
  readonly client: RedisClient;
  readonly ownsClient: boolean;
  readonly script: RedisScript;
  /** The script's `KEYS`: the namespace. */
  readonly keys: readonly string[];
  readonly commandTimeout: number;
  /** Unsettled deliveries this broker fetched, by queue (`q` or `q.DQ`), then by id. */
  readonly held = new Map<string, Map<string, RedisReceipt>>();
  /** Queues this broker ever fetched from (for `leave`). */
  readonly fetchedFrom = new Set<string>();
  readonly consumers = new Set<RedisConsumer>();
  closing = false;
  #blockingOptions: RedisClientOptions | undefined;
  #ready: Promise<void> | undefined;
  #isReady = false;
  #fatal: unknown;
  /** Fetch calls in flight, by queue. */
  #fetching = new Map<string, number>();
  /** Queues where a fetch failed: its ids may sit in the ack set unknown to us. */
  #reclaim = new Set<string>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #beating = false;
  #maintaining = false;
  #outage = false;
  readonly enqueues: GroupCommit<[string, string]>;
  readonly acks: GroupCommit<string>;

  constructor(readonly broker: RedisBroker, options: RedisBrokerOptions, readonly ns: string) {
    this.commandTimeout = positive("commandTimeout", options.commandTimeout, 10_000);
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      this.#blockingOptions = {
        ...options.clientOptions,
        url: options.url ?? "redis://127.0.0.1:6379/0",
      };
      this.client = new RedisClient(this.#blockingOptions);
      this.ownsClient = true;
    }
    this.script = this.client.script(DISPATCH_LUA);
    this.keys = [ns];
    this.enqueues = new GroupCommit<[string, string]>(
      (queue, items) => {
        if (items.length === 1) return this.run("enqueue", queue, items[0]);
        const args: string[] = [];
        for (const [rid, payload] of items) args.push(rid, payload);
        return this.run("enqueue", queue, args);
      },
      BATCH,
      true,
    );
    this.acks = new GroupCommit<string>(
      (key, rids) => {
        const at = key.indexOf("\n");
        return this.settle("ack", key.slice(at + 1), [key.slice(0, at), ...rids]);
      },
      BATCH,
      false,
    );
  }

  /** Connects and checks the server once; a permanent failure is remembered. */
  ready(): Promise<void> | undefined {
    if (this.#isReady) return undefined;
    if (this.#fatal !== undefined) return Promise.reject(this.#fatal);
    return this.#ready ??= this.#init().then(
      () => {
        this.#isReady = true;
      },
      (e) => {
        this.#ready = undefined;
        if (isPermanent(e) || e instanceof BrokerError && !(e instanceof ConnectionError)) {
          this.#fatal = e;
        }
        throw e;
      },
    );
  }

  async #init(): Promise<void> {
    await this.client.connect();
    let info: string;
    try {
      info = str(await this.client.send(["INFO", "server"], { timeout: this.commandTimeout }));
    } catch (e) {
      if (e instanceof RedisError) return; // INFO renamed or denied by an ACL: skip the check
      throw e;
    }
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && (Number(version[1]) < 6 || (version[1] === "6" && Number(version[2]) < 2))) {
      throw new BrokerError(
        `RedisBroker needs Redis 6.2 or later (for BLMOVE and LPOP with a count); the server at ` +
          `${this.client.address} runs ${version[1]}.${version[2]}. Upgrade Redis.`,
      );
    }
  }

  /** Runs a dispatch-script command. */
  run(
    command: string,
    queue: string,
    args: readonly Arg[] = [],
    options: { bytes?: boolean; timeout?: number } = {},
  ): Promise<Reply> {
    const call = () => {
      const argv: Arg[] = [command, Date.now(), queue, this.id];
      for (let i = 0; i < args.length; i++) argv.push(args[i]!);
      return this.script.run(this.keys, argv, {
        bytes: options.bytes,
        timeout: options.timeout ?? this.commandTimeout,
      });
    };
    const ready = this.ready();
    return ready ? ready.then(call) : call();
  }

  /**
   * Runs an ack, nack or requeue: idempotent, so retried on connection errors until Redis
   * answers (as Dramatiq does), unless the broker is closing.
   */
  async settle(command: string, queue: string, args: readonly Arg[]): Promise<void> {
    for (let attempt = 0;; attempt++) {
      try {
        await this.run(command, queue, args);
        return;
      } catch (e) {
        if (!(e instanceof ConnectionError) || this.closing || isPermanent(e)) throw e;
        const wait = Math.min(5_000, 100 * 2 ** attempt);
        if (attempt === 0) {
          logger.warning(
            `Could not ${command} on ${queue} (${e.message}); retrying until Redis answers.`,
          );
        }
        await sleep(wait);
      }
    }
  }

  #heldIn(queue: string): Map<string, RedisReceipt> {
    let map = this.held.get(queue);
    if (!map) this.held.set(queue, map = new Map());
    return map;
  }

  untrack(r: RedisReceipt): void {
    if (r.owner === this.id) this.held.get(r.queue)?.delete(r.rid);
  }

  /** Ids of this broker being acked or nacked (no longer held, not settled yet), by queue. */
  readonly #settling = new Map<string, Set<string>>();

  /**
   * Untracks `r` and keeps it known until `settle` (its ack or nack) is done, so that a reclaim
   * meanwhile (after a lost fetch reply) does not put a message back whose ack is on its way.
   */
  settling(r: RedisReceipt, settle: () => Promise<void>): Promise<void> {
    this.untrack(r);
    if (r.owner !== this.id) return settle();
    let set = this.#settling.get(r.queue);
    if (!set) this.#settling.set(r.queue, set = new Set());
    set.add(r.rid);
    const p = settle();
    const done = () => void set.delete(r.rid);
    p.then(done, done);
    return p;
  }

  /** Takes up to `n` messages off `queue` into this broker's ack set, decoded. */
  fetch(queue: string, n: number): Promise<MessageProxy[]> {
    return this.#fetch(queue, n, (receipt, data) => this.#decode(receipt, data));
  }

  /** Takes up to `n` messages off `queue` into this broker's ack set, undecoded. */
  fetchRaw(queue: string, n: number): Promise<RawDelivery[]> {
    return this.#fetch(queue, n, (receipt, data) => ({
      receipt,
      data,
      decode: () => this.#decode(receipt, data),
    }));
  }

  /** Fetches, and turns each message into what `make` returns, if anything. */
  async #fetch<T>(
    queue: string,
    n: number,
    make: (receipt: RedisReceipt, data: Uint8Array) => T | undefined,
  ): Promise<T[]> {
    if (this.#reclaim.has(queue) && !this.#fetching.get(queue)) {
      const known = [...this.#heldIn(queue).keys(), ...this.#settling.get(queue) ?? []];
      const back = await this.run("reclaim", queue, known);
      this.#reclaim.delete(queue);
      if (back) logger.info(`Put back ${back} message(s) of ${queue} fetched by a lost reply.`);
    }
    this.fetchedFrom.add(queue);
    this.#fetching.set(queue, (this.#fetching.get(queue) ?? 0) + 1);
    let reply: Reply[];
    try {
      reply = await this.run("fetch", queue, [Math.min(n, BATCH)], { bytes: true }) as Reply[];
    } catch (e) {
      if (e instanceof ConnectionError) this.#reclaim.add(queue);
      throw e;
    } finally {
      this.#fetching.set(queue, this.#fetching.get(queue)! - 1);
    }
    const held = this.#heldIn(queue);
    const out: T[] = [];
    for (let i = 0; i < reply.length; i += 2) {
      const receipt: RedisReceipt = { rid: str(reply[i]!), owner: this.id, queue };
      held.set(receipt.rid, receipt);
      const x = make(receipt, reply[i + 1] as Uint8Array);
      if (x !== undefined) out.push(x);
    }
    return out;
  }

  /** Decodes a fetched message; one that cannot be decoded is dead-lettered instead. */
  #decode(receipt: RedisReceipt, data: Uint8Array): MessageProxy | undefined {
    try {
      const m = MessageProxy.decode(data) as MessageProxy;
      m.receipt = receipt;
      return m;
    } catch (e) {
      logger.error(
        `Message ${receipt.rid} on ${receipt.queue} cannot be decoded (${(e as Error).message}); ` +
          `moving it to the dead-letter queue ${qName(receipt.queue)}.XQ.`,
      );
      this.held.get(receipt.queue)?.delete(receipt.rid);
      this.settle("nack", receipt.queue, [this.id, receipt.rid, ""]).catch((err) =>
        logger.error(`Could not dead-letter message ${receipt.rid}: ${formatError(err)}`)
      );
      return undefined;
    }
  }

  async requeue(receipts: RedisReceipt[]): Promise<void> {
    const groups = new Map<string, RedisReceipt[]>();
    for (const r of receipts) {
      this.untrack(r);
      const key = `${r.owner}\n${r.queue}`;
      let list = groups.get(key);
      if (!list) groups.set(key, list = []);
      list.push(r);
    }
    for (const list of groups.values()) {
      for (let i = 0; i < list.length; i += BATCH) {
        const part = list.slice(i, i + BATCH);
        await this.settle("requeue", part[0]!.queue, [part[0]!.owner, ...part.map((r) => r.rid)]);
      }
    }
  }

  newBlockingClient(): Promise<RedisClient> {
    const base = this.#blockingOptions;
    return base ? Promise.resolve(new RedisClient(base)) : this.client.duplicate();
  }

  /** Starts the heartbeat and maintenance timers (once a consumer exists). */
  startTimers(): void {
    if (this.#timers.length > 0 || this.closing) return;
    const b = this.broker;
    this.#timers.push(setInterval(() => this.#beat(), b.heartbeatInterval));
    this.#timers.push(setInterval(() => void this.maintain(), b.maintenanceInterval));
    void this.maintain();
  }

  #beat(): void {
    if (this.#beating || this.#maintaining) return;
    this.#beating = true;
    this.run("heartbeat", "").then(
      () => this.#recovered(),
      (e) => this.#failed("send a heartbeat", e),
    ).finally(() => this.#beating = false);
  }

  /** Recovers dead brokers' messages and prunes old dead letters. Resolves with the count recovered. */
  async maintain(): Promise<number> {
    if (this.#maintaining) return 0;
    this.#maintaining = true;
    try {
      const queues = new Set<string>();
      for (const c of this.consumers) queues.add(qName(c.queueName));
      const b = this.broker;
      const [recovered, pruned] = await this.run("maintain", "", [
        b.heartbeatTimeout,
        b.deadMessageTtl,
        ...queues,
      ]) as [number, number];
      this.#recovered();
      if (recovered > 0) {
        logger.warning(
          `Recovered ${recovered} unacked message(s) of worker(s) silent for over ` +
            `${b.heartbeatTimeout} ms; they will be delivered again.`,
        );
      }
      if (pruned > 0) logger.info(`Dropped ${pruned} dead letter(s) older than their TTL.`);
      return recovered;
    } catch (e) {
      this.#failed("run maintenance", e);
      return 0;
    } finally {
      this.#maintaining = false;
    }
  }

  #failed(what: string, e: unknown): void {
    if (this.closing) return;
    if (!this.#outage) {
      this.#outage = true;
      logger.warning(`Could not ${what}: ${(e as Error).message ?? e}`);
    }
  }

  #recovered(): void {
    if (this.#outage) {
      this.#outage = false;
      logger.info("Redis answers again.");
    }
  }

  stopTimers(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }
}

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
    const { rid, payload } = encodeWire(message);
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
        const [letter] = await this.#dead(q, 1, start - 1);
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

  async #dead(
    q: string,
    limit: number,
    since = 0,
  ): Promise<{ rid: string; message: Message; at: number }[]> {
    const reply = await this.#core.run("dead", q, [limit, since], { bytes: true }) as Reply[];
    const out: { rid: string; message: Message; at: number }[] = [];
    for (let i = 0; i < reply.length; i += 3) {
      const rid = str(reply[i]!),
        data = reply[i + 1] as Uint8Array,
        at = Number(str(reply[i + 2]!));
      let message: Message;
      try {
        if (data.length === 0) throw new Error(`its payload is missing from ${q}.XQ.msgs`);
        message = Message.decode(data);
      } catch (e) {
        // Counted by stats(): listed too, saying why it cannot be run.
        const where = { queueName: q, messageId: rid, deadAt: at };
        message = undecodableLetter(data, (e as Error).message, where);
      }
      out.push({ rid, message, at });
    }
    return out;
  }

  /** The dead letters of `queueName`, oldest first, as they were when they failed. */
  async deadLetters(queueName: string, options: { limit?: number } = {}): Promise<Message[]> {
    const limit = options.limit ?? -1;
    return (await this.#dead(checked(queueName), limit)).map((d) => d.message);
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
      (await this.#dead(q, -1)).filter((d) => !ids || ids.has(d.message.messageId)),
      (d) => d.message,
    );
    let moved = 0;
    for (let i = 0; i < letters.length; i += 300) {
      const part = letters.slice(i, i + 300);
      const args: string[] = [];
      const messages: Message[] = [];
      for (const letter of part) {
        const options: JsonObject = { ...letter.message.options };
        delete options.eta;
        const message = letter.message.copy({ queueName: q, options });
        const before = this.emitBefore("enqueue", message, undefined);
        if (before) await before;
        const rid = crypto.randomUUID();
        const dict = message.asDict() as unknown as Record<string, unknown>;
        dict.options = { ...options, redis_message_id: rid };
        args.push(letter.rid, rid, JSON.stringify(dict));
        messages.push(message);
      }
      moved += await this.#core.run("revive", q, args) as number;
      for (const message of messages) {
        const after = this.emitAfter("enqueue", message, undefined);
        if (after) await after;
      }
    }
    return moved;
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

  /** Enqueues `message` for `tick` of schedule `name` unless that tick (or a later one) was. */
  override enqueueTick(name: string, tick: number, message: Message): Promise<boolean> {
    return this.#ops.enqueueTick(name, tick, message);
  }

  /** The last tick per schedule. */
  override lastTicks(): Promise<Map<string, number>> {
    return this.#ops.lastTicks();
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

  /** The events appended from now on by every process, until `signal` aborts. */
  override events(options: { signal?: AbortSignal } = {}): AsyncIterable<BrokerEvent> {
    return this.#ops.events(options.signal);
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

/** The payload of `message` under a fresh `redis_message_id` (checked for Python's decoder). */
function encodeWire(message: Message): { rid: string; payload: string } {
  const dict = message.asDict() as unknown as Record<string, unknown>;
  checkWire(dict, () => `message ${message.messageId} (actor ${message.actorName})`);
  const options: JsonObject = { ...message.options };
  delete options[MOVE_MARK];
  const rid = crypto.randomUUID();
  options.redis_message_id = rid;
  dict.options = options;
  return { rid, payload: JSON.stringify(dict) };
}

function checked(queueName: string): string {
  const q = qName(queueName);
  validateQueueName(q);
  return q;
}

function deadLetterError(q: string, letter: { message: Message }): Error {
  const m = letter.message;
  const tb = typeof m.options.traceback === "string" ? `\n${m.options.traceback}` : "";
  return new Error(
    `A message of queue ${q} failed and was dead-lettered: ${m.actorName} message ${m.messageId}${tb}`,
  );
}

/** Consumes `q`: fetches in batches, and blocks on the list while it is empty. */
class RedisConsumer implements Consumer {
  protected closed = false;
  protected readonly closer = new AbortController();
  #blocking: Promise<RedisClient> | undefined;
  #wait: Promise<void> | undefined;

  constructor(protected readonly core: Core, readonly queueName: string) {}

  receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]> {
    return this.#receive(max, options, (n) => this.core.fetch(this.queueName, n));
  }

  receiveRaw(max: number, options: ReceiveOptions): Promise<RawDelivery[]> {
    return this.#receive(max, options, (n) => this.core.fetchRaw(this.queueName, n));
  }

  async #receive<T extends { receipt: unknown }>(
    max: number,
    options: ReceiveOptions,
    fetch: (n: number) => Promise<T[]>,
  ): Promise<T[]> {
    if (this.closed || max <= 0) return [];
    const deadline = Date.now() + options.timeout;
    for (;;) {
      const paused = this.core.isPaused(this.queueName);
      if (paused === true || (paused !== false && await paused)) {
        // A paused queue delivers nothing: look again a little later, until the timeout.
        const left = deadline - Date.now();
        if (this.closed || options.signal?.aborted || left <= 0) return [];
        await raceSignals(undefined, Math.min(left, 100), options.signal, this.closer.signal);
        continue;
      }
      const batch = await fetch(max);
      if (batch.length > 0) {
        if (this.closed) {
          await this.core.requeue(batch.map((m) => m.receipt as RedisReceipt));
          return [];
        }
        return batch;
      }
      if (this.closed || options.signal?.aborted) return [];
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await this.waitForData(left, options.signal);
    }
  }

  /**
   * Waits up to `ms` for the queue's list to be non-empty: `BLMOVE q q RIGHT RIGHT` on a
   * connection of its own puts the last element back where it was, so nothing changes, but it
   * returns as soon as any producer (dramatis or Python) pushes. One wait at a time per
   * consumer; a receive that gave up early leaves it running for the next one.
   */
  protected async waitForData(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (!this.#wait) {
      const key = `${this.core.ns}:${this.queueName}`;
      const seconds = Math.max(0.01, ms / 1000).toFixed(3);
      this.#blocking ??= this.core.newBlockingClient();
      this.#wait = this.#blocking
        .then((c) => c.send(["BLMOVE", key, key, "RIGHT", "RIGHT", seconds], { timeout: 0 }))
        .then(
          () => {},
          async (e) => {
            if (this.closed) return;
            logger.debug(`Blocking wait on ${key} failed: ${(e as Error).message}`);
            await sleep(Math.min(ms, 200), this.closer.signal);
          },
        )
        .finally(() => this.#wait = undefined);
    }
    await raceSignals(this.#wait, ms, signal, this.closer.signal);
  }

  ack(message: MessageProxy | RawDelivery): Promise<void> {
    const r = receiptOf(message);
    return this.core.settling(r, () => this.core.acks.add(`${r.owner}\n${r.queue}`, r.rid));
  }

  nack(message: MessageProxy): Promise<void> {
    const r = receiptOf(message);
    const options: JsonObject = { ...message.options };
    delete options[MOVE_MARK];
    const payload = JSON.stringify({ ...message.asDict(), options });
    return this.core.settling(
      r,
      () => this.core.settle("nack", r.queue, [r.owner, r.rid, payload]),
    );
  }

  requeue(messages: (MessageProxy | RawDelivery)[]): Promise<void> {
    return this.core.requeue(messages.map(receiptOf));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closer.abort();
    this.core.consumers.delete(this);
    const blocking = this.#blocking;
    this.#blocking = undefined;
    if (blocking) await blocking.then((c) => c.close(), () => {});
    // Acks still retrying (Redis unreachable) must not hold up a worker's stop for ever.
    await raceSignals(this.core.acks.drain(), this.core.commandTimeout);
  }
}

interface Held {
  message: MessageProxy;
  eta: number;
}

/**
 * Consumes `q.DQ` the way Dramatiq does: fetches delayed messages into its ack set and holds
 * them until due (they stay in Redis, in the ack set, and come back if this process dies);
 * `receive` returns only due ones. The worker then enqueues each on `q`, which the broker turns
 * into one atomic move.
 */
class DelayConsumer extends RedisConsumer {
  #held = new Heap<Held>((a, b) => a.eta < b.eta);

  constructor(core: Core, queueName: string, readonly holdLimit: number) {
    super(core, queueName);
  }

  /** Delayed messages are decoded here (their eta decides when they are handed out). */
  override async receiveRaw(max: number, options: ReceiveOptions): Promise<RawDelivery[]> {
    return (await this.receive(max, options)).map(toRawDelivery);
  }

  override async receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]> {
    if (this.closed || max <= 0) return [];
    const deadline = Date.now() + options.timeout;
    for (;;) {
      const room = this.holdLimit - this.#held.length;
      let drained = false;
      if (room > 0) {
        const want = Math.min(room, BATCH);
        const batch = await this.core.fetch(this.queueName, want);
        for (const message of batch) {
          const eta = message.options.eta;
          this.#held.push({ message, eta: typeof eta === "number" ? eta : 0 });
        }
        drained = batch.length < want;
      }
      if (this.closed) return [];
      const now = Date.now();
      const due: MessageProxy[] = [];
      while (due.length < max && this.#held.length > 0 && this.#held.peek()!.eta <= now + 1) {
        const m = this.#held.pop()!.message;
        m.options[MOVE_MARK] = (m.receipt as RedisReceipt).rid;
        due.push(m);
      }
      if (due.length > 0) return due;
      if (options.signal?.aborted) return [];
      if (room > 0 && !drained) continue; // more waiting in the list: take them first
      const left = deadline - now;
      if (left <= 0) return [];
      const head = this.#held.peek();
      const wait = Math.min(left, head ? Math.max(1, head.eta - now) : Infinity);
      if (room > 0) await this.waitForData(wait, options.signal);
      else await raceSignals(undefined, wait, options.signal, this.closer.signal);
    }
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    const held = this.#held.clear().map((h) => h.message.receipt as RedisReceipt);
    await super.close();
    if (held.length > 0) {
      try {
        await this.core.requeue(held);
      } catch (e) {
        logger.warning(
          `Could not hand ${held.length} delayed message(s) back to ${this.queueName} ` +
            `(${(e as Error).message}); they are recovered after the heartbeat timeout.`,
        );
      }
    }
  }
}

/** Resolves when `promise` settles, `ms` pass, or a signal aborts. */
function raceSignals(
  promise: Promise<void> | undefined,
  ms: number,
  ...signals: (AbortSignal | undefined)[]
): Promise<void> {
  return new Promise<void>((resolve) => {
    const live = signals.filter((s): s is AbortSignal => s !== undefined);
    if (live.some((s) => s.aborted)) return resolve();
    const timer = setTimeout(done, ms);
    for (const s of live) s.addEventListener("abort", done, { once: true });
    promise?.then(done, done);
    function done() {
      clearTimeout(timer);
      for (const s of live) s.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * The options a `redis://` or `rediss://` URL stands for. Query parameters set broker options:
 * `namespace`, `heartbeatTimeout`, `deadMessageTtl`, `heartbeatInterval`,
 * `maintenanceInterval`, `delayPrefetch`, `commandTimeout` (for example
 * `redis://localhost:6379/0?namespace=app`).
 *
 * @example
 * ```ts
 * import { redisBrokerOptionsFromUrl } from "./broker.ts";
 * console.log(redisBrokerOptionsFromUrl("redis://localhost/1?namespace=app"));
 * // { url: "redis://localhost/1", namespace: "app" }
 * ```
 */
export function redisBrokerOptionsFromUrl(url: string): RedisBrokerOptions {
  const at = url.indexOf("?");
  const options: RedisBrokerOptions = { url: at < 0 ? url : url.slice(0, at) };
  if (at < 0) return options;
  for (const [key, value] of new URLSearchParams(url.slice(at + 1))) {
    switch (key) {
      case "namespace":
        options.namespace = value;
        break;
      case "heartbeatTimeout":
      case "deadMessageTtl":
      case "heartbeatInterval":
      case "maintenanceInterval":
      case "delayPrefetch":
      case "commandTimeout":
        options[key] = Number(value);
        break;
      default:
        throw new TypeError(
          `Unknown RedisBroker URL parameter ${JSON.stringify(key)}: use namespace, ` +
            `heartbeatTimeout, deadMessageTtl, heartbeatInterval, maintenanceInterval, ` +
            `delayPrefetch or commandTimeout.`,
        );
    }
  }
  return options;
}
