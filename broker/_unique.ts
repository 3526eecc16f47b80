// Reading a unique job's options off a message, and the debounced replacement of a pending
// holder: what every broker with the `unique` capability does the same way.
import type { Message } from "../message.ts";
import { DEBOUNCE_OPTION, UNIQUE_FOR_OPTION, UNIQUE_KEY_OPTION } from "./ops.ts";
import { dqName, qName } from "./queue_name.ts";

/** A unique job's options. */
export interface UniqueOptions {
  /** `unique_key`. */
  key: string;
  /** `unique_for` (ms), when set. */
  uniqueFor?: number;
  /** `debounce` (ms), when set. */
  debounce?: number;
}

/** The unique options of `message`, or undefined when it has no string `unique_key`. */
export function uniqueOf(message: Message): UniqueOptions | undefined {
  const key = message.options[UNIQUE_KEY_OPTION];
  if (typeof key !== "string") return undefined;
  const uniqueFor = message.options[UNIQUE_FOR_OPTION];
  const debounce = message.options[DEBOUNCE_OPTION];
  return {
    key,
    ...(typeof uniqueFor === "number" && uniqueFor > 0 ? { uniqueFor } : {}),
    ...(typeof debounce === "number" && debounce >= 0 ? { debounce } : {}),
  };
}

/**
 * The message that replaces a pending holder: the new message's args, kwargs and options under
 * the holder's id, on the delay queue with `eta`.
 */
export function debounced(message: Message, holder: { messageId: string; eta: number }): Message {
  return message.copy({
    messageId: holder.messageId,
    queueName: dqName(qName(message.queueName)),
    options: { ...message.options, eta: holder.eta },
  });
}
