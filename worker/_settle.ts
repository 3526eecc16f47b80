// Settling the messages of a worker process's Web Workers (see worker/_process.ts): acks, nacks
// and requeues as a Web Worker reports them, everything a Web Worker held when it is gone, and a
// message no Web Worker will finish (stuck or cancelled), failed here as a Worker would.
import type { Broker, Consumer, MessageProxy } from "../broker/broker.ts";
import { Cancelled, TimeLimitExceeded } from "../errors.ts";
import { formatError, type Logger } from "../util/log.ts";
import { MessageState, type SettleMessage } from "./_protocol.ts";
import type { Feeder } from "./_feeder.ts";
import type { ProcessOps } from "./_process_ops.ts";
import { asDue, runsDueInPlace } from "./_delays.ts";
import { cellOf, type Held, idOf, type Received, type Slot } from "./_slot.ts";

/** The broker and its module (imported once the Web Workers are on their way). */
export interface SettleBroker {
  broker: Broker;
  module: typeof import("../broker/broker.ts");
}

/** Settles messages with the consumers they came from. */
export class Settler {
  /** The consumer of each queue. */
  readonly consumers = new Map<string, Consumer>();
  /** Set once the broker is known. */
  broker: SettleBroker | undefined;
  /** The broker operations (set once the consumers run). */
  ops: ProcessOps | undefined;
  readonly #feeder: Feeder;
  readonly #logger: Logger;

  constructor(feeder: Feeder, logger: Logger) {
    this.#feeder = feeder;
    this.#logger = logger;
  }

  /**
   * Runs a consumer operation (resolving when it is done), logging its failure: the broker then
   * delivers the message again when its lease expires.
   */
  settle(what: () => string, op: () => unknown): Promise<void> | undefined {
    const failed = (e: unknown) =>
      this.#logger.error(
        `Could not ${what()}; the broker will deliver it again when its lease expires: ` +
          formatError(e),
      );
    try {
      const r = op();
      if (r instanceof Promise) return r.then(() => {}, failed);
    } catch (e) {
      failed(e);
    }
    return undefined;
  }

  /** What a Web Worker reports: actors started, messages acked, nacked, bad or handed back. */
  onSettle(slot: Slot, msg: SettleMessage): void {
    const { started } = msg, held = slot.held, feeder = this.#feeder;
    for (let i = 0; i < started.length; i += 2) {
      const h = held.get(started[i]!);
      if (h) {
        h.deadline = started[i + 1]!;
        h.startedAt = Date.now();
      }
    }
    for (const tag of msg.acks) {
      const h = feeder.release(slot, tag);
      if (!h) continue;
      this.settle(() => `ack message ${idOf(h)}`, () => this.#consumer(h).ack(h.delivery));
    }
    for (const [tag, json] of msg.nacks) {
      const h = feeder.release(slot, tag);
      if (!h) continue;
      const m = this.broker!.module.MessageProxy.decode(json) as MessageProxy;
      m.receipt = h.delivery.receipt;
      this.settle(() => `nack message ${m.messageId}`, () => this.#consumer(h).nack(m));
    }
    for (const [tag, error] of msg.bad) {
      const h = feeder.release(slot, tag);
      if (!h) continue;
      // The consumer's decode() dead-letters a message that cannot be decoded, and logs why.
      const m = h.delivery.decode();
      if (m) {
        this.#logger.error(
          `Web Worker ${slot.index + 1} could not decode message ${m.messageId}: ${error}`,
        );
        this.settle(() => `nack message ${m.messageId}`, () => this.#consumer(h).nack(m));
      }
    }
    const requeued: Held[] = [];
    for (const tag of msg.requeues) {
      const h = feeder.release(slot, tag);
      if (h) requeued.push(h);
    }
    void this.requeue(requeued);
    feeder.pace(slot, msg.acks.length + msg.nacks.length + msg.requeues.length);
    feeder.pump();
  }

  /** Hands `list` back to the broker, a batch per queue. */
  async requeue(list: Received[]): Promise<void> {
    const byQueue = Map.groupBy(list, (r) => r.queue);
    for (const [queue, rs] of byQueue) {
      await this.settle(
        () => `hand ${rs.length} message(s) back to ${queue}`,
        () => this.consumers.get(queue)!.requeue(rs.map((r) => r.delivery)),
      );
    }
  }

  /**
   * Settles every message of a Web Worker that is gone or being replaced: fails `stuck` (if
   * given), acks or nacks those it had finished (shared memory says so, even if it could not
   * report it), and hands the rest back: the unstarted ones, and those it was running (they were
   * interrupted: they run again, as after a crash).
   */
  async handBack(slot: Slot, stuck?: Held): Promise<void> {
    const back: Held[] = [];
    for (const [tag, h] of slot.held) {
      if (h === stuck) continue;
      const state = Atomics.load(slot.states, cellOf(slot, tag));
      const consumer = this.#consumer(h);
      if (state === MessageState.ACKED) {
        this.settle(() => `ack message ${idOf(h)}`, () => consumer.ack(h.delivery));
      } else if (state === MessageState.NACKED) {
        // Its report (with the traceback) did not arrive: dead-letter it as it was delivered.
        const m = h.delivery.decode();
        if (m) this.settle(() => `nack message ${m.messageId}`, () => consumer.nack(m));
      } else {
        back.push(h);
      }
    }
    slot.held.clear();
    await this.requeue(back);
    if (stuck) {
      const error = stuck.cancelledAt !== undefined ? cancelledError : stuckError;
      await this.settle(() => `fail message ${idOf(stuck)}`, () => this.failHere(stuck, error));
    }
  }

  /**
   * Settles a message no Web Worker will finish, failed with `errorOf(m)`, as a Worker would
   * (worker/_run.ts `settle`): the hooks run here (Retries retries a time limit, not a cancel;
   * Results stores the failure).
   */
  async failHere(
    { queue, delivery }: Received,
    errorOf: (m: MessageProxy) => Error,
  ): Promise<void> {
    const m = delivery.decode();
    if (!m) return; // undecodable: dead-lettered by decode()
    const { broker } = this.broker!;
    // A due delayed message would have run in place, as a message of `q` (worker/_delays.ts).
    if (queue.endsWith(".DQ") && runsDueInPlace(broker)) asDue(m);
    const retries = m.options.retries;
    const error = errorOf(m);
    m.error = error;
    const after = broker.emitAfter("processMessage", m, { error });
    if (after) await after;
    const { settle } = await import("./_run.ts");
    await settle(m, { broker, consumer: this.consumers.get(queue), requeue: false });
    this.ops?.settled(m, retries);
  }

  #consumer(r: Received): Consumer {
    return this.consumers.get(r.queue)!;
  }
}

const stuckError = (m: MessageProxy) =>
  new TimeLimitExceeded(
    `Actor ${m.actorName} exceeded its time limit and did not yield; its Web Worker was replaced.`,
  );

/** The error of a message cancelled here. */
export const cancelledError = (m: MessageProxy): Error =>
  new Cancelled(`Message ${m.messageId} was cancelled.`);
