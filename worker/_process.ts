// A worker process: runs `threads` Web Workers (each a `Worker` with `concurrency` messages in
// flight), watches them, and replaces any that crash or hang.
//
// Hard time limits. A Web Worker reports every actor start (with the message and its broker
// receipt) before the actor runs. If an actor is still running `grace` ms after its time limit,
// its Web Worker is stuck in code that never yields (the soft limit, an aborted AbortSignal,
// could not stop it). This process then fails that message with TimeLimitExceeded (retried per
// its options), hands the Web Worker's other in-flight messages back to the broker, and:
//   - on Bun, terminates the Web Worker (that stops the thread) and starts a fresh one;
//   - on Deno, where terminate() cannot stop a thread stuck in a synchronous loop, stops its
//     other Web Workers gracefully and exits with EXIT_RECYCLE: the supervisor starts a fresh
//     process, and the stuck thread dies with this one.
import { getBroker } from "../broker/global.ts";
import { type Broker, type Consumer, MessageProxy } from "../broker/broker.ts";
import { TimeLimitExceeded } from "../errors.ts";
import { configureLogging, formatError, getLogger, logToFile } from "../_log.ts";
import type { FromWebWorker, StartedRecord, ToWebWorker } from "./_protocol.ts";
import { importModules } from "./_import.ts";
import { EXIT } from "./_exit.ts";
import { onSignal, runtime } from "../_runtime.ts";

/** What the supervisor passes to each worker process. */
export interface ProcessConfig {
  index: number;
  modules: string[];
  queues?: string[];
  threads: number;
  concurrency: number;
  workerTimeout: number;
  shutdownTimeout: number;
  /** How long past its time limit an actor may run before its Web Worker is replaced. */
  grace: number;
  logLevel: number;
  logFile?: string;
  /** The Web Worker entry (a module URL). */
  webWorkerUrl: string;
}

interface Slot {
  index: number;
  worker: globalThis.Worker;
  inFlight: Map<string, StartedRecord>;
  lastBeat: number;
  state: "booting" | "ready" | "stopping" | "stopped" | "dead";
  stopped: Promise<void>;
  resolveStopped: () => void;
}

export async function runWorkerProcess(config: ProcessConfig): Promise<never> {
  if (config.logFile) logToFile(config.logFile);
  configureLogging({ level: config.logLevel, thread: "MainThread" });
  const logger = getLogger(`dramatis.WorkerProcess(${config.index})`);
  try {
    await importModules(config.modules);
  } catch (e) {
    logger.critical(`${(e as Error).message}`);
    return exit(EXIT.IMPORT);
  }
  // This thread only needs a broker to settle the messages of a Web Worker it had to replace:
  // create it then, so an idle replica of the queues does not cost memory all the time.
  let brokerInstance: Broker | undefined;
  const brokerNow = () => brokerInstance ??= getBroker();
  const consumers = new Map<string, Consumer>();
  const consumerFor = (queue: string) => {
    let c = consumers.get(queue);
    if (!c) consumers.set(queue, c = brokerNow().consume(queue));
    return c;
  };

  const slots: Slot[] = [];
  let shuttingDown = false;
  let recycling = false;

  function spawn(index: number): Slot {
    const worker = new Worker(config.webWorkerUrl, { type: "module", name: `Worker-${index + 1}` });
    let resolveStopped!: () => void;
    const slot: Slot = {
      index,
      worker,
      inFlight: new Map(),
      lastBeat: Date.now(),
      state: "booting",
      stopped: new Promise<void>((r) => resolveStopped = r),
      resolveStopped,
    };
    worker.onmessage = (e: MessageEvent<FromWebWorker>) => onMessage(slot, e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault?.();
      void onCrash(slot, crashReason(e));
    };
    const init: ToWebWorker = {
      type: "init",
      modules: config.modules,
      queues: config.queues,
      concurrency: config.concurrency,
      workerTimeout: config.workerTimeout,
      thread: `Worker-${index + 1}`,
      logLevel: config.logLevel,
      logFile: config.logFile,
    };
    worker.postMessage(init);
    slots[index] = slot;
    return slot;
  }

  let readyCount = 0;
  let resolveAllReady!: () => void;
  const allReady = new Promise<void>((r) => resolveAllReady = r);

  function onMessage(slot: Slot, msg: FromWebWorker): void {
    slot.lastBeat = Date.now();
    switch (msg.type) {
      case "activity":
        for (const id of msg.finished) slot.inFlight.delete(id);
        for (const r of msg.started) slot.inFlight.set(r.id, r);
        break;
      case "ready":
        slot.state = "ready";
        if (++readyCount === config.threads) resolveAllReady();
        break;
      case "fatal":
        logger.critical(`Web Worker ${slot.index + 1} could not start: ${msg.error}`);
        void shutdown(msg.code);
        break;
      case "stopped":
        slot.state = "stopped";
        slot.worker.terminate();
        slot.resolveStopped();
        break;
    }
  }

  async function onCrash(slot: Slot, reason: string): Promise<void> {
    if (slot.state === "dead" || slot.state === "stopped") return;
    logger.error(`Web Worker ${slot.index + 1} crashed (${reason}); replacing it.`);
    slot.state = "dead";
    slot.worker.terminate();
    slot.resolveStopped();
    await handBack(slot, undefined);
    if (!shuttingDown) spawn(slot.index);
  }

  /** Fails `stuck` (if given) and hands every other in-flight message of `slot` back. */
  async function handBack(slot: Slot, stuck: StartedRecord | undefined): Promise<void> {
    const records = [...slot.inFlight.values()];
    slot.inFlight.clear();
    for (const r of records) {
      const m = MessageProxy.decode(r.json) as MessageProxy;
      m.receipt = r.receipt;
      const consumer = consumerFor(r.queue);
      try {
        if (r === stuck) {
          await failStuck(m, consumer);
        } else {
          await consumer.requeue([m]);
        }
      } catch (e) {
        logger.error(
          `Could not settle message ${r.id} of a replaced Web Worker; the broker will deliver ` +
            `it again when its lease expires: ${formatError(e)}`,
        );
      }
    }
  }

  async function failStuck(m: MessageProxy, consumer: Consumer): Promise<void> {
    const error = new TimeLimitExceeded(
      `Actor ${m.actorName} exceeded its time limit and did not yield; its Web Worker was replaced.`,
    );
    m.error = error;
    const broker = brokerNow();
    const after = broker.emitAfter("processMessage", m, { error });
    if (after) await after;
    if (m.failed) {
      const b = broker.emitBefore("nack", m);
      if (b) await b;
      await consumer.nack(m);
      const a = broker.emitAfter("nack", m);
      if (a) await a;
    } else {
      const b = broker.emitBefore("ack", m);
      if (b) await b;
      await consumer.ack(m);
      const a = broker.emitAfter("ack", m);
      if (a) await a;
    }
  }

  async function onStuck(slot: Slot, record: StartedRecord): Promise<void> {
    slot.state = "dead";
    logger.warning(
      `Message ${record.id} ran ${config.grace} ms past its time limit without yielding: ` +
        `failing it with TimeLimitExceeded and replacing Web Worker ${slot.index + 1}.`,
    );
    if (runtime === "bun") {
      slot.worker.terminate(); // stops the thread on Bun
      slot.resolveStopped();
      await handBack(slot, record);
      if (!shuttingDown) spawn(slot.index);
    } else {
      // Deno cannot stop the thread: hand its messages back, stop the others, and let the
      // supervisor start a fresh process.
      await handBack(slot, record);
      slot.resolveStopped();
      recycling = true;
      logger.warning("Recycling this worker process to free the stuck thread.");
      await shutdown(EXIT.RECYCLE);
    }
  }

  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const slot of slots) {
      if (!slot || slot.state !== "ready") continue;
      for (const r of slot.inFlight.values()) {
        if (now > r.deadline + config.grace) {
          void onStuck(slot, r);
          break;
        }
      }
    }
  }, 50);

  let exiting: Promise<never> | undefined;
  function shutdown(code: number): Promise<never> {
    if (exiting) return exiting;
    shuttingDown = true;
    exiting = (async () => {
      clearInterval(watchdog);
      const stop: ToWebWorker = { type: "stop", timeout: config.shutdownTimeout };
      for (const slot of slots) {
        if (slot && (slot.state === "ready" || slot.state === "booting")) {
          slot.state = "stopping";
          slot.worker.postMessage(stop);
        }
      }
      await Promise.race([
        Promise.all(slots.map((s) => s?.stopped)),
        new Promise((r) => setTimeout(r, config.shutdownTimeout + 5_000)),
      ]);
      for (const slot of slots) {
        if (slot && slot.state !== "stopped" && slot.state !== "dead") {
          logger.warning(`Web Worker ${slot.index + 1} did not stop in time.`);
          await handBack(slot, undefined);
        }
      }
      for (const c of consumers.values()) await c.close();
      await brokerInstance?.close();
      if (!recycling) logger.info("Worker process stopped.");
      return exit(code);
    })();
    return exiting;
  }

  let signals = 0;
  onSignal(["SIGINT", "SIGTERM"], () => {
    signals++;
    if (signals === 1) {
      logger.info("Stopping: finishing in-flight messages, handing the rest back.");
      void shutdown(EXIT.OK);
    } else {
      logger.warning("Second stop signal: exiting now.");
      exit(EXIT.KILLED);
    }
  });

  for (let i = 0; i < config.threads; i++) spawn(i);
  await allReady;
  logger.info("Worker process is ready for action.");
  return await new Promise<never>(() => {});
}

/** One line saying why a Web Worker died (Bun puts a code frame in the event's message). */
function crashReason(e: ErrorEvent): string {
  if (e.error instanceof Error) return `${e.error.name}: ${e.error.message}`;
  const lines = String(e.message ?? e.error ?? "unknown error").split("\n").map((l) => l.trim());
  return lines.find((l) => /^(\w*error|uncaught)\b/i.test(l)) ?? lines.find((l) => l) ??
    "unknown error";
}

function exit(code: number): never {
  (globalThis as unknown as { process: { exit(c: number): never } }).process.exit(code);
  throw new Error("unreachable");
}
