// The RedisBroker's dead letters (`q.XQ`): reading them, and moving them back to their queue.
import type { JsonObject } from "../../message.ts";
import { Message } from "../../message.ts";
import type { Reply } from "./client.ts";
import { undecodableLetter } from "../_undecodable.ts";
import type { Core } from "./_core.ts";
import { str } from "./_wire.ts";

/** A dead letter: its `redis_message_id`, the message as it failed, when it died (ms). */
export interface DeadLetter {
  rid: string;
  message: Message;
  at: number;
}

/** The dead letters of `q` (up to `limit`, -1 = all; dead at or after `since`), oldest first. */
export async function readDead(
  core: Core,
  q: string,
  limit: number,
  since = 0,
): Promise<DeadLetter[]> {
  const reply = await core.run("dead", q, [limit, since], { bytes: true }) as Reply[];
  const out: DeadLetter[] = [];
  for (let i = 0; i < reply.length; i += 3) {
    const rid = str(reply[i]!),
      data = reply[i + 1] as Uint8Array,
      at = Number(str(reply[i + 2]!));
    let message: Message;
    try {
      if (data.length === 0) throw new Error(`its payload is missing from ${q}.XQ.msgs`);
      message = Message.decode(data);
    } catch (e) {
      // Counted by stats(): listed too, saying why it cannot be run.
      const where = { queueName: q, messageId: rid, deadAt: at };
      message = undecodableLetter(data, (e as Error).message, where);
    }
    out.push({ rid, message, at });
  }
  return out;
}

/**
 * Moves `letters` back to the tail of canonical queue `q` (fresh ids, no eta), 300 per script
 * call, with the enqueue hooks. Resolves with how many moved.
 */
export async function revive(core: Core, q: string, letters: DeadLetter[]): Promise<number> {
  let moved = 0;
  for (let i = 0; i < letters.length; i += 300) {
    const part = letters.slice(i, i + 300);
    const args: string[] = [];
    const messages: Message[] = [];
    for (const letter of part) {
      const options: JsonObject = { ...letter.message.options };
      delete options.eta;
      const message = letter.message.copy({ queueName: q, options });
      const before = core.broker.emitBefore("enqueue", message, undefined);
      if (before) await before;
      const rid = crypto.randomUUID();
      const dict = message.asDict() as unknown as Record<string, unknown>;
      dict.options = { ...options, redis_message_id: rid };
      args.push(letter.rid, rid, JSON.stringify(dict));
      messages.push(message);
    }
    moved += await core.run("revive", q, args) as number;
    for (const message of messages) {
      const after = core.broker.emitAfter("enqueue", message, undefined);
      if (after) await after;
    }
  }
  return moved;
}

/** The error of `join(q, { failFast })` when a message of `q` was dead-lettered. */
export function deadLetterError(q: string, letter: { message: Message }): Error {
  const m = letter.message;
  const tb = typeof m.options.traceback === "string" ? `\n${m.options.traceback}` : "";
  return new Error(
    `A message of queue ${q} failed and was dead-lettered: ${m.actorName} message ${m.messageId}${tb}`,
  );
}
