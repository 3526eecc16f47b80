// The RedisBroker's consumers: of a queue (batched fetches, a blocking wait while it is empty)
// and of a delay queue (holds delayed messages until due).
import {
  type Consumer,
  type MessageProxy,
  type RawDelivery,
  type ReceiveOptions,
  toRawDelivery,
} from "../broker.ts";
import type { JsonObject } from "../../message.ts";
import { Heap } from "../../util/queue.ts";
import { sleep } from "../../util/async.ts";
import { getLogger } from "../../util/log.ts";
import type { RedisClient } from "./client.ts";
import { BATCH, type Core } from "./_core.ts";
import { MOVE_MARK } from "./_wire.ts";
import { receiptOf, type RedisReceipt } from "./_broker_options.ts";

const logger = getLogger("dramatis.broker.RedisBroker");

/** Consumes `q`: fetches in batches, and blocks on the list while it is empty. */
export class RedisConsumer implements Consumer {
  protected closed = false;
  protected readonly closer = new AbortController();
  #blocking: Promise<RedisClient> | undefined;
  #wait: Promise<void> | undefined;

  constructor(protected readonly core: Core, readonly queueName: string) {}

  receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]> {
    return this.#receive(max, options, (n) => this.core.fetch(this.queueName, n));
  }

  receiveRaw(max: number, options: ReceiveOptions): Promise<RawDelivery[]> {
    return this.#receive(max, options, (n) => this.core.fetchRaw(this.queueName, n));
  }

  async #receive<T extends { receipt: unknown }>(
    max: number,
    options: ReceiveOptions,
    fetch: (n: number) => Promise<T[]>,
  ): Promise<T[]> {
    if (this.closed || max <= 0) return [];
    const deadline = Date.now() + options.timeout;
    for (;;) {
      const paused = this.core.isPaused(this.queueName);
      if (paused === true || (paused !== false && await paused)) {
        // A paused queue delivers nothing: look again a little later, until the timeout.
        const left = deadline - Date.now();
        if (this.closed || options.signal?.aborted || left <= 0) return [];
        await raceSignals(undefined, Math.min(left, 100), options.signal, this.closer.signal);
        continue;
      }
      const batch = await fetch(max);
      if (batch.length > 0) {
        if (this.closed) {
          await this.core.requeue(batch.map((m) => m.receipt as RedisReceipt));
          return [];
        }
        return batch;
      }
      if (this.closed || options.signal?.aborted) return [];
      const left = deadline - Date.now();
      if (left <= 0) return [];
      await this.waitForData(left, options.signal);
    }
  }

  /**
   * Waits up to `ms` for the queue's list to be non-empty: `BLMOVE q q RIGHT RIGHT` on a
   * connection of its own puts the last element back where it was, so nothing changes, but it
   * returns as soon as any producer (dramatis or Python) pushes. One wait at a time per
   * consumer; a receive that gave up early leaves it running for the next one.
   */
  protected async waitForData(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (!this.#wait) {
      const key = `${this.core.ns}:${this.queueName}`;
      const seconds = Math.max(0.01, ms / 1000).toFixed(3);
      this.#blocking ??= this.core.newBlockingClient();
      this.#wait = this.#blocking
        .then((c) => c.send(["BLMOVE", key, key, "RIGHT", "RIGHT", seconds], { timeout: 0 }))
        .then(
          () => {},
          async (e) => {
            if (this.closed) return;
            logger.debug(`Blocking wait on ${key} failed: ${(e as Error).message}`);
            await sleep(Math.min(ms, 200), this.closer.signal);
          },
        )
        .finally(() => this.#wait = undefined);
    }
    await raceSignals(this.#wait, ms, signal, this.closer.signal);
  }

  ack(message: MessageProxy | RawDelivery): Promise<void> {
    const r = receiptOf(message);
    return this.core.settling(r, () => this.core.acks.add(`${r.owner}\n${r.queue}`, r.rid));
  }

  nack(message: MessageProxy): Promise<void> {
    const r = receiptOf(message);
    const options: JsonObject = { ...message.options };
    delete options[MOVE_MARK];
    const payload = JSON.stringify({ ...message.asDict(), options });
    return this.core.settling(
      r,
      () => this.core.settle("nack", r.queue, [r.owner, r.rid, payload]),
    );
  }

  requeue(messages: (MessageProxy | RawDelivery)[]): Promise<void> {
    return this.core.requeue(messages.map(receiptOf));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closer.abort();
    this.core.consumers.delete(this);
    const blocking = this.#blocking;
    this.#blocking = undefined;
    if (blocking) await blocking.then((c) => c.close(), () => {});
    // Acks still retrying (Redis unreachable) must not hold up a worker's stop for ever.
    await raceSignals(this.core.acks.drain(), this.core.commandTimeout);
  }
}

interface Held {
  message: MessageProxy;
  eta: number;
}

/**
 * Consumes `q.DQ` the way Dramatiq does: fetches delayed messages into its ack set and holds
 * them until due (they stay in Redis, in the ack set, and come back if this process dies);
 * `receive` returns only due ones. The worker then enqueues each on `q`, which the broker turns
 * into one atomic move.
 */
export class DelayConsumer extends RedisConsumer {
  #held = new Heap<Held>((a, b) => a.eta < b.eta);

  constructor(core: Core, queueName: string, readonly holdLimit: number) {
    super(core, queueName);
  }

  /** Delayed messages are decoded here (their eta decides when they are handed out). */
  override async receiveRaw(max: number, options: ReceiveOptions): Promise<RawDelivery[]> {
    return (await this.receive(max, options)).map(toRawDelivery);
  }

  override async receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]> {
    if (this.closed || max <= 0) return [];
    const deadline = Date.now() + options.timeout;
    for (;;) {
      const room = this.holdLimit - this.#held.length;
      let drained = false;
      if (room > 0) {
        const want = Math.min(room, BATCH);
        const batch = await this.core.fetch(this.queueName, want);
        for (const message of batch) {
          const eta = message.options.eta;
          this.#held.push({ message, eta: typeof eta === "number" ? eta : 0 });
        }
        drained = batch.length < want;
      }
      if (this.closed) return [];
      const now = Date.now();
      const due: MessageProxy[] = [];
      while (due.length < max && this.#held.length > 0 && this.#held.peek()!.eta <= now + 1) {
        const m = this.#held.pop()!.message;
        m.options[MOVE_MARK] = (m.receipt as RedisReceipt).rid;
        due.push(m);
      }
      if (due.length > 0) return due;
      if (options.signal?.aborted) return [];
      if (room > 0 && !drained) continue; // more waiting in the list: take them first
      const left = deadline - now;
      if (left <= 0) return [];
      const head = this.#held.peek();
      const wait = Math.min(left, head ? Math.max(1, head.eta - now) : Infinity);
      if (room > 0) await this.waitForData(wait, options.signal);
      else await raceSignals(undefined, wait, options.signal, this.closer.signal);
    }
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    const held = this.#held.clear().map((h) => h.message.receipt as RedisReceipt);
    await super.close();
    if (held.length > 0) {
      try {
        await this.core.requeue(held);
      } catch (e) {
        logger.warning(
          `Could not hand ${held.length} delayed message(s) back to ${this.queueName} ` +
            `(${(e as Error).message}); they are recovered after the heartbeat timeout.`,
        );
      }
    }
  }
}

/** Resolves when `promise` settles, `ms` pass, or a signal aborts. */
function raceSignals(
  promise: Promise<void> | undefined,
  ms: number,
  ...signals: (AbortSignal | undefined)[]
): Promise<void> {
  return new Promise<void>((resolve) => {
    const live = signals.filter((s): s is AbortSignal => s !== undefined);
    if (live.some((s) => s.aborted)) return resolve();
    const timer = setTimeout(done, ms);
    for (const s of live) s.addEventListener("abort", done, { once: true });
    promise?.then(done, done);
    function done() {
      clearTimeout(timer);
      for (const s of live) s.removeEventListener("abort", done);
      resolve();
    }
  });
}
