// The broker operations of a worker process (broker/ops.ts), run by its main thread for all of
// its Web Workers: the cancel poll over every message it holds, one registry record (the
// heartbeat) for the process, and the events of its Web Workers in batches. The Web Workers
// report what these need (see worker/_protocol.ts); worker/_process.ts feeds it.
import type { Broker } from "../broker/broker.ts";
import type { BrokerEvent, RunningMessage, WorkerRecord } from "../broker/ops.ts";
import type { MessageProxy } from "../message.ts";
import { MetricsAggregator, type MetricsSnapshot } from "../telemetry/registry.ts";
import { eventOf, metricsOf, processIdentity, recordOf, WorkerOps } from "./_heartbeat.ts";
import { RECORD_DEPTHS_ENV, statsOf } from "../telemetry/_depth.ts";
import type { QueueMetrics } from "../telemetry/prometheus.ts";
import { env } from "../runtime/env.ts";

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
  /** With RECORD_DEPTHS_ENV=1: the depths of its queues, read after each heartbeat for the next. */
  #depths: { at: number; depths: QueueMetrics[] } | undefined;
  readonly #wantDepths: boolean;
  #readingDepths = false;

  private constructor(
    parts: ProcessOpsParts,
    identity: { host: string; pid: number; runtime: string },
  ) {
    this.#parts = parts;
    this.#identity = identity;
    this.workerId = `${identity.host}:${identity.pid}:${crypto.randomUUID().slice(0, 8)}`;
    this.#metrics = metricsOf(parts.broker.middleware);
    if (this.#metrics) this.#aggregator = new MetricsAggregator();
    this.#wantDepths = this.#metrics !== undefined && env(RECORD_DEPTHS_ENV) === "1";
    this.#ops = new WorkerOps({
      broker: parts.broker,
      heldIds: parts.heldIds,
      cancel: (ids) => parts.cancel(new Set(ids)),
      record: () => this.record(),
    }, { cancelPoll: CANCEL_POLL, heartbeat: HEARTBEAT, events: true });
  }

  /** The operations of this process. */
  static async create(parts: ProcessOpsParts): Promise<ProcessOps> {
    const ops = new ProcessOps(parts, await processIdentity());
    if (ops.#wantDepths) await ops.#readDepths(); // so that the first record has them
    return ops;
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
    if (this.#depths) {
      record.depths = this.#depths.depths;
      record.depthsAt = this.#depths.at;
    }
    if (this.#wantDepths && !this.#readingDepths) void this.#readDepths();
    return record;
  }

  /** Reads the depth of its queues (one at a time: for the next record). */
  async #readDepths(): Promise<void> {
    this.#readingDepths = true;
    try {
      const at = Date.now();
      const depths: QueueMetrics[] = [];
      for (const q of this.#parts.queues) {
        const d = await statsOf(this.#parts.broker, q);
        if (d) depths.push(d);
      }
      this.#depths = { at, depths };
    } catch {
      this.#depths = undefined; // the supervisor reads the broker itself
    } finally {
      this.#readingDepths = false;
    }
  }
}
