// Dead letters that cannot be decoded (not UTF-8, not JSON, a field of the wrong type). They are
// kept, counted by `stats()` and listed by `deadLetters()` like the others, as a `Message` that
// says what was wrong, so that the count and the list always agree; they are never requeued
// (there is nothing a worker could run), only purged.
import { type JsonObject, Message } from "../message.ts";
import { getLogger } from "../util/log.ts";

/** The option naming why a dead letter could not be decoded (only such letters have it). */
export const UNDECODABLE = "dramatis_undecodable";
/** The option holding the start of such a letter's bytes, as text. */
export const UNDECODABLE_RAW = "dramatis_raw";
/** How much of an undecodable letter is shown. */
const RAW_CHARS = 2000;

/**
 * A dead letter that could not be decoded, as a Message: `options.traceback` and
 * `options.dramatis_undecodable` say why, `options.dramatis_raw` shows its first bytes. The
 * actor name, message id and timestamp are taken from the bytes when they hold them.
 */
export function undecodableLetter(
  data: Uint8Array,
  reason: string,
  where: { queueName: string; messageId: string; deadAt: number },
): Message {
  const text = new TextDecoder().decode(data);
  let o: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) o = parsed;
  } catch { /* not JSON at all */ }
  const options: JsonObject = {
    traceback: `DecodeError: ${reason}`,
    [UNDECODABLE]: reason,
    [UNDECODABLE_RAW]: text.length > RAW_CHARS ? `${text.slice(0, RAW_CHARS)}...` : text,
  };
  return new Message({
    queueName: where.queueName,
    actorName: typeof o.actor_name === "string" ? o.actor_name : "(undecodable)",
    args: [],
    options,
    messageId: typeof o.message_id === "string" ? o.message_id : where.messageId,
    messageTimestamp: typeof o.message_timestamp === "number" ? o.message_timestamp : where.deadAt,
  });
}

/** True for a letter made by `undecodableLetter`. */
export function isUndecodable(message: Message): boolean {
  return typeof message.options[UNDECODABLE] === "string";
}

/**
 * The letters that can be requeued: undecodable ones stay where they are, with one warning
 * saying how many and what to do.
 */
export function keepDecodable<T>(queueName: string, letters: T[], message: (l: T) => Message): T[] {
  const keep = letters.filter((l) => !isUndecodable(message(l)));
  const left = letters.length - keep.length;
  if (left > 0) {
    getLogger("dramatis.broker").warning(
      `${left} dead letter(s) of ${queueName} cannot be decoded, so no worker could run them: ` +
        `they stay in the dead letters (see options.${UNDECODABLE}); purge them when done.`,
    );
  }
  return keep;
}
