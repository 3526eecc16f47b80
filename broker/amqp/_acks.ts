// Delivery acknowledgements of one channel, coalesced: the acks issued in one tick go out as
// one `basic.ack multiple` for the run of settled deliveries at the head of the channel's
// unacked ones (RabbitMQ then does one operation instead of many), and singly for the rest.
// Nacks and rejects are sent at once. Every delivery of the channel is tracked (tags are
// numbered 1, 2, 3, ... per channel), so a multiple ack never covers one not settled here.
import { SeqWindow } from "./_window.ts";

const UNSETTLED = 0, ACKED = 1, SENT = 2;

export class Acks {
  #window = new SeqWindow<number>();
  #scheduled = false;
  /** False once tags stopped being consecutive: then every ack goes out singly. */
  #ordered = true;

  /** `send(tag, multiple)` writes a basic.ack. */
  constructor(private readonly send: (tag: number, multiple: boolean) => void) {}

  /** A delivery that needs an ack arrived. */
  delivered(tag: number): void {
    if (!this.#ordered) return;
    if (tag !== this.#window.next) {
      this.#ordered = false;
      this.#window.clear();
      return;
    }
    this.#window.push(UNSETTLED);
  }

  /** Acks `tag` (at the end of this tick, with the others). */
  ack(tag: number): void {
    if (!this.#ordered || this.#window.at(tag) === undefined) return this.send(tag, false);
    this.#window.set(tag, ACKED);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** `tag` (and, with `multiple`, every earlier one) was settled by a frame sent now. */
  settled(tag: number, multiple = false): void {
    if (!this.#ordered) return;
    const w = this.#window;
    if (multiple) { for (let n = w.first; n <= tag && n < w.next; n++) w.set(n, SENT); }
    else if (w.at(tag) !== undefined) w.set(tag, SENT);
    w.trim((s) => s === SENT);
  }

  flush = (): void => {
    this.#scheduled = false;
    const w = this.#window;
    let last = 0;
    for (let n = w.first; n < w.next; n++) {
      const s = w.at(n)!;
      if (s === UNSETTLED) break;
      if (s === ACKED) last = n;
    }
    if (last > 0) {
      this.send(last, true);
      for (let n = w.first; n <= last; n++) w.set(n, SENT);
    }
    w.trim((s) => s === SENT);
    // The rest wait behind an unsettled delivery: ack them singly now, not after it.
    for (let n = w.first; n < w.next; n++) {
      if (w.at(n) === ACKED) {
        this.send(n, false);
        w.set(n, SENT);
      }
    }
  };

  /** The channel is gone: forget every delivery. */
  reset(): void {
    this.#window.clear();
    this.#ordered = true;
    this.#scheduled = false;
  }
}
