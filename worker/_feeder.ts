// Feeding the Web Workers of a worker process (see worker/_process.ts): the consumer loops
// receive messages into `pending` while the Web Workers have room, and `pump()` delivers them.
//
// Flow control. A postMessage costs tens of microseconds whatever it carries, so messages go to
// a Web Worker in batches. Each Web Worker may hold `slot.capacity` messages: its concurrency
// plus about AHEAD_MS of work at the pace it has been settling them (so quick actors get big
// batches), at least twice its concurrency, at most concurrency + MAX_PREFETCH. It is topped up
// once half its room is free, or when it has waited BATCH_WAIT ms (so a slow actor's Web Worker
// still gets the next message at once).
import type { Consumer, MessageProxy, RawDelivery, ReceiveOptions } from "../broker/broker.ts";
import { receiveBackoff, sleep } from "../util/async.ts";
import { formatError, type Logger } from "../util/log.ts";
import { MessageState, type ToWebWorker } from "./_protocol.ts";
import type { Held, Received, Slot } from "./_slot.ts";

/** Most messages a Web Worker holds beyond its concurrency. */
const MAX_PREFETCH = 512;
/** How much work, in ms at its recent pace, each Web Worker is given ahead. */
const AHEAD_MS = 5;
/** Longest time a Web Worker with room waits for a bigger batch, in ms. */
const BATCH_WAIT = 1;

/** The Web Workers, the messages waiting for them, and the delivery of those messages. */
export class Feeder {
  /** The Web Workers, by index. */
  readonly slots: Slot[] = [];
  /** Messages received, not delivered yet. */
  readonly pending: Received[] = [];
  /** The least and most messages a Web Worker may hold. */
  readonly capacity: { min: number; max: number };
  /** Set when the process stops: no more receiving nor delivering. */
  closed = false;
  /** Queue names travel to the Web Workers as indexes into this list. */
  #queues: string[] = [];
  #queueIndex = new Map<string, number>();
  readonly #concurrency: number;
  #wakeLoops: (() => void)[] = [];
  #pumpTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(concurrency: number) {
    this.#concurrency = concurrency;
    const c = concurrency;
    this.capacity = { min: 2 * c, max: c + Math.max(c, MAX_PREFETCH) };
  }

  /** Sets the queues messages come from (their order names them to the Web Workers). */
  setQueues(queues: string[]): void {
    this.#queues = queues;
    this.#queueIndex = new Map(queues.map((q, i) => [q, i]));
  }

  /** Whether `slot` takes messages. */
  accepts(slot: Slot | undefined): slot is Slot {
    return !this.closed && (slot?.state === "ready" || slot?.state === "booting");
  }

  /**
   * How many more messages to receive: the free room in the Web Workers plus a reserve of half
   * their capacity (so the next batch is ready when a Web Worker reports), less what is already
   * waiting here.
   */
  room(): number {
    let n = -this.pending.length;
    for (const slot of this.slots) {
      if (this.accepts(slot)) {
        n += Math.max(0, slot.capacity - slot.held.size) + (slot.capacity >> 1);
      }
    }
    return n;
  }

  /** Delivers pending messages to Web Workers with room, then lets the consumers receive more. */
  pump(): void {
    const now = performance.now();
    let wait = Infinity;
    const open: Slot[] = [];
    for (const s of this.slots) {
      if (!this.accepts(s) || s.held.size >= s.capacity) continue;
      const since = now - s.lastDelivery;
      if (s.capacity - s.held.size >= s.capacity / 2 || since >= BATCH_WAIT) open.push(s);
      else wait = Math.min(wait, BATCH_WAIT - since);
    }
    if (this.pending.length > 0 && wait < Infinity && this.#pumpTimer === undefined) {
      this.#pumpTimer = setTimeout(() => {
        this.#pumpTimer = undefined;
        this.pump();
      }, wait);
    }
    // Share them evenly, roomiest Web Worker first.
    open.sort((a, b) => a.held.size - b.held.size);
    for (let i = 0; i < open.length && this.pending.length > 0; i++) {
      const slot = open[i]!;
      const n = Math.min(
        slot.capacity - slot.held.size,
        Math.ceil(this.pending.length / (open.length - i)),
      );
      slot.lastDelivery = now;
      this.#deliver(slot, this.pending.splice(0, n));
    }
    const wakers = this.#wakeLoops;
    this.#wakeLoops = [];
    for (const w of wakers) w();
  }

  /** Hands `batch` to `slot`: one buffer of JSON for the whole batch, transferred, not copied. */
  #deliver(slot: Slot, batch: Received[]): void {
    const max = this.capacity.max;
    const tags = new Float64Array(batch.length);
    const ends = new Uint32Array(batch.length);
    const queueOf = new Uint16Array(batch.length);
    let size = 0;
    for (const r of batch) size += r.delivery.data.length;
    const bytes = new Uint8Array(size);
    let at = 0;
    for (let k = 0; k < batch.length; k++) {
      const r = batch[k]!;
      const cell = slot.free.pop()!;
      const tag = ++slot.seq * max + cell;
      Atomics.store(slot.states, cell, MessageState.DELIVERED);
      slot.held.set(tag, {
        queue: r.queue,
        delivery: r.delivery,
        deadline: Infinity,
        wire: r.wire,
        polled: r.polled,
      });
      tags[k] = tag;
      bytes.set(r.delivery.data, at);
      ends[k] = at += r.delivery.data.length;
      queueOf[k] = this.#queueIndex.get(r.queue)!;
    }
    const deliver: ToWebWorker = {
      type: "deliver",
      tags,
      queues: this.#queues,
      queueOf,
      bytes,
      ends,
    };
    slot.worker.postMessage(deliver, [tags.buffer, ends.buffer, queueOf.buffer, bytes.buffer]);
  }

  /**
   * Receives from `queue` while the process runs and the Web Workers have room, retrying a
   * failed receive with a backoff (cut short when `options.signal` aborts: the stop).
   */
  async consume(
    queue: string,
    consumer: Consumer,
    options: ReceiveOptions & {
      logger: Logger;
      toRaw: (m: MessageProxy) => RawDelivery;
    },
  ): Promise<void> {
    const { logger, toRaw, ...receive } = options;
    let failures = 0;
    while (!this.closed) {
      const max = this.room();
      if (max <= 0) {
        await new Promise<void>((resolve) => this.#wakeLoops.push(resolve));
        continue;
      }
      try {
        const batch = consumer.receiveRaw
          ? await consumer.receiveRaw(max, receive)
          : (await consumer.receive(max, receive)).map(toRaw);
        failures = 0;
        for (const delivery of batch) this.pending.push({ queue, delivery });
      } catch (e) {
        failures++;
        const wait = receiveBackoff(failures);
        logger.error(`Consumer failed to receive (retrying in ${wait} ms): ${formatError(e)}`);
        await sleep(wait, receive.signal); // a stop ends the wait at once
      }
      this.pump();
    }
  }

  /** Forgets the message tagged `tag` (settled), freeing its cell; returns it if it was held. */
  release(slot: Slot, tag: number): Held | undefined {
    const h = slot.held.get(tag);
    if (h) {
      slot.held.delete(tag);
      slot.free.push(tag % this.capacity.max);
    }
    return h;
  }

  /** Sizes the slot's capacity to about AHEAD_MS of work at the pace it settles messages. */
  pace(slot: Slot, settled: number): void {
    slot.settled += settled;
    const now = performance.now(), elapsed = now - slot.paceSince;
    if (elapsed < 10) return;
    const ahead = Math.ceil(slot.settled / elapsed * AHEAD_MS);
    slot.capacity = Math.min(
      this.capacity.max,
      Math.max(this.capacity.min, this.#concurrency + ahead),
    );
    slot.settled = 0;
    slot.paceSince = now;
  }

  /** Stops receiving and delivering: wakes the consumer loops, which end. */
  close(): void {
    this.closed = true;
    clearTimeout(this.#pumpTimer);
    this.pump();
  }
}
