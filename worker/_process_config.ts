// What the supervisor passes to each worker process (its own file: the worker process's parts
// name it without importing the composition in worker/_process.ts).

/** What the supervisor passes to each worker process. */
export interface ProcessConfig {
  index: number;
  modules: string[];
  queues?: string[] | undefined;
  threads: number;
  concurrency: number;
  workerTimeout: number;
  shutdownTimeout: number;
  /** How long past its time limit an actor may run before its Web Worker is replaced. */
  grace: number;
  logLevel: number;
  logFile?: string | undefined;
  /** The Web Worker entry (a module URL). */
  webWorkerUrl: string;
  /** When the supervisor started: schedule ticks since then are on time (see worker/_scheduler.ts). */
  schedulesSince?: number;
}
