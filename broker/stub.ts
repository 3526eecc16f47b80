/**
 * `StubBroker`: an in-memory broker for tests. Messages still go through a JSON round trip,
 * as they would on a real broker.
 *
 * @example
 * ```ts
 * import { actor, StubBroker, Worker } from "@dramatis/dramatis";
 *
 * const broker = new StubBroker();
 * const seen: number[] = [];
 * const record = actor((n: number) => void seen.push(n), { actorName: "record", broker });
 * await record.send(1);
 * const worker = new Worker(broker, { workerTimeout: 100 });
 * await worker.start();
 * await broker.join("default");
 * await worker.stop();
 * console.log(seen); // [1]
 * ```
 * @module
 */
import { Broker, type BrokerOptions, type JoinOptions, type QueueStats } from "./broker.ts";
import type { Consumer } from "./consumer.ts";
import { dqName, qName } from "./queue_name.ts";
import { type JsonValue, Message, type MessageProxy } from "../message.ts";
import { QueueJoinTimeout, QueueNotFound } from "../errors.ts";
import {
  ALL_CAPABILITIES,
  type BrokerCapabilities,
  type BrokerEvent,
  type BrowseEntry,
  type BrowseOptions,
  type BrowsePage,
  type BrowseState,
  type CancelOutcome,
  type ProgressRecord,
  type SchedulePause,
  type WorkerRecord,
} from "./ops.ts";
import { type Entry, StubQueue } from "./_stub_queue.ts";
import { StubOpsState } from "./_stub_ops.ts";
import { StubConsumer } from "./_stub_consumer.ts";
import { browsePage, deadEntry, liveEntry, readyCopy } from "./_stub_browse.ts";
import { StubUniques } from "./_stub_unique.ts";
import { StubCancels } from "./_stub_cancel.ts";
import { debounced, uniqueOf } from "./_unique.ts";

/**
 * An in-memory broker for unit tests, like Dramatiq's `StubBroker`: `join(queue, { timeout,
 * failFast })` waits for a queue to drain and (with `failFast`, the default) re-throws the
 * error of a dead-lettered message.
 *
 * @example
 * ```ts
 * import { StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * broker.declareQueue("default");
 * await broker.join("default", { timeout: 100 });
 * ```
 */
export class StubBroker extends Broker {
  /** Dead-lettered messages by canonical queue name, with `error` set to what failed them. */
  readonly deadLettersByQueue: Map<string, MessageProxy[]> = new Map();
  #queues = new Map<string, StubQueue>();
  #seq = 0;
  #joiners = new Set<() => void>();
  /** The entries (queued or running) of each message id. */
  #byId = new Map<string, Set<Entry>>();
  #uniques = new StubUniques();
  #cancels = new StubCancels();
  #ops = new StubOpsState();

  /** Creates the broker with the default middleware stack unless `options.middleware`. */
  constructor(options: BrokerOptions = {}) {
    super(options);
  }

  /** The stub has every operation (cancel, unique, progress, pause, ...). */
  override get capabilities(): BrokerCapabilities {
    return ALL_CAPABILITIES;
  }

  /** Creates the in-memory queue and its delay queue. */
  protected override _declareQueue(queueName: string): void {
    this.#queues.set(queueName, new StubQueue(queueName, false));
    this.#queues.set(dqName(queueName), new StubQueue(dqName(queueName), true));
    this.deadLettersByQueue.set(queueName, []);
  }

  #queue(name: string): StubQueue {
    const q = this.#queues.get(name);
    if (!q) throw new QueueNotFound(name);
    return q;
  }

  /** Stores the message in memory (a unique job's duplicate resolves to the holder). */
  protected _enqueue(message: Message): Promise<void | Message> {
    const unique = uniqueOf(message);
    if (!unique) {
      this.#put(message);
      return Promise.resolve();
    }
    const now = Date.now();
    const live = (id: string) => (this.#byId.get(id)?.size ?? 0) > 0;
    const hold = this.#uniques.holder(unique.key, message.messageId, now, live);
    if (hold) {
      if (unique.debounce === undefined) return Promise.resolve(hold.message.copy());
      const entries = [...this.#byId.get(hold.id) ?? []];
      if (entries.length > 0 && entries.every((e) => e.state === "queued")) {
        // Pending: replaced in place (same id), due `debounce` ms from now.
        for (const e of entries) this.#forget(e);
        const replaced = debounced(message, { messageId: hold.id, eta: now + unique.debounce });
        this.#put(replaced);
        this.#uniques.hold(unique.key, replaced, unique.uniqueFor);
        return Promise.resolve(replaced);
      }
    }
    this.#put(message);
    this.#uniques.hold(unique.key, message, unique.uniqueFor);
    return Promise.resolve();
  }

  #put(message: Message, front = false): Entry {
    const q = this.#queue(message.queueName);
    const id = message.messageId;
    const entry: Entry = {
      json: JSON.stringify(message.asDict()),
      id,
      priority: this.priorityOf(message),
      eta: typeof message.options.eta === "number" ? message.options.eta : 0,
      seq: this.#seq++,
      queue: q,
      state: "queued",
      since: 0,
      hi: -1,
    };
    let set = this.#byId.get(id);
    if (!set) this.#byId.set(id, set = new Set());
    set.add(entry);
    q.put(entry, front);
    return entry;
  }

  /** Takes `entry` out of its queue and of the id index (not a finish: see `_settled`). */
  #forget(entry: Entry): void {
    entry.queue.remove(entry);
    const set = this.#byId.get(entry.id);
    set?.delete(entry);
    if (set?.size === 0) this.#byId.delete(entry.id);
  }

  /** Takes `entry` out for good: acked, dead-lettered, cancelled or deleted. */
  #finish(entry: Entry): void {
    this.#forget(entry);
    if (this.#byId.has(entry.id)) return;
    this.#cancels.finished(entry.id);
  }

  #notifyJoiners(): void {
    for (const j of this.#joiners) j();
  }

  /** A consumer of `queueName` (`q` or `q.DQ`). */
  consume(queueName: string): Consumer {
    return new StubConsumer(this, this.#queue(queueName));
  }

  /** @internal A consumer settled `entry` (ack or nack). */
  _settled(entry: Entry): void {
    const q = entry.queue;
    this.#finish(entry);
    if (q.pending === 0) this.#notifyJoiners();
  }

  /** @internal True when a consumer of `queue` gets nothing (a paused queue, not its `q.DQ`). */
  _isPaused(queue: StubQueue): boolean {
    return !queue.delayed && this.#ops.paused.has(queue.name);
  }

  /** @internal A consumer hands back `entries`: queued again, unless cancelled meanwhile. */
  _requeue(entries: Entry[]): void {
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i]!;
      if (this.#cancels.isMarked(e.id)) {
        this._settled(e);
      } else {
        e.queue.running.delete(e);
        e.queue.put(e, true);
      }
    }
  }

  /** @internal */
  _deadLetter(message: MessageProxy): void {
    this.deadLettersByQueue.get(qName(message.queueName))?.push(message);
    this.#notifyJoiners();
  }
  /**
   * Waits until `queueName` and its delay queue are empty and nothing is in flight. With
   * `failFast` (the default), rejects with the error of the first dead-lettered message of
   * the queue; with `timeout`, rejects with `QueueJoinTimeout`.
   */
  async join(queueName: string, options: JoinOptions = {}): Promise<void> {
    const { timeout, failFast = true } = options;
    const q = this.#queue(qName(queueName));
    const dq = this.#queue(dqName(queueName));
    const deadline = timeout === undefined ? Infinity : Date.now() + timeout;
    for (;;) {
      if (failFast) {
        const dead = this.deadLettersByQueue.get(q.name)?.[0];
        if (dead) {
          throw dead.error ?? new Error(`Message ${dead.messageId} failed with an unknown error.`);
        }
      }
      if (q.pending === 0 && dq.pending === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new QueueJoinTimeout(q.name);
      await new Promise<void>((resolve) => {
        const joiners = this.#joiners;
        const timer = left === Infinity ? undefined : setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          joiners.delete(done);
          resolve();
        }
        joiners.add(done);
      });
    }
  }

  /** Drops the ready messages of `queueName` and its delay queue. */
  flush(queueName: string): Promise<void> {
    for (const name of [qName(queueName), dqName(queueName)]) {
      for (const e of this.#queue(name).clear()) this.#finish(e);
    }
    this.#notifyJoiners();
    return Promise.resolve();
  }

  /** Drops every ready message and every dead letter. */
  override async flushAll(): Promise<void> {
    await super.flushAll();
    for (const list of this.deadLettersByQueue.values()) list.length = 0;
  }

  /** Counters of one queue. */
  stats(queueName: string): Promise<QueueStats> {
    const q = this.#queue(qName(queueName));
    const dq = this.#queue(dqName(queueName));
    return Promise.resolve({
      queueName: q.name,
      ready: q.ready,
      delayed: dq.ready,
      inFlight: q.pending - q.ready + dq.pending - dq.ready,
      dead: this.deadLettersByQueue.get(q.name)?.length ?? 0,
    });
  }

  /** The dead letters of `queueName` (copies), oldest first. */
  deadLetters(queueName: string, options: { limit?: number } = {}): Promise<Message[]> {
    const list = this.deadLettersByQueue.get(qName(queueName)) ?? [];
    return Promise.resolve(list.slice(0, options.limit ?? list.length).map((m) => m.copy()));
  }

  /** Puts dead letters back on their queue. */
  async requeueDeadLetters(queueName: string, messageIds?: string[]): Promise<number> {
    const q = qName(queueName);
    const list = this.deadLettersByQueue.get(q) ?? [];
    const ids = messageIds && new Set(messageIds);
    const keep: MessageProxy[] = [];
    let n = 0;
    for (const m of list) {
      if (ids && !ids.has(m.messageId)) {
        keep.push(m);
        continue;
      }
      await this.enqueue(m.copy({ queueName: q }));
      n++;
    }
    this.deadLettersByQueue.set(q, keep);
    return n;
  }

  /** Deletes the dead letters of `queueName`. */
  purgeDeadLetters(queueName: string): Promise<number> {
    const list = this.deadLettersByQueue.get(qName(queueName)) ?? [];
    const n = list.length;
    list.length = 0;
    return Promise.resolve(n);
  }

  // ---- Operations (broker/ops.ts) ----

  /** Cancels a message: a queued or delayed one is dropped; a running one is marked. */
  override cancel(messageId: string): Promise<CancelOutcome> {
    const live = [...this.#byId.get(messageId) ?? []];
    if (live.length === 0) {
      return Promise.resolve(this.#cancels.wasFinished(messageId) ? "finished" : "unknown");
    }
    let running = false;
    for (const e of live) {
      if (e.state === "running") running = true;
      else this.#finish(e);
    }
    this.#notifyJoiners();
    if (!running) return Promise.resolve("cancelled");
    this.#cancels.mark(messageId);
    return Promise.resolve("running");
  }

  /** Which of `messageIds` carry a cancel mark. */
  override cancelled(messageIds: readonly string[]): Promise<Set<string>> {
    return Promise.resolve(this.#cancels.marked(messageIds));
  }

  /** Stores the progress of a message. */
  override setProgress(messageId: string, value: JsonValue): Promise<void> {
    this.#ops.setProgress(messageId, value);
    return Promise.resolve();
  }

  /** The last progress of a message, or null. */
  override getProgress(messageId: string): Promise<ProgressRecord | null> {
    return Promise.resolve(this.#ops.getProgress(messageId));
  }

  /** Pauses a queue: its consumers get nothing until `resumeQueue` (its `q.DQ` goes on). */
  override pauseQueue(queueName: string): Promise<void> {
    this.#ops.paused.add(qName(queueName));
    return Promise.resolve();
  }

  /** Resumes a paused queue. */
  override resumeQueue(queueName: string): Promise<void> {
    const q = qName(queueName);
    this.#ops.paused.delete(q);
    this.#queues.get(q)?.wake();
    return Promise.resolve();
  }

  /** The paused queues. */
  override pausedQueues(): Promise<Set<string>> {
    return Promise.resolve(new Set(this.#ops.paused));
  }

  /** Enqueues `message` for `tick` of schedule `name` unless that tick (or a later one) was. */
  override async enqueueTick(name: string, tick: number, message: Message): Promise<boolean> {
    const last = this.#ops.lastTick(name);
    if (last >= tick || this.#ops.schedulePauses.get(name)?.paused) return false;
    this.#ops.setTick(name, tick); // before any await: a concurrent call sees it
    try {
      await this.enqueue(message);
    } catch (e) {
      if (this.#ops.lastTick(name) === tick) this.#ops.setTick(name, last);
      throw e;
    }
    return true;
  }

  /** The last tick per schedule. */
  override lastTicks(): Promise<Map<string, number>> {
    return Promise.resolve(this.#ops.lastTicks());
  }

  /** Pauses schedule `name` (its ticks are refused until resumed). */
  override pauseSchedule(name: string): Promise<void> {
    this.#ops.setSchedulePaused(name, true);
    return Promise.resolve();
  }

  /** Resumes schedule `name`. */
  override resumeSchedule(name: string): Promise<void> {
    this.#ops.setSchedulePaused(name, false);
    return Promise.resolve();
  }

  /** The schedules paused or resumed. */
  override schedulePauses(): Promise<Map<string, SchedulePause>> {
    return Promise.resolve(this.#ops.schedulePausesCopy());
  }

  /** Stores a worker's record for `ttl` ms. */
  override publishWorker(record: WorkerRecord, ttl: number): Promise<void> {
    this.#ops.publishWorker(record, ttl);
    return Promise.resolve();
  }

  /** The live workers. */
  override workers(): Promise<WorkerRecord[]> {
    return Promise.resolve(this.#ops.workers());
  }

  /** Removes a worker's record. */
  override removeWorker(workerId: string): Promise<void> {
    this.#ops.removeWorker(workerId);
    return Promise.resolve();
  }

  /** Hands events to the current `events()` readers. */
  override publishEvents(events: readonly BrokerEvent[]): Promise<void> {
    this.#ops.publishEvents(events);
    return Promise.resolve();
  }

  /** The events published from now on, until `signal` aborts. */
  override events(
    options: { signal?: AbortSignal; past?: boolean } = {},
  ): AsyncIterable<BrokerEvent> {
    return this.#ops.events(options.signal, options.past);
  }

  /** One page of a queue's messages in `state`, newest first (`cursor`: an offset). */
  override browse(
    queueName: string,
    state: BrowseState,
    options: BrowseOptions = {},
  ): Promise<BrowsePage> {
    const q = qName(queueName);
    let all: BrowseEntry[];
    if (state === "dead") {
      all = (this.deadLettersByQueue.get(q) ?? []).map((m) => deadEntry(m)).reverse();
    } else {
      const entries = state === "ready"
        ? this.#queue(q).queued()
        : state === "running"
        ? [...this.#queue(q).running]
        : [...this.#queue(dqName(q)).queued(), ...this.#queue(dqName(q)).running];
      all = entries.sort((a, b) => b.seq - a.seq).map((e) => liveEntry(e));
    }
    return Promise.resolve(browsePage(all, options));
  }

  /** A message by id, wherever it is, or null. */
  override findMessage(messageId: string): Promise<BrowseEntry | null> {
    const live = [...this.#byId.get(messageId) ?? []];
    const e = live.find((x) => x.state === "running" && !x.queue.delayed) ?? live[0];
    if (e) return Promise.resolve(liveEntry(e));
    const dead = this.#findDead(messageId);
    return Promise.resolve(dead ? deadEntry(dead.list[dead.index]!) : null);
  }

  #findDead(id: string): { list: MessageProxy[]; index: number } | undefined {
    for (const list of this.deadLettersByQueue.values()) {
      const index = list.findIndex((m) => m.messageId === id);
      if (index >= 0) return { list, index };
    }
    return undefined;
  }

  /**
   * Takes message `id` out of wherever it waits (queued, delayed or dead; not running) and
   * returns it, or undefined. `keep` entries are not counted as finished (they move).
   */
  #takeOut(id: string, finish: boolean): Message | undefined {
    const live = [...this.#byId.get(id) ?? []];
    if (live.some((e) => e.state === "running")) return undefined;
    if (live.length > 0) {
      const m = Message.decode(live[0]!.json);
      for (const e of live) finish ? this.#finish(e) : this.#forget(e);
      return m;
    }
    const dead = this.#findDead(id);
    if (!dead) return undefined;
    return dead.list.splice(dead.index, 1)[0]!.copy();
  }

  /** Deletes waiting messages (queued, delayed or dead) by id. */
  override deleteMessages(messageIds: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of new Set(messageIds)) if (this.#takeOut(id, true)) n++;
    this.#notifyJoiners();
    return Promise.resolve(n);
  }

  /** Moves waiting messages to `queueName`, ready now. */
  override moveMessages(messageIds: readonly string[], queueName: string): Promise<number> {
    const target = qName(queueName);
    this.declareQueue(target);
    let n = 0;
    for (const id of new Set(messageIds)) {
      const m = this.#takeOut(id, false);
      if (!m) continue;
      this.#put(readyCopy(m, target));
      n++;
    }
    this.#notifyJoiners();
    return Promise.resolve(n);
  }

  /** Makes delayed messages ready now. */
  override runNow(messageIds: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of new Set(messageIds)) {
      const live = [...this.#byId.get(id) ?? []];
      const e = live.find((x) => x.state === "queued" && x.queue.delayed);
      if (!e) continue;
      const m = Message.decode(e.json);
      this.#put(readyCopy(m, qName(m.queueName)));
      this.#forget(e);
      n++;
    }
    return Promise.resolve(n);
  }
}
