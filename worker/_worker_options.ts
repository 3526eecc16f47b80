// The options of `Worker` and of `worker.stop()`, and the monitor the CLI passes (re-exported
// by worker/worker.ts).
import type { Consumer } from "../broker/consumer.ts";
import type { MessageProxy } from "../message.ts";
import type { ProgressSink } from "./_progress.ts";
import type { BrokerEvent } from "../broker/ops.ts";

/**
 * Options of `new Worker()`.
 *
 * @example
 * ```ts
 * import type { WorkerOptions } from "@dramatis/dramatis";
 * const o: WorkerOptions = { queues: ["default", "emails"], concurrency: 16 };
 * ```
 */
export interface WorkerOptions {
  /** Queues to consume. Default: every queue declared on the broker when `start()` runs. */
  queues?: string[] | undefined;
  /** Messages processed at once (async concurrency in this isolate). Default 8. */
  concurrency?: number;
  /** How long a consumer waits for messages before checking for shutdown, in ms. Default 1000. */
  workerTimeout?: number;
  /** Messages held ready beyond `concurrency`, so the next one starts at once. Default: concurrency. */
  prefetch?: number;
  /**
   * Called just before an actor starts. The CLI uses it to watch for actors that never yield.
   */
  monitor?: WorkerMonitor;
  /**
   * @internal How to consume a queue. Default: `broker.consume()`. The CLI's Web Workers get
   * their messages from the worker process's main thread this way.
   */
  consume?: (queueName: string) => Consumer;
  /**
   * Poll `broker.cancelled()` for the messages held every this many ms (on a broker with the
   * `cancel` capability), or `false` to leave it to someone else (who calls `worker.cancel()`).
   * Default 50.
   */
  cancelPoll?: number | false;
  /**
   * Publish this worker's `WorkerRecord` every this many ms (on a broker with the `workers`
   * capability), or `false`. Default 1000.
   */
  heartbeat?: number | false;
  /**
   * Publish events (on a broker with the `events` capability), or hand each to this function
   * instead (the CLI's Web Workers pass theirs to the worker process). Default true.
   */
  events?: boolean | ((event: BrokerEvent) => void);
  /**
   * Where `reportProgress()` values go (rate-limited to one per 250 ms per message, the last
   * one always written). Default: `broker.setProgress` on a broker with the `progress`
   * capability, else nowhere.
   */
  progress?: ProgressSink;
  /** The id in the worker registry. Default: `host:pid:` and a random part. */
  workerId?: string;
}

/**
 * Observes the messages a `Worker` runs (used by the CLI's hard time limits).
 *
 * @example
 * ```ts
 * import type { WorkerMonitor } from "@dramatis/dramatis";
 * const monitor: WorkerMonitor = { started: (m) => console.log("start", m.messageId) };
 * ```
 */
export interface WorkerMonitor {
  /** The actor of `message` is about to run (synchronously after this call). */
  started(message: MessageProxy): void;
}

/**
 * Options of `worker.stop()`.
 *
 * @example
 * ```ts
 * import type { StopOptions } from "@dramatis/dramatis";
 * const o: StopOptions = { timeout: 30_000 };
 * ```
 */
export interface StopOptions {
  /**
   * How long to let in-flight messages finish, in ms (default 600_000). Messages still running
   * then are aborted (their signal fires with `Shutdown`) and handed back to the broker.
   */
  timeout?: number;
}

/** `v` when it is a positive integer; else throws the `TypeError` of option `name`. */
export function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new TypeError(`new Worker(): ${name} must be a positive integer, got ${v}.`);
  }
  return v;
}
