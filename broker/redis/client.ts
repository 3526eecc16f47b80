/**
 * A small, dependency-free Redis client for Deno and Bun: pipelining, RESP3 (with RESP2
 * fallback), AUTH/SELECT from a URL, TLS, automatic reconnection and cached Lua scripts.
 *
 * Every command is pipelined: commands issued in the same tick are written to the socket in one
 * write and their replies are matched in order. A blocking command (`BLPOP`, `BRPOPLPUSH`,
 * `BLMOVE`, `XREAD BLOCK`, `WAIT`, ...) holds up every command sent after it on the same
 * connection, so run blocking commands on a separate connection from
 * {@linkcode RedisClient.duplicate}.
 *
 * @example
 * ```ts
 * import { RedisClient } from "./client.ts";
 * await using redis = await RedisClient.connect("redis://127.0.0.1:6379/0");
 * await redis.send(["SET", "greeting", "hello"]);
 * console.log(await redis.send(["GET", "greeting"])); // "hello"
 * ```
 * @module
 */
// node:net and node:tls are loaded on the first connection: on Deno they cost ~25 ms of start-up
// in every isolate that imports the library, Redis user or not.
import type * as Net from "node:net";
import type * as Tls from "node:tls";
import { ConnectionError } from "../../errors.ts";
import { unrefTimer } from "../../_runtime.ts";
import { Deque } from "../../_queue.ts";
import {
  type Arg,
  PushReply,
  RedisError,
  type Reply,
  RespEncoder,
  RespParser,
  RespProtocolError,
} from "./_resp.ts";

export { type Arg, PushReply, RedisError, type Reply, RespProtocolError };

/**
 * TLS settings for `rediss://` connections (passed to `node:tls`).
 *
 * @example
 * ```ts
 * import type { RedisTlsOptions } from "./client.ts";
 * const tlsOptions: RedisTlsOptions = { ca: "-----BEGIN CERTIFICATE-----\n..." };
 * ```
 */
export interface RedisTlsOptions {
  /** Trusted CA certificates (PEM). Default: the runtime's root store. */
  ca?: string | string[];
  /** Client certificate (PEM), for servers with `tls-auth-clients yes`. */
  cert?: string;
  /** Private key of `cert` (PEM). */
  key?: string;
  /** Whether to reject a server certificate that does not verify. Default: true. */
  rejectUnauthorized?: boolean;
  /** Server name for SNI and certificate checks. Default: the host name (not for IPs). */
  servername?: string;
}

/**
 * Reconnection settings. After a connection that was working is lost, the client reconnects
 * with exponential backoff: `initialDelay`, doubled each attempt up to `maxDelay` (±20 %).
 * Authentication and permission failures are never retried.
 *
 * @example
 * ```ts
 * import type { RedisReconnectOptions } from "./client.ts";
 * const reconnect: RedisReconnectOptions = { initialDelay: 100, maxDelay: 5000, maxAttempts: 20 };
 * ```
 */
export interface RedisReconnectOptions {
  /** Delay before the first attempt, in ms. Default: 50. */
  initialDelay?: number;
  /** Largest delay between attempts, in ms. Default: 2000. */
  maxDelay?: number;
  /** Attempts before giving up for good (the client is then closed). Default: Infinity. */
  maxAttempts?: number;
}

/**
 * Something that happened to the connection, reported to `onEvent`.
 *
 * @example
 * ```ts
 * import type { RedisClientEvent } from "./client.ts";
 * const log = (e: RedisClientEvent) => console.log(e.type, e.address);
 * ```
 */
export type RedisClientEvent =
  | { type: "disconnect"; address: string; error: Error }
  | { type: "reconnecting"; address: string; attempt: number; delay: number; error: Error }
  | { type: "reconnect"; address: string; attempts: number }
  | { type: "give-up"; address: string; error: Error };

/**
 * Options of a {@linkcode RedisClient}. A `url` gives the defaults of the connection fields;
 * fields set explicitly win over it.
 *
 * @example
 * ```ts
 * import type { RedisClientOptions } from "./client.ts";
 * const options: RedisClientOptions = {
 *   url: "redis://:secret@127.0.0.1:6379/2",
 *   commandTimeout: 5000,
 *   whileDisconnected: "fail",
 * };
 * ```
 */
export interface RedisClientOptions {
  /** `redis://[user:pass@]host[:port][/db]` or `rediss://...` (TLS). */
  url?: string;
  /** Host name or IP. Default: `127.0.0.1`. */
  hostname?: string;
  /** TCP port. Default: 6379. */
  port?: number;
  /** ACL user name (Redis 6+). Default: `default` when a password is set. */
  username?: string;
  /** Password (`requirepass` or the ACL user's password). */
  password?: string;
  /** Database number to `SELECT`. Default: 0. */
  db?: number;
  /** Use TLS: `true` or TLS settings. Default: true for `rediss://` URLs, else false. */
  tls?: boolean | RedisTlsOptions;
  /** RESP version: 3 (default) asks for RESP3 with `HELLO 3` and falls back to RESP2 on old
   * servers; 2 never sends `HELLO`. Note that in RESP3 `HGETALL` and friends reply with a
   * `Map`, in RESP2 with a flat array. */
  protocol?: 2 | 3;
  /** Connection name shown by `CLIENT LIST`. */
  name?: string;
  /** Limit for TCP connect + TLS + handshake, in ms. Default: 10 000. */
  connectTimeout?: number;
  /** Default limit for a command, from `send()` to its reply, in ms. Default: 10 000; 0 =
   * none. A blocking command (`BLPOP`, `BRPOP`, `BLMOVE`, `BRPOPLPUSH`, `BLMPOP`, `BZPOPMIN`,
   * `BZPOPMAX`, `BZMPOP`, `XREAD`/`XREADGROUP` with `BLOCK`, `WAIT`, `WAITAOF`) gets its own
   * blocking time on top, and no limit when it blocks for ever (0). Override per call with
   * `{ timeout }`. */
  commandTimeout?: number;
  /** Reconnect after a lost connection: true (default), false, or settings. */
  reconnect?: boolean | RedisReconnectOptions;
  /** What a command issued while reconnecting does: `"wait"` (default) for the connection, up
   * to `maxWait` ms, or `"fail"` at once with a `ConnectionError`. */
  whileDisconnected?: "wait" | "fail";
  /** Longest wait of a command for a reconnection, in ms. Default: 10 000. */
  maxWait?: number;
  /** Called on disconnection, reconnection attempts, reconnection and giving up. */
  onEvent?: (event: RedisClientEvent) => void;
  /** Called with RESP3 push messages (client tracking); they are dropped by default. */
  onPush?: (push: PushReply) => void;
}

/**
 * Options of one command.
 *
 * @example
 * ```ts
 * import { RedisClient, type SendOptions } from "./client.ts";
 * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
 * const options: SendOptions = { bytes: true, timeout: 1000 };
 * const payload = await redis.send(["GET", "key"], options); // Uint8Array | null
 * await redis.close();
 * ```
 */
export interface SendOptions {
  /** Return bulk strings as `Uint8Array` (binary-safe) instead of UTF-8 strings. */
  bytes?: boolean | undefined;
  /** Limit in ms from the call to the reply; overrides `commandTimeout`. 0 = none. */
  timeout?: number;
}

/**
 * Where and how to connect, as parsed from a Redis URL.
 *
 * @example
 * ```ts
 * import { parseRedisUrl, type RedisUrlInfo } from "./client.ts";
 * const info: RedisUrlInfo = parseRedisUrl("redis://localhost/3");
 * console.log(info.db); // 3
 * ```
 */
export interface RedisUrlInfo {
  /** Host name or IP (IPv6 without brackets). */
  hostname: string;
  /** TCP port (6379 if absent). */
  port: number;
  /** ACL user name, if any. */
  username?: string;
  /** Password, if any. */
  password?: string;
  /** Database number (0 if absent). */
  db: number;
  /** True for `rediss://`. */
  tls: boolean;
}

/**
 * Parses `redis://[user:pass@]host[:port][/db]` or `rediss://...`. User name and password may
 * be percent-encoded. Throws `TypeError` with a hint for anything else.
 *
 * @example
 * ```ts
 * import { parseRedisUrl } from "./client.ts";
 * const info = parseRedisUrl("rediss://app:s%40cret@redis.example.com:6380/1");
 * console.log(info.hostname, info.port, info.password, info.db, info.tls);
 * // redis.example.com 6380 s@cret 1 true
 * ```
 */
export function parseRedisUrl(url: string): RedisUrlInfo {
  const hint = "Use redis://[user:password@]host[:port][/db] or rediss://... for TLS.";
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`Invalid Redis URL ${JSON.stringify(redact(url))}. ${hint}`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new TypeError(`Unsupported Redis URL scheme ${JSON.stringify(u.protocol)}. ${hint}`);
  }
  if (u.search !== "" || u.hash !== "") {
    throw new TypeError(
      `Redis URL ${JSON.stringify(redact(url))} has a query or fragment, which is not ` +
        `supported: pass options to the client instead. ${hint}`,
    );
  }
  let hostname = u.hostname;
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  if (hostname === "") {
    throw new TypeError(`Redis URL ${JSON.stringify(redact(url))} has no host. ${hint}`);
  }
  const port = u.port === "" ? 6379 : Number(u.port);
  const path = u.pathname.replace(/^\/+/, "").replace(/\/+$/, "");
  if (path !== "" && !/^\d+$/.test(path)) {
    throw new TypeError(
      `Redis URL ${JSON.stringify(redact(url))}: the path must be a database number, ` +
        `got ${JSON.stringify(path)}. ${hint}`,
    );
  }
  const info: RedisUrlInfo = { hostname, port, db: path === "" ? 0 : Number(path), tls: false };
  info.tls = u.protocol === "rediss:";
  const username = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  if (password !== "") {
    info.password = password;
    if (username !== "") info.username = username;
  } else if (username !== "") {
    throw new TypeError(
      `Redis URL ${JSON.stringify(redact(url))} has a user name but no password: write ` +
        `redis://user:password@host or, with only a password, redis://:password@host.`,
    );
  }
  return info;
}

/** Hides the password of a URL in error messages. */
function redact(url: string): string {
  return url.replace(/^(\w+:\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}

interface ResolvedOptions {
  hostname: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
  tls: RedisTlsOptions | undefined;
  protocol: 2 | 3;
  name: string | undefined;
  connectTimeout: number;
  commandTimeout: number;
  reconnect: Required<RedisReconnectOptions> | undefined;
  whileDisconnected: "wait" | "fail";
  maxWait: number;
}

function resolveOptions(input: string | RedisClientOptions): ResolvedOptions {
  const o: RedisClientOptions = typeof input === "string" ? { url: input } : input;
  const fromUrl: Partial<RedisUrlInfo> = o.url === undefined ? {} : parseRedisUrl(o.url);
  const useTls = o.tls ?? fromUrl.tls ?? false;
  const reconnect = o.reconnect ?? true;
  const r: RedisReconnectOptions = typeof reconnect === "object" ? reconnect : {};
  const resolved: ResolvedOptions = {
    hostname: o.hostname ?? fromUrl.hostname ?? "127.0.0.1",
    port: o.port ?? fromUrl.port ?? 6379,
    username: o.username ?? fromUrl.username,
    password: o.password ?? fromUrl.password,
    db: o.db ?? fromUrl.db ?? 0,
    tls: useTls === false ? undefined : useTls === true ? {} : useTls,
    protocol: o.protocol ?? 3,
    name: o.name,
    connectTimeout: o.connectTimeout ?? 10_000,
    commandTimeout: o.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT,
    reconnect: reconnect === false ? undefined : {
      initialDelay: r.initialDelay ?? 50,
      maxDelay: r.maxDelay ?? 2000,
      maxAttempts: r.maxAttempts ?? Infinity,
    },
    whileDisconnected: o.whileDisconnected ?? "wait",
    maxWait: o.maxWait ?? 10_000,
  };
  if (!Number.isInteger(resolved.port) || resolved.port < 1 || resolved.port > 65535) {
    throw new TypeError(`Invalid Redis port ${resolved.port}: use an integer from 1 to 65535.`);
  }
  if (!Number.isInteger(resolved.db) || resolved.db < 0) {
    throw new TypeError(`Invalid Redis database ${resolved.db}: use an integer >= 0.`);
  }
  if (resolved.username !== undefined && resolved.password === undefined) {
    throw new TypeError("A Redis user name was given without a password: set both.");
  }
  return resolved;
}

type Timer = ReturnType<typeof setTimeout>;

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  args: readonly Arg[];
  bytes: boolean;
  /** Written to a socket (false while waiting for a connection). */
  sent: boolean;
  /** Settled already (timed out): its reply, if any, is dropped. */
  done: boolean;
  /** The command's time limit in ms (0 = none). */
  timeout: number;
  /** When it times out (`performance.now()` clock), if `timeout` > 0. */
  deadline: number;
  waitTimer: Timer | undefined;
}

/**
 * Sends a command on `client` with callbacks instead of a promise (used by
 * {@linkcode RedisScript.run}, which needs the error before deciding to reject). Set by a
 * static block of {@linkcode RedisClient}, which can reach its private members.
 */
let sendWith: (
  client: RedisClient,
  args: readonly Arg[],
  options: SendOptions | undefined,
  resolve: (reply: Reply) => void,
  reject: (error: Error) => void,
) => void;

/** One socket and its protocol state. */
interface Conn {
  socket: Net.Socket;
  parser: RespParser;
  inflight: Deque<Pending>;
  dropped: boolean;
  /** Resolves once the socket has closed. */
  closed: Promise<void>;
  /** While connecting: rejects the connect step when the socket fails. */
  onDrop: ((reason: Error) => void) | undefined;
}

const IDLE = 0;
const CONNECTING = 1;
const READY = 2;
const RECONNECTING = 3;
const CLOSED = 4;

/** Errors from the handshake that retrying cannot fix (bad credentials, bad db). */
const fatalErrors = new WeakSet<Error>();

const noop = () => {};

/** The default `commandTimeout`, in ms: a server that stops answering fails the command. */
const DEFAULT_COMMAND_TIMEOUT = 10_000;

function argText(arg: Arg | undefined): string {
  return arg instanceof Uint8Array ? new TextDecoder().decode(arg) : String(arg);
}

/**
 * How long a blocking command may block by its own arguments, in ms (0 = for ever), or
 * undefined for a command that does not block.
 */
function blockingTime(args: readonly Arg[]): number | undefined {
  const name = commandName(args);
  const at = (i: number, unit: number) => {
    const n = Number(argText(args[i < 0 ? args.length + i : i]));
    return Number.isFinite(n) && n >= 0 ? n * unit : 0;
  };
  switch (name) {
    case "BLPOP":
    case "BRPOP":
    case "BZPOPMIN":
    case "BZPOPMAX":
    case "BRPOPLPUSH":
    case "BLMOVE":
      return at(-1, 1000); // seconds, last
    case "BLMPOP":
    case "BZMPOP":
      return at(1, 1000); // seconds, first
    case "WAIT":
      return at(2, 1);
    case "WAITAOF":
      return at(3, 1);
    case "XREAD":
    case "XREADGROUP": {
      const i = args.findIndex((a, k) => k > 0 && argText(a).toUpperCase() === "BLOCK");
      return i > 0 ? at(i + 1, 1) : undefined;
    }
  }
  return undefined;
}

/** The time limit of a command sent without `{ timeout }`. */
function defaultTimeout(args: readonly Arg[], commandTimeout: number): number {
  if (commandTimeout <= 0) return 0;
  const block = blockingTime(args);
  if (block === undefined) return commandTimeout;
  return block === 0 ? 0 : block + commandTimeout;
}

function commandName(args: readonly Arg[]): string {
  const first = args[0];
  if (first instanceof Uint8Array) return new TextDecoder().decode(first).toUpperCase();
  return typeof first === "string" ? first.toUpperCase() : String(first);
}

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
  #out = new RespEncoder();
  #flushScheduled = false;
  #protocol: 2 | 3 | undefined;
  #reconnectTimer: Timer | undefined;
  /** Why the client is closed (rejection reason for new commands). */
  #closedError: Error | undefined;
  #lastError: Error | undefined;
  #scripts = new Map<string, RedisScript>();
  /**
   * One timer for every command time limit: armed for the earliest deadline, and not cleared
   * when that command is answered (a timer per command costs more than the round trip on Deno).
   * When it fires it fails the overdue commands and re-arms for the next deadline.
   */
  #sweepTimer: Timer | undefined;
  /** When `#sweepTimer` fires (`performance.now()` clock). */
  #sweepAt = 0;

  static {
    sendWith = (client, args, options, resolve, reject) =>
      client.#send(args, options, resolve, reject);
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
    const { hostname, port } = this.#options;
    return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
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
        this.#dispatch({
          resolve: () => resolve(),
          reject,
          args: ["PING"],
          bytes: false,
          sent: false,
          done: false,
          timeout: 0,
          deadline: 0,
          waitTimer: undefined,
        });
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
    const pending: Pending = {
      resolve,
      reject,
      args,
      bytes: options?.bytes ?? false,
      sent: false,
      done: false,
      timeout,
      deadline: 0,
      waitTimer: undefined,
    };
    if (timeout > 0) {
      const deadline = performance.now() + timeout;
      pending.deadline = deadline;
      if (this.#sweepTimer === undefined || deadline < this.#sweepAt) this.#armSweep(deadline);
    }
    this.#dispatch(pending);
  }

  /** (Re)arms the time-limit timer for `deadline`. */
  #armSweep(deadline: number): void {
    if (this.#sweepTimer !== undefined) clearTimeout(this.#sweepTimer);
    this.#sweepAt = deadline;
    this.#sweepTimer = setTimeout(
      this.#sweep,
      Math.max(1, Math.ceil(deadline - performance.now())),
    );
    unrefTimer(this.#sweepTimer);
  }

  /** Fails the commands whose time limit passed; re-arms for the next deadline, if any. */
  #sweep = (): void => {
    this.#sweepTimer = undefined;
    const now = performance.now();
    let next = Infinity;
    const visit = (pending: Pending) => {
      if (pending.done || pending.deadline === 0) return;
      if (pending.deadline <= now) this.#expire(pending);
      else if (pending.deadline < next) next = pending.deadline;
    };
    // Every unsettled command with a time limit is in flight on the current connection or
    // waiting for one; those of a dropped connection were settled when it dropped.
    if (this.#conn !== undefined) { for (const pending of this.#conn.inflight) visit(pending); }
    for (const pending of this.#queue) visit(pending);
    if (next !== Infinity && this.#state !== CLOSED) this.#armSweep(next);
  };

  #expire(pending: Pending): void {
    pending.done = true;
    if (pending.waitTimer !== undefined) clearTimeout(pending.waitTimer);
    pending.waitTimer = undefined;
    const name = commandName(pending.args);
    const timeout = pending.timeout;
    pending.reject(
      new ConnectionError(
        pending.sent
          ? `Redis at ${this.address} did not answer ${name} within ${timeout} ms ` +
            `(it may still run). Raise commandTimeout or the per-call timeout, and ` +
            `send blocking commands on a duplicate() connection.`
          : `Could not send ${name} within ${timeout} ms: not connected to Redis at ` +
            `${this.address} (${this.#lastError?.message ?? "connecting"}).`,
        { cause: pending.sent ? undefined : this.#lastError },
      ),
    );
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
    if (this.#sweepTimer !== undefined) clearTimeout(this.#sweepTimer);
    this.#sweepTimer = undefined;
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
        this.#write(this.#conn!, pending);
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
          this.#settle(
            pending,
            new ConnectionError(
              `Not connected to Redis at ${this.address} (reconnecting after: ` +
                `${this.#lastError?.message ?? "connection lost"}); ${
                  commandName(pending.args)
                } was not sent. Retry later, or use whileDisconnected: "wait".`,
              { cause: this.#lastError },
            ),
          );
          return;
        }
        this.#queue.push(pending);
        pending.waitTimer = setTimeout(() => {
          pending.waitTimer = undefined;
          this.#settle(
            pending,
            new ConnectionError(
              `Not connected to Redis at ${this.address} for ${this.#options.maxWait} ms ` +
                `(last error: ${this.#lastError?.message ?? "connection lost"}); ` +
                `${commandName(pending.args)} was not sent. Check that the server is up, or ` +
                `raise maxWait.`,
              { cause: this.#lastError },
            ),
          );
        }, this.#options.maxWait);
        return;
      default:
        this.#settle(pending, this.#closedError ?? new ConnectionError("The client is closed."));
    }
  }

  #settle(pending: Pending, error: Error): void {
    if (pending.done) return;
    pending.done = true;
    if (pending.waitTimer !== undefined) clearTimeout(pending.waitTimer);
    pending.reject(error);
  }

  /** Encodes a command for `conn` and schedules the write. */
  #write(conn: Conn, pending: Pending): void {
    try {
      this.#out.encode(pending.args);
    } catch (error) {
      this.#settle(pending, error as Error);
      return;
    }
    pending.sent = true;
    conn.inflight.push(pending);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  #flush = (): void => {
    this.#flushScheduled = false;
    const conn = this.#conn;
    if (this.#out.length === 0) return;
    const bytes = this.#out.take();
    if (conn !== undefined && !conn.dropped) conn.socket.write(bytes);
  };

  /** Sends a command on `conn` now (handshake), bypassing the state machine. */
  #sendOn(conn: Conn, args: Arg[]): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const encoder = new RespEncoder(256);
      encoder.encode(args);
      conn.inflight.push({
        resolve,
        reject,
        args,
        bytes: false,
        sent: true,
        done: false,
        timeout: 0,
        deadline: 0,
        waitTimer: undefined,
      });
      conn.socket.write(encoder.take());
    });
  }

  #failQueue(error: Error): void {
    for (const pending of this.#queue.clear()) this.#settle(pending, error);
  }

  #ready(conn: Conn): void {
    this.#conn = conn;
    this.#state = READY;
    for (const pending of this.#queue.clear()) {
      if (pending.done) continue;
      if (pending.waitTimer !== undefined) clearTimeout(pending.waitTimer);
      pending.waitTimer = undefined;
      this.#write(conn, pending);
    }
  }

  /** Opens a socket and runs the handshake; resolves with a ready connection. */
  async #open(): Promise<Conn> {
    const o = this.#options;
    const address = this.address;
    let socket: Net.Socket;
    const net = await loadNet();
    const tls = o.tls === undefined ? undefined : await loadTls();
    const tlsOptions: Tls.ConnectionOptions = { host: o.hostname, port: o.port };
    if (o.tls !== undefined) {
      const servername = o.tls.servername ?? (net.isIP(o.hostname) ? undefined : o.hostname);
      if (servername !== undefined) tlsOptions.servername = servername;
      if (o.tls.ca !== undefined) tlsOptions.ca = o.tls.ca;
      if (o.tls.cert !== undefined) tlsOptions.cert = o.tls.cert;
      if (o.tls.key !== undefined) tlsOptions.key = o.tls.key;
      tlsOptions.rejectUnauthorized = o.tls.rejectUnauthorized ?? true;
    }
    try {
      socket = o.tls === undefined
        ? net.createConnection({ host: o.hostname, port: o.port })
        : tls!.connect(tlsOptions);
    } catch (error) {
      throw this.#connectError(error as Error, "connect");
    }
    let markClosed = noop;
    const conn: Conn = {
      socket,
      parser: new RespParser(),
      inflight: new Deque(),
      dropped: false,
      closed: new Promise<void>((resolve) => markClosed = resolve),
      onDrop: undefined,
    };
    this.#opening = conn;
    socket.on("data", (chunk: Uint8Array) => this.#onData(conn, chunk));
    socket.on("error", (error: Error) => this.#drop(conn, error));
    socket.on("close", () => {
      markClosed();
      this.#drop(conn, new ConnectionError("the server closed the connection"));
    });

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#drop(conn, new ConnectionError("connect timeout"));
    }, o.connectTimeout);
    let stage = "connect";
    try {
      await new Promise<void>((resolve, reject) => {
        conn.onDrop = reject;
        socket.once(o.tls === undefined ? "connect" : "secureConnect", () => resolve());
      });
      conn.onDrop = undefined;
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      stage = "handshake";
      await this.#handshake(conn);
      return conn;
    } catch (error) {
      this.#drop(conn, error as Error);
      if (timedOut) {
        throw new ConnectionError(
          `Cannot connect to Redis at ${address}: no ${
            stage === "connect" ? "connection" : "answer to the handshake"
          } within ${o.connectTimeout} ms (connectTimeout). Check the host, port and firewall.`,
        );
      }
      throw this.#connectError(error as Error, stage);
    } finally {
      clearTimeout(timer);
      if (this.#opening === conn) this.#opening = undefined;
    }
  }

  async #handshake(conn: Conn): Promise<void> {
    const o = this.#options;
    let protocol: 2 | 3 = 2;
    if (o.protocol === 3) {
      const hello: Arg[] = ["HELLO", 3];
      if (o.password !== undefined) hello.push("AUTH", o.username ?? "default", o.password);
      if (o.name !== undefined) hello.push("SETNAME", o.name);
      try {
        await this.#sendOn(conn, hello);
        protocol = 3;
      } catch (error) {
        // Redis < 6 has no HELLO; a server may also refuse RESP3 (NOPROTO). Use RESP2.
        const fallback = error instanceof RedisError &&
          (error.code === "NOPROTO" || /unknown command/i.test(error.message));
        if (!fallback) throw error;
      }
    }
    if (protocol === 2) {
      if (o.password !== undefined) {
        await this.#sendOn(
          conn,
          o.username === undefined ? ["AUTH", o.password] : ["AUTH", o.username, o.password],
        );
      }
      if (o.name !== undefined) await this.#sendOn(conn, ["CLIENT", "SETNAME", o.name]);
    }
    if (o.db !== 0) await this.#sendOn(conn, ["SELECT", o.db]);
    this.#protocol = protocol;
  }

  /** Turns a connect/handshake failure into one clear `ConnectionError`. */
  #connectError(failure: Error, stage: string): ConnectionError {
    const address = this.address;
    const o = this.#options;
    // A dropped socket rejects the handshake with a ConnectionError wrapping the real cause.
    const error = failure instanceof ConnectionError && failure.cause instanceof Error
      ? failure.cause
      : failure;
    if (error instanceof RedisError) {
      const message = error.message;
      let text: string;
      let fatal = true;
      if (error.code === "WRONGPASS" || /invalid (username-)?password/i.test(message)) {
        text = `Redis at ${address} rejected the credentials (${message}). Check the user ` +
          `name and password in the URL (redis://user:password@host:port/db).`;
      } else if (error.code === "NOAUTH") {
        text = `Redis at ${address} requires a password (${message}). Put it in the URL: ` +
          `redis://:password@host:port/db.`;
      } else if (/without any password configured/i.test(message)) {
        text = `Redis at ${address} has no password set, but one was given (${message}). ` +
          `Remove it from the URL, or set requirepass on the server.`;
      } else if (error.code === "NOPERM") {
        text = `Redis at ${address} refused a handshake command (${message}). Grant the ACL ` +
          `user the HELLO, AUTH, CLIENT and SELECT commands.`;
      } else if (error.command === "SELECT") {
        text = `Redis at ${address} refused SELECT ${o.db} (${message}). Use a database ` +
          `number below the server's "databases" setting (16 by default).`;
      } else {
        text = `Redis at ${address} answered the ${error.command ?? stage} handshake ` +
          `command with an error: ${message}`;
        fatal = !/^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)$/.test(error.code);
      }
      const result = new ConnectionError(text, { cause: error });
      if (fatal) fatalErrors.add(result);
      return result;
    }
    if (error instanceof RespProtocolError) {
      return new ConnectionError(
        `Cannot connect to Redis at ${address}: the server does not speak RESP ` +
          `(${error.message}) Is this the right port?`,
        { cause: error },
      );
    }
    const code = (error as { code?: string }).code;
    let why: string;
    const closed = code === undefined || code === "ECONNRESET" || code === "EPIPE";
    if (stage === "handshake" && closed) {
      why = `the server closed the connection during the handshake (${error.message}). ` +
        `If it expects TLS, use a rediss:// URL; else check its maxclients and ` +
        `protected-mode settings and its log.`;
    } else {
      switch (code) {
        case "ECONNREFUSED":
          why =
            "connection refused (ECONNREFUSED). Is redis-server running, and is the port right?";
          break;
        case "ENOTFOUND":
        case "EAI_AGAIN":
        case "EAI_NONAME":
          why = `host name not found (${code}). Check the host in the URL.`;
          break;
        case "ETIMEDOUT":
        case "EHOSTUNREACH":
        case "ENETUNREACH":
          why = `host unreachable (${code}). Check the host, port and firewall.`;
          break;
        default:
          why = o.tls !== undefined && stage === "connect"
            ? `TLS connection failed (${error.message}). Check the certificates (tls.ca), or ` +
              `use redis:// if the server does not use TLS.`
            : `the connection failed during the ${stage}: ${error.message}` +
              `${code ? ` (${code})` : ""}.`;
      }
    }
    return new ConnectionError(`Cannot connect to Redis at ${address}: ${why}`, { cause: error });
  }

  #onData(conn: Conn, chunk: Uint8Array): void {
    if (conn.dropped) return;
    const parser = conn.parser;
    const inflight = conn.inflight;
    parser.feed(chunk);
    for (;;) {
      let reply: Reply | PushReply | undefined;
      try {
        reply = parser.next(inflight.peek()?.bytes ?? false);
      } catch (error) {
        this.#drop(conn, error as Error);
        return;
      }
      if (reply === undefined) return;
      if (reply instanceof PushReply) {
        try {
          this.#onPush?.(reply);
        } catch {
          // A failing listener must not break the connection.
        }
        continue;
      }
      const pending = inflight.shift();
      if (pending === undefined) {
        this.#drop(
          conn,
          new RespProtocolError(
            "Redis sent a reply with no command waiting for it (pub/sub and MONITOR are not " +
              "supported by this client).",
          ),
        );
        return;
      }
      if (pending.done) continue;
      pending.done = true;
      if (reply instanceof RedisError) {
        reply.command = commandName(pending.args);
        pending.reject(reply);
      } else {
        pending.resolve(reply);
      }
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
      this.#out.take(); // bytes for the old socket, if any
    }
    const inflight = conn.inflight.clear();
    const error = reason instanceof ConnectionError && this.#state === CLOSED
      ? reason
      : new ConnectionError(
        `Lost the connection to Redis at ${this.address} (${reason.message}); ` +
          `${inflight.length} command(s) in flight may or may not have run.`,
        { cause: reason },
      );
    for (const pending of inflight) this.#settle(pending, error);
    if (wasCurrent && this.#state === READY) this.#lost(reason);
  }

  #lost(reason: Error): void {
    this.#lastError = reason;
    this.#emit({ type: "disconnect", address: this.address, error: reason });
    if (this.#options.reconnect === undefined) {
      this.#state = CLOSED;
      this.#closedError = new ConnectionError(
        `Lost the connection to Redis at ${this.address} (${reason.message}) and reconnect ` +
          `is disabled: create a new client.`,
        { cause: reason },
      );
      return;
    }
    this.#state = RECONNECTING;
    this.#scheduleReconnect(1, reason);
  }

  #scheduleReconnect(attempt: number, lastError: Error): void {
    const r = this.#options.reconnect!;
    if (attempt > r.maxAttempts) {
      this.#giveUp(
        new ConnectionError(
          `Gave up reconnecting to Redis at ${this.address} after ${r.maxAttempts} ` +
            `attempt(s); last error: ${lastError.message}`,
          { cause: lastError },
        ),
      );
      return;
    }
    const base = Math.min(r.maxDelay, r.initialDelay * 2 ** (attempt - 1));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
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

/**
 * A Lua script bound to a client: {@linkcode RedisScript.run} calls `EVALSHA`, and if the
 * server does not have the script (`NOSCRIPT`, e.g. after a restart or `SCRIPT FLUSH`) runs it
 * with `EVAL`, which also caches it on the server. Get one from {@linkcode RedisClient.script}.
 *
 * @example
 * ```ts
 * import { RedisClient } from "./client.ts";
 * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
 * const getset = redis.script("local v = redis.call('GET', KEYS[1]); " +
 *   "redis.call('SET', KEYS[1], ARGV[1]); return v");
 * const previous = await getset.run(["key"], ["new value"]);
 * await redis.close();
 * ```
 */
export class RedisScript {
  /** The Lua source. */
  readonly lua: string;
  readonly #client: RedisClient;
  #sha: string | undefined;

  /** Creates a script for `client`; prefer {@linkcode RedisClient.script}, which caches. */
  constructor(client: RedisClient, lua: string) {
    this.#client = client;
    this.lua = lua;
  }

  /** The script's SHA-1 (hex), as Redis computes it. */
  async sha1(): Promise<string> {
    if (this.#sha === undefined) {
      const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(this.lua));
      this.#sha = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
        .join("");
    }
    return this.#sha;
  }

  /**
   * Runs the script with `KEYS` = `keys` and `ARGV` = `args`; resolves with its reply. Errors
   * raised by the script reject with {@linkcode RedisError}.
   */
  run<T extends Reply = Reply>(
    keys: readonly Arg[],
    args: readonly Arg[] = [],
    options?: SendOptions,
  ): Promise<T> {
    const sha = this.#sha;
    if (sha === undefined) return this.sha1().then(() => this.run<T>(keys, args, options));
    const client = this.#client;
    const command: Arg[] = ["EVALSHA", sha, keys.length];
    for (let i = 0; i < keys.length; i++) command.push(keys[i]!);
    for (let i = 0; i < args.length; i++) command.push(args[i]!);
    return new Promise<T>((resolve, reject) => {
      sendWith(client, command, options, resolve as (reply: Reply) => void, (error) => {
        if (error instanceof RedisError && error.code === "NOSCRIPT") {
          const evalCommand = command.slice();
          evalCommand[0] = "EVAL";
          evalCommand[1] = this.lua;
          sendWith(client, evalCommand, options, resolve as (reply: Reply) => void, reject);
        } else {
          reject(error);
        }
      });
    });
  }
}

let netModule: Promise<typeof Net> | undefined;
let tlsModule: Promise<typeof Tls> | undefined;

function loadNet(): Promise<typeof Net> {
  return netModule ??= import("node:net").then((m) => (m.default ?? m) as typeof Net);
}

function loadTls(): Promise<typeof Tls> {
  return tlsModule ??= import("node:tls").then((m) => (m.default ?? m) as typeof Tls);
}
