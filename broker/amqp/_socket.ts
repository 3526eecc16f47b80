// The AMQP client's only contact with the network: one function that opens a TCP or TLS
// socket and hands back bytes through callbacks. (node:net and node:tls work on Deno and Bun
// alike; they are loaded on the first connection, as in the Redis client, so that importing the
// library costs nothing.)
import type * as Net from "node:net";
import type * as Tls from "node:tls";

/**
 * TLS settings for `amqps://` connections.
 *
 * @example
 * ```ts
 * import type { AmqpTlsOptions } from "./_socket.ts";
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

/** An open socket: write bytes, close it; its bytes and its end arrive through `SocketEvents`. */
export interface Socket {
  write(bytes: Uint8Array): void;
  /** Closes at once (pending writes may be lost). */
  destroy(): void;
  /** Resolves once the socket is closed. */
  readonly closed: Promise<void>;
}

/** What `openSocket` reports. */
export interface SocketEvents {
  data(chunk: Uint8Array): void;
  /** The socket failed or closed; called once. */
  end(error: Error): void;
}

let netModule: Promise<typeof Net> | undefined;
let tlsModule: Promise<typeof Tls> | undefined;

/**
 * Connects to `hostname:port` (TLS when `tls` is set) and resolves once the connection (and the
 * TLS handshake) is up; rejects with the socket's error (its `code`: ECONNREFUSED, ...), or
 * with `signal`'s reason when it aborts first.
 */
export async function openSocket(
  target: {
    hostname: string;
    port: number;
    tls?: AmqpTlsOptions | undefined;
    signal?: AbortSignal;
  },
  events: SocketEvents,
): Promise<Socket> {
  const net = await (netModule ??= import("node:net").then((m) => (m.default ?? m) as typeof Net));
  let socket: Net.Socket;
  const { hostname: host, port, tls } = target;
  if (tls === undefined) {
    socket = net.createConnection({ host, port });
  } else {
    const t = await (tlsModule ??= import("node:tls").then((m) => (m.default ?? m) as typeof Tls));
    const options: Tls.ConnectionOptions = {
      host,
      port,
      rejectUnauthorized: tls.rejectUnauthorized ?? true,
    };
    const servername = tls.servername ?? (net.isIP(host) ? undefined : host);
    if (servername !== undefined) options.servername = servername;
    if (tls.ca !== undefined) options.ca = tls.ca;
    if (tls.cert !== undefined) options.cert = tls.cert;
    if (tls.key !== undefined) options.key = tls.key;
    socket = t.connect(options);
  }
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => markClosed = resolve);
  let up = false, ended = false;
  return await new Promise<Socket>((resolve, reject) => {
    const end = (error: Error) => {
      if (ended) return;
      ended = true;
      socket.destroy();
      if (up) events.end(error);
      else reject(error);
    };
    socket.on("data", (chunk: Uint8Array) => {
      if (!ended) events.data(chunk);
    });
    socket.on("error", end);
    socket.on("close", () => {
      markClosed();
      end(Object.assign(new Error("the server closed the connection"), { code: "ECONNRESET" }));
    });
    const signal = target.signal;
    const onAbort = () => end(signal!.reason as Error);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.once(tls === undefined ? "connect" : "secureConnect", () => {
      signal?.removeEventListener("abort", onAbort);
      if (ended) return;
      up = true;
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
      resolve({
        write: (bytes) => {
          if (!ended) socket.write(bytes);
        },
        destroy: () => end(new Error("closed by the client")),
        closed,
      });
    });
  });
}
