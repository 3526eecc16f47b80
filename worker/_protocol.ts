// Messages between a worker process and the Web Workers it runs (see worker/_process.ts).

/** Sent once to a new Web Worker. */
export interface InitMessage {
  type: "init";
  /** Module URLs to import (the user's actors). */
  modules: string[];
  queues?: string[];
  concurrency: number;
  workerTimeout: number;
  /** Thread name in log lines, e.g. "Worker-1". */
  thread: string;
  logLevel: number;
  logFile?: string;
}

/** Asks a Web Worker to stop: finish in-flight work for up to `timeout` ms, hand back the rest. */
export interface StopMessage {
  type: "stop";
  timeout: number;
}

export type ToWebWorker = InitMessage | StopMessage;

/** A message whose actor is about to run. */
export interface StartedRecord {
  /** Message id. */
  id: string;
  /** The queue it came from (for ack / requeue). */
  queue: string;
  /** The message, JSON-encoded. */
  json: string;
  /** The broker's receipt for it (structured-cloneable). */
  receipt: unknown;
  /** When its time limit passes (ms since the epoch); Infinity when it has none. */
  deadline: number;
}

export type FromWebWorker =
  | { type: "ready" }
  | { type: "fatal"; error: string; code: number }
  /** Actors starting now, and ids of messages settled since the last report. */
  | { type: "activity"; started: StartedRecord[]; finished: string[] }
  | { type: "beat" }
  | { type: "stopped" };
