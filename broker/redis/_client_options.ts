// The RedisClient's options: the public option types, `redis://` URL parsing and the resolved
// settings a client runs with.
import type { PushReply } from "./_resp.ts";

/** The default `commandTimeout`, in ms: a server that stops answering fails the command. */
const DEFAULT_COMMAND_TIMEOUT = 10_000;

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
export function redact(url: string): string {
  return url.replace(/^(\w+:\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}

export interface ResolvedOptions {
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

export function resolveOptions(input: string | RedisClientOptions): ResolvedOptions {
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
