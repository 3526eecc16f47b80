// The RedisBroker's operations (broker/ops.ts; docs/redis.md, "Operations"): cancel, unique
// jobs, progress, queue pause, schedule ticks, the worker registry, events and browsing. The
// broker calls these from its method overrides and its hooks (a unique send in `_enqueue`, the
// pause check in a consumer's receive). Every key is under `ns:__dramatis__.`; Dramatiq's keys
// keep their meaning.
import type { JsonValue, Message } from "../../message.ts";
import { qName } from "../queue_name.ts";
import { uniqueOf } from "../_unique.ts";
import type {
  BrokerEvent,
  BrowseEntry,
  BrowseOptions,
  BrowsePage,
  BrowseState,
  CancelOutcome,
  ProgressRecord,
  SchedulePause,
  WorkerRecord,
} from "../ops.ts";
import { OpsContext, type OpsHost, text } from "./_ops_context.ts";
import { holderKey, UniqueSender } from "./_unique.ts";
import * as registry from "./_registry.ts";
import * as stream from "./_events.ts";
import * as pages from "./_browse.ts";
import type { Reply } from "./client.ts";

const HOUR = 3_600_000;
/** How long a paused-queue answer is reused, in ms (a pause reaches other processes within it). */
const PAUSE_TTL = 250;

export type { OpsHost };

/** The operations of one RedisBroker. */
export class RedisOps {
  readonly ctx: OpsContext;
  readonly #unique: UniqueSender;
  #paused: { at: number; set: Set<string> } | undefined;
  #pausedReading: Promise<Set<string>> | undefined;

  /** Aborted by the broker's close: ends every events() reader (each holds a connection). */
  readonly #closed = new AbortController();

  constructor(host: OpsHost) {
    this.ctx = new OpsContext(host);
    this.#unique = new UniqueSender(this.ctx);
  }

  /** A unique send (undefined when `message` has no unique key: the broker enqueues it). */
  uniqueSend(message: Message): Promise<Message | void> | undefined {
    const unique = uniqueOf(message);
    return unique ? this.#unique.send(message, unique) : undefined;
  }

  /**
   * A due delayed unique message's move to its queue (as the dispatch script's `move`, the holder
   * record following it); undefined when `message` has no unique key.
   */
  uniqueMove(
    message: Message,
    dq: string,
    from: string,
    rid: string,
    payload: string,
  ): Promise<Reply> | undefined {
    const unique = uniqueOf(message);
    if (!unique) return undefined;
    return this.ctx.run("move", [
      dq,
      from,
      rid,
      payload,
      holderKey(this.ctx, unique.key),
      message.messageId,
    ]);
  }

  // ---- cancel ----

  /**
   * Cancels `messageId`: a running copy is looked for first among the running messages of the
   * declared queues (cheap: what the ack sets hold), and marked; otherwise the queues are
   * scanned for waiting copies, which are removed (see `_browse.ts`, `locate`).
   */
  async cancel(messageId: string): Promise<CancelOutcome> {
    const declared = this.ctx.host.declaredQueues();
    if (declared.length > 0) {
      if (Number(await this.ctx.run("cancel_running", [messageId, ...declared])) === 1) {
        return "running";
      }
    }
    const copies = (await pages.locate(this.ctx, [messageId], ["q", "dq"])).get(messageId) ?? [];
    if (copies.length === 0) return "unknown";
    const args = [messageId, ...copies.flatMap((f) => [f.queue, f.rid])];
    const [removed, running] = (await this.ctx.run("cancel", args) as Reply[]).map(Number);
    if (running) return "running";
    return removed! > 0 ? "cancelled" : "finished";
  }

  /** One MGET: which of `messageIds` carry a cancel mark. */
  async cancelled(messageIds: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    if (messageIds.length === 0) return out;
    const keys = messageIds.map((id) => `${this.ctx.prefix}cancel.${id}`);
    const reply = await this.ctx.send(["MGET", ...keys]) as Reply[];
    for (let i = 0; i < messageIds.length; i++) if (reply[i] !== null) out.add(messageIds[i]!);
    return out;
  }

  // ---- progress ----

  async setProgress(messageId: string, value: JsonValue): Promise<void> {
    const record: ProgressRecord = { value, updatedAt: Date.now() };
    await this.ctx.send([
      "SET",
      `${this.ctx.prefix}progress.${messageId}`,
      JSON.stringify(record),
      "PX",
      HOUR,
    ]);
  }

  async getProgress(messageId: string): Promise<ProgressRecord | null> {
    const r = await this.ctx.send(["GET", `${this.ctx.prefix}progress.${messageId}`]);
    return r === null ? null : JSON.parse(text(r)) as ProgressRecord;
  }

  // ---- pause ----

  async pauseQueue(queueName: string): Promise<void> {
    await this.ctx.send(["SADD", `${this.ctx.prefix}paused`, qName(queueName)]);
    this.#paused = undefined;
  }

  async resumeQueue(queueName: string): Promise<void> {
    await this.ctx.send(["SREM", `${this.ctx.prefix}paused`, qName(queueName)]);
    this.#paused = undefined;
  }

  async pausedQueues(): Promise<Set<string>> {
    const r = await this.ctx.send(["SMEMBERS", `${this.ctx.prefix}paused`]);
    const members = r instanceof Set ? [...r] : r as Reply[];
    const set = new Set(members.map((m) => text(m)));
    this.#paused = { at: Date.now(), set };
    return set;
  }

  /** Whether canonical queue `q` is paused, as read at most `PAUSE_TTL` ms ago. */
  isPaused(q: string): boolean | Promise<boolean> {
    const p = this.#paused;
    if (p && Date.now() - p.at < PAUSE_TTL) return p.set.has(q);
    this.#pausedReading ??= this.pausedQueues().finally(() => this.#pausedReading = undefined);
    return this.#pausedReading.then((set) => set.has(q));
  }

  // ---- schedules ----

  /**
   * Claims `tick` of schedule `name` and stores the encoded message on canonical queue `q` in
   * one script call: a process killed at any point either did both or neither.
   */
  async claimTick(
    name: string,
    tick: number,
    q: string,
    encoded: { rid: string; payload: string },
  ): Promise<boolean> {
    return await this.ctx.run("tick", [name, tick, q, encoded.rid, encoded.payload]) !== null;
  }

  /**
   * A unique message's tick: claimed, then sent through `broker.enqueue` (the unique script), the
   * claim undone if that fails. A process killed between the two loses the tick.
   */
  async enqueueTick(name: string, tick: number, message: Message): Promise<boolean> {
    const previous = await this.ctx.run("tick", [name, tick]);
    if (previous === null) return false;
    try {
      await this.ctx.host.enqueue(message);
    } catch (e) {
      await this.ctx.run("untick", [name, tick, text(previous)]).catch(() => {});
      throw e;
    }
    return true;
  }

  async lastTicks(): Promise<Map<string, number>> {
    const r = await this.ctx.send(["HGETALL", `${this.ctx.prefix}ticks`]);
    const out = new Map<string, number>();
    if (r instanceof Map) {
      for (const [k, v] of r) out.set(text(k), Number(text(v)));
    } else {
      const flat = r as Reply[];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        out.set(text(flat[i]), Number(text(flat[i + 1])));
      }
    }
    return out;
  }

  /** Pauses or resumes schedule `name` (the tick script refuses a paused one's ticks). */
  async setSchedulePaused(name: string, paused: boolean): Promise<void> {
    const key = `${this.ctx.prefix}schedule_pauses`;
    const was = await this.ctx.send(["HGET", key, name]);
    if ((was !== null && text(was).startsWith("paused:")) === paused) return;
    await this.ctx.send(["HSET", key, name, `${paused ? "paused" : "resumed"}:${Date.now()}`]);
  }

  async schedulePauses(): Promise<Map<string, SchedulePause>> {
    const r = await this.ctx.send(["HGETALL", `${this.ctx.prefix}schedule_pauses`]);
    const out = new Map<string, SchedulePause>();
    const add = (k: Reply, v: Reply) => {
      const [state, at] = text(v).split(":");
      out.set(text(k), { paused: state === "paused", at: Number(at) });
    };
    if (r instanceof Map) { for (const [k, v] of r) add(k, v); }
    else {
      const flat = r as Reply[];
      for (let i = 0; i + 1 < flat.length; i += 2) add(flat[i]!, flat[i + 1]!);
    }
    return out;
  }

  // ---- workers, events, browse ----

  publishWorker(record: WorkerRecord, ttl: number): Promise<void> {
    return registry.publishWorker(this.ctx, record, ttl);
  }

  workers(): Promise<WorkerRecord[]> {
    return registry.workers(this.ctx);
  }

  removeWorker(workerId: string): Promise<void> {
    return registry.removeWorker(this.ctx, workerId);
  }

  publishEvents(events: readonly BrokerEvent[]): Promise<void> {
    return stream.publishEvents(this.ctx, events);
  }

  events(signal: AbortSignal | undefined, past = false): AsyncIterable<BrokerEvent> {
    const closed = this.#closed.signal;
    return stream.events(this.ctx, signal ? AbortSignal.any([signal, closed]) : closed, past);
  }

  /** Ends the events() readers. */
  close(): void {
    this.#closed.abort();
  }

  browse(queueName: string, state: BrowseState, options?: BrowseOptions): Promise<BrowsePage> {
    return pages.browse(this.ctx, queueName, state, options);
  }

  findMessage(messageId: string): Promise<BrowseEntry | null> {
    return pages.findMessage(this.ctx, messageId);
  }

  deleteMessages(messageIds: readonly string[]): Promise<number> {
    return pages.take(this.ctx, messageIds, ["q", "dq", "dead"], undefined);
  }

  moveMessages(messageIds: readonly string[], queueName: string): Promise<number> {
    return pages.take(this.ctx, messageIds, ["q", "dq", "dead"], qName(queueName));
  }

  runNow(messageIds: readonly string[]): Promise<number> {
    return pages.take(this.ctx, messageIds, ["dq"], "canonical");
  }
}
