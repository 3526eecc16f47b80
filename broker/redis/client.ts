// RedisClient: a small, dependency-free Redis client for Deno and Bun: pipelining, RESP3 (with
// RESP2 fallback), AUTH/SELECT from a URL, TLS, automatic reconnection and cached Lua scripts.
// Its URL and options are in _client_options.ts, the connect step and handshake in _connect.ts
// (on runtime/net.ts's socket), the commands in flight and their time limits in _pipeline.ts.
import { ConnectionError } from "../../errors.ts";
import { Deque } from "../../util/queue.ts";
import { type Arg, PushReply, RedisError, type Reply, RespProtocolError } from "./_resp.ts";
import {
  parseRedisUrl,
  type RedisClientEvent,
  type RedisClientOptions,
  type RedisReconnectOptions,
  type RedisTlsOptions,
  type RedisUrlInfo,
  type ResolvedOptions,
  resolveOptions,
  type SendOptions,
} from "./_client_options.ts";
import {
  addressOf,
  backoff,
  type ConnHooks,
  fatalErrors,
  gaveUpError,
  lostError,
  openConn,
} from "./_connect.ts";
import {
  type Conn,
  Deadlines,
  defaultTimeout,
  expiredError,
  newPending,
  notSentError,
  type Pending,
  readReplies,
  settle,
  type Timer,
  Writer,
} from "./_pipeline.ts";
import { RedisScript, setSendWith } from "./_script.ts";

export { type Arg, PushReply, RedisError, type Reply, RespProtocolError };
export {
  parseRedisUrl,
  type RedisClientEvent,
  type RedisClientOptions,
  type RedisReconnectOptions,
  RedisScript,
  type RedisTlsOptions,
  type RedisUrlInfo,
  type SendOptions,
};

const IDLE = 0;
const CONNECTING = 1;
const READY = 2;
const RECONNECTING = 3;
const CLOSED = 4;

const noop = () => {};

/**
 * A Redis connection with pipelining and automatic reconnection.
 *
 * - Commands are pipelined: all commands issued in the same tick go out in one socket write,
 *   and replies are matched in order.
 * - A server error reply rejects with {@linkcode RedisError} (Redis's message, `code`).
 * - Connection problems reject with `ConnectionError`. A command that was in flight when the
 *   connection dropped rejects too, because it may or may not have run. Commands issued while
 *   reconnecting wait (up to `maxWait`) or fail fast, per `whileDisconnected`.
 * - The first `connect()` does not retry: it rejects with one clear error (refused, timeout,
 *   wrong password). Authentication failures are never retried.
 * - Blocking commands (`BLPOP`, `BRPOPLPUSH`, `BLMOVE`, `BZPOPMIN`, `XREAD BLOCK`, `WAIT`...)
 *   hold up all commands behind them on the connection: send them on a connection of their
 *   own from {@linkcode RedisClient.duplicate}. Their default time limit is their blocking
 *   time plus `commandTimeout` (none when they block for ever).
 * - Every command has a time limit (`commandTimeout`, 10 s by default): a server that stops
 *   answering fails it with a `ConnectionError` instead of leaving it waiting for ever.
 * - Pub/sub and `MONITOR` are not supported.
 *
 * @example
 * ```ts
 * import { RedisClient } from "./client.ts";
 * const redis = new RedisClient({ url: "redis://127.0.0.1:6379", commandTimeout: 5000 });
 * await redis.connect();
 * const [a, b] = await Promise.all([ // one socket write, two replies
 *   redis.send(["INCR", "counter"]),
 *   redis.send(["GET", "counter"]),
 * ]);
 * await redis.close();
 * ```
 */
export class RedisClient {
  readonly #options: ResolvedOptions;
  readonly #input: string | RedisClientOptions;
  readonly #onEvent: ((event: RedisClientEvent) => void) | undefined;
  readonly #onPush: ((push: PushReply) => void) | undefined;
  #state = IDLE;
  #conn: Conn | undefined;
  /** The connection being opened, if any. */
  #opening: Conn | undefined;
  #connecting: Promise<void> | undefined;
  /** Commands waiting for a connection. */
  #queue = new Deque<Pending>();
  /** Encodes commands and writes them, one socket write per tick, to the current connection. */
  readonly #out = new Writer(() => this.#conn);
  #protocol: 2 | 3 | undefined;
  #reconnectTimer: Timer | undefined;
  /** Why the client is closed (rejection reason for new commands). */
  #closedError: Error | undefined;
  #lastError: Error | undefined;
  #scripts = new Map<string, RedisScript>();
  /** The time limits of the commands (one timer for all). */
  readonly #deadlines = new Deadlines({
    pending: () => [this.#conn?.inflight ?? [], this.#queue],
    expire: (pending) => this.#expire(pending),
    closed: () => this.#state === CLOSED,
  });

  static {
    setSendWith((client, args, options, resolve, reject) =>
      client.#send(args, options, resolve, reject)
    );
  }

  /**
   * Creates a client (not connected yet; see {@linkcode RedisClient.connect}). Commands sent
   * before `connect()` start the connection and wait for it. Throws `TypeError` for a bad URL
   * or option.
   */
  constructor(options: string | RedisClientOptions = {}) {
    this.#input = options;
    this.#options = resolveOptions(options);
    if (typeof options !== "string") {
      this.#onEvent = options.onEvent;
      this.#onPush = options.onPush;
    }
    this.#replyHooks = { onPush: this.#onPush, drop: (conn, reason) => this.#drop(conn, reason) };
  }

  /**
   * Creates a client and connects it.
   *
   * @example
   * ```ts
   * import { RedisClient } from "./client.ts";
   * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
   * await redis.close();
   * ```
   */
  static async connect(options: string | RedisClientOptions = {}): Promise<RedisClient> {
    const client = new RedisClient(options);
    await client.connect();
    return client;
  }

  /** `host:port` of the server. */
  get address(): string {
    return addressOf(this.#options);
  }

  /** The database number it selects. */
  get db(): number {
    return this.#options.db;
  }

  /** True when it connects with TLS (`rediss://`). */
  get tls(): boolean {
    return this.#options.tls !== undefined;
  }

  /** The RESP version in use (2 or 3), once connected. */
  get protocol(): 2 | 3 | undefined {
    return this.#protocol;
  }

  /** True while connected and ready for commands. */
  get connected(): boolean {
    return this.#state === READY;
  }

  /**
   * Connects (TCP or TLS, then `HELLO`/`AUTH`, `SELECT`). Rejects with one `ConnectionError`
   * naming the server and the cause if that fails; it does not retry. Resolves at once if
   * already connected.
   */
  connect(): Promise<void> {
    if (this.#state === READY) return Promise.resolve();
    if (this.#state === CLOSED) return Promise.reject(this.#closedError);
    if (this.#connecting) return this.#connecting;
    if (this.#state === RECONNECTING) {
      return new Promise((resolve, reject) => {
        this.#dispatch(newPending(() => resolve(), reject, ["PING"], false, 0));
      });
    }
    this.#state = CONNECTING;
    const connecting = this.#open().then(
      (conn) => {
        this.#connecting = undefined;
        if (this.#state !== CONNECTING) {
          this.#drop(conn, this.#closedError ?? new ConnectionError("closed"));
          throw this.#closedError;
        }
        this.#ready(conn);
      },
      (error: Error) => {
        this.#connecting = undefined;
        if (this.#state === CONNECTING) this.#state = IDLE;
        this.#failQueue(error);
        throw error;
      },
    );
    this.#connecting = connecting;
    return connecting;
  }

  /**
   * Sends one command and resolves with its reply; rejects with {@linkcode RedisError} if
   * Redis answers with an error, or `ConnectionError`. The type parameter only casts the reply.
   *
   * @example
   * ```ts
   * import { RedisClient } from "./client.ts";
   * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
   * await redis.send(["SET", "k", new Uint8Array([0, 255])]);
   * const bytes = await redis.send<Uint8Array>(["GET", "k"], { bytes: true });
   * await redis.close();
   * ```
   */
  send<T extends Reply = Reply>(args: readonly Arg[], options?: SendOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#send(args, options, resolve as (reply: Reply) => void, reject);
    });
  }

  #send(
    args: readonly Arg[],
    options: SendOptions | undefined,
    resolve: (reply: Reply) => void,
    reject: (error: Error) => void,
  ): void {
    const timeout = options?.timeout ?? defaultTimeout(args, this.#options.commandTimeout);
    const pending = newPending(resolve, reject, args, options?.bytes ?? false, timeout);
    if (timeout > 0) {
      const deadline = performance.now() + timeout;
      pending.deadline = deadline;
      this.#deadlines.track(deadline);
    }
    this.#dispatch(pending);
  }

  #expire(pending: Pending): void {
    pending.done = true;
    if (pending.waitTimer !== undefined) clearTimeout(pending.waitTimer);
    pending.waitTimer = undefined;
    pending.reject(expiredError(pending, this.address, this.#lastError));
  }

  /**
   * Sends a command given as separate arguments: `command("SET", "k", "v")` is
   * `send(["SET", "k", "v"])`.
   *
   * @example
   * ```ts
   * import { RedisClient } from "./client.ts";
   * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
   * console.log(await redis.command("PING")); // "PONG"
   * await redis.close();
   * ```
   */
  command<T extends Reply = Reply>(...args: Arg[]): Promise<T> {
    return this.send<T>(args);
  }

  /**
   * Sends several commands in one write and resolves with their replies in order. A command
   * that Redis answers with an error gives a {@linkcode RedisError} in its slot instead of
   * rejecting; a connection failure rejects. (This is not a transaction: other clients'
   * commands may run in between. Wrap the commands in `MULTI`/`EXEC`, or use a script, for
   * atomicity.)
   *
   * @example
   * ```ts
   * import { RedisClient, RedisError } from "./client.ts";
   * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
   * const replies = await redis.pipeline([["SET", "a", "1"], ["INCR", "a"], ["GET", "a"]]);
   * console.log(replies); // ["OK", 2, "2"]
   * await redis.close();
   * ```
   */
  pipeline(commands: readonly (readonly Arg[])[], options?: SendOptions): Promise<Reply[]> {
    const keepRedisError = (error: unknown): Reply => {
      if (error instanceof RedisError) return error;
      throw error;
    };
    return Promise.all(commands.map((args) => this.send(args, options).catch(keepRedisError)));
  }

  /**
   * Returns the cached {@linkcode RedisScript} for a Lua source, which runs it with `EVALSHA`
   * and loads it again if the server lost it (`NOSCRIPT`).
   *
   * @example
   * ```ts
   * import { RedisClient } from "./client.ts";
   * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
   * const incrBy = redis.script("return redis.call('INCRBY', KEYS[1], ARGV[1])");
   * console.log(await incrBy.run(["counter"], [5]));
   * await redis.close();
   * ```
   */
  script(lua: string): RedisScript {
    let script = this.#scripts.get(lua);
    if (script === undefined) {
      script = new RedisScript(this, lua);
      this.#scripts.set(lua, script);
    }
    return script;
  }

  /**
   * Opens a new, separate connection with the same settings (plus `overrides`), for blocking
   * commands that must not hold up this one.
   *
   * @example
   * ```ts
   * import { RedisClient } from "./client.ts";
   * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
   * await using blocking = await redis.duplicate();
   * const popped = await blocking.send(["BLPOP", "jobs", 1], { timeout: 0 }); // null after 1 s
   * await redis.close();
   * ```
   */
  duplicate(overrides: Partial<RedisClientOptions> = {}): Promise<RedisClient> {
    const base = typeof this.#input === "string" ? { url: this.#input } : this.#input;
    return RedisClient.connect({ ...base, ...overrides });
  }

  /**
   * Closes the connection at once and stops reconnecting. Commands still waiting for a reply
   * reject with `ConnectionError`, so await them first. Idempotent.
   *
   * @example
   * ```ts
   * import { RedisClient } from "./client.ts";
   * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
   * await redis.close();
   * ```
   */
  async close(): Promise<void> {
    const error = new ConnectionError(
      `The Redis client for ${this.address} was closed: create a new client to send more ` +
        `commands.`,
    );
    if (this.#state !== CLOSED || this.#closedError === undefined) {
      this.#state = CLOSED;
      this.#closedError = error;
    }
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#deadlines.stop();
    this.#failQueue(error);
    const conns = [this.#conn, this.#opening].filter((c) => c !== undefined);
    for (const conn of conns) this.#drop(conn, error);
    await Promise.all(conns.map((conn) => conn.closed));
  }

  /** Same as {@linkcode RedisClient.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals ----------------------------------------------------------------------

  #emit(event: RedisClientEvent): void {
    try {
      this.#onEvent?.(event);
    } catch {
      // A failing listener must not break the connection logic.
    }
  }

  #dispatch(pending: Pending): void {
    switch (this.#state) {
      case READY:
        this.#out.write(this.#conn!, pending);
        return;
      case CONNECTING:
        this.#queue.push(pending);
        return;
      case IDLE:
        this.#queue.push(pending);
        this.connect().catch(noop); // failures reject the queued commands
        return;
      case RECONNECTING:
        if (this.#options.whileDisconnected === "fail") {
          settle(pending, notSentError(pending, this.address, this.#lastError, undefined));
          return;
        }
        this.#queue.push(pending);
        pending.waitTimer = setTimeout(() => {
          pending.waitTimer = undefined;
          const maxWait = this.#options.maxWait;
          settle(pending, notSentError(pending, this.address, this.#lastError, maxWait));
        }, this.#options.maxWait);
        return;
      default:
        settle(pending, this.#closedError ?? new ConnectionError("The client is closed."));
    }
  }

  /** Opens a connection (socket + handshake) for this client. */
  async #open(): Promise<Conn> {
    const { conn, protocol } = await openConn(this.#options, this.#hooks);
    this.#protocol = protocol;
    return conn;
  }

  readonly #hooks: ConnHooks = {
    data: (conn, chunk) => readReplies(conn, chunk, this.#replyHooks),
    drop: (conn, reason) => this.#drop(conn, reason),
    opening: (conn, open) => {
      if (open) this.#opening = conn;
      else if (this.#opening === conn) this.#opening = undefined;
    },
  };

  readonly #replyHooks: Parameters<typeof readReplies>[2];

  #failQueue(error: Error): void {
    for (const pending of this.#queue.clear()) settle(pending, error);
  }

  #ready(conn: Conn): void {
    this.#conn = conn;
    this.#state = READY;
    for (const pending of this.#queue.clear()) {
      if (pending.done) continue;
      if (pending.waitTimer !== undefined) clearTimeout(pending.waitTimer);
      pending.waitTimer = undefined;
      this.#out.write(conn, pending);
    }
  }

  /** Tears down `conn` (once), rejects its in-flight commands and starts reconnecting. */
  #drop(conn: Conn, reason: Error): void {
    if (conn.dropped) return;
    conn.dropped = true;
    conn.socket.destroy();
    conn.onDrop?.(reason);
    const wasCurrent = this.#conn === conn;
    if (wasCurrent) {
      this.#conn = undefined;
      this.#out.discard(); // bytes for the old socket, if any
    }
    const inflight = conn.inflight.clear();
    const error = reason instanceof ConnectionError && this.#state === CLOSED
      ? reason
      : lostError(this.address, reason, inflight.length);
    for (const pending of inflight) settle(pending, error);
    if (wasCurrent && this.#state === READY) this.#lost(reason);
  }

  #lost(reason: Error): void {
    this.#lastError = reason;
    this.#emit({ type: "disconnect", address: this.address, error: reason });
    if (this.#options.reconnect === undefined) {
      this.#state = CLOSED;
      this.#closedError = lostError(this.address, reason, undefined);
      return;
    }
    this.#state = RECONNECTING;
    this.#scheduleReconnect(1, reason);
  }

  #scheduleReconnect(attempt: number, lastError: Error): void {
    const r = this.#options.reconnect!;
    if (attempt > r.maxAttempts) {
      this.#giveUp(gaveUpError(this.address, r.maxAttempts, lastError));
      return;
    }
    const delay = backoff(r, attempt);
    this.#emit({ type: "reconnecting", address: this.address, attempt, delay, error: lastError });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#open().then(
        (conn) => {
          if (this.#state !== RECONNECTING) {
            this.#drop(conn, this.#closedError ?? new ConnectionError("closed"));
            return;
          }
          this.#lastError = undefined;
          this.#ready(conn);
          this.#emit({ type: "reconnect", address: this.address, attempts: attempt });
        },
        (error: Error) => {
          if (this.#state !== RECONNECTING) return;
          this.#lastError = error;
          if (fatalErrors.has(error)) this.#giveUp(error);
          else this.#scheduleReconnect(attempt + 1, error);
        },
      );
    }, delay);
  }

  #giveUp(error: Error): void {
    this.#state = CLOSED;
    this.#closedError = error;
    this.#failQueue(error);
    this.#emit({ type: "give-up", address: this.address, error });
  }
}
