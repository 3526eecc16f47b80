// The StubBroker's operations that do not touch its queues: progress, paused queues, schedule
// ticks, the worker registry and events. Everything is copied through JSON, as a real broker
// would store it.
import type { JsonValue } from "../message.ts";
import type { BrokerEvent, ProgressRecord, SchedulePause, WorkerRecord } from "./ops.ts";

const HOUR = 3_600_000;

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v));
}

/** Progress, pauses, ticks, workers and events of one StubBroker. */
export class StubOpsState {
  readonly #progress = new Map<string, ProgressRecord>();
  /** Canonical names of the paused queues. */
  readonly paused: Set<string> = new Set();
  readonly #ticks = new Map<string, number>();
  /** Schedules paused, or resumed, and when. */
  readonly schedulePauses: Map<string, SchedulePause> = new Map();
  readonly #workers = new Map<string, { record: WorkerRecord; ttl: number }>();
  readonly #events = new EventHub();

  setProgress(id: string, value: JsonValue): void {
    const now = Date.now();
    this.#progress.delete(id); // re-inserted last: the map stays ordered by update time
    this.#progress.set(id, { value: clone(value), updatedAt: now });
    // Drop what was not updated for an hour (oldest first).
    for (const [k, p] of this.#progress) {
      if (p.updatedAt + HOUR > now) break;
      this.#progress.delete(k);
    }
  }

  getProgress(id: string): ProgressRecord | null {
    const p = this.#progress.get(id);
    return p ? clone(p) : null;
  }

  /** Pauses (`true`) or resumes schedule `name`; a no-op when it already is so. */
  setSchedulePaused(name: string, paused: boolean): void {
    if ((this.schedulePauses.get(name)?.paused ?? false) !== paused) {
      this.schedulePauses.set(name, { paused, at: Date.now() });
    }
  }

  /** A copy of the schedules paused or resumed. */
  schedulePausesCopy(): Map<string, SchedulePause> {
    return new Map([...this.schedulePauses].map(([k, v]) => [k, { ...v }]));
  }

  /** The last tick of `name`, or -Infinity. */
  lastTick(name: string): number {
    return this.#ticks.get(name) ?? -Infinity;
  }

  setTick(name: string, tick: number): void {
    this.#ticks.set(name, tick);
  }

  lastTicks(): Map<string, number> {
    return new Map(this.#ticks);
  }

  publishWorker(record: WorkerRecord, ttl: number): void {
    this.#workers.set(record.workerId, { record: clone(record), ttl });
  }

  workers(): WorkerRecord[] {
    const now = Date.now();
    const out: WorkerRecord[] = [];
    for (const [id, { record, ttl }] of this.#workers) {
      if (record.heartbeatAt + ttl > now) out.push(clone(record));
      else this.#workers.delete(id);
    }
    return out;
  }

  removeWorker(id: string): void {
    this.#workers.delete(id);
  }

  publishEvents(events: readonly BrokerEvent[]): void {
    this.#events.publish(clone(events as BrokerEvent[]));
  }

  events(signal: AbortSignal | undefined, past = false): AsyncIterable<BrokerEvent> {
    return this.#events.subscribe(signal, past);
  }
}

/** Events kept for `events({ past: true })`. */
const KEPT = 10_000;

/**
 * Fans events out to the iterators subscribed when they were published, and keeps the last
 * `KEPT` (trimmed at twice that) for those that ask for the past ones.
 */
export class EventHub {
  readonly #subscribers = new Set<(events: BrokerEvent[]) => void>();
  #kept: BrokerEvent[] = [];

  /** Hands `events` to every current subscriber. */
  publish(events: BrokerEvent[]): void {
    for (const s of this.#subscribers) s(events);
    this.#kept.push(...events);
    if (this.#kept.length > 2 * KEPT) this.#kept = this.#kept.slice(-KEPT);
  }

  /**
   * The events published from now on (with `past`, the kept ones first), until `signal` aborts.
   * Subscribes at once.
   */
  subscribe(signal: AbortSignal | undefined, past = false): AsyncIterable<BrokerEvent> {
    const buffer: BrokerEvent[] = past ? this.#kept.slice(-KEPT) : [];
    let wake: (() => void) | undefined;
    const subscriber = (events: BrokerEvent[]) => {
      buffer.push(...events);
      wake?.();
    };
    const onAbort = () => wake?.();
    const subscribers = this.#subscribers;
    if (!signal?.aborted) {
      subscribers.add(subscriber);
      signal?.addEventListener("abort", onAbort);
    }
    async function* iterate(): AsyncGenerator<BrokerEvent> {
      try {
        while (!signal?.aborted) {
          const e = buffer.shift();
          if (e) {
            yield e;
            continue;
          }
          await new Promise<void>((resolve) => wake = resolve);
          wake = undefined;
        }
      } finally {
        subscribers.delete(subscriber);
        signal?.removeEventListener("abort", onAbort);
      }
    }
    return iterate();
  }
}
