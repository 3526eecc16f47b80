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
/** Calls pipelined at once. */
const IN_FLIGHT = 2;

interface Send {
  message: Message;
  unique: UniqueOptions;
  rid: string;
  payload: string;
  resolve: (m: Message | void) => void;
  reject: (e: unknown) => void;
}

/** The holder record's field of unique key `key` (in `ns:__dramatis__.holders.<day>`). */
export function holderKey(_ctx: OpsContext, key: string): string {
  return key;
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
  #inFlight = 0;
  #scheduled = false;

  constructor(readonly ctx: OpsContext) {}

  /** Enqueues `message` unless its key is held. */
  send(message: Message, unique: UniqueOptions): Promise<Message | void> {
    const { rid, payload } = this.ctx.host.encode(message);
    return new Promise((resolve, reject) => {
      this.#pending.push({ message, unique, rid, payload, resolve, reject });
      if (!this.#scheduled && this.#inFlight < IN_FLIGHT) {
        this.#scheduled = true;
        queueMicrotask(() => this.#next());
      }
    });
  }

  /**
   * Sends the pending batch. Up to `IN_FLIGHT` calls are pipelined on the one connection: Redis
   * runs them in order, each atomically, so the decisions are those of one call after another.
   */
  #next(): void {
    this.#scheduled = false;
    while (this.#inFlight < IN_FLIGHT && this.#pending.length > 0) {
      const batch = this.#pending.splice(0, BATCH);
      this.#inFlight++;
      this.#decide(batch).finally(() => {
        this.#inFlight--;
        this.#next();
      });
    }
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
    let reply: Reply[];
    try {
      reply = await this.ctx.run("unique", args) as Reply[];
    } catch (e) {
      for (const s of batch) s.reject(e);
      return;
    }
    const answered = new Set<number>();
    const holders = new Map<string, Message>(); // a batch's duplicates of one holder: decoded once
    for (let i = 0; i + 4 < reply.length; i += 5) {
      const index = Number(reply[i]);
      const s = batch[index]!;
      answered.add(index);
      if (Number(reply[i + 1]) === 0) {
        const payload = text(reply[i + 2]);
        let holder = holders.get(payload);
        if (!holder) {
          holders.set(payload, holder = this.#holder(payload, text(reply[i + 3]), s.message));
        }
        s.resolve(holder.copy());
      } else {
        const [queue, rid, holderId] = [text(reply[i + 2]), text(reply[i + 3]), text(reply[i + 4])];
        this.#replace(s, queue, rid, holderId).then(s.resolve, s.reject);
      }
    }
    for (let i = 0; i < batch.length; i++) if (!answered.has(i)) batch[i]!.resolve();
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
