// Unique jobs on the RedisBroker: a send whose `unique_key` option is a string is decided inside
// the operations script (broker/redis/_ops.lua.ts, "unique"), so any number of processes sending
// one key at once enqueue one message. The sends of one tick go out in one script call (group
// commit, as plain sends).
//
// A key's holder record (`ns:__dramatis__.unique.<key>`) names the holder's message id and where
// its copy is (queue and redis_message_id). The key is held while that copy exists (queued,
// delayed or running: its hash entry is there) or until message_timestamp + unique_for; it is
// released lazily, when a later send finds the copy gone, so an ack (from dramatis or Python)
// has nothing to do. The record follows the holder when dramatis moves it (its retry, a due
// delayed message, moveMessages, runNow); a retry by a Python worker gets a new id that the
// record does not know, which releases the key early.
import { type JsonObject, Message } from "../../message.ts";
import { debounced, type UniqueOptions } from "../_unique.ts";
import { type OpsContext, text } from "./_ops_context.ts";
import type { Reply } from "./client.ts";

const BATCH = 500;

interface Send {
  message: Message;
  unique: UniqueOptions;
  rid: string;
  payload: string;
  resolve: (m: Message | void) => void;
  reject: (e: unknown) => void;
}

/** The holder record's key of unique key `key`. */
export function holderKey(ctx: OpsContext, key: string): string {
  return `${ctx.prefix}unique.${key}`;
}

function flags(u: UniqueOptions): string {
  return (u.debounce !== undefined ? "d" : "") + (u.uniqueFor ? "p" : "");
}

function until(message: Message, u: UniqueOptions): number {
  return u.uniqueFor ? message.messageTimestamp + u.uniqueFor : 0;
}

/** A stored payload as the message it was enqueued as. */
export function decodeStored(payload: string): Message {
  const m = Message.decode(payload);
  const options: JsonObject = { ...m.options };
  delete options.redis_message_id;
  m.options = options;
  return m;
}

/** Decides the unique sends of each tick in one script call. */
export class UniqueSender {
  #pending: Send[] = [];
  #busy = false;

  constructor(readonly ctx: OpsContext) {}

  /** Enqueues `message` (encoded as `rid`, `payload`) unless its key is held. */
  send(message: Message, unique: UniqueOptions): Promise<Message | void> {
    const { rid, payload } = this.ctx.host.encode(message);
    return new Promise((resolve, reject) => {
      this.#pending.push({ message, unique, rid, payload, resolve, reject });
      if (!this.#busy) {
        this.#busy = true;
        queueMicrotask(() => this.#next());
      }
    });
  }

  #next(): void {
    const batch = this.#pending.splice(0, BATCH);
    if (batch.length === 0) {
      this.#busy = false;
      return;
    }
    this.#decide(batch).finally(() => this.#next());
  }

  async #decide(batch: Send[]): Promise<void> {
    const args: (string | number)[] = [];
    for (const s of batch) {
      args.push(
        holderKey(this.ctx, s.unique.key),
        s.message.messageId,
        s.message.queueName,
        s.rid,
        s.payload,
        until(s.message, s.unique),
        flags(s.unique),
      );
    }
    let reply: Reply[][];
    try {
      reply = await this.ctx.run("unique", args) as Reply[][];
    } catch (e) {
      for (const s of batch) s.reject(e);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const s = batch[i]!;
      const r = reply[i]!;
      const kind = Number(r[0]);
      if (kind === 1) s.resolve();
      else if (kind === 0) s.resolve(this.#holder(text(r[1]), text(r[2]), s.message));
      else this.#replace(s, text(r[1]), text(r[2]), text(r[3])).then(s.resolve, s.reject);
    }
  }

  #holder(payload: string, id: string, sent: Message): Message {
    if (payload !== "") {
      try {
        return decodeStored(payload);
      } catch {
        // an undecodable holder (written by someone else): answer with its id
      }
    }
    return sent.copy({ messageId: id });
  }

  /** Debounce: replaces the pending holder at `queue` / `rid`; sends again if it moved meanwhile. */
  async #replace(s: Send, queue: string, rid: string, holderId: string): Promise<Message | void> {
    const replaced = debounced(s.message, {
      messageId: holderId,
      eta: Date.now() + s.unique.debounce!,
    });
    const { rid: newRid, payload } = this.ctx.host.encode(replaced);
    const done = await this.ctx.run("replace", [
      holderKey(this.ctx, s.unique.key),
      holderId,
      queue,
      rid,
      replaced.queueName,
      newRid,
      payload,
      until(replaced, s.unique),
      flags(s.unique),
    ]);
    if (Number(done) === 1) return replaced;
    return await this.send(s.message, s.unique);
  }
}
