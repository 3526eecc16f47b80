// The operations of the FileBroker (broker/ops.ts; docs/file-broker.md, "Operations"): cancel,
// unique jobs, progress, pause, schedule ticks, the worker registry, events and browsing.
//
// State that must survive SIGKILL and be seen by every consumer is in the log, as records the
// replica applies (`_ops_state.ts`): cancel marks, unique holders, last ticks, paused queues and
// progress. Each operation that decides something (cancel, a unique send, a tick, a pause, a
// browse action) does so under the directory's lock on an up-to-date replica and writes its
// records in one append, so it is atomic across processes. The worker registry and the events are
// side files (`_registry.ts`, `_events.ts`): they are not about messages, need no order with the
// log's records, and would only make the log (and every replica) bigger.
import type { JsonValue, Message } from "../../message.ts";
import { dqName, qName } from "../broker.ts";
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
import type { Engine } from "./_engine.ts";
import type { RecordWriter } from "./_format.ts";
import { accessModes } from "../../runtime/fs.ts";
import { Browser } from "./_browse.ts";
import { EventLog } from "./_events.ts";
import {
  encodeAck,
  encodeEnq,
  encodeMark,
  encodePause,
  encodeProgress,
  encodeSchedulePause,
  encodeTick,
} from "./_ops_records.ts";
import { MARK_TTL, OpsState, PROGRESS_TTL } from "./_ops_state.ts";
import { Registry } from "./_registry.ts";
import { UniqueSender } from "./_unique.ts";

/** Every operation of one FileBroker, over its engine. */
export class FileOps {
  readonly state: OpsState;
  readonly #unique: UniqueSender;
  readonly #browser: Browser;
  readonly #registry: Registry;
  readonly #events: EventLog;

  constructor(private readonly engine: Engine) {
    this.state = new OpsState((id) => engine.messageState(id));
    engine.extension = this.state;
    this.#unique = new UniqueSender(engine, this.state);
    this.#browser = new Browser(engine, this.state);
    const modes = accessModes(engine.options.access);
    this.#registry = new Registry(engine.options.dir, modes);
    this.#events = new EventLog(engine.options.dir, modes, (fn) => engine.withLock(fn));
  }

  /** A send with a `unique_key`: see `_unique.ts`. */
  enqueueUnique(message: Message, priority: number): Promise<Message | void> {
    return this.#unique.send(message, priority);
  }

  /**
   * Cancels the message `messageId` (see `Broker.cancel`): pending copies are removed, a running
   * one is marked. When the copies the scan found are all gone by the time the lock is held (a
   * delayed message moved to its queue meanwhile, a retry), it looks once more.
   */
  async cancel(messageId: string): Promise<CancelOutcome> {
    let outcome: CancelOutcome = "unknown";
    for (let attempt = 0; attempt < 2; attempt++) {
      // A process that looks messages up by id has a lookup; any other scans the log, as this
      // one does for an id the lookup has no live copy of (to tell finished from unknown).
      const ids = (this.state.ids && this.#browser.locate([messageId]).get(messageId)) ??
        this.#browser.scan([messageId]).get(messageId);
      if (!ids) return "unknown";
      outcome = await this.engine.transact((out) => this.#cancelLocked(messageId, ids, out));
      if (outcome !== "finished") return outcome;
    }
    return outcome;
  }

  /** Locked: removes the pending copies among `ids`, marks the message if any copy is live. */
  #cancelLocked(messageId: string, ids: readonly number[], out: RecordWriter): CancelOutcome {
    const pending: number[] = [];
    let running = -1;
    for (const id of ids) {
      const st = this.engine.messageState(id);
      if (st?.state === "running") running = id;
      else if (st && st.state !== "dead") pending.push(id);
    }
    if (pending.length === 0 && running < 0) return "finished";
    if (pending.length > 0) encodeAck(out, this.engine.owner, pending);
    if (this.state.cancelled([messageId]).size === 0 || pending.length > 0) {
      encodeMark(out, messageId, running >= 0 ? running : pending[0]!, Date.now() + MARK_TTL);
    }
    return pending.length > 0 ? "cancelled" : "running";
  }

  /** The ids among `messageIds` with a cancel mark: a catch-up (two small reads) and lookups. */
  cancelled(messageIds: readonly string[]): Set<string> {
    this.engine.refresh();
    return this.state.cancelled(messageIds);
  }

  /** Stores the progress of `messageId` (written now, not synced: losing one is harmless). */
  setProgress(messageId: string, value: JsonValue): void {
    const json = JSON.stringify(value);
    this.engine.append((out) => encodeProgress(out, messageId, Date.now(), json));
    this.engine.flush();
  }

  /** The last progress of `messageId` within the last hour, or null. */
  getProgress(messageId: string): ProgressRecord | null {
    this.engine.refresh();
    const p = this.state.progress.get(messageId);
    if (!p || p.updatedAt < Date.now() - PROGRESS_TTL) return null;
    return { value: JSON.parse(p.value) as JsonValue, updatedAt: p.updatedAt };
  }

  /** Pauses or resumes canonical `queueName` (one PAUSE record, if it changes anything). */
  setPaused(queueName: string, paused: boolean): Promise<void> {
    return this.engine.transact((out) => {
      if (this.state.pausedQueues.has(queueName) !== paused) encodePause(out, queueName, paused);
    });
  }

  /** The paused queues. */
  pausedQueues(): Set<string> {
    this.engine.refresh();
    return new Set(this.state.pausedQueues.keys());
  }

  /** Enqueues `message` for `tick` of schedule `name` unless that tick or a later one was. */
  enqueueTick(name: string, tick: number, message: Message, priority: number): Promise<boolean> {
    const eta = typeof message.options.eta === "number" ? message.options.eta : 0;
    const q = qName(message.queueName);
    const queueName = eta > 0 ? dqName(q) : q;
    const json = JSON.stringify(message.copy({ queueName }).asDict());
    return this.engine.transact((out) => {
      const last = this.state.ticks.get(name);
      if ((last && last.tick >= tick) || this.state.schedulePauses.get(name)?.paused) return false;
      encodeTick(out, name, tick);
      encodeEnq(out, queueName, priority, eta, json);
      return true;
    });
  }

  /** The last tick of each schedule. */
  lastTicks(): Map<string, number> {
    this.engine.refresh();
    return new Map([...this.state.ticks].map(([name, t]) => [name, t.tick]));
  }

  /** Pauses or resumes schedule `name` (one PAUSE record, if it changes anything). */
  setSchedulePaused(name: string, paused: boolean): Promise<void> {
    return this.engine.transact((out) => {
      if ((this.state.schedulePauses.get(name)?.paused ?? false) !== paused) {
        encodeSchedulePause(out, name, paused, Date.now());
      }
    });
  }

  /** The schedules paused or resumed, and since when. */
  schedulePauses(): Map<string, SchedulePause> {
    this.engine.refresh();
    return new Map(
      [...this.state.schedulePauses].map(([name, p]) => [name, { paused: p.paused, at: p.since }]),
    );
  }

  /** Writes a worker's registry file. */
  publishWorker(record: WorkerRecord, ttl: number): void {
    this.#registry.publish(record, ttl);
  }

  /** The live workers. */
  workers(): WorkerRecord[] {
    return this.#registry.list();
  }

  /** Deletes a worker's registry file. */
  removeWorker(workerId: string): void {
    this.#registry.remove(workerId);
  }

  /** Appends events to the events file. */
  publishEvents(events: readonly BrokerEvent[]): void {
    this.#events.publish(events);
  }

  /** Follows the events file from now on (with `past`: from the oldest event kept). */
  events(signal?: AbortSignal, past = false): AsyncIterable<BrokerEvent> {
    return this.#events.tail(signal, past);
  }

  /** See `Browser.browse`. */
  browse(queueName: string, state: BrowseState, options?: BrowseOptions): BrowsePage {
    return this.#browser.browse(queueName, state, options);
  }

  /** See `Browser.find`. */
  findMessage(messageId: string): BrowseEntry | null {
    return this.#browser.find(messageId);
  }

  /** See `Browser.delete`. */
  deleteMessages(messageIds: readonly string[]): Promise<number> {
    return this.#browser.delete(messageIds);
  }

  /** See `Browser.move`. */
  moveMessages(messageIds: readonly string[], queueName: string): Promise<number> {
    return this.#browser.move(messageIds, queueName);
  }

  /** See `Browser.runNow`. */
  runNow(messageIds: readonly string[]): Promise<number> {
    return this.#browser.runNow(messageIds);
  }

  /** Ends the event readers. */
  close(): void {
    this.#events.close();
  }
}
