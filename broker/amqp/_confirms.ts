// Publisher confirms of one channel: one promise per publish, settled by the server's
// basic.ack / basic.nack (a `multiple` one settles every earlier publish too; single ones may
// come out of order). A mandatory publish the server returned (basic.return, which comes before
// its ack) rejects instead of resolving.
import { AmqpError } from "./errors.ts";
import type { Method } from "./_methods.ts";
import { SeqWindow } from "./_window.ts";

/** One publish waiting for its confirm. */
export interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
  done: boolean;
  exchange: string;
  routingKey: string;
  body: string | Uint8Array;
  returned?: AmqpError;
}

const encoder = new TextEncoder();
const isDone = (p: Pending) => p.done;

export class Confirms {
  #window = new SeqWindow<Pending>();
  /** Publishes not settled yet. */
  open = 0;

  add(p: Pending): void {
    this.#window.push(p);
    this.open++;
  }

  /** basic.ack (no error) or basic.nack (error) for `tag`, and earlier ones if `multiple`. */
  settle(tag: number, multiple: boolean, error?: Error): void {
    const w = this.#window;
    const settle = (p: Pending | undefined) => {
      if (!p || p.done) return;
      p.done = true;
      this.open--;
      const e = error ?? p.returned;
      if (e) p.reject(e);
      else p.resolve();
    };
    if (multiple) {
      for (let n = w.first; n <= tag && n < w.next; n++) settle(w.at(n));
    } else {
      settle(w.at(tag));
    }
    w.trim(isDone);
  }

  /** basic.return: marks the oldest matching unsettled publish as returned. */
  returned(m: Method, body: Uint8Array): void {
    const { replyCode, replyText, exchange, routingKey } = m.args;
    const w = this.#window;
    for (let n = w.first; n < w.next; n++) {
      const p = w.at(n);
      if (!p || p.done || p.returned || p.exchange !== exchange || p.routingKey !== routingKey) {
        continue;
      }
      if (!sameBytes(typeof p.body === "string" ? encoder.encode(p.body) : p.body, body)) continue;
      p.returned = new AmqpError(
        `RabbitMQ returned a message published to ${JSON.stringify(routingKey)}` +
          `${
            exchange ? ` on exchange ${JSON.stringify(exchange)}` : ""
          }: ${replyCode} ${replyText}`,
        { code: replyCode, text: replyText, classId: 60, methodId: 40 },
      );
      return;
    }
  }

  /** Forgets every publish (the channel is gone); returns the unsettled ones. */
  reset(): Pending[] {
    this.open = 0;
    return this.#window.clear().filter((p) => !p.done);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
