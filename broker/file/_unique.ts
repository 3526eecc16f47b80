// Unique jobs on the FileBroker: a send whose `unique_key` option is a string is decided under the
// directory's lock, on an up-to-date replica, so that any number of processes sending the same key
// at once enqueue one message. The sends of one tick are decided together in one locked section
// and one append (group commit, as plain sends): a UNIQUE record naming the key's new holder right
// before the holder's ENQ, so that both reach the log in the same write.
//
// A key is held while its holder is queued, delayed or running (the replica's state of the
// holder's log id), or until message_timestamp + unique_for; it is released lazily, when a
// later send finds the holder finished, so nothing has to happen when a message is acked. As the
// StubBroker does: a send with the holder's own message id (its retry) is enqueued and holds the
// key; `debounce` replaces a pending holder (same id, eta now + debounce) and otherwise the
// message is enqueued as given (a running holder: it becomes the new holder).
import { dqName, qName } from "../broker.ts";
import { Message } from "../../message.ts";
import { uniqueOf } from "../_unique.ts";
import type { RecordWriter } from "./_format.ts";
import { setImmediate } from "../../runtime/fs.ts";
import type { Engine } from "./_engine.ts";
import { encodeAck, encodeEnq, encodeUnique } from "./_ops_records.ts";
import type { Holder, OpsState } from "./_ops_state.ts";

interface Pending {
  message: Message;
  /** Its JSON, made before the lock is taken. */
  json: string;
  priority: number;
  resolve: (m: Message | void) => void;
  reject: (e: unknown) => void;
}

/** A holder decided in this batch, not written yet. */
interface NewHolder {
  /** Where its result goes in the batch. */
  index: number;
  /** The log id of the pending holder it replaces (debounce), if any. */
  replaces: number | undefined;
  key: string;
  message: Message;
  /** Its JSON, when it is the message as sent. */
  json: string | undefined;
  priority: number;
  until: number;
}

/** `message` on its delay queue, due in `delay` ms (keeping `messageId` when given). */
function delayed(message: Message, delay: number, messageId?: string): Message {
  return message.copy({
    queueName: dqName(qName(message.queueName)),
    options: { ...message.options, eta: Date.now() + delay },
    messageId,
  });
}

/** A send of the batch that could not be encoded. */
class Failed {
  constructor(readonly error: unknown) {}
}

/** Decides and writes the unique sends of each tick, in one locked append. */
export class UniqueSender {
  #batch: Pending[] = [];
  #scheduled = false;

  constructor(private readonly engine: Engine, private readonly state: OpsState) {}

  /**
   * Sends `message` unless its key is held: resolves with the holder's message for a duplicate,
   * with the message as stored when debounce changed it, and with nothing when stored as given.
   */
  send(message: Message, priority: number): Promise<Message | void> {
    return new Promise((resolve, reject) => {
      const json = JSON.stringify(message.asDict());
      this.#batch.push({ message, json, priority, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => this.#run());
    });
  }

  #run(): void {
    this.#scheduled = false;
    const batch = this.#batch;
    this.#batch = [];
    const results: (Message | void | Failed)[] = [];
    this.engine.transact((out) => this.#decide(batch, results, out)).then(
      () =>
        batch.forEach((p, i) => {
          const r = results[i];
          if (r instanceof Failed) p.reject(r.error);
          else p.resolve(r);
        }),
      (e) => batch.forEach((p) => p.reject(e)),
    );
  }

  /** Locked: what each send does; encodes the records. */
  #decide(batch: Pending[], results: (Message | void | Failed)[], out: RecordWriter): void {
    const now = Date.now();
    const fresh = new Map<string, NewHolder>();
    for (const p of batch) {
      const m = p.message;
      const u = uniqueOf(m)!;
      const key = u.key, debounce = u.debounce;
      const until = m.messageTimestamp + (u.uniqueFor ?? 0);
      const mine = fresh.get(key);
      if (mine) {
        // Its holder was decided in this batch: pending, so a debounce replaces it.
        if (debounce !== undefined && mine.message.messageId !== m.messageId) {
          mine.message = delayed(m, debounce, mine.message.messageId);
          mine.json = undefined;
          mine.priority = p.priority;
          mine.until = until;
        }
        results.push(mine.message);
        continue;
      }
      // A holder other than this message itself (a retry of the holder keeps the key).
      const h = this.state.holder(key, now);
      const other = h && h.messageId !== m.messageId ? h : undefined;
      const st = other && this.engine.messageState(other.id);
      if (other && (debounce === undefined || !st || st.state === "dead")) {
        results.push(this.#holderMessage(other, m)); // a duplicate
        continue;
      }
      let message = m, replaces: number | undefined;
      if (other && (st!.state === "ready" || st!.state === "delayed")) {
        // Debounce of a pending holder: replaced, same id, due `debounce` ms from now.
        replaces = other.id;
        message = delayed(m, debounce!, other.messageId);
      }
      const json = message === m ? p.json : undefined;
      const index = results.length;
      fresh.set(key, { index, replaces, key, message, json, priority: p.priority, until });
      results.push(message === m ? undefined : message);
    }
    for (const n of fresh.values()) {
      const m = n.message;
      const mark = out.length;
      try {
        if (n.replaces !== undefined) encodeAck(out, this.engine.owner, [n.replaces]);
        encodeUnique(out, {
          id: 0,
          until: n.until,
          timestamp: m.messageTimestamp,
          key: n.key,
          messageId: m.messageId,
        });
        const eta = typeof m.options.eta === "number" ? m.options.eta : 0;
        encodeEnq(out, m.queueName, n.priority, eta, n.json ?? JSON.stringify(m.asDict()));
      } catch (e) {
        // This send only (a message over the record size limit): the others are written.
        out.abort();
        out.length = mark;
        results[n.index] = new Failed(e);
      }
    }
  }

  /** The holder's message as stored, or (once it finished) the send with the holder's id. */
  #holderMessage(h: Holder, m: Message): Message {
    const json = this.engine.readJson(h.id);
    if (json) {
      try {
        return Message.decode(json);
      } catch { /* fall through */ }
    }
    return m.copy({ messageId: h.messageId, messageTimestamp: h.timestamp });
  }
}
