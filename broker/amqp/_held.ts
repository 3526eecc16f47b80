// Publishes made while their channel is down (reconnecting): held, then published once it is
// open again, or failed after maxWait.
import { ConnectionError } from "../../errors.ts";
import { Deque } from "../../util/queue.ts";
import type { AmqpPublishOptions } from "./_channel_types.ts";

interface Held {
  routingKey: string;
  body: string | Uint8Array;
  options: AmqpPublishOptions;
  resolve: () => void;
  reject: (e: Error) => void;
  done: boolean;
  timer: ReturnType<typeof setTimeout>;
}

export class HeldPublishes {
  #held = new Deque<Held>();

  get length(): number {
    return this.#held.length;
  }

  /** Holds a publish for up to `maxWait` ms. */
  hold(
    routingKey: string,
    body: string | Uint8Array,
    options: AmqpPublishOptions,
    wait: { maxWait: number; address: string },
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const held: Held = {
        routingKey,
        body,
        options,
        resolve,
        reject,
        done: false,
        timer: setTimeout(() => {
          held.done = true;
          reject(
            new ConnectionError(
              `Could not publish to ${JSON.stringify(routingKey)} within ${wait.maxWait} ms: ` +
                `not connected to RabbitMQ at ${wait.address} (reconnecting).`,
            ),
          );
        }, wait.maxWait),
      };
      this.#held.push(held);
    });
  }

  /** Publishes everything held, with `publish`, in order. */
  release(
    publish: (key: string, body: string | Uint8Array, o: AmqpPublishOptions) => Promise<void>,
  ): void {
    for (const h of this.#held.clear()) {
      if (h.done) continue;
      clearTimeout(h.timer);
      publish(h.routingKey, h.body, h.options).then(h.resolve, h.reject);
    }
  }

  /** Fails everything held. */
  fail(error: Error): void {
    for (const h of this.#held.clear()) {
      clearTimeout(h.timer);
      if (!h.done) h.reject(error);
    }
  }
}
