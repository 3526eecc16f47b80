// The RedisClient's connection step: the socket (TCP or TLS, loaded on first use), the handshake
// (HELLO/AUTH, SETNAME, SELECT) and the one clear error a failure of either gives.
// The socket itself is runtime/net.ts's (shared with the AMQP client).
import { ConnectionError } from "../../errors.ts";
import { openSocket } from "../../runtime/net.ts";
import { Deque } from "../../util/queue.ts";
import { type Arg, RedisError, RespParser, RespProtocolError } from "./_resp.ts";
import type { RedisReconnectOptions, ResolvedOptions } from "./_client_options.ts";
import { type Conn, sendOn } from "./_pipeline.ts";

/** Errors from the handshake that retrying cannot fix (bad credentials, bad db). */
export const fatalErrors: WeakSet<Error> = new WeakSet<Error>();

const noop = () => {};

/** `host:port` of the server of `o` (IPv6 in brackets). */
export function addressOf(o: ResolvedOptions): string {
  const { hostname, port } = o;
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** What `openConn` tells its client about the connection it opens. */
export interface ConnHooks {
  /** Bytes arrived on `conn`. */
  data(conn: Conn, chunk: Uint8Array): void;
  /** `conn` failed or closed: tear it down (once). */
  drop(conn: Conn, reason: Error): void;
  /** `conn` is being opened (`true`) or is done opening, either way (`false`). */
  opening(conn: Conn, open: boolean): void;
}

/**
 * Opens a socket (TCP or TLS) to the server of `o` and runs the handshake; resolves with a ready
 * connection and the RESP version in use, or rejects with one clear `ConnectionError`.
 */
export async function openConn(
  o: ResolvedOptions,
  hooks: ConnHooks,
): Promise<{ conn: Conn; protocol: 2 | 3 }> {
  const address = addressOf(o);
  let conn!: Conn;
  // Settles when the socket is up or dropped; set up with the socket, before any of its events.
  let up!: Promise<void>;
  try {
    await openSocket(o, (socket) => {
      conn = {
        socket,
        parser: new RespParser(),
        inflight: new Deque(),
        dropped: false,
        closed: socket.closed,
        onDrop: undefined,
      };
      up = new Promise<void>((resolve, reject) => {
        conn.onDrop = reject;
        socket.connected.then(resolve);
      });
      up.catch(noop); // awaited below
      hooks.opening(conn, true);
      return {
        data: (chunk) => hooks.data(conn, chunk),
        error: (error) => hooks.drop(conn, error),
        close: () => hooks.drop(conn, new ConnectionError("the server closed the connection")),
      };
    });
  } catch (error) {
    throw connectError(error as Error, "connect", o);
  }

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    hooks.drop(conn, new ConnectionError("connect timeout"));
  }, o.connectTimeout);
  let stage = "connect";
  try {
    await up;
    conn.onDrop = undefined;
    stage = "handshake";
    const protocol = await handshake(conn, o);
    return { conn, protocol };
  } catch (error) {
    hooks.drop(conn, error as Error);
    if (timedOut) {
      throw new ConnectionError(
        `Cannot connect to Redis at ${address}: no ${
          stage === "connect" ? "connection" : "answer to the handshake"
        } within ${o.connectTimeout} ms (connectTimeout). Check the host, port and firewall.`,
      );
    }
    throw connectError(error as Error, stage, o);
  } finally {
    clearTimeout(timer);
    hooks.opening(conn, false);
  }
}

/** Runs `HELLO 3` (or `AUTH`/`CLIENT SETNAME` on RESP2) and `SELECT`; resolves with the RESP version. */
async function handshake(conn: Conn, o: ResolvedOptions): Promise<2 | 3> {
  let protocol: 2 | 3 = 2;
  if (o.protocol === 3) {
    const hello: Arg[] = ["HELLO", 3];
    if (o.password !== undefined) hello.push("AUTH", o.username ?? "default", o.password);
    if (o.name !== undefined) hello.push("SETNAME", o.name);
    try {
      await sendOn(conn, hello);
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
      await sendOn(
        conn,
        o.username === undefined ? ["AUTH", o.password] : ["AUTH", o.username, o.password],
      );
    }
    if (o.name !== undefined) await sendOn(conn, ["CLIENT", "SETNAME", o.name]);
  }
  if (o.db !== 0) await sendOn(conn, ["SELECT", o.db]);
  return protocol;
}

/** Turns a connect/handshake failure into one clear `ConnectionError`. */
function connectError(failure: Error, stage: string, o: ResolvedOptions): ConnectionError {
  const address = addressOf(o);
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
        why = "connection refused (ECONNREFUSED). Is redis-server running, and is the port right?";
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

/** The delay before reconnect attempt `attempt` (from 1): exponential backoff, ±20 %. */
export function backoff(r: Required<RedisReconnectOptions>, attempt: number): number {
  const base = Math.min(r.maxDelay, r.initialDelay * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + 0.4 * Math.random()));
}

/**
 * The error of a lost connection: for the `inflight` commands it fails (they may have run), or,
 * with `inflight` undefined, the reason a client without reconnection is closed.
 */
export function lostError(
  address: string,
  reason: Error,
  inflight: number | undefined,
): ConnectionError {
  return new ConnectionError(
    inflight === undefined
      ? `Lost the connection to Redis at ${address} (${reason.message}) and reconnect ` +
        `is disabled: create a new client.`
      : `Lost the connection to Redis at ${address} (${reason.message}); ` +
        `${inflight} command(s) in flight may or may not have run.`,
    { cause: reason },
  );
}

/** The error a client closes with after `attempts` failed reconnects. */
export function gaveUpError(address: string, attempts: number, lastError: Error): ConnectionError {
  return new ConnectionError(
    `Gave up reconnecting to Redis at ${address} after ${attempts} ` +
      `attempt(s); last error: ${lastError.message}`,
    { cause: lastError },
  );
}
