// One AMQP connection, for the lifetime of one socket: the handshake (PLAIN auth, tune, vhost),
// heartbeats both ways, `connection.blocked`, and the demultiplexing of frames to channels,
// with content (method + header + body frames) assembled into one message per delivery.
// Reconnection lives above, in AmqpClient: a dropped Connection is never used again.
import { ConnectionError } from "../../errors.ts";
import {
  type NetSocket,
  openSocket,
  type SocketTarget,
  type TlsOptions,
} from "../../runtime/net.ts";
import { runtimeVersion, unrefTimer } from "../../runtime/process.ts";
import { VERSION } from "../../version.ts";
import { AmqpError, AmqpProtocolError, REPLY } from "./errors.ts";
import { ByteWriter } from "./_bytes.ts";
import { FRAME_MIN_SIZE, FrameReader, PROTOCOL_HEADER, writeHeartbeat } from "./_frame.ts";
import { type AmqpProperties, type Method, methodName, writeMethod } from "./_methods.ts";
import { Demux } from "./_demux.ts";
import type { FieldTable } from "./_table.ts";

/** What a channel receives from its connection. */
export interface ChannelLink {
  /** A method without content. */
  onMethod(method: Method): void;
  /** A method with content (deliver, get-ok, return), assembled. */
  onContent(method: Method, properties: AmqpProperties, body: Uint8Array): void;
  /** The connection is gone; the channel with it. */
  onConnectionLost(error: Error): void;
}

/** Where and how to open a connection. */
export interface ConnectionParams {
  hostname: string;
  port: number;
  tls?: TlsOptions | undefined;
  username: string;
  password: string;
  vhost: string;
  /** Seconds; undefined takes the server's, 0 disables. */
  heartbeat?: number | undefined;
  frameMax: number;
  channelMax: number;
  connectTimeout: number;
  name?: string | undefined;
}

/** What the connection tells its owner. */
export interface ConnectionHooks {
  lost(error: Error): void;
  blocked(reason: string): void;
  unblocked(): void;
}

const runtimeName = runtimeVersion().replace(/^./, (c) => c.toUpperCase());

function negotiate(client: number, server: number): number {
  if (client === 0 || server === 0) return Math.max(client, server);
  return Math.min(client, server);
}

/** A live connection: frames in and out of one socket. */
export class Connection {
  readonly out: ByteWriter = new ByteWriter();
  frameMax = 131_072;
  channelMax = 2047;
  /** Negotiated heartbeat, in seconds (0 = none). */
  heartbeat = 0;
  serverProperties: FieldTable = {};
  dropped = false;
  /** Why it dropped. */
  error: Error | undefined;
  #socket: NetSocket | undefined;
  #reader = new FrameReader();
  #links = new Map<number, ChannelLink>();
  #nextChannel = 1;
  #flushScheduled = false;
  #lastRead = performance.now();
  #lastWrite = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #handshake: ((m: Method) => void) | undefined;
  #handshakeFailed: (() => void) | undefined;
  #closeOk: (() => void) | undefined;
  #ready = false;

  private constructor(private readonly hooks: ConnectionHooks) {}

  /**
   * Opens a socket and runs the handshake. Rejects with an `OpenError` saying at which stage it
   * failed, whether it timed out, and why (`cause`: the socket error or the server's AmqpError).
   */
  static async open(params: ConnectionParams, hooks: ConnectionHooks): Promise<Connection> {
    const conn = new Connection(hooks);
    const timeout = new AbortController();
    let stage: "connect" | "handshake" = "connect";
    const timer = setTimeout(() => {
      const e = new ConnectionError(`no answer within ${params.connectTimeout} ms`);
      timeout.abort(e);
      conn.#drop(e);
    }, params.connectTimeout);
    try {
      conn.#socket = await connectSocket(params, timeout.signal, {
        data: (chunk) => conn.#onData(chunk),
        end: (error) => conn.#drop(error),
      });
      stage = "handshake";
      if (conn.dropped) throw conn.error;
      await conn.#negotiate(params);
      conn.#ready = true;
      return conn;
    } catch (e) {
      conn.#drop(e as Error);
      throw new OpenError(stage, timeout.signal.aborted, conn.error ?? (e as Error));
    } finally {
      clearTimeout(timer);
    }
  }

  async #negotiate(p: ConnectionParams): Promise<void> {
    const next = () =>
      new Promise<Method>((resolve, reject) => {
        this.#handshake = resolve;
        this.#handshakeFailed = () => reject(this.error);
      });
    this.#socket!.write(PROTOCOL_HEADER);
    const start = await next();
    expect(start, "connection.start");
    if (start.args.versionMajor !== 0 || start.args.versionMinor !== 9) {
      throw new AmqpProtocolError(
        `the server speaks AMQP ${start.args.versionMajor}-${start.args.versionMinor}, not 0-9-1`,
      );
    }
    this.serverProperties = start.args.serverProperties;
    const mechanisms = String(start.args.mechanisms).split(" ");
    if (!mechanisms.includes("PLAIN")) {
      throw new AmqpError(
        `the server does not offer PLAIN authentication (it offers ${mechanisms.join(", ")})`,
        { code: REPLY.ACCESS_REFUSED, text: "no PLAIN mechanism", connectionLevel: true },
      );
    }
    const clientProperties: FieldTable = {
      product: "dramatis",
      version: VERSION,
      platform: runtimeName,
      information: "https://jsr.io/@dramatis/dramatis",
      capabilities: {
        publisher_confirms: true,
        "basic.nack": true,
        consumer_cancel_notify: true,
        "connection.blocked": true,
        authentication_failure_close: true,
        per_consumer_qos: true,
        exchange_exchange_bindings: true,
      },
    };
    if (p.name !== undefined) clientProperties.connection_name = p.name;
    const response = new TextEncoder().encode(`\0${p.username}\0${p.password}`);
    this.#write((w) =>
      writeMethod(w, 0, "connection.start-ok", {
        clientProperties,
        mechanism: "PLAIN",
        response,
        locale: "en_US",
      })
    );
    const tune = await next();
    expect(tune, "connection.tune");
    this.channelMax = negotiate(p.channelMax, tune.args.channelMax) || 65535;
    this.frameMax = Math.max(FRAME_MIN_SIZE, negotiate(p.frameMax, tune.args.frameMax) || 131_072);
    this.heartbeat = p.heartbeat === 0
      ? 0
      : p.heartbeat === undefined
      ? tune.args.heartbeat
      : negotiate(p.heartbeat, tune.args.heartbeat);
    this.#write((w) =>
      writeMethod(w, 0, "connection.tune-ok", {
        channelMax: this.channelMax,
        frameMax: this.frameMax,
        heartbeat: this.heartbeat,
      })
    );
    this.#reader.maxFrameSize = this.frameMax;
    this.#write((w) => writeMethod(w, 0, "connection.open", { virtualHost: p.vhost }));
    expect(await next(), "connection.open-ok");
    this.#handshake = undefined;
    this.#handshakeFailed = undefined;
    this.#startHeartbeats();
  }

  /** Writes frames now (in this tick's buffer) and schedules the socket write. */
  #write(fn: (w: ByteWriter) => void): void {
    fn(this.out);
    this.flushSoon();
  }

  /** Schedules the write of what is in `out`, at the end of this tick. */
  flushSoon(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(this.#flush);
  }

  #flush = (): void => {
    this.#flushScheduled = false;
    if (this.out.pos === 0) return;
    const bytes = this.out.take();
    if (this.dropped) return;
    this.#lastWrite = performance.now();
    this.#socket!.write(bytes);
  };

  /** Registers a channel; returns its number. Throws when every number is taken. */
  attach(link: ChannelLink): number {
    if (this.dropped) throw this.error;
    for (let i = 0; i < this.channelMax; i++) {
      const n = this.#nextChannel;
      this.#nextChannel = n >= this.channelMax ? 1 : n + 1;
      if (!this.#links.has(n)) {
        this.#links.set(n, link);
        return n;
      }
    }
    throw new ConnectionError(
      `All ${this.channelMax} channels of the connection are open (channel_max): close some.`,
    );
  }

  detach(channel: number): void {
    this.#links.delete(channel);
    this.#demux.reset(channel);
  }

  #startHeartbeats(): void {
    if (this.heartbeat <= 0) return;
    const interval = this.heartbeat * 1000;
    this.#timer = setInterval(() => {
      const now = performance.now();
      if (now - this.#lastRead > 2 * interval) {
        this.#drop(
          new ConnectionError(
            `RabbitMQ sent nothing for ${Math.round((now - this.#lastRead) / 1000)} s ` +
              `(heartbeat ${this.heartbeat} s): the connection is dead`,
          ),
        );
        return;
      }
      if (now - this.#lastWrite >= interval / 2 - 50) {
        writeHeartbeat(this.out);
        this.#flush();
      }
    }, interval / 2);
    unrefTimer(this.#timer);
  }

  #onData(chunk: Uint8Array): void {
    if (this.dropped) return;
    this.#lastRead = performance.now();
    try {
      this.#reader.feed(chunk, this.#demux.frame);
    } catch (e) {
      this.#protocolError(e as Error);
    }
  }

  #demux = new Demux({
    heartbeat: () => {},
    method: (channel, m) => {
      if (channel === 0) return this.#onConnectionMethod(m);
      this.#links.get(channel)?.onMethod(m);
    },
    content: (channel, m, properties, body) => {
      this.#links.get(channel)?.onContent(m, properties, body);
    },
  });

  #onConnectionMethod(m: Method): void {
    switch (m.name) {
      case "connection.close": {
        this.#write((w) => writeMethod(w, 0, "connection.close-ok"));
        const { replyCode, replyText, classId, methodId } = m.args;
        const at = classId ? ` (after ${methodName((classId << 16) | methodId)})` : "";
        this.#drop(
          new AmqpError(`RabbitMQ closed the connection: ${replyCode} ${replyText}${at}`, {
            code: replyCode,
            text: replyText,
            classId,
            methodId,
            connectionLevel: true,
          }),
        );
        return;
      }
      case "connection.close-ok":
        this.#closeOk?.();
        return;
      case "connection.blocked":
        this.hooks.blocked(m.args.reason);
        return;
      case "connection.unblocked":
        this.hooks.unblocked();
        return;
    }
    if (this.#handshake) return this.#handshake(m);
    throw new AmqpProtocolError(`unexpected ${m.name} on channel 0`, REPLY.COMMAND_INVALID);
  }

  #protocolError(e: Error): void {
    const code = e instanceof AmqpProtocolError ? e.code : REPLY.INTERNAL_ERROR;
    try {
      writeMethod(this.out, 0, "connection.close", {
        replyCode: code,
        replyText: e.message.slice(0, 200),
      });
      this.#flush();
    } catch { /* the socket may be gone */ }
    this.#drop(e);
  }

  /** Tears the connection down once; tells every channel and the owner. */
  #drop(error: Error): void {
    if (this.dropped) return;
    this.dropped = true;
    this.error = error;
    clearInterval(this.#timer);
    this.#socket?.destroy();
    this.#handshakeFailed?.();
    this.#closeOk?.();
    const links = [...this.#links.values()];
    this.#links.clear();
    this.#demux.reset();
    for (const link of links) link.onConnectionLost(error);
    if (this.#ready) this.hooks.lost(error);
  }

  /** Closes politely (connection.close, waits up to 1 s for close-ok), then the socket. */
  async close(): Promise<void> {
    if (this.dropped) return;
    const ok = new Promise<void>((resolve) => this.#closeOk = resolve);
    this.#write((w) => writeMethod(w, 0, "connection.close", { replyCode: 200, replyText: "bye" }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([ok, new Promise((r) => timer = setTimeout(r, 1000))]);
    clearTimeout(timer);
    this.#drop(new ConnectionError("The connection was closed by the client."));
    await this.#socket?.closed;
  }
}

/** Why `Connection.open` failed. */
export class OpenError extends Error {
  constructor(
    readonly stage: "connect" | "handshake",
    readonly timedOut: boolean,
    override readonly cause: Error,
  ) {
    super(cause.message, { cause });
  }
}

/**
 * Connects to `target` and resolves once the connection (and the TLS handshake) is up; rejects
 * with the socket's error (its `code`: ECONNREFUSED, ...), or with `signal`'s reason when it
 * aborts first. Once up, `events.end` is called once, when the socket fails or closes; no data
 * is delivered after that.
 */
async function connectSocket(
  target: SocketTarget,
  signal: AbortSignal,
  events: { data(chunk: Uint8Array): void; end(error: Error): void },
): Promise<NetSocket> {
  let up = false, ended = false;
  let open!: { resolve(socket: NetSocket): void; reject(error: Error): void };
  const opened = new Promise<NetSocket>((resolve, reject) => open = { resolve, reject });
  let socket!: NetSocket;
  const end = (error: Error) => {
    if (ended) return;
    ended = true;
    socket.destroy();
    if (up) events.end(error);
    else open.reject(error);
  };
  await openSocket(target, (s) => {
    socket = s;
    return {
      data: (chunk) => {
        if (!ended) events.data(chunk);
      },
      error: end,
      close: () =>
        end(Object.assign(new Error("the server closed the connection"), { code: "ECONNRESET" })),
    };
  });
  const onAbort = () => end(signal.reason as Error);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });
  socket.connected.then(() => {
    signal.removeEventListener("abort", onAbort);
    if (ended) return;
    up = true;
    open.resolve({
      connected: socket.connected,
      closed: socket.closed,
      write: (bytes) => {
        if (!ended) socket.write(bytes);
      },
      destroy: () => end(new Error("closed by the client")),
    });
  });
  return await opened;
}

function expect(m: Method, name: string): void {
  if (m.name !== name) {
    throw new AmqpProtocolError(`expected ${name} during the handshake, got ${m.name}`);
  }
}
