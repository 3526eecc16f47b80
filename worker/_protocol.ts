// Messages between a worker process and the Web Workers it runs (see worker/_process.ts).
//
// The process's main thread is the only broker consumer: it delivers messages to each Web Worker
// (at most `concurrency + prefetch` unsettled at once) and settles them when told. A delivered
// message is named by a `tag` (a number unique in its Web Worker); the main thread keeps its
// receipt. Each unsettled message also has a cell, `tag % states.length`, in shared memory: its
// state (see MessageState), written by the Web Worker as it goes, so that the main thread knows
// what a Web Worker it must replace had done but not reported yet.
//
// Broker operations (broker/ops.ts) are the main thread's: it polls `cancelled()` for the
// messages it holds and tells the Web Worker holding one (CancelMessage), publishes the one
// registry record of the process, and sends the events of all its Web Workers in batches. A Web
// Worker reports what those need: the progress its actors report (ProgressMessage, after
// storing it with `setProgress`), and its events and `Metrics` snapshot (OpsMessage).
import type { JsonValue } from "../message.ts";
import type { BrokerEvent } from "../broker/ops.ts";
import type { MetricsSnapshot } from "../telemetry/registry.ts";

/** What a Web Worker did with a message, in its cell of `InitMessage.states`. */
export const MessageState = {
  /** Delivered, not started (the main thread writes it before delivering). */
  DELIVERED: 0,
  /** Its actor started. */
  STARTED: 1,
  /** Done: to be acked. */
  ACKED: 2,
  /** Failed for good: to be nacked. */
  NACKED: 3,
} as const;

/** Sent once to a new Web Worker. */
export interface InitMessage {
  type: "init";
  /** Module URLs to import (the user's actors). */
  modules: string[];
  queues?: string[] | undefined;
  concurrency: number;
  /** Messages its Worker holds beyond `concurrency` (what the main thread delivers ahead). */
  prefetch: number;
  workerTimeout: number;
  /** Thread name in log lines, e.g. "Worker-1". */
  thread: string;
  logLevel: number;
  logFile?: string | undefined;
  /**
   * Shared with the main thread: [tag, deadline] of the actor that started last, written before
   * it runs, so that an actor that never yields is known even if no message could be posted;
   * then the `seq` of the last CancelMessage handled (a thread that does not handle it is stuck).
   */
  current: Float64Array;
  /** Shared with the main thread: the MessageState of each cell (see the top of this file). */
  states: Int32Array;
  /** Send an OpsMessage every this many ms (events, and the metrics snapshot every 4th). */
  opsEvery: number;
}

/**
 * Messages to run, as one transferred buffer: message `i` is the UTF-8 JSON in
 * `bytes[ends[i - 1] .. ends[i]]` (from 0 for the first), its tag is `tags[i]` and its queue
 * `queues[queueOf[i]]`.
 */
export interface DeliverMessage {
  type: "deliver";
  tags: Float64Array;
  queues: string[];
  queueOf: Uint16Array;
  bytes: Uint8Array;
  ends: Uint32Array;
}

/** Asks a Web Worker to stop: finish in-flight work for up to `timeout` ms, hand back the rest. */
export interface StopMessage {
  type: "stop";
  timeout: number;
}

/** Cancels the messages with these ids that the Web Worker holds (see `Worker.cancel`). */
export interface CancelMessage {
  type: "cancel";
  ids: string[];
  /** Written to `InitMessage.current[2]` once handled. */
  seq: number;
}

export type ToWebWorker = InitMessage | DeliverMessage | StopMessage | CancelMessage;

/** An actor reported progress (sent after the Web Worker stored it, rate-limited). */
export interface ProgressMessage {
  type: "progress";
  tag: number;
  value: JsonValue;
}

/** The Web Worker's events since the last one, and its `Metrics` snapshot if it has one. */
export interface OpsMessage {
  type: "ops";
  events: BrokerEvent[];
  metrics?: MetricsSnapshot;
}

/** What a Web Worker did since its last report (sent at most once per macrotask). */
export interface SettleMessage {
  type: "settle";
  /** Flat pairs: tag, deadline (ms since the epoch) of each actor started. */
  started: number[];
  acks: number[];
  /** [tag, message JSON as nacked (with its traceback)]. */
  nacks: [number, string][];
  requeues: number[];
  /** [tag, why] of messages this Web Worker could not decode. */
  bad: [number, string][];
}

export type FromWebWorker =
  | { type: "ready" }
  | { type: "fatal"; error: string; code: number }
  | SettleMessage
  | ProgressMessage
  | OpsMessage
  | { type: "stopped" };
