// Browsing the FileBroker's queues (the dashboard, `dramatis queues --running`, search): pages of
// messages by state, one message by id, and the per-message actions (delete, move, run now).
// Pages come from the replica (log ids of the queue's messages in that state, JSON read from the
// log for the page only); totals are the replica's counters. A message id is found through the
// lookup by id this process makes at its first one (`_ids.ts`). Each action decides under the lock and writes its records in one append, so
// each message is moved or deleted once however many processes try, and a running one is skipped.
import { qName } from "../broker.ts";
import { Message } from "../../message.ts";
import type { BrowseEntry, BrowseOptions, BrowsePage, BrowseState } from "../ops.ts";
import type { RecordWriter } from "./_format.ts";
import type { Engine } from "./_engine.ts";
import type { MessageState } from "./_ops_hooks.ts";
import { encodeAck, encodeEnq, encodeUndead, encodeUnique } from "./_ops_records.ts";
import type { OpsState } from "./_ops_state.ts";
import { IdLookup } from "./_ids.ts";
import { scanMessageIds, walkMessageIds } from "./_scan.ts";

const DEFAULT_LIMIT = 100;
const decoder = new TextDecoder();

/** The first line of a dead letter's traceback (the error), if any. */
function errorOf(message: Message): string | undefined {
  const tb = message.options.traceback;
  return typeof tb === "string" && tb !== "" ? tb.split("\n", 1)[0] : undefined;
}

/** The live copy among `ids` (a pending one before a running one), with its state. */
function liveOf(
  engine: Engine,
  ids: readonly number[] | undefined,
): { id: number; st: MessageState } | undefined {
  let found: { id: number; st: MessageState } | undefined;
  for (const id of ids ?? []) {
    const st = engine.messageState(id);
    if (st && (!found || found.st.state === "running")) found = { id, st };
  }
  return found;
}

/** The `k` largest numbers added (a min-heap of them). */
class TopIds {
  readonly #a: Float64Array;
  #n = 0;
  constructor(readonly k: number) {
    this.#a = new Float64Array(k);
  }

  add(x: number): void {
    const a = this.#a;
    if (this.#n < this.k) {
      let i = this.#n++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (a[p]! <= x) break;
        a[i] = a[p]!;
        i = p;
      }
      a[i] = x;
      return;
    }
    if (x <= a[0]!) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i, v = x;
      if (l < this.#n && a[l]! < v) {
        m = l;
        v = a[l]!;
      }
      if (r < this.#n && a[r]! < v) m = r;
      if (m === i) break;
      a[i] = a[m]!;
      i = m;
    }
    a[i] = x;
  }

  /** The numbers, largest first. */
  sorted(): number[] {
    return Array.from(this.#a.subarray(0, this.#n)).sort((x, y) => y - x);
  }
}

/** Message lookups and actions over one engine. */
export class Browser {
  constructor(private readonly engine: Engine, private readonly state: OpsState) {}

  /** The message with log id `id` as a browse entry, or undefined when gone or undecodable. */
  #entry(id: number, st: MessageState): BrowseEntry | undefined {
    const json = this.engine.readJson(id);
    if (!json) return undefined;
    let message: Message;
    try {
      message = Message.decode(json);
    } catch {
      return undefined;
    }
    if (message.queueName !== st.queue) message = message.copy({ queueName: st.queue });
    const entry: BrowseEntry = { message, state: st.state === "delayed" ? "delayed" : st.state };
    if (st.state === "delayed") entry.eta = st.eta;
    if (st.state === "dead") {
      entry.since = st.deadAt;
      const error = errorOf(message);
      if (error) entry.error = error;
    }
    return entry;
  }

  /** One page of `queueName`'s messages in `state`, newest (highest log id) first. */
  browse(queueName: string, state: BrowseState, options: BrowseOptions = {}): BrowsePage {
    const limit = Math.max(1, options.limit ?? DEFAULT_LIMIT);
    const below = options.cursor === undefined ? Infinity : Number(options.cursor);
    if (!Number.isFinite(below) && options.cursor !== undefined) {
      throw new TypeError(`browse(): ${JSON.stringify(options.cursor)} is not a cursor it gave.`);
    }
    this.engine.refresh();
    // The newest `limit + 1` ids below the cursor: O(n log limit), not a sort of the queue.
    const top = new TopIds(limit + 1);
    let total = 0, belowCursor = 0;
    this.engine.forEachId(queueName, state, (id) => {
      total++;
      if (id < below) {
        belowCursor++;
        top.add(id);
      }
    });
    const ids = top.sorted();
    const entries: BrowseEntry[] = [];
    let i = 0;
    for (; i < ids.length && i < limit; i++) {
      const id = ids[i]!;
      const st = this.engine.messageState(id);
      const e = st && this.#entry(id, st);
      if (e) entries.push(e); // an undecodable one is left out of the page
    }
    const page: BrowsePage = { entries, total };
    if (belowCursor > limit) page.next = String(ids[limit - 1]);
    return page;
  }

  /**
   * The lookup by message id, made at the first call: filled by the replay if the replica is not
   * built yet, else by one scan of the segments. Refreshes the replica.
   */
  #lookup(): IdLookup {
    let ids = this.state.ids;
    if (!ids) {
      const built = this.engine.hasReplica;
      const lookup = new IdLookup((id) => this.engine.isLive(id));
      this.state.ids = ids = lookup;
      if (built) walkMessageIds(this.engine.segmentPaths(), (buf, ref) => lookup.note(buf, ref));
    }
    this.engine.refresh();
    return ids;
  }

  /**
   * The log ids of the live copies of each of `messageIds` (absent: none), through the lookup by
   * id (made now if this process has none yet).
   */
  locate(messageIds: Iterable<string>): Map<string, number[]> {
    const wanted = new Set(messageIds);
    const lookup = this.#lookup();
    const found = new Map<string, number[]>();
    for (const messageId of wanted) {
      const live = lookup.candidates(messageId).filter((id) =>
        this.engine.messageState(id) !== undefined && this.#messageIdOf(id) === messageId
      );
      if (live.length > 0) found.set(messageId, live);
    }
    return found;
  }

  /**
   * The log ids that carried each of `messageIds`, live or finished, by a scan of the log (which
   * stops at the first segment, newest first, after which each has a live copy).
   */
  scan(messageIds: Iterable<string>): Map<string, number[]> {
    const wanted = new Set(messageIds);
    this.engine.refresh();
    return scanMessageIds(this.engine.segmentPaths(), wanted, (f) => {
      if (f.size < wanted.size) return false;
      for (const ids of f.values()) {
        if (!ids.some((id) => this.engine.messageState(id) !== undefined)) return false;
      }
      return true;
    });
  }

  /** The message id in the JSON of the live message `id` (undefined if gone or undecodable). */
  #messageIdOf(id: number): string | undefined {
    const json = this.engine.readJson(id);
    if (!json) return undefined;
    try {
      const id = (JSON.parse(decoder.decode(json)) as { message_id?: unknown }).message_id;
      return typeof id === "string" ? id : undefined;
    } catch {
      return undefined;
    }
  }

  /** The message `messageId` wherever it is, or null. */
  find(messageId: string): BrowseEntry | null {
    const live = liveOf(this.engine, this.locate([messageId]).get(messageId));
    return (live && this.#entry(live.id, live.st)) ?? null;
  }

  /**
   * Runs `act` under the lock for each of `messageIds` that is live and not running (found by
   * the lookup by id); resolves with how many it acted on.
   */
  #each(
    messageIds: readonly string[],
    act: (id: number, st: MessageState, out: RecordWriter) => boolean,
  ): Promise<number> {
    let found: Map<string, number[]>;
    try {
      found = this.locate(messageIds);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.engine.transact((out) => {
      let n = 0;
      for (const ids of found.values()) {
        const live = liveOf(this.engine, ids);
        if (live && live.st.state !== "running" && act(live.id, live.st, out)) n++;
      }
      return n;
    });
  }

  /** Removes a pending message or a dead letter (locked). */
  #remove(id: number, st: MessageState, out: RecordWriter): void {
    if (st.state === "dead") encodeUndead(out, [id]);
    else encodeAck(out, this.engine.owner, [id]);
  }

  /** Enqueues `message` (ready unless `eta`), keeping its unique key if it held one (locked). */
  #reenqueue(oldId: number, message: Message, priority: number, out: RecordWriter): void {
    const key = this.state.holderOf.get(oldId);
    const h = key === undefined ? undefined : this.state.holders.get(key);
    if (h) encodeUnique(out, { ...h, id: 0 }); // the key follows the message to its new place
    const eta = typeof message.options.eta === "number" ? message.options.eta : 0;
    encodeEnq(out, message.queueName, priority, eta, JSON.stringify(message.asDict()));
  }

  /** Deletes ready, delayed and dead messages by id. */
  delete(messageIds: readonly string[]): Promise<number> {
    return this.#each(messageIds, (id, st, out) => {
      this.#remove(id, st, out);
      return true;
    });
  }

  /** Moves ready, delayed and dead messages to `queueName`, ready there. */
  move(messageIds: readonly string[], queueName: string): Promise<number> {
    const target = qName(queueName);
    return this.#each(messageIds, (id, st, out) => {
      const message = this.#decoded(id);
      if (!message) return false;
      const options = { ...message.options };
      delete options.eta;
      this.#remove(id, st, out);
      this.#reenqueue(id, message.copy({ queueName: target, options }), st.priority, out);
      return true;
    });
  }

  /** Makes delayed messages ready now. */
  runNow(messageIds: readonly string[]): Promise<number> {
    return this.#each(messageIds, (id, st, out) => {
      if (st.state !== "delayed") return false;
      const message = this.#decoded(id);
      if (!message) return false;
      const options = { ...message.options };
      delete options.eta;
      this.#remove(id, st, out);
      this.#reenqueue(id, message.copy({ queueName: st.queue, options }), st.priority, out);
      return true;
    });
  }

  #decoded(id: number): Message | undefined {
    const json = this.engine.readJson(id);
    try {
      return json && Message.decode(json);
    } catch {
      return undefined;
    }
  }
}
