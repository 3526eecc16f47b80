// The library's one TCP/TLS socket, shared by the RESP client (broker/redis/) and the AMQP client
// (broker/amqp/). node:net and node:tls are the same API on Deno and Bun, so both runtimes take
// this one path; a runtime difference in sockets would go here. The modules are loaded on the
// first connection: on Deno they cost ~25 ms of start-up in every isolate that imports the
// library, Redis or RabbitMQ user or not.
import type * as Net from "node:net";
import type * as Tls from "node:tls";

/**
 * TLS settings of a connection (the fields of `node:tls` that the clients expose).
 *
 * @example
 * ```ts
 * import type { TlsOptions } from "./net.ts";
 * const tls: TlsOptions = { ca: "-----BEGIN CERTIFICATE-----\n...", servername: "db.example.com" };
 * ```
 */
export interface TlsOptions {
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

/** Where `openSocket` connects: TLS when `tls` is set. */
export interface SocketTarget {
  hostname: string;
  port: number;
  tls?: TlsOptions | undefined;
}

/** What an open socket reports, from its read loop. */
export interface SocketEvents {
  /** Bytes arrived. */
  data(chunk: Uint8Array): void;
  /** The socket failed (its `code`: ECONNREFUSED, ECONNRESET, ...); `close` follows. */
  error(error: Error): void;
  /** The socket is closed (by the peer, a failure or `destroy()`). */
  close(): void;
}

/**
 * A socket being opened or open: `connected` resolves once the connection (and the TLS
 * handshake) is up, with Nagle off and TCP keep-alive on; it stays pending if the socket fails
 * first (`SocketEvents.error`/`close` say so).
 *
 * @example
 * ```ts
 * import { openSocket } from "./net.ts";
 * const socket = await openSocket({ hostname: "127.0.0.1", port: 6379 }, () => ({
 *   data: (chunk) => console.log(chunk.length, "bytes"),
 *   error: (error) => console.error(error.message),
 *   close: () => {},
 * }));
 * socket.destroy();
 * await socket.closed;
 * ```
 */
export interface NetSocket {
  /** Resolves once connected (never rejects: failures arrive as events). */
  readonly connected: Promise<void>;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;
  /** Queues bytes for writing. */
  write(bytes: Uint8Array): void;
  /** Closes at once (pending writes may be lost); `close` follows. */
  destroy(): void;
}

let netModule: Promise<typeof Net> | undefined;
let tlsModule: Promise<typeof Tls> | undefined;

function loadNet(): Promise<typeof Net> {
  return netModule ??= import("node:net").then((m) => (m.default ?? m) as typeof Net);
}

function loadTls(): Promise<typeof Tls> {
  return tlsModule ??= import("node:tls").then((m) => (m.default ?? m) as typeof Tls);
}

/**
 * Starts a TCP (or TLS) connection to `target` and resolves with the socket at once, before it
 * is connected (await its `connected`). `listen` is called with the socket as soon as it exists,
 * before any event, and returns the callbacks for its events. Throws what the runtime throws for
 * a target it cannot even try (a bad port).
 *
 * @example
 * ```ts
 * import { openSocket } from "./net.ts";
 * const socket = await openSocket({ hostname: "127.0.0.1", port: 6379 }, () => ({
 *   data: () => {},
 *   error: () => {},
 *   close: () => {},
 * }));
 * await socket.connected;
 * socket.destroy();
 * ```
 */
export async function openSocket(
  target: SocketTarget,
  listen: (socket: NetSocket) => SocketEvents,
): Promise<NetSocket> {
  const net = await loadNet();
  const { hostname: host, port, tls } = target;
  let socket: Net.Socket;
  if (tls === undefined) {
    socket = net.createConnection({ host, port });
  } else {
    const t = await loadTls();
    const options: Tls.ConnectionOptions = { host, port };
    const servername = tls.servername ?? (net.isIP(host) ? undefined : host);
    if (servername !== undefined) options.servername = servername;
    if (tls.ca !== undefined) options.ca = tls.ca;
    if (tls.cert !== undefined) options.cert = tls.cert;
    if (tls.key !== undefined) options.key = tls.key;
    options.rejectUnauthorized = tls.rejectUnauthorized ?? true;
    socket = t.connect(options);
  }
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => markClosed = resolve);
  const connected = new Promise<void>((resolve) => {
    socket.once(tls === undefined ? "connect" : "secureConnect", () => {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      resolve();
    });
  });
  const handle: NetSocket = {
    connected,
    closed,
    write: (bytes) => socket.write(bytes),
    destroy: () => socket.destroy(),
  };
  const events = listen(handle);
  socket.on("data", (chunk: Uint8Array) => events.data(chunk));
  socket.on("error", (error: Error) => events.error(error));
  socket.on("close", () => {
    markClosed();
    events.close();
  });
  return handle;
}
