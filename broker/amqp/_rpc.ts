// The synchronous methods of one channel (declare, purge, qos, consume, get, ...): sent one at a
// time, each waiting for its reply. Two lanes: the setup lane (confirm.select, qos, restoring
// consumers after a recovery) goes first and may run while the channel is still being set up;
// the user lane waits for the channel to be open, each call for at most maxWait.
import { ConnectionError } from "../../errors.ts";
import { Deque } from "../../util/queue.ts";
import type { Method } from "./_methods.ts";

/** A reply: a method, or (for basic.get-ok) a message. */
export type Reply = Method | { body: Uint8Array };

interface Rpc {
  name: string;
  args: Record<string, unknown>;
  /** The method names that answer it; emptied once settled (skipped then). */
  reply: string[];
  onReply?: ((m: Method) => void) | undefined;
  resolve: (m: Reply | undefined) => void;
  reject: (e: Error) => void;
  timer?: ReturnType<typeof setTimeout> | undefined;
}

/** What the queue needs from its channel. */
export interface RpcChannel {
  /** Which lanes may send now. */
  phase(): "down" | "setup" | "open";
  /** Writes the method frame (throws if it cannot be encoded). */
  write(name: string, args: Record<string, unknown>): void;
  maxWait(): number;
  address(): string;
}

export class RpcQueue {
  #setup = new Deque<Rpc>();
  #user = new Deque<Rpc>();
  #inFlight: Rpc | undefined;

  constructor(private readonly ch: RpcChannel) {}

  /** The arguments of the call waiting for its reply, if any. */
  get inFlightArgs(): Record<string, unknown> | undefined {
    return this.#inFlight?.args;
  }

  /**
   * Sends `name` once its turn comes and resolves with the reply. `onReply` runs as the reply
   * arrives, before the frames after it (a consumer's first deliveries).
   */
  call(
    name: string,
    args: Record<string, unknown>,
    reply: string[],
    options: { setup?: boolean; onReply?: ((m: Method) => void) | undefined } = {},
  ): Promise<Reply | undefined> {
    return new Promise((resolve, reject) => {
      const rpc: Rpc = { name, args, reply, resolve, reject, onReply: options.onReply };
      if (options.setup) this.#setup.push(rpc);
      else {
        this.#user.push(rpc);
        if (this.ch.phase() !== "open") {
          const wait = this.ch.maxWait();
          rpc.timer = setTimeout(() => {
            rpc.timer = undefined;
            if (this.#inFlight === rpc) return;
            this.#fail(
              rpc,
              new ConnectionError(
                `Could not send ${name} within ${wait} ms: the channel to RabbitMQ at ` +
                  `${this.ch.address()} is not open (reconnecting).`,
              ),
            );
          }, wait);
        }
      }
      this.pump();
    });
  }

  /** Sends the next call, if one may go now and none is waiting for its reply. */
  pump(): void {
    if (this.#inFlight) return;
    const phase = this.ch.phase();
    let lane: Deque<Rpc> | undefined;
    if (phase !== "down" && this.#setup.length > 0) lane = this.#setup;
    else if (phase === "open") lane = this.#user;
    if (!lane) return;
    let rpc: Rpc | undefined;
    while ((rpc = lane.shift()) !== undefined && rpc.reply.length === 0); // skip settled ones
    if (rpc === undefined) return;
    if (rpc.timer !== undefined) clearTimeout(rpc.timer);
    rpc.timer = undefined;
    this.#inFlight = rpc;
    try {
      this.ch.write(rpc.name, rpc.args);
    } catch (e) {
      this.#inFlight = undefined;
      rpc.reply = [];
      rpc.reject(e as Error);
      this.pump();
    }
  }

  #fail(rpc: Rpc, error: Error): void {
    if (rpc.timer !== undefined) clearTimeout(rpc.timer);
    rpc.timer = undefined;
    rpc.reply = [];
    rpc.reject(error);
  }

  /** A method (or get-ok message) arrived: settles the call waiting for it. */
  answer(m: Reply, name: string): boolean {
    const rpc = this.#inFlight;
    if (!rpc || !rpc.reply.includes(name)) return false;
    this.#inFlight = undefined;
    rpc.reply = [];
    if (rpc.onReply && !("body" in m)) rpc.onReply(m as Method);
    rpc.resolve(m);
    this.pump();
    return true;
  }

  /** The channel was lost: the call in flight and the setup lane fail; user calls wait on. */
  lost(errorFor: (name: string) => Error, setupError: Error): void {
    const rpc = this.#inFlight;
    this.#inFlight = undefined;
    if (rpc) this.#fail(rpc, errorFor(rpc.name));
    for (const r of this.#setup.clear()) this.#fail(r, setupError);
  }

  /** The channel is closed for good: every call fails. */
  shut(error: Error): void {
    const rpc = this.#inFlight;
    this.#inFlight = undefined;
    if (rpc) this.#fail(rpc, error);
    for (const r of [...this.#setup.clear(), ...this.#user.clear()]) this.#fail(r, error);
  }
}
