/**
 * A small, dependency-free AMQP 0-9-1 client for RabbitMQ, on Deno and Bun: PLAIN auth, TLS,
 * heartbeats both ways, `connection.blocked`, channels with pipelined publisher confirms,
 * consumers with manual acks and per-consumer prefetch, and reconnection with backoff that
 * re-opens channels and restores their consumers.
 *
 * @example
 * ```ts
 * import { AmqpClient } from "./client.ts";
 * await using client = await AmqpClient.connect("amqp://guest:guest@127.0.0.1:5672/%2F");
 * const ch = await client.channel({ confirm: true });
 * const q = `example-${crypto.randomUUID()}`;
 * await ch.declareQueue(q, { durable: false, autoDelete: true });
 * await Promise.all([ch.publish(q, "a"), ch.publish(q, "b")]); // pipelined, both confirmed
 * await ch.deleteQueue(q);
 * ```
 * @module
 */
import { ConnectionError } from "../../errors.ts";
import { AmqpError, AmqpProtocolError, REPLY } from "./errors.ts";
import { AmqpChannel, type AmqpChannelOptions, type ChannelHost } from "./channel.ts";
import { Connection, type ConnectionParams, OpenError } from "./_connection.ts";
import type { AmqpTlsOptions } from "./_socket.ts";
import type { FieldTable } from "./_table.ts";

export type { AmqpTlsOptions };

/**
 * Reconnection settings: after a working connection is lost, attempts start after
 * `initialDelay` ms and double up to `maxDelay` (±20 %). Refused credentials and missing
 * virtual hosts are never retried.
 *
 * @example
 * ```ts
 * import type { AmqpReconnectOptions } from "./client.ts";
 * const r: AmqpReconnectOptions = { initialDelay: 100, maxDelay: 5_000 };
 * ```
 */
export interface AmqpReconnectOptions {
  /** Delay before the first attempt, in ms. Default 100. */
  initialDelay?: number;
  /** Largest delay between attempts, in ms. Default 5_000. */
  maxDelay?: number;
  /** Attempts before giving up for good. Default: Infinity. */
  maxAttempts?: number;
}

/**
 * Something that happened to the connection, reported to `onEvent`.
 *
 * @example
 * ```ts
 * import type { AmqpClientEvent } from "./client.ts";
 * const log = (e: AmqpClientEvent) => console.log(e.type, e.address);
 * ```
 */
export type AmqpClientEvent =
  | { type: "disconnect"; address: string; error: Error }
  | { type: "reconnecting"; address: string; attempt: number; delay: number; error: Error }
  | { type: "reconnect"; address: string; attempts: number }
  | { type: "give-up"; address: string; error: Error }
  | { type: "blocked"; address: string; reason: string }
  | { type: "unblocked"; address: string }
  | { type: "channel-error"; address: string; error: Error };

/**
 * Options of an {@linkcode AmqpClient}. A `url` gives the defaults of the connection fields;
 * fields set explicitly win over it.
 *
 * @example
 * ```ts
 * import type { AmqpClientOptions } from "./client.ts";
 * const o: AmqpClientOptions = { url: "amqps://app:secret@mq.example.com/prod", heartbeat: 30 };
 * ```
 */
export interface AmqpClientOptions {
  /**
   * `amqp://[user:password@]host[:port][/vhost][?heartbeat=30&connection_timeout=10000&channel_max=..&frame_max=..]`,
   * `amqps://` for TLS; several (an array, or `;`-separated) are tried in turn.
   */
  url?: string | string[];
  hostname?: string;
  /** Default 5672, 5671 for TLS. */
  port?: number;
  /** Default `guest`. */
  username?: string;
  /** Default `guest`. */
  password?: string;
  /** Default `/`. */
  vhost?: string;
  /** TLS: true or settings. Default: true for `amqps://`. */
  tls?: boolean | AmqpTlsOptions;
  /** Heartbeat in seconds. Default: the server's (RabbitMQ: 60); 0 turns heartbeats off. */
  heartbeat?: number;
  /** Largest frame, in bytes. Default 131_072. */
  frameMax?: number;
  /** Most channels. Default 2047. */
  channelMax?: number;
  /** Limit for TCP, TLS and the AMQP handshake, in ms. Default 10_000. */
  connectTimeout?: number;
  /** Shown as the connection's name in RabbitMQ (`connection_name`). */
  name?: string;
  /** Reconnect after a lost connection: true (default), false, or settings. */
  reconnect?: boolean | AmqpReconnectOptions;
  /** How long calls wait for a reconnection before failing, in ms. Default 10_000. */
  maxWait?: number;
  onEvent?: (event: AmqpClientEvent) => void;
}

/**
 * Where to connect, as parsed from an AMQP URL.
 *
 * @example
 * ```ts
 * import { parseAmqpUrl, type AmqpUrlInfo } from "./client.ts";
 * const info: AmqpUrlInfo = parseAmqpUrl("amqp://localhost/%2F");
 * console.log(info.vhost); // "/"
 * ```
 */
export interface AmqpUrlInfo {
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
  tls: boolean;
  heartbeat?: number;
  connectTimeout?: number;
  channelMax?: number;
  frameMax?: number;
}

const HINT =
  "Use amqp://[user:password@]host[:port][/vhost] (vhost / is %2F), or amqps:// for TLS.";

/**
 * Parses `amqp://[user:password@]host[:port][/vhost][?query]` or `amqps://...` as RabbitMQ and
 * pika read it: user and password default to `guest`, the vhost is the percent-decoded path
 * (`/` when empty: `%2F` also means `/`), and the query may set `heartbeat` (s),
 * `connection_timeout` (ms), `channel_max` and `frame_max`.
 *
 * @example
 * ```ts
 * import { parseAmqpUrl } from "./client.ts";
 * const u = parseAmqpUrl("amqps://app:s%40cret@mq.example.com/prod?heartbeat=30");
 * console.log(u.hostname, u.port, u.password, u.vhost, u.tls, u.heartbeat);
 * // mq.example.com 5671 s@cret prod true 30
 * ```
 */
export function parseAmqpUrl(url: string): AmqpUrlInfo {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`Invalid AMQP URL ${JSON.stringify(redact(url))}. ${HINT}`);
  }
  if (u.protocol !== "amqp:" && u.protocol !== "amqps:") {
    throw new TypeError(`Unsupported AMQP URL scheme ${JSON.stringify(u.protocol)}. ${HINT}`);
  }
  let hostname = u.hostname;
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  if (hostname === "") {
    throw new TypeError(`AMQP URL ${JSON.stringify(redact(url))} has no host. ${HINT}`);
  }
  const tls = u.protocol === "amqps:";
  const path = u.pathname.slice(1);
  if (path.includes("/")) {
    throw new TypeError(
      `AMQP URL ${JSON.stringify(redact(url))}: the vhost ${JSON.stringify(path)} has a "/"; ` +
        `write it as %2F. ${HINT}`,
    );
  }
  const info: AmqpUrlInfo = {
    hostname,
    port: u.port === "" ? (tls ? 5671 : 5672) : Number(u.port),
    username: u.username === "" ? "guest" : decodeURIComponent(u.username),
    password: u.password === "" && u.username === "" ? "guest" : decodeURIComponent(u.password),
    vhost: path === "" ? "/" : decodeURIComponent(path),
    tls,
  };
  for (const [key, value] of u.searchParams) {
    const n = Number(value);
    const number = (min: number) => {
      if (!Number.isInteger(n) || n < min) {
        throw new TypeError(
          `AMQP URL parameter ${key} must be an integer >= ${min}, got ${JSON.stringify(value)}.`,
        );
      }
      return n;
    };
    switch (key) {
      case "heartbeat":
        info.heartbeat = number(0);
        break;
      case "connection_timeout":
        info.connectTimeout = number(1);
        break;
      case "channel_max":
        info.channelMax = number(1);
        break;
      case "frame_max":
        info.frameMax = number(4096);
        break;
      default:
        throw new TypeError(
          `Unknown AMQP URL parameter ${JSON.stringify(key)}: use heartbeat, ` +
            `connection_timeout, channel_max or frame_max (TLS files go in the tls option).`,
        );
    }
  }
  return info;
}

/** Hides the password of a URL in messages. */
function redact(url: string): string {
  return url.replace(/^(\w+:\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}

interface Target extends ConnectionParams {
  address: string;
}

interface Resolved {
  targets: Target[];
  reconnect: Required<AmqpReconnectOptions> | undefined;
  maxWait: number;
}

function resolve(input: string | AmqpClientOptions): Resolved {
  const o: AmqpClientOptions = typeof input === "string" ? { url: input } : input;
  const urls = o.url === undefined
    ? [undefined]
    : (Array.isArray(o.url) ? o.url : o.url.split(";")).map((s) => s.trim()).filter(Boolean);
  const targets = urls.map((url): Target => {
    const u: Partial<AmqpUrlInfo> = url === undefined ? {} : parseAmqpUrl(url);
    const useTls = o.tls ?? u.tls ?? false;
    const tls = useTls === false ? undefined : useTls === true ? {} : useTls;
    const hostname = o.hostname ?? u.hostname ?? "127.0.0.1";
    const port = o.port ?? u.port ?? (tls ? 5671 : 5672);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(`Invalid AMQP port ${port}: use an integer from 1 to 65535.`);
    }
    return {
      hostname,
      port,
      tls,
      username: o.username ?? u.username ?? "guest",
      password: o.password ?? u.password ?? "guest",
      vhost: o.vhost ?? u.vhost ?? "/",
      heartbeat: o.heartbeat ?? u.heartbeat,
      frameMax: o.frameMax ?? u.frameMax ?? 131_072,
      channelMax: o.channelMax ?? u.channelMax ?? 2047,
      connectTimeout: o.connectTimeout ?? u.connectTimeout ?? 10_000,
      name: o.name,
      address: hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`,
    };
  });
  if (targets.length === 0) throw new TypeError(`An empty AMQP URL list was given. ${HINT}`);
  const r = typeof o.reconnect === "object" ? o.reconnect : {};
  return {
    targets,
    reconnect: o.reconnect === false ? undefined : {
      initialDelay: r.initialDelay ?? 100,
      maxDelay: r.maxDelay ?? 5_000,
      maxAttempts: r.maxAttempts ?? Infinity,
    },
    maxWait: o.maxWait ?? 10_000,
  };
}

const IDLE = 0, CONNECTING = 1, READY = 2, RECONNECTING = 3, CLOSED = 4;

/** Connection failures retrying cannot fix: refused credentials, a missing vhost. */
const fatal = new WeakSet<Error>();

/**
 * A connection to RabbitMQ that reconnects by itself. Open channels with `channel()`; they
 * survive reconnections.
 *
 * - The first `connect()` does not retry: it rejects with one `ConnectionError` naming the
 *   server and the cause (refused, unknown host, wrong password, unknown vhost, not AMQP).
 * - After a working connection is lost, it reconnects with backoff (trying each URL in turn),
 *   re-opens every channel and restores its consumers. Calls made meanwhile wait for it, up to
 *   `maxWait`.
 *
 * @example
 * ```ts
 * import { AmqpClient } from "./client.ts";
 * const client = new AmqpClient({ url: "amqp://127.0.0.1", name: "example" });
 * await client.connect();
 * console.log(client.serverProperties.product); // RabbitMQ
 * await client.close();
 * ```
 */
export class AmqpClient {
  readonly #options: Resolved;
  readonly #onEvent: ((e: AmqpClientEvent) => void) | undefined;
  #state = IDLE;
  #conn: Connection | undefined;
  #connecting: Promise<Connection> | undefined;
  #target = 0;
  #channels = new Set<AmqpChannel>();
  #waiters: { resolve: (c: Connection) => void; reject: (e: Error) => void }[] = [];
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #closedError: Error | undefined;
  #lastError: Error | undefined;
  #blocked: string | undefined;
  readonly #host: ChannelHost;

  /** Creates a client (not connected yet: see `connect()`). Throws TypeError for a bad URL. */
  constructor(options: string | AmqpClientOptions = {}) {
    this.#options = resolve(options);
    this.#onEvent = typeof options === "string" ? undefined : options.onEvent;
    this.#host = {
      address: () => this.address,
      maxWait: this.#options.maxWait,
      connection: () => this.#connection(),
      report: (_ch, error) => this.#emit({ type: "channel-error", address: this.address, error }),
      remove: (ch) => void this.#channels.delete(ch),
    };
  }

  /** Creates a client and connects it. */
  static async connect(options: string | AmqpClientOptions = {}): Promise<AmqpClient> {
    const client = new AmqpClient(options);
    await client.connect();
    return client;
  }

  /** `host:port` of the server in use (the first one before connecting). */
  get address(): string {
    return this.#options.targets[this.#target].address;
  }

  /** True while connected. */
  get connected(): boolean {
    return this.#state === READY;
  }

  /** RabbitMQ's reason while it blocks publishing on this connection (memory or disk alarm). */
  get blocked(): string | undefined {
    return this.#blocked;
  }

  /** What the server said about itself in `connection.start` (product, version, ...). */
  get serverProperties(): FieldTable {
    return this.#conn?.serverProperties ?? {};
  }

  /** The negotiated heartbeat in seconds (0: none), once connected. */
  get heartbeat(): number {
    return this.#conn?.heartbeat ?? 0;
  }

  /** Connects now. Resolves at once when connected; does not retry a first failure. */
  async connect(): Promise<void> {
    await this.#connection();
  }

  /** Opens a channel; it is re-opened (with its consumers) after reconnections. */
  async channel(options: AmqpChannelOptions = {}): Promise<AmqpChannel> {
    const ch = new AmqpChannel(this.#host, options);
    const conn = await this.#connection();
    this.#channels.add(ch);
    try {
      await ch._attach(conn);
    } catch (e) {
      this.#channels.delete(ch);
      throw e;
    }
    return ch;
  }

  #connection(): Promise<Connection> {
    switch (this.#state) {
      case READY:
        return Promise.resolve(this.#conn!);
      case CLOSED:
        return Promise.reject(this.#closedError);
      case RECONNECTING:
        return new Promise((resolve, reject) => {
          const waiter = {
            resolve: (c: Connection) => {
              clearTimeout(timer);
              resolve(c);
            },
            reject: (e: Error) => {
              clearTimeout(timer);
              reject(e);
            },
          };
          const timer = setTimeout(() => {
            this.#waiters = this.#waiters.filter((w) => w !== waiter);
            reject(
              new ConnectionError(
                `Not connected to RabbitMQ at ${this.address} for ${this.#options.maxWait} ms ` +
                  `(last error: ${this.#lastError?.message ?? "connection lost"}). Check that ` +
                  `the server is up, or raise maxWait.`,
                { cause: this.#lastError },
              ),
            );
          }, this.#options.maxWait);
          this.#waiters.push(waiter);
        });
    }
    if (this.#connecting) return this.#connecting;
    this.#state = CONNECTING;
    return this.#connecting = this.#open(0).then(
      (conn) => {
        this.#connecting = undefined;
        if (this.#state !== CONNECTING) {
          void conn.close();
          throw this.#closedError;
        }
        this.#conn = conn;
        this.#state = READY;
        return conn;
      },
      (e) => {
        this.#connecting = undefined;
        if (this.#state === CONNECTING) this.#state = IDLE;
        throw e;
      },
    );
  }

  /** Opens a connection to the target after `this.#target` + `offset`. */
  async #open(offset: number): Promise<Connection> {
    const targets = this.#options.targets;
    this.#target = (this.#target + offset) % targets.length;
    const target = targets[this.#target];
    try {
      return await Connection.open(target, {
        lost: (error) => this.#lost(error),
        blocked: (reason) => {
          this.#blocked = reason;
          this.#emit({ type: "blocked", address: target.address, reason });
        },
        unblocked: () => {
          this.#blocked = undefined;
          this.#emit({ type: "unblocked", address: target.address });
        },
      });
    } catch (e) {
      throw connectError(e as Error, target);
    }
  }

  #emit(event: AmqpClientEvent): void {
    try {
      this.#onEvent?.(event);
    } catch { /* a failing listener must not break the connection */ }
  }

  #lost(error: Error): void {
    if (this.#state !== READY) return;
    this.#conn = undefined;
    this.#blocked = undefined;
    this.#lastError = error;
    this.#emit({ type: "disconnect", address: this.address, error });
    if (this.#options.reconnect === undefined) {
      this.#giveUp(
        new ConnectionError(
          `Lost the connection to RabbitMQ at ${this.address} (${error.message}) and reconnect ` +
            `is off: create a new client.`,
          { cause: error },
        ),
      );
      return;
    }
    this.#state = RECONNECTING;
    this.#schedule(1, error);
  }

  #schedule(attempt: number, lastError: Error): void {
    const r = this.#options.reconnect!;
    if (attempt > r.maxAttempts) {
      return this.#giveUp(
        new ConnectionError(
          `Gave up reconnecting to RabbitMQ at ${this.address} after ${r.maxAttempts} ` +
            `attempt(s); last error: ${lastError.message}`,
          { cause: lastError },
        ),
      );
    }
    // The first attempt goes to the same server at once if it closed us on purpose (320).
    const base = Math.min(r.maxDelay, r.initialDelay * 2 ** (attempt - 1));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.#emit({ type: "reconnecting", address: this.address, attempt, delay, error: lastError });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#open(attempt === 1 ? 0 : 1).then((conn) => {
        if (this.#state !== RECONNECTING) return void conn.close();
        this.#conn = conn;
        this.#state = READY;
        this.#lastError = undefined;
        for (const ch of [...this.#channels]) {
          ch._attach(conn).catch((e) => this.#host.report(ch, e));
        }
        for (const w of this.#waiters.splice(0)) w.resolve(conn);
        this.#emit({ type: "reconnect", address: this.address, attempts: attempt });
      }, (e: Error) => {
        if (this.#state !== RECONNECTING) return;
        this.#lastError = e;
        if (fatal.has(e)) this.#giveUp(e);
        else this.#schedule(attempt + 1, e);
      });
    }, delay);
  }

  #giveUp(error: Error): void {
    this.#state = CLOSED;
    this.#closedError = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
    for (const ch of [...this.#channels]) ch.onConnectionLost(error);
    this.#emit({ type: "give-up", address: this.address, error });
  }

  /** Closes every channel and the connection, and stops reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === CLOSED && this.#closedError !== undefined && !this.#conn) return;
    const error = new ConnectionError(
      `The AMQP client for ${this.address} was closed: create a new client.`,
    );
    this.#state = CLOSED;
    this.#closedError ??= error;
    clearTimeout(this.#reconnectTimer);
    for (const w of this.#waiters.splice(0)) w.reject(error);
    const conn = this.#conn;
    this.#conn = undefined;
    await Promise.all([...this.#channels].map((ch) => ch.close().catch(() => {})));
    await conn?.close();
  }

  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** One clear ConnectionError for a failed connection attempt. */
function connectError(failure: Error, target: Target): Error {
  const at = `RabbitMQ at ${target.address}`;
  const stage = failure instanceof OpenError ? failure.stage : "connect";
  const error = failure instanceof OpenError ? failure.cause : failure;
  const make = (text: string, isFatal = false) => {
    const e = new ConnectionError(text, { cause: error });
    if (isFatal) fatal.add(e);
    return e;
  };
  if (failure instanceof OpenError && failure.timedOut) {
    return make(
      `Cannot connect to ${at}: no ${
        stage === "connect" ? "connection" : "answer to the AMQP handshake"
      } ` +
        `within ${target.connectTimeout} ms (connectTimeout). Check the host, port and firewall.`,
    );
  }
  if (error instanceof AmqpError) {
    const vhost = JSON.stringify(target.vhost);
    if (error.code === REPLY.ACCESS_REFUSED) {
      return make(
        `${at} refused the login of user ${
          JSON.stringify(target.username)
        } (${error.replyText}). ` +
          `Check the user name and password in the URL: amqp://user:password@host:port/vhost.`,
        true,
      );
    }
    if (error.code === REPLY.NOT_ALLOWED && /not found/i.test(error.replyText)) {
      return make(
        `${at} has no virtual host ${vhost} (${error.replyText}). Create it ` +
          `(rabbitmqctl add_vhost ${target.vhost}) or fix the URL's path (the vhost / is %2F).`,
        true,
      );
    }
    if (error.code === REPLY.NOT_ALLOWED) {
      return make(
        `${at} refused user ${JSON.stringify(target.username)} access to virtual host ${vhost} ` +
          `(${error.replyText}). Grant it: rabbitmqctl set_permissions -p ${target.vhost} ` +
          `${target.username} ".*" ".*" ".*".`,
        true,
      );
    }
    return make(`${at} refused the connection: ${error.code} ${error.replyText}`);
  }
  if (error instanceof AmqpProtocolError) {
    return make(
      `Cannot connect to ${at}: the server does not speak AMQP 0-9-1 (${error.message}). ` +
        `Is this the right port (5672, or 5671 for amqps://)?`,
    );
  }
  const code = (error as { code?: string }).code;
  let why: string;
  if (stage === "handshake") {
    why = `the server closed the connection during the AMQP handshake (${error.message}). ` +
      (target.tls ? "Check the TLS settings" : "If it expects TLS, use an amqps:// URL") +
      `; else see the RabbitMQ log.`;
  } else if (code === "ECONNREFUSED") {
    why = "connection refused (ECONNREFUSED). Is RabbitMQ running, and is the port right?";
  } else if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME") {
    why = `host name not found (${code}). Check the host in the URL.`;
  } else if (code === "ETIMEDOUT" || code === "EHOSTUNREACH" || code === "ENETUNREACH") {
    why = `host unreachable (${code}). Check the host, port and firewall.`;
  } else if (target.tls) {
    why = `TLS connection failed (${error.message}). Check the certificates (tls.ca), or use ` +
      `amqp:// if the server does not use TLS.`;
  } else {
    why = `${error.message}${code ? ` (${code})` : ""}.`;
  }
  return make(`Cannot connect to ${at}: ${why}`);
}
