// The broker operations of a worker process (broker/ops.ts), run by its main thread for all of
// its Web Workers: the cancel poll over every message it holds, one registry record (the
// heartbeat) for the process, and the events of its Web Workers in batches. The Web Workers
// report what these need (see worker/_protocol.ts); worker/_process.ts feeds it.
import type { Broker } from "../broker/broker.ts";
import type { BrokerEvent, RunningMessage, WorkerRecord } from "../broker/ops.ts";
import type { MessageProxy } from "../message.ts";
import { MetricsAggregator, type MetricsSnapshot } from "../telemetry/registry.ts";
import { eventOf, metricsOf, processIdentity, recordOf, WorkerOps } from "./_heartbeat.ts";

/** How often the cancel poll runs and the heartbeat is published (ms). */
const CANCEL_POLL = 50;
const HEARTBEAT = 1000;

/** What the worker process gives its operations. */
export interface ProcessOpsParts {
  broker: Broker;
  /** Canonical names of the queues it consumes. */
  queues: string[];
  /** Threads x concurrency. */
  concurrency: number;
  /** Ids of the messages it holds (not delivered yet, or held by a Web Worker). */
  heldIds(): string[];
  /** Cancels the held messages with these ids. */
  cancel(ids: Set<string>): void;
  /** What its Web Workers run now. */
  running(): RunningMessage[];
}

/** The operations of one worker process (started once its consumers run). */
export class ProcessOps {
  readonly workerId: string;
  readonly #parts: ProcessOpsParts;
  readonly #identity: { host: string; pid: number; runtime: string };
  readonly #ops: WorkerOps;
  readonly #startedAt = Date.now();
  /** The `Metrics` middleware of this thread: with it, the Web Workers' snapshots are summed. */
  readonly #metrics: { snapshot(): MetricsSnapshot } | undefined;
  readonly #aggregator: MetricsAggregator | undefined;

  private constructor(
    parts: ProcessOpsParts,
    identity: { host: string; pid: number; runtime: string },
  ) {
    this.#parts = parts;
    this.#identity = identity;
    this.workerId = `${identity.host}:${identity.pid}:${crypto.randomUUID().slice(0, 8)}`;
    this.#metrics = metricsOf(parts.broker.middleware);
    if (this.#metrics) this.#aggregator = new MetricsAggregator();
    this.#ops = new WorkerOps({
      broker: parts.broker,
      heldIds: parts.heldIds,
      cancel: (ids) => parts.cancel(new Set(ids)),
      record: () => this.record(),
    }, { cancelPoll: CANCEL_POLL, heartbeat: HEARTBEAT, events: true });
  }

  /** The operations of this process. */
  static async create(parts: ProcessOpsParts): Promise<ProcessOps> {
    return new ProcessOps(parts, await processIdentity());
  }

  /** Starts the cancel poll, the heartbeat (published at once) and the event batches. */
  start(): void {
    this.#ops.start();
  }

  /** Sends the last events and removes the record. */
  stop(): Promise<void> {
    return this.#ops.stop();
  }

  /** An event of a Web Worker: sent in the next batch, as this process's. */
  event(e: BrokerEvent): void {
    e.workerId = this.workerId;
    this.#ops.event(e);
  }

  /** `m`, whose `retries` option was `retries` when it started, was settled by this thread. */
  settled(m: MessageProxy, retries: unknown): void {
    this.#ops.event(eventOf(m, retries, this.workerId));
  }

  /** The latest `Metrics` snapshot of a Web Worker. */
  metrics(snapshot: MetricsSnapshot): void {
    this.#aggregator?.update(snapshot);
  }

  /** A Web Worker is gone: its counters are kept, its gauges dropped. */
  retire(instance: string | undefined): void {
    if (instance !== undefined) this.#aggregator?.retire(instance);
  }

  /** The registry record as of now. */
  record(): WorkerRecord {
    const record = recordOf({
      middleware: [],
      workerId: this.workerId,
      identity: this.#identity,
      queues: this.#parts.queues,
      concurrency: this.#parts.concurrency,
      startedAt: this.#startedAt,
      running: this.#parts.running(),
    });
    if (this.#metrics && this.#aggregator) {
      // This thread's own counts: messages it settled itself (hard time limits, cancels).
      this.#aggregator.update(this.#metrics.snapshot());
      record.metrics = this.#aggregator.snapshot();
    }
    return record;
  }
}
