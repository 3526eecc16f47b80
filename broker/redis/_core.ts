// The RedisBroker's state and its dispatch-script operations, shared with its consumers:
// readiness (the server check), fetch/settle/requeue, heartbeats and maintenance.
import { MessageProxy, qName, type RawDelivery } from "../broker.ts";
import { BrokerError, ConnectionError } from "../../errors.ts";
import { sleep } from "../../util/async.ts";
import { formatError, getLogger } from "../../util/log.ts";
import {
  type Arg,
  RedisClient,
  type RedisClientOptions,
  RedisError,
  type RedisScript,
  type Reply,
} from "./client.ts";
import { DISPATCH_LUA } from "./_dispatch.lua.ts";
import { dramatisBrokerId } from "./_registry.ts";
import type { RedisBroker } from "./broker.ts";
import type { RedisConsumer } from "./_consumer.ts";
import { positive, type RedisBrokerOptions, type RedisReceipt } from "./_broker_options.ts";
import { GroupCommit } from "./_group_commit.ts";
import { str } from "./_wire.ts";

const logger = getLogger("dramatis.broker.RedisBroker");
/** Most messages taken or written by one script call. */
export const BATCH = 1000;

/** True for a connection failure that retrying cannot fix (credentials, ACL, database). */
export function isPermanent(e: unknown): boolean {
  return e instanceof ConnectionError && e.cause instanceof RedisError;
}

/** The broker's state and Redis operations, shared with its consumers. */
export class Core {
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
