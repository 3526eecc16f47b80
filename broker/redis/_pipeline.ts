// The RedisClient's pipelining: the commands in flight on a connection, the matching of replies
// to them in order, and each command's time limit.
import type { Deque } from "../../util/queue.ts";
import { ConnectionError } from "../../errors.ts";
import type { NetSocket } from "../../runtime/net.ts";
import { unrefTimer } from "../../runtime/process.ts";
import {
  type Arg,
  PushReply,
  RedisError,
  type Reply,
  RespEncoder,
  type RespParser,
  RespProtocolError,
} from "./_resp.ts";

export type Timer = ReturnType<typeof setTimeout>;

/** A command waiting for its reply. */
export interface Pending {
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

/** One socket and its protocol state. */
export interface Conn {
  socket: NetSocket;
  parser: RespParser;
  inflight: Deque<Pending>;
  dropped: boolean;
  /** Resolves once the socket has closed. */
  closed: Promise<void>;
  /** While connecting: rejects the connect step when the socket fails. */
  onDrop: ((reason: Error) => void) | undefined;
}

/** A command not sent yet (its deadline is set by the sender). */
export function newPending(
  resolve: (reply: Reply) => void,
  reject: (error: Error) => void,
  args: readonly Arg[],
  bytes: boolean,
  timeout: number,
): Pending {
  return {
    resolve,
    reject,
    args,
    bytes,
    sent: false,
    done: false,
    timeout,
    deadline: 0,
    waitTimer: undefined,
  };
}

/** Rejects `pending` with `error` unless it was settled already. */
export function settle(pending: Pending, error: Error): void {
  if (pending.done) return;
  pending.done = true;
  if (pending.waitTimer !== undefined) clearTimeout(pending.waitTimer);
  pending.reject(error);
}

export function argText(arg: Arg | undefined): string {
  return arg instanceof Uint8Array ? new TextDecoder().decode(arg) : String(arg);
}

/**
 * How long a blocking command may block by its own arguments, in ms (0 = for ever), or
 * undefined for a command that does not block.
 */
export function blockingTime(args: readonly Arg[]): number | undefined {
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
export function defaultTimeout(args: readonly Arg[], commandTimeout: number): number {
  if (commandTimeout <= 0) return 0;
  const block = blockingTime(args);
  if (block === undefined) return commandTimeout;
  return block === 0 ? 0 : block + commandTimeout;
}

export function commandName(args: readonly Arg[]): string {
  const first = args[0];
  if (first instanceof Uint8Array) return new TextDecoder().decode(first).toUpperCase();
  return typeof first === "string" ? first.toUpperCase() : String(first);
}

/**
 * Feeds `chunk` to `conn`'s parser and settles the in-flight commands its replies answer, in
 * order; push replies go to `onPush`. A protocol error or an unmatched reply drops `conn`.
 */
export function readReplies(
  conn: Conn,
  chunk: Uint8Array,
  hooks: {
    onPush: ((push: PushReply) => void) | undefined;
    drop: (conn: Conn, reason: Error) => void;
  },
): void {
  if (conn.dropped) return;
  const parser = conn.parser;
  const inflight = conn.inflight;
  parser.feed(chunk);
  for (;;) {
    let reply: Reply | PushReply | undefined;
    try {
      reply = parser.next(inflight.peek()?.bytes ?? false);
    } catch (error) {
      hooks.drop(conn, error as Error);
      return;
    }
    if (reply === undefined) return;
    if (reply instanceof PushReply) {
      try {
        hooks.onPush?.(reply);
      } catch {
        // A failing listener must not break the connection.
      }
      continue;
    }
    const pending = inflight.shift();
    if (pending === undefined) {
      hooks.drop(
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

/** Sends a command on `conn` now (handshake), bypassing the state machine. */
export function sendOn(conn: Conn, args: Arg[]): Promise<Reply> {
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

/** The error of a command whose time limit passed (sent: unanswered; else: never sent). */
export function expiredError(
  pending: Pending,
  address: string,
  lastError: Error | undefined,
): ConnectionError {
  const name = commandName(pending.args);
  const timeout = pending.timeout;
  return new ConnectionError(
    pending.sent
      ? `Redis at ${address} did not answer ${name} within ${timeout} ms ` +
        `(it may still run). Raise commandTimeout or the per-call timeout, and ` +
        `send blocking commands on a duplicate() connection.`
      : `Could not send ${name} within ${timeout} ms: not connected to Redis at ` +
        `${address} (${lastError?.message ?? "connecting"}).`,
    { cause: pending.sent ? undefined : lastError },
  );
}

/**
 * The error of a command not sent while reconnecting: at once (`whileDisconnected: "fail"`,
 * `maxWait` undefined) or after waiting `maxWait` ms.
 */
export function notSentError(
  pending: Pending,
  address: string,
  lastError: Error | undefined,
  maxWait: number | undefined,
): ConnectionError {
  const name = commandName(pending.args);
  return new ConnectionError(
    maxWait === undefined
      ? `Not connected to Redis at ${address} (reconnecting after: ` +
        `${lastError?.message ?? "connection lost"}); ${name} was not sent. Retry later, or ` +
        `use whileDisconnected: "wait".`
      : `Not connected to Redis at ${address} for ${maxWait} ms ` +
        `(last error: ${lastError?.message ?? "connection lost"}); ` +
        `${name} was not sent. Check that the server is up, or raise maxWait.`,
    { cause: lastError },
  );
}

/**
 * The time limits of a client's commands. One timer for all: armed for the earliest deadline,
 * and not cleared when that command is answered (a timer per command costs more than the round
 * trip on Deno). When it fires it fails the overdue commands and re-arms for the next deadline.
 */
export class Deadlines {
  #timer: Timer | undefined;
  /** When `#timer` fires (`performance.now()` clock). */
  #at = 0;

  constructor(
    readonly of: {
      /** Every unsettled command that may have a time limit. */
      pending(): Iterable<Pending>[];
      /** Fails an overdue command. */
      expire(pending: Pending): void;
      /** True once the client is closed (no re-arming). */
      closed(): boolean;
    },
  ) {}

  /** A command with `deadline` was sent. */
  track(deadline: number): void {
    if (this.#timer === undefined || deadline < this.#at) this.#arm(deadline);
  }

  /** Stops the timer (the client closed). */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** (Re)arms the timer for `deadline`. */
  #arm(deadline: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#at = deadline;
    this.#timer = setTimeout(this.#sweep, Math.max(1, Math.ceil(deadline - performance.now())));
    unrefTimer(this.#timer);
  }

  /** Fails the commands whose time limit passed; re-arms for the next deadline, if any. */
  #sweep = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    let next = Infinity;
    // Every unsettled command with a time limit is in flight on the current connection or
    // waiting for one; those of a dropped connection were settled when it dropped.
    for (const list of this.of.pending()) {
      for (const pending of list) {
        if (pending.done || pending.deadline === 0) continue;
        if (pending.deadline <= now) this.of.expire(pending);
        else if (pending.deadline < next) next = pending.deadline;
      }
    }
    if (next !== Infinity && !this.of.closed()) this.#arm(next);
  };
}

/**
 * Pipelined writes: commands encoded in the same tick go out in one socket write, at the end of
 * the tick, to the client's connection of that moment.
 */
export class Writer {
  readonly #out = new RespEncoder();
  #scheduled = false;

  constructor(readonly current: () => Conn | undefined) {}

  /** Encodes a command for `conn` and schedules the write (an encoding error rejects it). */
  write(conn: Conn, pending: Pending): void {
    try {
      this.#out.encode(pending.args);
    } catch (error) {
      settle(pending, error as Error);
      return;
    }
    pending.sent = true;
    conn.inflight.push(pending);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  /** Drops the bytes not written yet (they were for a connection that dropped). */
  discard(): void {
    this.#out.take();
  }

  #flush = (): void => {
    this.#scheduled = false;
    const conn = this.current();
    if (this.#out.length === 0) return;
    const bytes = this.#out.take();
    if (conn !== undefined && !conn.dropped) conn.socket.write(bytes);
  };
}
