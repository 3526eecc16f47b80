// The options and counters of the base Broker's methods (re-exported by broker/broker.ts). It
// imports nothing, so that what reads a queue's counters need not import the broker.

/**
 * Options of `broker.join()`.
 *
 * @example
 * ```ts
 * import type { JoinOptions } from "@dramatis/dramatis";
 * const o: JoinOptions = { timeout: 5_000, failFast: true };
 * ```
 */
export interface JoinOptions {
  /** Give up after this many ms with `QueueJoinTimeout`. Default: wait forever. */
  timeout?: number;
  /** Re-throw the error of a dead-lettered message. Default: true on the stub broker. */
  failFast?: boolean;
}

/**
 * Options of `broker.enqueue()`.
 *
 * @example
 * ```ts
 * import type { EnqueueOptions } from "@dramatis/dramatis";
 * const o: EnqueueOptions = { delay: 10_000 };
 * ```
 */
export interface EnqueueOptions {
  /** Deliver no sooner than this many ms from now (the message waits in `q.DQ`). */
  delay?: number | undefined;
}

/**
 * One queue's counters, as `dramatis queues` shows them.
 *
 * @example
 * ```ts
 * import type { QueueStats } from "@dramatis/dramatis";
 * const s: QueueStats = { queueName: "default", ready: 3, delayed: 0, inFlight: 1, dead: 0 };
 * ```
 */
export interface QueueStats {
  /** The canonical queue name. */
  queueName: string;
  /** Messages waiting to be delivered. */
  ready: number;
  /** Messages waiting for their eta (in `q.DQ`). */
  delayed: number;
  /** Messages delivered and not yet acked. */
  inFlight: number;
  /** Messages in the dead-letter queue (`q.XQ`). */
  dead: number;
}
