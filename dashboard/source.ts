/**
 * `DashboardSource`: what the dashboard reads and asks of a broker. Only `queues()` is required;
 * every other method is an optional capability. A method that is absent, or that throws
 * `DashboardUnsupported`, makes its page or button say "not supported by this broker" and why
 * (RabbitMQ without its management API cannot browse a queue, for instance).
 *
 * A source throws a `RangeError` for a query it cannot take (a cursor that is not its own): the
 * dashboard answers 400 with its message; so do `TypeError`s of actions (an unknown queue).
 *
 * Contract for the brokers: every read is bounded (a page, a count, no `KEYS`), and every action
 * moves each message in one atomic step on the broker, so a crash half-way through a bulk action
 * leaves each message either before or after it, never lost and never twice.
 *
 * @example
 * ```ts
 * import type { DashboardSource } from "./source.ts";
 * const source: DashboardSource = {
 *   name: "example",
 *   queues: () =>
 *     Promise.resolve([{ queueName: "default", ready: 1, delayed: 0, inFlight: 0, dead: 0 }]),
 * };
 * console.log((await source.queues())[0].ready); // 1
 * ```
 * @module
 */
import type { BrokerEvent } from "../broker/ops.ts";
import type { JsonValue, WireMessage } from "../message.ts";
import type { MetricsSnapshot } from "../telemetry/registry.ts";
import type { QueueMetrics, WorkerMetrics } from "../telemetry/prometheus.ts";
import type { FinishedList } from "./finished.ts";

/**
 * Where a message is. `ready`: waiting in its queue; `delayed`: waiting for its eta (`q.DQ`), a
 * retry's backoff included; `running`: delivered to a worker and not yet settled (in flight);
 * `dead`: in the dead letters (`q.XQ`); `done`: finished and kept in the history, which only a
 * source with `states` including it can list (the file broker's log; not Redis).
 *
 * @example
 * ```ts
 * import type { MessageState } from "./source.ts";
 * const s: MessageState = "dead";
 * ```
 */
export type MessageState = "ready" | "delayed" | "running" | "dead" | "done";

/**
 * Every state, in the order the pages show them.
 *
 * @example
 * ```ts
 * import { MESSAGE_STATES } from "./source.ts";
 * console.log(MESSAGE_STATES.join(",")); // ready,delayed,running,dead,done
 * ```
 */
export const MESSAGE_STATES: readonly MessageState[] = Object.freeze([
  "ready",
  "delayed",
  "running",
  "dead",
  "done",
]);

/**
 * An action on messages, single or bulk:
 *
 * | action    | applies to               | effect                                                         |
 * | --------- | ------------------------ | -------------------------------------------------------------- |
 * | `retry`   | dead, delayed            | ready now; the in-memory source resets `retries` to 0, the brokers keep it (`requeueDeadLetters`, `runNow`: atomic) |
 * | `requeue` | dead                     | back on its queue, options kept (as `requeueDeadLetters`)      |
 * | `run-now` | delayed                  | ready now (the eta dropped), options kept                      |
 * | `delete`  | ready, delayed, dead, done | removed for good                                             |
 * | `cancel`  | ready, delayed, running  | never runs: removed by the broker's `cancel()` (the in-memory source dead-letters it as "Cancelled"); a running one is aborted by its worker |
 * | `move`    | ready, delayed, dead     | onto the queue `target` (ready, or delayed if its eta is ahead) |
 *
 * @example
 * ```ts
 * import type { MessageAction } from "./source.ts";
 * const a: MessageAction = "requeue";
 * ```
 */
export type MessageAction = "retry" | "requeue" | "run-now" | "delete" | "cancel" | "move";

/**
 * The states each action applies to (see `MessageAction`). A bulk action is applied to the
 * messages of the query in these states only; its count is taken the same way.
 *
 * @example
 * ```ts
 * import { ACTION_STATES } from "./source.ts";
 * console.log(ACTION_STATES.requeue); // ["dead"]
 * ```
 */
export const ACTION_STATES: Readonly<Record<MessageAction, readonly MessageState[]>> = Object
  .freeze({
    retry: ["dead", "delayed"],
    requeue: ["dead"],
    "run-now": ["delayed"],
    delete: ["ready", "delayed", "dead", "done"],
    cancel: ["ready", "delayed", "running"],
    move: ["ready", "delayed", "dead"],
  });

/**
 * An action on a whole queue. `purge` drops the messages of the given `states` (ready and
 * delayed, dead, or all three); `pause` stops every worker from taking its messages (across
 * processes) until `resume`.
 *
 * @example
 * ```ts
 * import type { QueueAction } from "./source.ts";
 * const a: QueueAction = "pause";
 * ```
 */
export type QueueAction = "pause" | "resume" | "purge";

/**
 * An action on a schedule.
 *
 * @example
 * ```ts
 * import type { ScheduleAction } from "./source.ts";
 * const a: ScheduleAction = "run-now";
 * ```
 */
export type ScheduleAction = "run-now" | "pause" | "resume";

/**
 * Thrown by a source method the broker cannot do, or not in this configuration. Its message is
 * shown on the page, so say why and what would make it work.
 *
 * @example
 * ```ts
 * import { DashboardUnsupported } from "./source.ts";
 * const e = new DashboardUnsupported("Browsing a RabbitMQ queue needs the management API: pass managementUrl.");
 * console.log(e.name); // DashboardUnsupported
 * ```
 */
export class DashboardUnsupported extends Error {
  /** `reason` is shown to the user as it is. */
  constructor(reason: string) {
    super(reason);
    this.name = "DashboardUnsupported";
  }
}

/**
 * One queue on the overview: the four counts kept apart (`QueueMetrics`), the oldest ready
 * message's timestamp, and what the broker knows of its consumers and pause state.
 *
 * @example
 * ```ts
 * import type { QueueOverview } from "./source.ts";
 * const q: QueueOverview = {
 *   queueName: "emails", ready: 4, delayed: 1, inFlight: 2, dead: 0,
 *   oldestReadyTimestamp: Date.now() - 3_000, consumers: 2, paused: false,
 * };
 * ```
 */
export interface QueueOverview extends QueueMetrics {
  /**
   * How many consumers take from it now. When undefined the dashboard counts the workers whose
   * `queues` include it (if the source has `workers()`).
   */
  consumers?: number;
  /** True while paused (see `QueueAction`). Undefined when the broker cannot pause. */
  paused?: boolean;
  /**
   * True when `oldestReadyTimestamp` is the oldest of the messages read, not of the whole queue
   * (the age shown is then a lower bound: "≥ 5m").
   */
  oldestIsLowerBound?: boolean;
}

/**
 * Which messages to list, count or act on. Every field narrows the result; none means every
 * message of every queue. Times are ms since the epoch.
 *
 * @example
 * ```ts
 * import type { MessageQuery } from "./source.ts";
 * const q: MessageQuery = { queue: "emails", states: ["dead"], text: "timeout", limit: 50 };
 * ```
 */
export interface MessageQuery {
  /** One canonical queue name. */
  queue?: string;
  /** Only these states (none or empty: all of the source's states). */
  states?: readonly MessageState[];
  /** Exact actor name. */
  actor?: string;
  /** Exact message id. */
  id?: string;
  /**
   * Case-insensitive substring of the arguments (args and kwargs as JSON) or of the last error,
   * as `textIn` says.
   */
  text?: string;
  /** Where `text` is looked for: `all` (default: args, kwargs and error) or `error` only. */
  textIn?: "all" | "error";
  /** `messageTimestamp` at or after this. */
  from?: number;
  /** `messageTimestamp` at or before this. */
  to?: number | undefined;
  /** Page size (the dashboard asks for 1 to 500; 0 asks for the total alone). */
  limit: number;
  /** A cursor from a previous page's `next` or `prev`. */
  cursor?: string | undefined;
}

/**
 * One page of messages, newest first (by `messageTimestamp`, then by the order the source
 * stored them).
 *
 * @example
 * ```ts
 * import type { MessagePage } from "./source.ts";
 * const p: MessagePage = { messages: [], total: 0 };
 * ```
 */
export interface MessagePage {
  /** At most `limit` messages, newest first. */
  messages: MessageSummary[];
  /** How many match the query (all pages). */
  total: number;
  /** True when `total` is a lower bound (a scan stopped early); the page shows "at least". */
  totalIsLowerBound?: boolean;
  /** Shown under the total: how far a bounded scan went, and how to search further. */
  note?: string;
  /** Cursor of the next (older) page; absent on the last page. */
  next?: string | undefined;
  /** Cursor of the previous (newer) page; absent on the first page. */
  prev?: string | undefined;
}

/**
 * A message as a list shows it.
 *
 * @example
 * ```ts
 * import type { MessageSummary } from "./source.ts";
 * const s: MessageSummary = {
 *   message: {
 *     queue_name: "default", actor_name: "add", args: [1, 2], kwargs: {}, options: {},
 *     message_id: "5f7b0c2e-0000-4000-8000-000000000000", message_timestamp: Date.now(),
 *   },
 *   state: "ready",
 * };
 * ```
 */
export interface MessageSummary {
  /** The envelope in Dramatiq's wire form (the dashboard passes it to `redact` before showing it). */
  message: WireMessage;
  /** Where it is now. */
  state: MessageState;
  /** When it entered this state (ms since the epoch), where known. */
  since?: number;
  /** The last error's first line, where known (dead letters, retries). */
  error?: string | undefined;
  /** The worker running it (`running` only), where known. */
  workerId?: string | undefined;
}

/**
 * One delivery of a message: a try.
 *
 * @example
 * ```ts
 * import type { Attempt } from "./source.ts";
 * const a: Attempt = { startedAt: Date.now() - 80, durationMs: 80, outcome: "retry", error: "TypeError: x" };
 * ```
 */
export interface Attempt {
  /** When the worker started the actor. */
  startedAt?: number;
  /** How long the actor ran, in ms. */
  durationMs?: number;
  /** The worker that ran it. */
  workerId?: string;
  /** How it ended (`running` while it runs). */
  outcome:
    | "running"
    | "success"
    | "retry"
    | "dead"
    | "skipped"
    | "requeued"
    | "failed"
    | "cancelled";
  /** The error, with its stack where known. */
  error?: string | undefined;
}

/**
 * What the result backend holds for a message.
 *
 * @example
 * ```ts
 * import type { ResultInfo } from "./source.ts";
 * const r: ResultInfo = { status: "ok", value: 42 };
 * ```
 */
export interface ResultInfo {
  /** `ok` (value), `error` (the actor failed for good), `pending` (none yet), `missing` (expired or never stored). */
  status: "ok" | "error" | "pending" | "missing";
  /** The stored value (`ok`). */
  value?: JsonValue;
  /** The stored error (`error`). */
  error?: string;
}

/**
 * Progress an actor reported.
 *
 * @example
 * ```ts
 * import type { ProgressInfo } from "./source.ts";
 * const p: ProgressInfo = { fraction: 0.4, text: "page 4 of 10", updatedAt: Date.now() };
 * ```
 */
export interface ProgressInfo {
  /** From 0 to 1, where known. */
  fraction?: number;
  /** A short text. */
  text?: string;
  /** When it was reported. */
  updatedAt: number;
}

/**
 * Everything about one message. Pipeline and group links are read by the dashboard from the
 * options (`pipe_target`, `group_completion_uuid`, ...); a source adds what it knows beyond them.
 *
 * @example
 * ```ts
 * import type { MessageDetail } from "./source.ts";
 * function tries(d: MessageDetail): number {
 *   return d.attempts?.length ?? 0;
 * }
 * ```
 */
export interface MessageDetail extends MessageSummary {
  /** Every delivery, oldest first, as far as the source knows them (see `attemptsNote`). */
  attempts?: Attempt[];
  /** Shown under the attempts: where they come from and how far back they go. */
  attemptsNote?: string;
  /** True for a finished message known from its events only: its envelope is not kept. */
  fromEvents?: boolean;
  /** The result, when a result backend is configured. */
  result?: ResultInfo;
  /** The last progress reported. */
  progress?: ProgressInfo | undefined;
}

/**
 * One worker process: `WorkerMetrics` (id, slots, busy, last heartbeat) plus what the dashboard
 * shows. Python Dramatiq workers on Redis have an id and a heartbeat only.
 *
 * @example
 * ```ts
 * import type { WorkerInfo } from "./source.ts";
 * const w: WorkerInfo = {
 *   workerId: "box:4242", slots: 8, busy: 1, lastSeen: Date.now(), host: "box", pid: 4242,
 *   runtime: "deno 2.9.6", queues: ["default"],
 * };
 * ```
 */
export interface WorkerInfo extends WorkerMetrics {
  /** Host name. */
  host?: string;
  /** Process id. */
  pid?: number;
  /** `deno 2.9.6`, `bun 1.4.5`, `python dramatiq 2.2`, ... */
  runtime?: string;
  /** Queues it consumes (canonical names). */
  queues?: string[];
  /** When it started. */
  startedAt?: number;
  /** Messages it runs now. */
  running?: { messageId: string; actor: string; queue: string; startedAt: number }[];
  /** Its counters since it started (`processed`, `errors`, `retries`, ...). */
  counters?: Record<string, number>;
}

/**
 * One schedule (a cron entry).
 *
 * @example
 * ```ts
 * import type { ScheduleInfo } from "./source.ts";
 * const s: ScheduleInfo = {
 *   name: "nightly-report", actor: "report", queue: "default", spec: "0 3 * * *",
 *   nextAt: Date.now() + 3_600_000, lastAt: null, paused: false,
 * };
 * ```
 */
export interface ScheduleInfo {
  /** Unique name. */
  name: string;
  /** The actor it sends to. */
  actor: string;
  /** Its queue. */
  queue: string;
  /** The cron expression or interval, as written. */
  spec: string;
  /** Time zone of the expression, if not UTC. */
  timezone?: string;
  /** Next tick (null when paused or none). */
  nextAt: number | null;
  /** Last tick (null when never). */
  lastAt: number | null;
  /** The message the last tick sent. */
  lastMessageId?: string;
  /** True while paused. */
  paused: boolean;
}

/**
 * A message action to perform: on the messages `ids`, or on every message the `query` matches
 * (its `limit` and `cursor` ignored), in the states `ACTION_STATES[action]`.
 *
 * @example
 * ```ts
 * import type { MessageActionRequest } from "./source.ts";
 * const r: MessageActionRequest = { action: "requeue", query: { states: ["dead"], limit: 0 } };
 * ```
 */
export interface MessageActionRequest {
  /** What to do. */
  action: MessageAction;
  /** These messages (single action, or a selection). */
  ids?: readonly string[];
  /** Or every message matching this (bulk on a search result). */
  query?: MessageQuery;
  /** Target queue of `move`. */
  target?: string | undefined;
}

/**
 * What an action did.
 *
 * @example
 * ```ts
 * import type { ActionResult } from "./source.ts";
 * const r: ActionResult = { done: 12, skipped: 1 };
 * ```
 */
export interface ActionResult {
  /** Messages acted on. */
  done: number;
  /** Messages skipped: gone, or in a state the action does not apply to. */
  skipped: number;
  /** Running messages whose cancellation was asked of their worker and has not happened yet. */
  pending?: number;
}

/**
 * What the dashboard reads and asks of a broker. Implement `queues()`; every other member is an
 * optional capability (see the module documentation).
 *
 * @example
 * ```ts
 * import { MemoryDashboardSource } from "./memory.ts";
 * import type { DashboardSource } from "./source.ts";
 * const source: DashboardSource = new MemoryDashboardSource();
 * console.log(typeof source.messages); // function
 * ```
 */
export interface DashboardSource {
  /** Shown in the header: the broker and where it is (`file ./.dramatis`, `redis 127.0.0.1:6379`). */
  readonly name?: string;
  /** The states `messages()` can list (default: ready, delayed, running, dead). */
  readonly states?: readonly MessageState[];
  /** The message actions `act()` can do (default: all of them). */
  readonly actions?: readonly MessageAction[];
  /** The queue actions `queueAction()` can do (default: all of them). */
  readonly queueActions?: readonly QueueAction[];

  /** Every queue with its counts (no scan: what the broker keeps). Required. */
  queues(): Promise<readonly QueueOverview[]>;
  /** The merged metrics snapshot of every worker (cumulative; the dashboard takes rates). */
  metrics?(): Promise<MetricsSnapshot>;
  /** One page of messages matching `query`, newest first, with the total. */
  messages?(query: MessageQuery): Promise<MessagePage>;
  /** One message by id, or null when no queue holds it. */
  message?(id: string): Promise<MessageDetail | null>;
  /** Performs a message action (atomic per message). */
  act?(request: MessageActionRequest): Promise<ActionResult>;
  /** Performs a queue action; `states` says what `purge` drops (default ready and delayed). */
  queueAction?(
    queue: string,
    action: QueueAction,
    options?: { states?: readonly MessageState[] },
  ): Promise<ActionResult>;
  /** Live workers (and those seen within the heartbeat timeout). */
  workers?(): Promise<readonly WorkerInfo[]>;
  /** Every schedule. */
  schedules?(): Promise<readonly ScheduleInfo[]>;
  /** The recently finished messages, newest first (see `FinishedList`). */
  finished?(query: { queue?: string; limit: number }): Promise<FinishedList>;
  /** Performs a schedule action. */
  scheduleAction?(name: string, action: ScheduleAction): Promise<ActionResult>;
  /**
   * What happens to messages from now on, in every process, until `signal` aborts (completed,
   * failed, retried, dead-lettered, cancelled): the open pages update as they arrive, over
   * server-sent events. Without it, the pages poll.
   */
  events?(signal: AbortSignal): AsyncIterable<BrokerEvent>;
}
