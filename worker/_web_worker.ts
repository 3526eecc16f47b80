// The entry point of a Web Worker run by the CLI: imports the user's modules, then runs one
// `Worker` until told to stop. The Worker does not consume from the broker itself: the worker
// process's main thread delivers its messages and settles them (see worker/_process.ts), so its
// consumers are `ParentConsumer`s. Middleware hooks all run here, where the actor runs; the
// global broker of this thread is used only to enqueue (retries, pipelines, delayed messages)
// and to store the progress actors report. The broker operations are the main thread's: its
// Worker does not poll for cancels nor publish a heartbeat; it hands its events, progress and
// metrics to the main thread (see worker/_protocol.ts).
import { getBroker } from "../broker/global.ts";
import { Worker } from "./worker.ts";
import { configureLogging, formatError, logToFile } from "../util/log.ts";
import { TimeLimit } from "../middleware/time_limit.ts";
import { type Broker, type Consumer, MessageProxy, type ReceiveOptions } from "../broker/broker.ts";
import { redactUrls } from "../broker/url.ts";
import {
  type FromWebWorker,
  MessageState,
  type SettleMessage,
  type ToWebWorker,
} from "./_protocol.ts";
import { importModules } from "./_import.ts";
import { EXIT } from "./_exit.ts";
import type { BrokerEvent } from "../broker/ops.ts";
import type { MetricsSnapshot } from "../telemetry/registry.ts";
import { metricsOf } from "./_heartbeat.ts";
import { addMetricsIfAsked } from "../telemetry/_enable.ts";
import { reportMemory } from "./_memory_report.ts";
import { startGcTrigger } from "./_gc.ts";

declare const self: {
  onmessage: ((e: MessageEvent<ToWebWorker>) => void) | null;
  postMessage(message: FromWebWorker): void;
};

// (Bun gives a Web Worker no `name`: a random one tells its reports apart.)
reportMemory(
  (globalThis as { name?: string }).name || `web-worker-${crypto.randomUUID().slice(0, 8)}`,
);
startGcTrigger();

function post(message: FromWebWorker): void {
  self.postMessage(message);
}

// What to tell the main thread at the end of this macrotask.
let report = emptyReport();

function emptyReport(): SettleMessage {
  return { type: "settle", started: [], acks: [], nacks: [], requeues: [], bad: [] };
}
let reportScheduled = false;
/** The cells of message states shared with the main thread (set by "init"). */
let states: Int32Array = new Int32Array(1);
/** [tag, deadline, cancel seq] shared with the main thread (set by "init"). */
let current: Float64Array = new Float64Array(3);

/** Records in shared memory what became of the message whose receipt is `tag`. */
function setState(tag: number, state: number): void {
  Atomics.store(states, tag % states.length, state);
}

function scheduleReport(): void {
  if (reportScheduled) return;
  reportScheduled = true;
  setImmediate(() => {
    reportScheduled = false;
    sendReport();
  });
}

function sendReport(): void {
  const r = report;
  const n = r.started.length + r.acks.length + r.nacks.length + r.requeues.length + r.bad.length;
  if (n === 0) return;
  report = emptyReport();
  post(r);
}

/** One queue, as the main thread feeds it. A message's receipt is its tag. */
class ParentConsumer implements Consumer {
  #buffer: MessageProxy[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  push(m: MessageProxy): void {
    this.#buffer.push(m);
    this.#wake?.();
  }

  async receive(max: number, { timeout, signal }: ReceiveOptions): Promise<MessageProxy[]> {
    if (this.#buffer.length === 0 && !this.#closed && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeout);
        signal?.addEventListener("abort", done, { once: true });
        this.#wake = done;
        function done() {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          resolve();
        }
      });
      this.#wake = undefined;
    }
    // Once stopping, messages left here are handed back by the main thread.
    if (this.#closed || signal?.aborted) return [];
    return this.#buffer.splice(0, max);
  }

  ack(m: MessageProxy): void {
    setState(m.receipt as number, MessageState.ACKED);
    report.acks.push(m.receipt as number);
    scheduleReport();
  }

  nack(m: MessageProxy): void {
    setState(m.receipt as number, MessageState.NACKED);
    report.nacks.push([m.receipt as number, JSON.stringify(m.asDict())]);
    // Reported now (failures are rare): the nacked message, with its traceback, reaches the main
    // thread even if an actor then blocks this thread for good.
    sendReport();
  }

  requeue(messages: MessageProxy[]): void {
    for (const m of messages) report.requeues.push(m.receipt as number);
    scheduleReport();
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }
}

const consumers = new Map<string, ParentConsumer>();
function consumerFor(queue: string): ParentConsumer {
  let c = consumers.get(queue);
  if (!c) consumers.set(queue, c = new ParentConsumer());
  return c;
}

let worker: Worker | undefined;
/** Ids cancelled before the Worker started. */
const cancelLater = new Set<string>();
let events: BrokerEvent[] = [];
let opsTimer: ReturnType<typeof setInterval> | undefined;

let metrics: { snapshot(): MetricsSnapshot } | undefined;

/** Sends the events so far, and the metrics snapshot with `withMetrics`. */
function sendOps(withMetrics: boolean): void {
  const snapshot = withMetrics ? metrics?.snapshot() : undefined;
  if (events.length === 0 && !snapshot) return;
  post({ type: "ops", events, ...(snapshot ? { metrics: snapshot } : {}) });
  events = [];
}

/** Every `every` ms: the events so far; every 4th time the metrics snapshot too. */
function startOps(broker: Broker, every: number): void {
  metrics = metricsOf(broker.middleware);
  let n = 0;
  opsTimer = setInterval(() => sendOps(n++ % 4 === 0), every);
}

self.onmessage = async (e: MessageEvent<ToWebWorker>) => {
  const msg = e.data;
  if (msg.type === "deliver") {
    // May come before the Worker started: its consumers then find the messages waiting.
    const { tags, queues, queueOf, bytes, ends } = msg;
    for (let i = 0, start = 0; i < tags.length; start = ends[i++]!) {
      let m: MessageProxy;
      try {
        m = MessageProxy.decode(bytes.subarray(start, ends[i]!)) as MessageProxy;
      } catch (err) {
        report.bad.push([tags[i]!, (err as Error).message]);
        scheduleReport();
        continue;
      }
      m.receipt = tags[i];
      consumerFor(queues[queueOf[i]!]!).push(m);
    }
  } else if (msg.type === "cancel") {
    if (worker) worker.cancel(msg.ids);
    else for (const id of msg.ids) cancelLater.add(id);
    current[2] = msg.seq;
  } else if (msg.type === "init") {
    states = msg.states;
    current = msg.current;
    if (msg.logFile) logToFile(msg.logFile);
    configureLogging({ level: msg.logLevel, thread: msg.thread });
    try {
      await importModules(msg.modules);
    } catch (err) {
      post({ type: "fatal", error: (err as Error).message, code: EXIT.IMPORT });
      return;
    }
    // The main thread logs a fatal error (once for all its Web Workers), then exits with `code`.
    let broker: Broker;
    try {
      broker = getBroker();
      addMetricsIfAsked(broker); // DRAMATIS_METRICS=1 (`dramatis worker --metrics`)
    } catch (err) {
      const error = `The broker is misconfigured: ${redactUrls((err as Error).message)}`;
      post({ type: "fatal", error, code: EXIT.CONNECT });
      return;
    }
    try {
      const timeLimit = broker.middleware.find((m): m is TimeLimit => m instanceof TimeLimit);
      const storeProgress = broker.capabilities.progress;
      worker = new Worker(broker, {
        queues: msg.queues,
        concurrency: msg.concurrency,
        prefetch: msg.prefetch,
        workerTimeout: msg.workerTimeout,
        consume: consumerFor,
        cancelPoll: false,
        heartbeat: false,
        events: (e) => void events.push(e),
        progress: (m, value) => {
          post({ type: "progress", tag: m.receipt as number, value });
          if (storeProgress) return broker.setProgress(m.messageId, value);
        },
        monitor: {
          started(m: MessageProxy) {
            const limit = timeLimit?.limitFor(broker, m) ?? Infinity;
            const deadline = Date.now() + (Number.isFinite(limit) && limit > 0 ? limit : Infinity);
            const tag = m.receipt as number;
            // Written before the actor runs: if it never yields, the main thread still knows.
            current[1] = deadline;
            current[0] = tag;
            setState(tag, MessageState.STARTED);
            report.started.push(tag, deadline);
            scheduleReport();
          },
        },
      });
      await worker.start();
      if (cancelLater.size > 0) worker.cancel(cancelLater);
      startOps(broker, msg.opsEvery);
      post({ type: "ready" });
    } catch (err) {
      post({
        type: "fatal",
        error: `Could not start a Worker: ${formatError(err)}`,
        code: EXIT.CONNECT,
      });
    }
  } else if (msg.type === "stop") {
    await worker?.stop({ timeout: msg.timeout });
    sendReport();
    clearInterval(opsTimer);
    sendOps(true);
    await getBroker().close();
    post({ type: "stopped" });
  }
};
