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
import { Connection, OpenError } from "./_connection.ts";
import type { FieldTable } from "./_table.ts";
import {
  type AmqpClientEvent,
  type AmqpClientOptions,
  type Resolved,
  resolveOptions,
  type Target,
} from "./_options.ts";

export { parseAmqpUrl } from "./_options.ts";
export type {
  AmqpClientEvent,
  AmqpClientOptions,
  AmqpReconnectOptions,
  AmqpTlsOptions,
  AmqpUrlInfo,
} from "./_options.ts";

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
    this.#options = resolveOptions(options);
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
    return this.#options.targets[this.#target]!.address;
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
    const target = targets[this.#target]!;
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
