// The entry point of a Web Worker run by the CLI: imports the user's modules, then runs one
// `Worker` on the global broker until told to stop. Reports every actor start to the parent
// before the actor runs, so that an actor that never yields can be failed and replaced.
import { getBroker } from "../broker/global.ts";
import { Worker } from "./worker.ts";
import { configureLogging, formatError, getLogger, logToFile } from "../_log.ts";
import { TimeLimit } from "../middleware/time_limit.ts";
import type { MessageProxy } from "../broker/broker.ts";
import type { FromWebWorker, StartedRecord, ToWebWorker } from "./_protocol.ts";
import { importModules } from "./_import.ts";

declare const self: {
  onmessage: ((e: MessageEvent<ToWebWorker>) => void) | null;
  postMessage(message: FromWebWorker): void;
  close(): void;
};

function post(message: FromWebWorker): void {
  self.postMessage(message);
}

let worker: Worker | undefined;
let finished: string[] = [];
let flushTimer: ReturnType<typeof setTimeout> | undefined;

function flushFinished(): void {
  flushTimer = undefined;
  if (finished.length === 0) return;
  post({ type: "activity", started: [], finished });
  finished = [];
}

self.onmessage = async (e: MessageEvent<ToWebWorker>) => {
  const msg = e.data;
  if (msg.type === "init") {
    if (msg.logFile) logToFile(msg.logFile);
    configureLogging({ level: msg.logLevel, thread: msg.thread });
    const logger = getLogger("dramatis.WebWorker");
    try {
      await importModules(msg.modules);
    } catch (err) {
      post({ type: "fatal", error: (err as Error).message, code: 2 });
      return;
    }
    try {
      const broker = getBroker();
      const timeLimit = broker.middleware.find((m): m is TimeLimit => m instanceof TimeLimit);
      worker = new Worker(broker, {
        queues: msg.queues,
        concurrency: msg.concurrency,
        workerTimeout: msg.workerTimeout,
        monitor: {
          started(m: MessageProxy) {
            const limit = timeLimit?.limitFor(broker, m) ?? Infinity;
            const record: StartedRecord = {
              id: m.messageId,
              queue: m.queueName,
              json: JSON.stringify(m.asDict()),
              receipt: m.receipt,
              deadline: Date.now() + (Number.isFinite(limit) && limit > 0 ? limit : Infinity),
            };
            // Sent before the actor runs: if it never yields, the parent still knows it.
            post({ type: "activity", started: [record], finished });
            finished = [];
          },
          finished(m: MessageProxy) {
            finished.push(m.messageId);
            flushTimer ??= setTimeout(flushFinished, 20);
          },
        },
      });
      await worker.start();
      setInterval(() => post({ type: "beat" }), 200);
      post({ type: "ready" });
    } catch (err) {
      logger.error(`Could not start the worker: ${formatError(err)}`);
      post({ type: "fatal", error: (err as Error).message, code: 3 });
    }
  } else if (msg.type === "stop") {
    await worker?.stop({ timeout: msg.timeout });
    clearTimeout(flushTimer);
    flushFinished();
    await getBroker().close();
    post({ type: "stopped" });
  }
};
