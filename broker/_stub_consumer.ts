// The StubBroker's consumer: takes ready (or due) entries off one in-memory queue.
import type { Consumer, ReceiveOptions } from "./consumer.ts";
import { MessageProxy } from "../message.ts";
import type { Entry, StubQueue } from "./_stub_queue.ts";

/** What the consumer needs of its broker. */
export interface StubConsumerHost {
  _settled(entry: Entry): void;
  _deadLetter(message: MessageProxy): void;
  _requeue(entries: Entry[]): void;
  _isPaused(queue: StubQueue): boolean;
}

/** A consumer of one stub queue. */
export class StubConsumer implements Consumer {
  #closed = false;
  constructor(private readonly broker: StubConsumerHost, private readonly q: StubQueue) {}

  #available(now: number): boolean {
    const q = this.q;
    return q.ready > 0 && (!q.delayed || q.nextDue(now) === 0) && !this.broker._isPaused(q);
  }

  async receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]> {
    const q = this.q;
    let now = Date.now();
    if (!this.#available(now)) {
      const deadline = now + options.timeout;
      while (!this.#closed && !options.signal?.aborted) {
        now = Date.now();
        if (this.#available(now)) break;
        const paused = this.broker._isPaused(q);
        const wait = Math.min(deadline - now, q.delayed && !paused ? q.nextDue(now) : Infinity);
        if (wait <= 0) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, wait);
          const signal = options.signal;
          signal?.addEventListener("abort", done);
          q.waiters.add(done);
          function done() {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            q.waiters.delete(done);
            resolve();
          }
        });
      }
      now = Date.now();
    }
    if (this.#closed || this.broker._isPaused(q)) return [];
    const entries = q.take(max, now);
    const out: MessageProxy[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const m = MessageProxy.decode(entry.json) as MessageProxy;
      m.receipt = entry;
      out[i] = m;
    }
    return out;
  }

  ack(message: MessageProxy): void {
    this.broker._settled(message.receipt as Entry);
  }

  nack(message: MessageProxy): void {
    this.broker._deadLetter(message);
    this.broker._settled(message.receipt as Entry);
  }

  requeue(messages: MessageProxy[]): void {
    this.broker._requeue(messages.map((m) => m.receipt as Entry));
  }

  close(): void {
    this.#closed = true;
    for (const w of this.q.waiters) w();
  }
}
