/**
 * `brokerSource(broker, options)`: the `DashboardSource` of any `Broker`, mapping each page and
 * action onto the broker's operations (`broker/ops.ts`) as its `capabilities` allow, and saying
 * "not supported by this broker" where one is missing. The file and Redis brokers have them all;
 * on RabbitMQ the dashboard shows the counts and the dead letters, requeues and purges, and says
 * why the rest cannot be done over AMQP.
 *
 * - Overview: `stats()` of every queue (`listQueues()` and the declared ones), paused queues,
 *   the oldest ready message (exact from `oldestReadyTimestamp()` on the file and Redis brokers;
 *   elsewhere exact up to `OLDEST_EXACT` ready messages, a lower bound beyond),
 *   consumers from `workers()`, charts from the workers' metrics snapshots (merged by a
 *   `MetricsAggregator`, so the totals never go back when a worker stops).
 * - Search: by id through `findMessage()`; by actor, state, time range and text through
 *   `browse()` pages, examining at most `scanLimit` messages (the page says "at least" when it
 *   stopped early).
 * - Actions: `requeueDeadLetters`, `runNow`, `deleteMessages`, `moveMessages`, `cancel`,
 *   `pauseQueue` / `resumeQueue`, `flush` / `purgeDeadLetters`: each atomic per message on the
 *   broker.
 * - Attempts and the recently finished messages: from `broker.events({ past: true })`, followed
 *   from the first message page and kept in memory (the last `EVENTS_KEPT`): each attempt's
 *   end, duration, worker and error where an event says so.
 * - Schedules: those the loaded modules declared (`getSchedules(broker)`), with
 *   `broker.lastTicks()` and `schedulePauses()`; run now enqueues one tick now with
 *   `enqueueTick()`; pause and resume are `pauseSchedule()` / `resumeSchedule()`.
 *
 * @example
 * ```ts
 * import { StubBroker } from "../broker/stub.ts";
 * import { brokerSource } from "./broker_source.ts";
 * import { dashboardHandler } from "./handler.ts";
 * const broker = new StubBroker();
 * broker.declareQueue("emails");
 * const handler = dashboardHandler(brokerSource(broker));
 * const res = await handler(new Request("http://127.0.0.1:8181/api/overview"));
 * console.log((await res.json()).queues[0].queueName); // emails
 * ```
 * @module
 */
import { type Broker, qName, type QueueStats } from "../broker/broker.ts";
import type { BrokerEvent, BrowseEntry, BrowseState, WorkerRecord } from "../broker/ops.ts";
import type { ResultBackend } from "../results/backend.ts";
import { getSchedules, type Schedule } from "../schedule/schedule.ts";
import { MetricsAggregator, type MetricsSnapshot } from "../telemetry/registry.ts";
import {
  BROWSE_STATES,
  deadLettersOf,
  filtered,
  matcher,
  offsetOf,
  pageOf,
  scan,
  summaryOf,
} from "./_broker_scan.ts";
import { applyTo, checkTarget, direct, purge, UNSUPPORTED_BROWSE } from "./_broker_actions.ts";
import { type Oldest, oldestReady } from "./_broker_oldest.ts";
import { finishedDetail, progressInfo, resultOf, workerInfo } from "./_broker_info.ts";
import { attemptsFrom, EventHistory, EVENTS_NOTE } from "./_broker_events.ts";
import type { FinishedList } from "./finished.ts";
import { actOnSchedule, scheduleInfos } from "./_broker_schedules.ts";
import {
  ACTION_STATES,
  type ActionResult,
  type DashboardSource,
  DashboardUnsupported,
  type MessageAction,
  type MessageActionRequest,
  type MessageDetail,
  type MessagePage,
  type MessageQuery,
  type MessageState,
  type QueueAction,
  type QueueOverview,
  type ScheduleAction,
  type ScheduleInfo,
  type WorkerInfo,
} from "./source.ts";

/** What a listing found (`examined` and `of`: how far a bounded scan went). */
interface Selected {
  entries: BrowseEntry[];
  total: number;
  lowerBound: boolean;
  examined?: number;
  of?: number;
}

/** Actions by id the broker checks itself (the state each applies to is the broker's too). */
export const DIRECT: readonly MessageAction[] = ["delete", "run-now", "cancel"];

export { OLDEST_EXACT } from "./_broker_oldest.ts";

/** Default `scanLimit`: messages a search by actor, time or text examines at most. */
export const DEFAULT_SCAN_LIMIT = 20_000;

/**
 * Options of `brokerSource`.
 *
 * @example
 * ```ts
 * import type { BrokerSourceOptions } from "./broker_source.ts";
 * import { MemoryResultBackend } from "../results/backend.ts";
 * const o: BrokerSourceOptions = { results: new MemoryResultBackend(), scanLimit: 50_000 };
 * ```
 */
export interface BrokerSourceOptions {
  /** Shown in the header (default: the broker's class name). */
  name?: string;
  /** The result backend, to show each message's result on its page. */
  results?: ResultBackend;
  /**
   * The most messages a search by actor, time range or text examines (newest first, shared
   * round-robin among the queues and states it covers). Default 20,000. Searches by id and the
   * pages of one queue and state are exact at any size.
   */
  scanLimit?: number;
  /** The schedules shown (default: `getSchedules(broker)`, those the loaded modules declared). */
  schedules?: () => readonly Schedule[];
}

/**
 * The dashboard's source over `broker`; see the module documentation.
 *
 * @example
 * ```ts
 * import { FileBroker } from "../broker/file/broker.ts";
 * import { brokerSource } from "./broker_source.ts";
 * import { dashboardHandler } from "./handler.ts";
 * const broker = new FileBroker({ dir: await Deno.makeTempDir() });
 * const handler = dashboardHandler(brokerSource(broker), { readOnly: true });
 * // Deno.serve({ hostname: "127.0.0.1", port: 8181 }, handler);
 * await broker.close();
 * ```
 */
export function brokerSource(broker: Broker, options: BrokerSourceOptions = {}): DashboardSource {
  return new BrokerDashboardSource(broker, options);
}

class BrokerDashboardSource implements DashboardSource {
  readonly name: string;
  readonly states: readonly MessageState[];
  readonly actions: readonly MessageAction[];
  readonly queueActions: readonly QueueAction[];
  readonly #broker: Broker;
  readonly #options: BrokerSourceOptions;
  readonly #scanLimit: number;
  readonly #metrics = new MetricsAggregator();
  #running = new Map<string, { workerId: string; since: number }>();
  #oldestCache = new Map<string, Oldest>();
  #found = new Map<
    string,
    { entry: BrowseEntry | null | undefined; until: number; epoch: number }
  >();
  /** Bumped by every action: what was looked up before is stale. */
  #epoch = 0;
  readonly #history: EventHistory;

  constructor(broker: Broker, options: BrokerSourceOptions) {
    this.#broker = broker;
    this.#options = options;
    this.name = options.name ?? broker.constructor.name;
    this.#scanLimit = options.scanLimit ?? DEFAULT_SCAN_LIMIT;
    if (!(this.#scanLimit >= 1)) {
      throw new TypeError(`brokerSource: scanLimit must be at least 1, got ${options.scanLimit}.`);
    }
    const c = broker.capabilities;
    this.states = c.browse ? BROWSE_STATES : ["dead"];
    const actions: MessageAction[] = c.browse
      ? ["retry", "requeue", "run-now", "delete", "move"]
      : ["requeue"];
    if (c.cancel) actions.push("cancel");
    this.actions = actions;
    this.queueActions = c.pause ? ["pause", "resume", "purge"] : ["purge"];
    this.#history = new EventHistory(broker);
    if (c.events) this.events = (signal) => broker.events({ signal });
  }

  /** The broker's events (`broker.events()`), when it has them: the pages update as they come. */
  readonly events?: (signal: AbortSignal) => AsyncIterable<BrokerEvent>;

  #caps() {
    return this.#broker.capabilities;
  }

  // ---- overview ----

  async #queueNames(): Promise<string[]> {
    const names = new Set<string>();
    for (const q of await this.#broker.listQueues()) names.add(qName(q));
    for (const q of this.#broker.getDeclaredQueues()) names.add(qName(q));
    return [...names].sort();
  }

  async queues(): Promise<readonly QueueOverview[]> {
    const names = await this.#queueNames();
    const paused = this.#caps().pause ? await this.#broker.pausedQueues() : undefined;
    return await Promise.all(names.map(async (name) => {
      const s = await this.#broker.stats(name);
      const q: QueueOverview = {
        queueName: name,
        ready: s.ready,
        delayed: s.delayed,
        inFlight: s.inFlight,
        dead: s.dead,
      };
      if (paused) q.paused = paused.has(name);
      if (s.ready > 0 && this.#caps().browse) {
        const o = await oldestReady(this.#broker, this.#oldestCache, name, s.ready);
        if (o) {
          q.oldestReadyTimestamp = o.at;
          if (o.lowerBound) q.oldestIsLowerBound = true;
        }
      }
      return q;
    }));
  }

  async #records(): Promise<WorkerRecord[]> {
    if (!this.#caps().workers) {
      throw new DashboardUnsupported(
        `${this.name} keeps no registry of workers (it has no workers()): use the file or ` +
          "Redis broker to see them here.",
      );
    }
    const records = await this.#broker.workers();
    const running = new Map<string, { workerId: string; since: number }>();
    for (const r of records) {
      if (r.metrics) this.#metrics.update(r.metrics);
      for (const m of r.running) running.set(m.messageId, { workerId: r.workerId, since: m.since });
    }
    this.#running = running;
    return records;
  }

  async metrics(): Promise<MetricsSnapshot> {
    const records = await this.#records();
    if (!records.some((r) => r.metrics) && this.#metrics.sources().length === 0) {
      throw new DashboardUnsupported(
        "No worker publishes metrics: start the workers with the Metrics middleware " +
          "(dramatis worker --metrics) to see the charts.",
      );
    }
    return this.#metrics.snapshot();
  }

  async workers(): Promise<readonly WorkerInfo[]> {
    return (await this.#records()).map(workerInfo);
  }

  // ---- messages ----

  #summary = (e: BrowseEntry) => summaryOf(e, (id) => this.#running.get(id)?.workerId);

  async messages(q: MessageQuery): Promise<MessagePage> {
    const need = offsetOf(q.cursor) + q.limit;
    const found = await this.#select(q, need);
    const page = pageOf(found.entries, q, found.total, this.#summary, found.lowerBound);
    if (found.lowerBound) {
      page.note = `The search read the newest ${found.examined ?? this.#scanLimit} messages${
        found.of ? ` of ${found.of}` : ""
      } (the dashboard's scanLimit): narrow it by queue, state or time range to read further.`;
    }
    return page;
  }

  /**
   * The entries matching `q`, newest first: all of them (within `scanLimit`), or, for a query
   * of queue and state only, the newest `need` of each (queue, state) with the exact total.
   */
  async #select(
    q: MessageQuery,
    need: number,
  ): Promise<Selected> {
    if (!this.#caps().browse) return await this.#deadLetters(q);
    const states = (q.states?.length ? q.states : BROWSE_STATES)
      .filter((s): s is BrowseState => s !== "done");
    if (q.id !== undefined) {
      const e = await this.#broker.findMessage(q.id);
      const ok = !!e && states.includes(e.state) &&
        (q.queue === undefined || qName(e.message.queueName) === q.queue) && matcher(q)(e);
      return { entries: ok ? [e] : [], total: ok ? 1 : 0, lowerBound: false };
    }
    const queues = q.queue !== undefined ? [q.queue] : await this.#queueNames();
    const sizes = await Promise.all(queues.map((queue) => this.#broker.stats(queue)));
    const streams = queues.flatMap((queue, i) =>
      states.map((state) => ({ queue, state, size: sizeOf(sizes[i]!, state) }))
    ).filter((s) => s.size > 0);
    if (this.#caps().workers && states.includes("running")) {
      await this.#records().catch(() => undefined);
    }
    if (!filtered(q)) {
      if (need > this.#scanLimit) {
        throw new RangeError(
          `This page is beyond the ${this.#scanLimit} newest messages the dashboard reads: ` +
            "narrow the search (queue, state, time range).",
        );
      }
      const r = await scan(this.#broker, streams, {
        keep: () => true,
        bound: Infinity,
        perStream: Math.max(1, need),
      });
      return { entries: r.entries, total: r.totals, lowerBound: false };
    }
    const r = await scan(this.#broker, streams, { keep: matcher(q), bound: this.#scanLimit });
    return {
      entries: r.entries,
      total: r.entries.length,
      lowerBound: !r.complete,
      examined: r.examined,
      of: streams.reduce((n, s) => n + s.size, 0),
    };
  }

  /** A broker without browse(): its dead letters, through deadLetters() (bounded). */
  async #deadLetters(q: MessageQuery): Promise<Selected> {
    const queues = q.queue !== undefined ? [q.queue] : await this.#queueNames();
    return await deadLettersOf(this.#broker, queues, q, this.#scanLimit);
  }

  /**
   * `findMessage(id)`, reused for 10 times as long as it took (at least 1 s) unless an action ran
   * since: a message page polls it, and on a large Redis a lookup scans (see the benchmarks).
   */
  async #find(id: string): Promise<BrowseEntry | null | undefined> {
    const now = Date.now();
    const hit = this.#found.get(id);
    if (hit && now < hit.until && hit.epoch === this.#epoch) return hit.entry;
    const epoch = this.#epoch;
    const entry = this.#caps().browse
      ? await this.#broker.findMessage(id)
      : (await this.#deadLetters({ id, limit: 1 })).entries[0];
    const took = Date.now() - now;
    if (this.#found.size > 100) this.#found.clear();
    this.#found.set(id, { entry, until: Date.now() + Math.max(1_000, 10 * took), epoch });
    return entry;
  }

  async message(id: string): Promise<MessageDetail | null> {
    const [e] = await Promise.all([this.#find(id), this.#history.ready()]);
    const events = this.#history.of(id);
    if (!e) return finishedDetail(id, events, this.#history.unsupported);
    if (e.state === "running") await this.#records().catch(() => undefined);
    const d: MessageDetail = this.#summary(e);
    const tb = e.message.options.traceback;
    d.attempts = attemptsFrom(
      events,
      e.message.options.retries,
      e.state,
      typeof tb === "string" && tb ? tb : d.error,
      this.#running.get(id),
    );
    d.attemptsNote = this.#history.unsupported ?? EVENTS_NOTE;
    if (this.#options.results) d.result = await resultOf(this.#options.results, e.message);
    if (this.#caps().progress) {
      const p = await this.#broker.getProgress(id);
      if (p) d.progress = progressInfo(p.value, p.updatedAt);
    }
    return d;
  }

  async finished(q: { queue?: string; limit: number }): Promise<FinishedList> {
    await this.#history.ready();
    if (this.#history.unsupported) throw new DashboardUnsupported(this.#history.unsupported);
    return this.#history.finished(q);
  }

  // ---- actions ----

  async act(req: MessageActionRequest): Promise<ActionResult> {
    this.#epoch++;
    if (!this.actions.includes(req.action)) {
      throw new DashboardUnsupported(
        `${this.name} cannot ${req.action} messages: ${
          req.action === "cancel" ? "it has no cancel()" : UNSUPPORTED_BROWSE
        }.`,
      );
    }
    const applies = ACTION_STATES[req.action];
    let entries: BrowseEntry[];
    let skipped = 0;
    if (
      req.ids && (req.action === "cancel" || DIRECT.includes(req.action) && this.#caps().browse)
    ) {
      // The broker skips what is not in a state the action applies to: no lookup per id.
      const ids = [...new Set(req.ids)];
      return await direct(this.#broker, req.action, ids);
    }
    if (req.ids) {
      entries = [];
      if (!this.#caps().browse) {
        const wanted = new Set(req.ids);
        for (const e of (await this.#deadLetters({ limit: 0 })).entries) {
          if (wanted.delete(e.message.messageId)) entries.push(e);
        }
        skipped += wanted.size;
      } else {
        for (const id of req.ids) {
          const e = await this.#broker.findMessage(id);
          if (e) entries.push(e);
          else skipped++;
        }
      }
    } else if (req.query) {
      const states = (req.query.states?.length ? req.query.states : this.states)
        .filter((s) => applies.includes(s));
      entries = states.length
        ? (await this.#select({ ...req.query, states }, this.#scanLimit)).entries
        : [];
    } else {
      throw new TypeError("act: pass ids or a query.");
    }
    const target = req.action === "move" ? checkTarget(req.target) : undefined;
    const todo = entries.filter((e) => {
      const ok = applies.includes(e.state) &&
        !(target !== undefined && qName(e.message.queueName) === target);
      if (!ok) skipped++;
      return ok;
    });
    const ids = todo.map((e) => e.message.messageId);
    const { done, pending } = await applyTo(this.#broker, req.action, todo, target);
    skipped += ids.length - done - pending;
    return { done, skipped, pending };
  }

  async queueAction(
    queue: string,
    action: QueueAction,
    options: { states?: readonly MessageState[] } = {},
  ): Promise<ActionResult> {
    this.#epoch++;
    const b = this.#broker;
    if (action === "pause" || action === "resume") {
      if (!this.#caps().pause) {
        throw new DashboardUnsupported(
          `${this.name} cannot pause a queue (it has no pauseQueue()): use the file or Redis broker.`,
        );
      }
      if (action === "pause") await b.pauseQueue(queue);
      else await b.resumeQueue(queue);
      return { done: 1, skipped: 0 };
    }
    return await purge(b, queue, new Set(options.states ?? ["ready", "delayed"]), this.name);
  }

  // ---- schedules ----

  #schedules(): readonly Schedule[] {
    return this.#options.schedules?.() ?? getSchedules(this.#broker);
  }

  schedules(): Promise<readonly ScheduleInfo[]> {
    return scheduleInfos(this.#broker, this.#schedules());
  }

  scheduleAction(name: string, action: ScheduleAction): Promise<ActionResult> {
    return actOnSchedule(this.#broker, this.#schedules(), name, action, this.name);
  }
}

function sizeOf(s: QueueStats, state: BrowseState): number {
  return state === "running" ? s.inFlight : s[state];
}
