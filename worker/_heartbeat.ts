// What a `Worker` does for the broker operations while it runs: it polls `cancelled()` for the
// messages it holds, publishes its registry record (the heartbeat) and sends its events in
// batches. Each part runs only when the broker has the capability and the worker's options
// leave it on.
import type {
  BrokerCapabilities,
  BrokerEvent,
  RunningMessage,
  WorkerRecord,
} from "../broker/ops.ts";
import type { MessageProxy } from "../message.ts";
import { Cancelled } from "../errors.ts";
import { qName } from "../broker/queue_name.ts";
import { lastProgress } from "./_progress.ts";
import type { MetricsSnapshot } from "../telemetry/registry.ts";
import { VERSION } from "../version.ts";
import { formatError, getLogger } from "../util/log.ts";
import { hostname, pid, runtimeVersion } from "../runtime/process.ts";

const logger = getLogger("dramatis.worker.Worker");

/** How long a heartbeat record lives unless published again (ms). */
export const HEARTBEAT_TTL = 10_000;
/** How often events are sent (ms). */
const EVENTS_EVERY = 250;
/** Events kept while the broker fails to take them. */
const EVENTS_KEPT = 10_000;
/** A failing operation is logged at most this often (ms). */
const LOG_EVERY = 30_000;

/** The broker operations used here (a `Broker`; named structurally, out of the broker's import loop). */
export interface OpsBrokerPart {
  readonly capabilities: BrokerCapabilities;
  cancelled(messageIds: readonly string[]): Promise<Set<string>>;
  publishWorker(record: WorkerRecord, ttl: number): Promise<void>;
  removeWorker(workerId: string): Promise<void>;
  publishEvents(events: readonly BrokerEvent[]): Promise<void>;
}

/** What the worker gives its operations. */
export interface WorkerOpsHost {
  readonly broker: OpsBrokerPart;
  /** Ids of the messages the worker holds (prefetched, delayed or running). */
  heldIds(): string[];
  /** Cancels the held messages with these ids. */
  cancel(ids: Iterable<string>): void;
  /** The registry record as of now (`heartbeatAt` is set by the caller). */
  record(): WorkerRecord;
}

/** Which parts run. */
export interface WorkerOpsOptions {
  /** Poll `cancelled()` every this many ms, or false. */
  cancelPoll: number | false;
  /** Publish the record every this many ms, or false. */
  heartbeat: number | false;
  /** Publish events, or hand each to this function (which sends them on). */
  events: boolean | ((event: BrokerEvent) => void);
}

/** The host name and runtime of this process, for the registry record. */
export async function processIdentity(): Promise<{ host: string; pid: number; runtime: string }> {
  return { host: await hostname(), pid: pid(), runtime: runtimeVersion() };
}

/** The cancel poll, heartbeat and event batches of one running worker. */
export class WorkerOps {
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #events: BrokerEvent[] = [];
  #stopped = false;
  #busy = new Set<string>();
  #logged = new Map<string, number>();

  constructor(readonly host: WorkerOpsHost, readonly options: WorkerOpsOptions) {}

  get #caps() {
    return this.host.broker.capabilities;
  }

  /** Starts the timers (publishes the first heartbeat at once). */
  start(): void {
    this.#stopped = false;
    const { cancelPoll, heartbeat, events } = this.options;
    if (cancelPoll !== false && this.#caps.cancel) {
      this.#every("cancel", cancelPoll, () => this.#poll());
    }
    if (heartbeat !== false && this.#caps.workers) {
      this.#every("heartbeat", heartbeat, () => this.#beat(), true);
    }
    if (events === true && this.#caps.events) {
      this.#every("events", EVENTS_EVERY, () => this.flushEvents());
    }
  }

  /** Queues an event for the next batch. */
  event(e: BrokerEvent): void {
    const { events } = this.options;
    if (!events || !this.#caps.events) return;
    if (typeof events === "function") return events(e);
    this.#events.push(e);
    // Trimmed in one go at twice the cap (not one splice per event past it): the newest
    // EVENTS_KEPT to 2 x EVENTS_KEPT wait for the next batch.
    if (this.#events.length >= 2 * EVENTS_KEPT) {
      this.#events.splice(0, this.#events.length - EVENTS_KEPT);
    }
  }

  /** Sends the events queued so far. */
  async flushEvents(): Promise<void> {
    if (this.#events.length === 0) return;
    const batch = this.#events;
    this.#events = [];
    try {
      await this.host.broker.publishEvents(batch);
    } catch (e) {
      this.#events.unshift(...batch);
      this.#warn("events", `Failed to publish ${batch.length} event(s): ${formatError(e)}`);
    }
  }

  /** Stops the timers, sends the last events and removes the record. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await this.flushEvents();
    if (this.options.heartbeat !== false && this.#caps.workers) {
      try {
        await this.host.broker.removeWorker(this.host.record().workerId);
      } catch (e) {
        this.#warn("heartbeat", `Failed to remove the worker record: ${formatError(e)}`);
      }
    }
  }

  /** Runs `fn` every `ms` (never twice at once), from now with `now`. */
  #every(name: string, ms: number, fn: () => Promise<void>, now = false): void {
    const run = async () => {
      if (this.#stopped || this.#busy.has(name)) return;
      this.#busy.add(name);
      try {
        await fn();
      } finally {
        this.#busy.delete(name);
        if (!this.#stopped) arm();
      }
    };
    const arm = () => {
      const t = setTimeout(() => {
        this.#timers.delete(t);
        run();
      }, ms);
      this.#timers.add(t);
    };
    if (now) run();
    else arm();
  }

  async #poll(): Promise<void> {
    const ids = this.host.heldIds();
    if (ids.length === 0) return;
    try {
      const cancelled = await this.host.broker.cancelled(ids);
      if (cancelled.size > 0 && !this.#stopped) this.host.cancel(cancelled);
    } catch (e) {
      this.#warn("cancel", `Failed to poll for cancelled messages: ${formatError(e)}`);
    }
  }

  async #beat(): Promise<void> {
    try {
      await this.host.broker.publishWorker(
        { ...this.host.record(), heartbeatAt: Date.now() },
        HEARTBEAT_TTL,
      );
    } catch (e) {
      this.#warn("heartbeat", `Failed to publish the worker record: ${formatError(e)}`);
    }
  }

  #warn(what: string, text: string): void {
    const now = Date.now();
    if ((this.#logged.get(what) ?? -Infinity) + LOG_EVERY > now) return;
    this.#logged.set(what, now);
    logger.warning(text);
  }
}

/**
 * What happened to `m`, whose `retries` option was `retries` when it started (at `startedAt`, ms
 * since the epoch, where known); its actor returned or threw at `endedAt` (the event's time; now
 * if not known).
 */
export function eventOf(
  m: MessageProxy,
  retries: unknown,
  workerId: string,
  startedAt?: number,
  endedAt?: number,
): BrokerEvent {
  const error = m.error;
  const type: BrokerEvent["type"] = error instanceof Cancelled
    ? "cancelled"
    : m.failed
    ? "dead-lettered"
    : error === undefined
    ? "completed"
    : m.options.retries !== retries
    ? "retried"
    : "failed";
  const e: BrokerEvent = {
    type,
    messageId: m.messageId,
    actorName: m.actorName,
    queueName: qName(m.queueName),
    at: endedAt ?? Date.now(),
    workerId,
  };
  if (startedAt !== undefined) e.durationMs = Math.max(0, e.at - startedAt);
  if (error !== undefined && type !== "cancelled") {
    e.error = (error instanceof Error ? `${error.name}: ${error.message}` : String(error))
      .split("\n")[0]!.slice(0, 500);
  }
  return e;
}

/** The registry entries of the messages in flight (message -> when it started). */
export function runningOf(inFlight: Map<MessageProxy, number>): RunningMessage[] {
  const out: RunningMessage[] = [];
  for (const [m, since] of inFlight) {
    const progress = lastProgress(m);
    out.push({
      messageId: m.messageId,
      actorName: m.actorName,
      queueName: qName(m.queueName),
      since,
      ...(progress !== undefined ? { progress } : {}),
    });
  }
  return out;
}

/** What `recordOf` builds a worker's record from. */
export interface RecordParts {
  /** The broker's middleware: a `Metrics` one adds its snapshot. */
  middleware: readonly object[];
  workerId: string;
  identity: { host: string; pid: number; runtime: string } | undefined;
  queues: string[];
  concurrency: number;
  startedAt: number;
  running: RunningMessage[];
}

/** The `Metrics` middleware among `middleware`, if any. */
export function metricsOf(
  middleware: readonly object[],
): { snapshot(): MetricsSnapshot } | undefined {
  // Found by shape, not by class: importing the Metrics middleware here would close an import loop.
  return middleware.find((m) =>
    m.constructor.name === "Metrics" && typeof (m as { snapshot?: unknown }).snapshot === "function"
  ) as { snapshot(): MetricsSnapshot } | undefined;
}

/** A worker's registry record as of now. */
export function recordOf(p: RecordParts): WorkerRecord {
  const id = p.identity ?? { host: "unknown", pid: 0, runtime: "unknown" };
  const metrics = metricsOf(p.middleware);
  return {
    workerId: p.workerId,
    host: id.host,
    pid: id.pid,
    runtime: id.runtime,
    version: VERSION,
    queues: p.queues,
    concurrency: p.concurrency,
    startedAt: p.startedAt,
    heartbeatAt: Date.now(),
    running: p.running,
    ...(metrics ? { metrics: metrics.snapshot() } : {}),
  };
}
