// The unique-job keys a StubBroker holds: who holds each key, and until when.
import type { Message } from "../message.ts";

interface UniqueHold {
  /** The holder's message id. */
  id: string;
  /** The holder as enqueued. */
  message: Message;
  /** The key is held at least until then (`message_timestamp + unique_for`). */
  until: number;
}

/** The holders of the unique keys of one StubBroker. */
export class StubUniques {
  readonly #holds = new Map<string, UniqueHold>();

  /** `message` holds `key` from now on, at least `uniqueFor` ms past its timestamp. */
  hold(key: string, message: Message, uniqueFor = 0): void {
    this.#holds.set(key, {
      id: message.messageId,
      message,
      until: message.messageTimestamp + uniqueFor,
    });
  }

  /**
   * The holder of `key` when it is another message than `messageId` and still holds it: while
   * it is queued, delayed or running (`live`), or its `unique_for` has not passed.
   */
  holder(
    key: string,
    messageId: string,
    now: number,
    live: (id: string) => boolean,
  ): UniqueHold | undefined {
    const hold = this.#holds.get(key);
    return hold && hold.id !== messageId && (live(hold.id) || now < hold.until) ? hold : undefined;
  }
}
