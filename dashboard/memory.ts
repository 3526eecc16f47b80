/**
 * `MemoryDashboardSource`: a `DashboardSource` over an in-memory model of a broker (queues with
 * ready, delayed, running, dead and done messages, workers, schedules and a metrics registry),
 * for tests, demos and benchmarks. Its simulation methods (`add`, `claim`, `finish`, ...) play
 * the part of producers and workers. It implements every capability, so it is also the
 * reference for what the brokers' sources must do.
 *
 * @example
 * ```ts
 * import { MemoryDashboardSource } from "./memory.ts";
 * const source = new MemoryDashboardSource();
 * const id = source.add({ queue: "emails", actor: "send_email", args: ["a@example.com"] });
 * source.claim("emails", "worker-1");
 * source.finish(id, "dead", { error: "SMTPError: 550" });
 * const page = await source.messages({ states: ["dead"], limit: 10 });
 * console.log(page.total, page.messages[0].error); // 1 SMTPError: 550
 * ```
 * @module
 */
import type { JsonObject, JsonValue, WireMessage } from "../message.ts";
import { MetricsRegistry, type MetricsSnapshot } from "../telemetry/registry.ts";
import {
  ACTION_STATES,
  type ActionResult,
  MESSAGE_STATES,
  type MessageActionRequest,
  type MessageDetail,
  type MessagePage,
  type MessageQuery,
  type MessageState,
  type ProgressInfo,
  type QueueAction,
  type QueueOverview,
  type ScheduleAction,
  type ScheduleInfo,
  type WorkerInfo,
} from "./source.ts";
import type { DashboardSource } from "./source.ts";
import { MemoryStore, type Rec, summary } from "./_memory_store.ts";
import { applyAction, validateTarget } from "./_memory_actions.ts";

/**
 * A message for `MemoryDashboardSource.add`.
 *
 * @example
 * ```ts
 * import type { MemoryMessage } from "./memory.ts";
 * const m: MemoryMessage = { queue: "default", actor: "add", args: [1, 2] };
 * ```
 */
export interface MemoryMessage {
  /** Canonical queue name. */
  queue: string;
  /** Actor name. */
  actor: string;
  /** Positional arguments. */
  args?: JsonValue[];
  /** Keyword arguments. */
  kwargs?: JsonObject;
  /** Options (wire names). */
  options?: JsonObject;
  /** Message id (a new UUID when omitted). */
  id?: string;
  /** `message_timestamp` (now when omitted). */
  timestamp?: number;
}

/**
 * Where `MemoryDashboardSource.add` puts a message, and what it knew of it.
 *
 * @example
 * ```ts
 * import type { MemoryPlacement } from "./memory.ts";
 * const p: MemoryPlacement = { state: "delayed", eta: Date.now() + 60_000 };
 * ```
 */
export interface MemoryPlacement {
  /** Its state (default `ready`). */
  state?: MessageState;
  /** The eta of a delayed message (default: a minute from now). */
  eta?: number;
  /** The last error (dead letters, retries). */
  error?: string;
  /** The worker running it (`running`). */
  workerId?: string;
  /** The result of a done message. */
  result?: JsonValue;
}

function firstLine(s: string): string {
  const i = s.indexOf("\n");
  return i < 0 ? s : s.slice(0, i);
}

/**
 * An in-memory `DashboardSource` with every capability; see the module documentation.
 *
 * @example
 * ```ts
 * import { MemoryDashboardSource } from "./memory.ts";
 * import { dashboardHandler } from "./handler.ts";
 * const source = new MemoryDashboardSource({ name: "demo" });
 * source.add({ queue: "default", actor: "add", args: [1, 2] });
 * const handler = dashboardHandler(source);
 * const res = await handler(new Request("http://127.0.0.1:8181/"));
 * console.log(res.status); // 200
 * ```
 */
export class MemoryDashboardSource implements DashboardSource {
  /** Shown in the dashboard's header. */
  readonly name: string;
  /** Every state, `done` included (it keeps finished messages). */
  readonly states: readonly MessageState[] = MESSAGE_STATES;
  /** What the simulation methods feed: read it through `metrics()`. */
  readonly registry: MetricsRegistry = new MetricsRegistry();
  /** Most finished messages kept (the oldest are dropped first). */
  readonly maxDone: number;
  #store = new MemoryStore();
  #workers = new Map<string, WorkerInfo>();
  #schedules = new Map<string, ScheduleInfo>();

  /** An empty source. */
  constructor(options: { name?: string; maxDone?: number } = {}) {
    this.name = options.name ?? "memory";
    this.maxDone = options.maxDone ?? Infinity;
  }

  // ---- the simulation (producers and workers) ----

  /** Adds a message in a state (default `ready`); returns its id. */
  add(m: MemoryMessage, placement: MemoryPlacement = {}): string {
    const state = placement.state ?? "ready";
    const ts = m.timestamp ?? Date.now();
    const options: JsonObject = { ...m.options };
    if (state === "delayed") options.eta = placement.eta ?? Date.now() + 60_000;
    const msg: WireMessage = {
      queue_name: state === "delayed" ? `${m.queue}.DQ` : m.queue,
      actor_name: m.actor,
      args: m.args ?? [],
      kwargs: m.kwargs ?? {},
      options,
      message_id: m.id ?? crypto.randomUUID(),
      message_timestamp: ts,
    };
    if (this.#store.byId.has(msg.message_id)) {
      throw new TypeError(`add: a message with id ${msg.message_id} exists already.`);
    }
    const rec: Rec = {
      seq: this.#store.seq++,
      ts,
      msg,
      queue: m.queue,
      state,
      since: Date.now(),
      hay: JSON.stringify([msg.args, msg.kwargs]).toLowerCase(),
      error: placement.error,
      workerId: placement.workerId,
    };
    if (state === "running") rec.attempts = [{ startedAt: Date.now(), outcome: "running" }];
    if (state === "done" && placement.result !== undefined) {
      rec.result = { status: "ok", value: placement.result };
    }
    this.#store.insert(rec);
    this.#store.count(rec.queue, state, 1, rec);
    this.registry.series(m.queue, m.actor).enqueued++;
    return msg.message_id;
  }

  /**
   * A worker takes the oldest ready message of `queue` (or of any queue), unless the queue is
   * paused: it becomes `running`. Returns its id, or undefined when none is ready.
   */
  claim(queue: string | undefined, workerId: string): string | undefined {
    for (const rec of this.#store.recs) {
      if (rec.gone || rec.state !== "ready" || this.#store.paused.has(rec.queue)) continue;
      if (queue !== undefined && rec.queue !== queue) continue;
      this.#store.setState(rec, "running");
      rec.workerId = workerId;
      (rec.attempts ??= []).push({ startedAt: Date.now(), workerId, outcome: "running" });
      const s = this.registry.series(rec.queue, rec.msg.actor_name);
      s.inProgress++;
      const eta = typeof rec.msg.options.eta === "number" ? rec.msg.options.eta : rec.ts;
      s.waitSeconds.observe(Math.max(0, Date.now() - Math.max(eta, rec.ts)) / 1000);
      return rec.msg.message_id;
    }
    return undefined;
  }

  /**
   * Ends a running message: `success` (done, with `result`), `retry` (delayed by `delay` ms,
   * `retries` + 1) or `dead`. `durationMs` defaults to the time since it started.
   */
  finish(
    id: string,
    outcome: "success" | "retry" | "dead",
    options: { error?: string; result?: JsonValue; delay?: number; durationMs?: number } = {},
  ): void {
    const rec = this.#store.byId.get(id);
    if (!rec || rec.state !== "running") {
      throw new TypeError(`finish: message ${id} is not running.`);
    }
    const attempt = rec.attempts![rec.attempts!.length - 1]!;
    attempt.durationMs = options.durationMs ?? Date.now() - (attempt.startedAt ?? Date.now());
    attempt.outcome = outcome;
    attempt.error = options.error;
    const s = this.registry.series(rec.queue, rec.msg.actor_name);
    s.inProgress--;
    s.processed++;
    s.runMs.observe(attempt.durationMs);
    if (options.error !== undefined) s.errors++;
    if (options.error !== undefined) rec.error = firstLine(options.error);
    if (outcome === "success") {
      s.succeeded++;
      this.#store.setState(rec, "done");
      if (options.result !== undefined) rec.result = { status: "ok", value: options.result };
      this.#trimDone();
    } else if (outcome === "retry") {
      s.retries++;
      const retries = typeof rec.msg.options.retries === "number" ? rec.msg.options.retries : 0;
      this.#store.setState(rec, "delayed");
      rec.msg.options = {
        ...rec.msg.options,
        retries: retries + 1,
        eta: Date.now() + (options.delay ?? 15_000),
        ...(options.error !== undefined ? { traceback: options.error } : {}),
      };
    } else {
      s.rejects++;
      this.#store.setState(rec, "dead");
      if (options.error !== undefined) rec.result = { status: "error", error: options.error };
    }
  }

  #trimDone(): void {
    if (this.maxDone === Infinity) return;
    let done = 0;
    for (const c of this.#store.counts.values()) done += c.done;
    for (let i = 0; done > this.maxDone && i < this.#store.recs.length; i++) {
      const r = this.#store.recs[i]!;
      if (!r.gone && r.state === "done") {
        this.#store.remove(r);
        done--;
      }
    }
    if (this.#store.gone > 1000) this.#store.compact();
  }

  /** Moves delayed messages whose eta has passed to ready; returns how many. */
  promoteDue(now: number = Date.now()): number {
    let n = 0;
    for (const rec of this.#store.recs) {
      if (rec.gone || rec.state !== "delayed") continue;
      const eta = rec.msg.options.eta;
      if (typeof eta === "number" && eta <= now) {
        this.#store.setState(rec, "ready");
        n++;
      }
    }
    return n;
  }

  /** Records the progress an actor reported. */
  setProgress(id: string, progress: Omit<ProgressInfo, "updatedAt">): void {
    const rec = this.#store.byId.get(id);
    if (rec) rec.progress = { ...progress, updatedAt: Date.now() };
  }

  /** Adds or replaces a worker (by `workerId`). */
  setWorker(worker: WorkerInfo): void {
    this.#workers.set(worker.workerId, worker);
  }

  /** Removes a worker. */
  removeWorker(workerId: string): void {
    this.#workers.delete(workerId);
  }

  /** Adds or replaces a schedule (by `name`). */
  setSchedule(schedule: ScheduleInfo): void {
    this.#schedules.set(schedule.name, schedule);
  }

  /** How many messages it holds (every state). */
  get size(): number {
    return this.#store.byId.size;
  }

  /** The state of a message, or undefined when it is gone. */
  stateOf(id: string): MessageState | undefined {
    return this.#store.byId.get(id)?.state;
  }

  // ---- DashboardSource ----

  /** Every queue with its counts; the oldest ready message in one pass from the oldest. */
  queues(): Promise<readonly QueueOverview[]> {
    const want = new Set<string>();
    for (const [q, c] of this.#store.counts) if (c.ready > 0) want.add(q);
    const oldest = new Map<string, number>();
    for (let i = 0; i < this.#store.recs.length && oldest.size < want.size; i++) {
      const r = this.#store.recs[i]!;
      if (!r.gone && r.state === "ready" && !oldest.has(r.queue)) oldest.set(r.queue, r.ts);
    }
    const out: QueueOverview[] = [];
    for (const [q, c] of [...this.#store.counts].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
      out.push({
        queueName: q,
        ready: c.ready,
        delayed: c.delayed,
        inFlight: c.running,
        dead: c.dead,
        oldestReadyTimestamp: oldest.get(q) ?? null,
        paused: this.#store.paused.has(q),
      });
    }
    return Promise.resolve(out);
  }

  /** The registry's snapshot. */
  metrics(): Promise<MetricsSnapshot> {
    return Promise.resolve(this.registry.snapshot());
  }

  /** A page of messages, newest first; cursors are positions in the (timestamp, seq) order. */
  messages(q: MessageQuery): Promise<MessagePage> {
    return Promise.resolve(this.#store.page(q));
  }

  /** One message with its attempts, result and progress. */
  message(id: string): Promise<MessageDetail | null> {
    const r = this.#store.byId.get(id);
    if (!r) return Promise.resolve(null);
    return Promise.resolve({
      ...summary(r),
      attempts: r.attempts?.map((x) => ({ ...x })) ?? [],
      result: r.result ?? (r.state === "done" ? { status: "missing" } : { status: "pending" }),
      progress: r.progress,
    });
  }

  /** Performs a message action on `ids` or on every match of `query`. */
  act(req: MessageActionRequest): Promise<ActionResult> {
    const applies = new Set(ACTION_STATES[req.action]);
    if (req.action === "move") validateTarget(req.target);
    let recs: Rec[];
    let skipped = 0;
    if (req.ids) {
      recs = [];
      for (const id of req.ids) {
        const r = this.#store.byId.get(id);
        if (r) recs.push(r);
        else skipped++;
      }
    } else if (req.query) {
      const states = (req.query.states?.length ? req.query.states : MESSAGE_STATES)
        .filter((s) => applies.has(s));
      recs = states.length ? this.#store.select({ ...req.query, states }) : [];
    } else {
      throw new TypeError("act: pass ids or a query.");
    }
    let done = 0;
    for (const r of recs) {
      if (!applies.has(r.state) || (req.action === "move" && r.queue === req.target)) {
        skipped++;
        continue;
      }
      applyAction(this.#store, this.registry, r, req);
      done++;
    }
    this.#store.compact();
    return Promise.resolve({ done, skipped, pending: 0 });
  }

  /** Pauses, resumes or purges a queue (`purge` drops ready and delayed unless `states`). */
  queueAction(
    queue: string,
    action: QueueAction,
    options: { states?: readonly MessageState[] } = {},
  ): Promise<ActionResult> {
    if (!this.#store.counts.has(queue)) {
      return Promise.reject(new TypeError(`No queue named ${JSON.stringify(queue)}.`));
    }
    if (action === "pause") this.#store.paused.add(queue);
    else if (action === "resume") this.#store.paused.delete(queue);
    else {
      const states = new Set(options.states ?? ["ready", "delayed"]);
      let done = 0;
      for (const r of this.#store.recs) {
        if (!r.gone && r.queue === queue && states.has(r.state) && r.state !== "running") {
          this.#store.remove(r);
          done++;
        }
      }
      this.#store.compact();
      return Promise.resolve({ done, skipped: 0 });
    }
    return Promise.resolve({ done: 1, skipped: 0 });
  }

  /** The workers, each with the messages it runs now. */
  workers(): Promise<readonly WorkerInfo[]> {
    const running = new Map<string, NonNullable<WorkerInfo["running"]>>();
    for (const r of this.#store.running) {
      if (!r.workerId) continue;
      let list = running.get(r.workerId);
      if (!list) running.set(r.workerId, list = []);
      list.push({
        messageId: r.msg.message_id,
        actor: r.msg.actor_name,
        queue: r.queue,
        startedAt: r.since,
      });
    }
    return Promise.resolve(
      [...this.#workers.values()].map((w) => {
        const list = running.get(w.workerId) ?? [];
        return { ...w, running: list, busy: list.length };
      }),
    );
  }

  /** The schedules. */
  schedules(): Promise<readonly ScheduleInfo[]> {
    return Promise.resolve([...this.#schedules.values()].map((s) => ({ ...s })));
  }

  /** Runs a schedule now (sends its message), or pauses or resumes it. */
  scheduleAction(name: string, action: ScheduleAction): Promise<ActionResult> {
    const s = this.#schedules.get(name);
    if (!s) return Promise.reject(new TypeError(`No schedule named ${JSON.stringify(name)}.`));
    if (action === "run-now") {
      s.lastMessageId = this.add({ queue: s.queue, actor: s.actor });
      s.lastAt = Date.now();
    } else {
      s.paused = action === "pause";
    }
    return Promise.resolve({ done: 1, skipped: 0 });
  }
}
