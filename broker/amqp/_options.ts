// The options of AmqpClient and the URLs it takes: `amqp://` and `amqps://` parsed as RabbitMQ
// and pika read them, and resolved into one connection target per URL (failover lists).
import type { ConnectionParams } from "./_connection.ts";

/**
 * TLS settings for `amqps://` connections.
 *
 * @example
 * ```ts
 * import type { AmqpTlsOptions } from "./client.ts";
 * const tls: AmqpTlsOptions = { ca: "-----BEGIN CERTIFICATE-----\n...", servername: "mq.example.com" };
 * ```
 */
export interface AmqpTlsOptions {
  /** Trusted CA certificates (PEM). Default: the runtime's root store. */
  ca?: string | string[];
  /** Client certificate (PEM), for servers that verify peers. */
  cert?: string;
  /** Private key of `cert` (PEM). */
  key?: string;
  /** Whether to reject a server certificate that does not verify. Default: true. */
  rejectUnauthorized?: boolean;
  /** Server name for SNI and certificate checks. Default: the host name (not for IPs). */
  servername?: string;
}

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
 *  * const log = (e: AmqpClientEvent) => console.log(e.type, e.address);
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
  /** Host name or IP. Default `127.0.0.1`. */
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
  /** Called on disconnection, reconnection attempts, blocked publishing and channel errors. */
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
  /** Host name or IP (IPv6 without brackets). */
  hostname: string;
  /** TCP port (5672, or 5671 for amqps://, when absent). */
  port: number;
  /** User name (`guest` when absent). */
  username: string;
  /** Password (`guest` when absent). */
  password: string;
  /** The virtual host (`/` when absent). */
  vhost: string;
  /** True for `amqps://`. */
  tls: boolean;
  /** `?heartbeat=`, in seconds. */
  heartbeat?: number;
  /** `?connection_timeout=`, in ms. */
  connectTimeout?: number;
  /** `?channel_max=`. */
  channelMax?: number;
  /** `?frame_max=`, in bytes. */
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

export interface Target extends ConnectionParams {
  address: string;
}

export interface Resolved {
  targets: Target[];
  reconnect: Required<AmqpReconnectOptions> | undefined;
  maxWait: number;
}

export function resolveOptions(input: string | AmqpClientOptions): Resolved {
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
