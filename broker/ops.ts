/**
 * The operations a broker may offer beyond storing and delivering messages: cancel, unique
 * jobs, progress, queue pause, schedule ticks enqueued once, the worker registry, events and
 * browsing. Each is a capability: `broker.capabilities` says which ones a broker has, and the
 * base `Broker` methods throw `Unsupported` for the others.
 *
 * Message options these operations read or write (wire keys, so Python Dramatiq carries them
 * through untouched):
 * - `unique_key` (string), `unique_for` (ms), `debounce` (ms): see `UNIQUE_KEY_OPTION`.
 * - `schedule_name` and `schedule_tick` (ms since the epoch): set on a schedule's messages.
 *
 * @example
 * ```ts
 * import { StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * console.log(typeof broker.capabilities.cancel); // boolean
 * ```
 * @module
 */
import type { JsonValue, Message } from "../message.ts";
import type { MetricsSnapshot } from "../telemetry/registry.ts";
import type { QueueMetrics } from "../telemetry/prometheus.ts";

/** The message option holding a unique job's key (see `Broker.enqueue`). */
export const UNIQUE_KEY_OPTION = "unique_key";
/** The message option: keep the unique key this many ms after the send, even once finished. */
export const UNIQUE_FOR_OPTION = "unique_for";
/** The message option: replace the pending holder of the key and move its eta this far. */
export const DEBOUNCE_OPTION = "debounce";
/** The message option naming the schedule that sent the message. */
export const SCHEDULE_OPTION = "schedule_name";
/** The message option holding the tick (ms since the epoch) a schedule sent the message for. */
export const SCHEDULE_TICK_OPTION = "schedule_tick";

/**
 * Which operations a broker has. Code and tests check these before calling them.
 *
 * @example
 * ```ts
 * import type { BrokerCapabilities } from "@dramatis/dramatis";
 * function canCancel(c: BrokerCapabilities): boolean {
 *   return c.cancel;
 * }
 * ```
 */
export interface BrokerCapabilities {
  /** `cancel()` and `cancelled()`. */
  readonly cancel: boolean;
  /** `enqueue()` honours `unique_key`, `unique_for` and `debounce` atomically. */
  readonly unique: boolean;
  /** `setProgress()` and `getProgress()`. */
  readonly progress: boolean;
  /** `pauseQueue()`, `resumeQueue()` and `pausedQueues()`; consumers of a paused queue get nothing. */
  readonly pause: boolean;
  /** `enqueueTick()`, `lastTicks()`, `pauseSchedule()`, `resumeSchedule()`, `schedulePauses()`. */
  readonly schedules: boolean;
  /** `publishWorker()`, `workers()` and `removeWorker()`. */
  readonly workers: boolean;
  /** `publishEvents()` and `events()`. */
  readonly events: boolean;
  /** `browse()`, `findMessage()`, `deleteMessages()`, `moveMessages()` and `runNow()`. */
  readonly browse: boolean;
  /**
   * A consumer of a delay queue (`q.DQ`) hands out a message only once its eta has passed. A
   * worker then runs a due delayed message in place (and acks it on `q.DQ`) instead of moving
   * it to `q` first, as Dramatiq does; the middleware still sees it on `q`. Brokers without it
   * (Redis, RabbitMQ, the stub) hand delayed messages out at once and the worker holds them.
   */
  readonly delaysUntilDue?: boolean;
}

/** A broker with none of the operations. */
export const NO_CAPABILITIES: BrokerCapabilities = Object.freeze({
  cancel: false,
  unique: false,
  progress: false,
  pause: false,
  schedules: false,
  workers: false,
  events: false,
  browse: false,
  delaysUntilDue: false,
});

/**
 * A broker with every operation (the stub, Redis).
 *
 * @example
 * ```ts
 * import { ALL_CAPABILITIES } from "./ops.ts";
 * console.log(ALL_CAPABILITIES.browse); // true
 * ```
 */
export const ALL_CAPABILITIES: BrokerCapabilities = Object.freeze({
  cancel: true,
  unique: true,
  progress: true,
  pause: true,
  schedules: true,
  workers: true,
  events: true,
  browse: true,
});

/**
 * What `broker.cancel(id)` did:
 * - `cancelled`: the message was queued or delayed; it will never run.
 * - `running`: it is running; its worker is told (its `currentSignal()` aborts with `Cancelled`).
 * - `finished`: it already finished (acked or dead-lettered), where the broker can tell.
 * - `unknown`: no queue holds a message with that id (or it finished and the broker forgot it).
 *
 * @example
 * ```ts
 * import type { CancelOutcome } from "@dramatis/dramatis";
 * const o: CancelOutcome = "cancelled";
 * ```
 */
export type CancelOutcome = "cancelled" | "running" | "finished" | "unknown";

/**
 * A schedule's pause, as `broker.schedulePauses()` lists it: paused since `at`, or resumed at
 * `at` (ticks from then on are on time; those of the pause count as missed).
 *
 * @example
 * ```ts
 * import type { SchedulePause } from "@dramatis/dramatis";
 * const p: SchedulePause = { paused: true, at: Date.now() };
 * ```
 */
export interface SchedulePause {
  /** True while paused: no process enqueues its ticks. */
  paused: boolean;
  /** When it was paused (or resumed), ms since the epoch. */
  at: number;
}

/**
 * The last progress an actor reported for a message.
 *
 * @example
 * ```ts
 * import type { ProgressRecord } from "@dramatis/dramatis";
 * const p: ProgressRecord = { value: { done: 4, of: 10 }, updatedAt: Date.now() };
 * ```
 */
export interface ProgressRecord {
  /** What `reportProgress(value)` was given. */
  value: JsonValue;
  /** When it was stored (ms since the epoch). */
  updatedAt: number;
}

/**
 * One message a worker runs now, as its registry record lists it.
 *
 * @example
 * ```ts
 * import type { RunningMessage } from "@dramatis/dramatis";
 * const r: RunningMessage = { messageId: "m1", actorName: "add", queueName: "default", since: Date.now() };
 * ```
 */
export interface RunningMessage {
  /** The message id. */
  messageId: string;
  /** Its actor. */
  actorName: string;
  /** Its canonical queue. */
  queueName: string;
  /** When the worker started it (ms since the epoch). */
  since: number;
  /** The last progress reported, if any. */
  progress?: JsonValue;
}

/**
 * What a worker process (or an in-code `Worker`) publishes about itself every heartbeat.
 *
 * @example
 * ```ts
 * import type { WorkerRecord } from "@dramatis/dramatis";
 * const w: WorkerRecord = {
 *   workerId: "box:4242", host: "box", pid: 4242, runtime: "deno 2.9.6", version: "0.1.0",
 *   queues: ["default"], concurrency: 8, startedAt: Date.now(), heartbeatAt: Date.now(), running: [],
 * };
 * ```
 */
export interface WorkerRecord {
  /** Unique per process (`host:pid` plus a random part). */
  workerId: string;
  /** Host name. */
  host: string;
  /** Process id. */
  pid: number;
  /** `deno 2.9.6`, `bun 1.4.5`, or `python dramatiq` for Dramatiq's heartbeat on Redis. */
  runtime: string;
  /** dramatis version. */
  version: string;
  /** Canonical queue names it consumes. */
  queues: string[];
  /** How many messages it can run at once (threads x concurrency). */
  concurrency: number;
  /** When it started (ms since the epoch). */
  startedAt: number;
  /** When this record was published (ms since the epoch). */
  heartbeatAt: number;
  /** What it runs now. */
  running: RunningMessage[];
  /** Its cumulative counters and histograms (the `Metrics` middleware's snapshot), if on. */
  metrics?: MetricsSnapshot;
  /**
   * The depth of the queues it consumes, as its broker saw them at `depthsAt`: published by the
   * worker processes of `dramatis worker --metrics` on a FileBroker, whose `/metrics` reads them
   * instead of following the broker's log itself (see `BrokerMetricsOptions.recordDepths`).
   */
  depths?: QueueMetrics[];
  /** When `depths` were read (ms since the epoch). */
  depthsAt?: number;
}

/**
 * Something that happened to a message, as `broker.events()` yields it.
 *
 * @example
 * ```ts
 * import type { BrokerEvent } from "@dramatis/dramatis";
 * const e: BrokerEvent = {
 *   type: "completed", messageId: "m1", actorName: "add", queueName: "default", at: Date.now(),
 * };
 * ```
 */
export interface BrokerEvent {
  /** What happened. */
  type: "completed" | "failed" | "retried" | "dead-lettered" | "cancelled";
  /** The message id. */
  messageId: string;
  /** Its actor. */
  actorName: string;
  /** Its canonical queue. */
  queueName: string;
  /** When (ms since the epoch). */
  at: number;
  /** The worker that reported it. */
  workerId?: string;
  /** The error's first line (`failed`, `retried`, `dead-lettered`). */
  error?: string;
  /** How long the actor ran, in ms (from when its worker started it to `at`), where known. */
  durationMs?: number;
}

/**
 * Where a message is, as `browse()` and `findMessage()` say it.
 *
 * @example
 * ```ts
 * import type { BrowseState } from "@dramatis/dramatis";
 * const s: BrowseState = "dead";
 * ```
 */
export type BrowseState = "ready" | "delayed" | "running" | "dead";

/**
 * One message found by `browse()` or `findMessage()`.
 *
 * @example
 * ```ts
 * import type { BrowseEntry } from "@dramatis/dramatis";
 * function idOf(e: BrowseEntry): string {
 *   return e.message.messageId;
 * }
 * ```
 */
export interface BrowseEntry {
  /** The message (its `queueName` is the canonical queue, not `q.DQ` / `q.XQ`). */
  message: Message;
  /** Where it is. */
  state: BrowseState;
  /** When it entered that state (ms since the epoch), where known. */
  since?: number;
  /** The eta of a delayed message. */
  eta?: number;
  /** The last error's first line, where known (dead letters carry it in `traceback`). */
  error?: string;
}

/**
 * Options of `broker.browse()`.
 *
 * @example
 * ```ts
 * import type { BrowseOptions } from "@dramatis/dramatis";
 * const o: BrowseOptions = { limit: 50 };
 * ```
 */
export interface BrowseOptions {
  /** Page size (default 100). */
  limit?: number;
  /** The `next` cursor of the previous page. */
  cursor?: string;
}

/**
 * One page of `broker.browse()`: newest first.
 *
 * @example
 * ```ts
 * import type { BrowsePage } from "@dramatis/dramatis";
 * const p: BrowsePage = { entries: [], total: 0 };
 * ```
 */
export interface BrowsePage {
  /** At most `limit` entries, newest first. */
  entries: BrowseEntry[];
  /** How many messages the queue holds in that state (all pages). */
  total: number;
  /** Cursor of the next (older) page; absent on the last page. */
  next?: string;
}
