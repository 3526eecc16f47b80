// A worker process: consumes the queues and runs `threads` Web Workers (each a `Worker` with
// `concurrency` messages in flight), feeding them messages, watching them, and replacing any that
// crash or hang.
//
// As in Dramatiq, consumer threads feed worker threads: this (main) thread is the only broker
// consumer. It delivers messages to each Web Worker in batches, at most `concurrency + prefetch`
// unsettled at once, keeps every receipt, and acks / nacks / requeues when a Web Worker reports
// the outcome. Middleware hooks run in the Web Worker, where the actor ran.
//
// Hard time limits. A Web Worker reports every actor start with its deadline (and writes it to
// shared memory before the actor runs). If an actor is still running `grace` ms after its time
// limit, its Web Worker is stuck in code that never yields (the soft limit, an aborted
// AbortSignal, could not stop it). This thread then fails that message with TimeLimitExceeded
// (retried per its options), hands the Web Worker's other messages back to the broker, and:
//   - on Bun, terminates the Web Worker (that stops the thread) and starts a fresh one;
//   - on Deno, where terminate() cannot stop a thread stuck in a synchronous loop, stops its
//     other Web Workers gracefully and exits with EXIT_RECYCLE: the supervisor starts a fresh
//     process, and the stuck thread dies with this one.
import { getBroker } from "../broker/global.ts";
import { type Consumer, MessageProxy, qName } from "../broker/broker.ts";
import { TimeLimitExceeded } from "../errors.ts";
import { configureLogging, formatError, getLogger, logToFile } from "../_log.ts";
import type { FromWebWorker, SettleMessage, ToWebWorker } from "./_protocol.ts";
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

/** A message received from the broker, not yet handed to a Web Worker. */
interface Received {
  queue: string;
  message: MessageProxy;
}

/** A message delivered to a Web Worker and not settled yet. */
interface Held extends Received {
  /** When its actor's time limit passes; Infinity until it started, or without a limit. */
  deadline: number;
}

interface Slot {
  index: number;
  worker: globalThis.Worker;
  /** By tag. */
  held: Map<number, Held>;
  /** [tag, deadline] of the actor it started last (shared memory). */
  current: Float64Array;
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
  const broker = getBroker();
  // Each Web Worker holds at most its Worker's capacity: concurrency + prefetch (= concurrency).
  const capacity = 2 * config.concurrency;
  const names = config.queues?.map(qName) ?? [...broker.getDeclaredQueues()];
  const consumers = new Map<string, Consumer>();
  for (const name of names) {
    broker.declareQueue(name);
    for (const queue of [name, `${name}.DQ`]) {
      consumers.set(queue, broker.consume(queue, { prefetch: capacity * config.threads }));
    }
  }

  const slots: Slot[] = [];
  const pending: Received[] = [];
  let lastTag = 0;
  let shuttingDown = false;
  let recycling = false;
  const stopController = new AbortController();

  function spawn(index: number): Slot {
    const worker = new Worker(config.webWorkerUrl, { type: "module", name: `Worker-${index + 1}` });
    let resolveStopped!: () => void;
    const slot: Slot = {
      index,
      worker,
      held: new Map(),
      current: new Float64Array(new SharedArrayBuffer(16)),
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
      current: slot.current,
    };
    worker.postMessage(init);
    slots[index] = slot;
    pump(); // a booting Web Worker takes messages: they wait for its Worker to start
    return slot;
  }

  // Feeding the Web Workers

  const accepts = (slot: Slot | undefined): slot is Slot =>
    !shuttingDown && (slot?.state === "ready" || slot?.state === "booting");

  /** Free room in the Web Workers, less what is already waiting here. */
  function room(): number {
    let n = -pending.length;
    for (const slot of slots) if (accepts(slot)) n += Math.max(0, capacity - slot.held.size);
    return n;
  }

  let wakeLoops: (() => void)[] = [];

  /** Delivers pending messages to Web Workers with room, then lets the consumers receive more. */
  function pump(): void {
    // Share them evenly, roomiest Web Worker first.
    const open = slots.filter((s) => accepts(s) && s.held.size < capacity)
      .sort((a, b) => a.held.size - b.held.size);
    for (let i = 0; i < open.length && pending.length > 0; i++) {
      const slot = open[i];
      const n = Math.min(capacity - slot.held.size, Math.ceil(pending.length / (open.length - i)));
      const messages: [number, string, string][] = [];
      for (const r of pending.splice(0, n)) {
        const tag = ++lastTag;
        slot.held.set(tag, { queue: r.queue, message: r.message, deadline: Infinity });
        messages.push([tag, r.queue, JSON.stringify(r.message.asDict())]);
      }
      slot.worker.postMessage({ type: "deliver", messages } satisfies ToWebWorker);
    }
    const wakers = wakeLoops;
    wakeLoops = [];
    for (const w of wakers) w();
  }

  async function consumeLoop(queue: string, consumer: Consumer): Promise<void> {
    let failures = 0;
    while (!shuttingDown) {
      const max = room();
      if (max <= 0) {
        await new Promise<void>((resolve) => wakeLoops.push(resolve));
        continue;
      }
      try {
        const batch = await consumer.receive(max, {
          timeout: config.workerTimeout,
          signal: stopController.signal,
        });
        failures = 0;
        for (const message of batch) pending.push({ queue, message });
      } catch (e) {
        failures++;
        const wait = Math.min(30_000, 100 * 2 ** Math.min(failures, 9));
        logger.error(`Consumer failed to receive (retrying in ${wait} ms): ${formatError(e)}`);
        await new Promise((r) => setTimeout(r, wait));
      }
      pump();
    }
  }

  // Settling

  /**
   * Runs a consumer operation (resolving when it is done), logging its failure: the broker then
   * delivers the message again when its lease expires.
   */
  function settle(what: () => string, op: () => unknown): Promise<void> | undefined {
    const failed = (e: unknown) =>
      logger.error(
        `Could not ${what()}; the broker will deliver it again when its lease expires: ` +
          formatError(e),
      );
    try {
      const r = op();
      if (r instanceof Promise) return r.then(() => {}, failed);
    } catch (e) {
      failed(e);
    }
    return undefined;
  }

  function onSettle(slot: Slot, msg: SettleMessage): void {
    const { started } = msg, held = slot.held;
    for (let i = 0; i < started.length; i += 2) {
      const h = held.get(started[i]);
      if (h) h.deadline = started[i + 1];
    }
    for (const tag of msg.acks) {
      const h = held.get(tag);
      if (!h) continue;
      held.delete(tag);
      settle(
        () => `ack message ${h.message.messageId}`,
        () => consumers.get(h.queue)!.ack(h.message),
      );
    }
    for (const [tag, json] of msg.nacks) {
      const h = held.get(tag);
      if (!h) continue;
      held.delete(tag);
      const m = MessageProxy.decode(json) as MessageProxy;
      m.receipt = h.message.receipt;
      settle(() => `nack message ${m.messageId}`, () => consumers.get(h.queue)!.nack(m));
    }
    const requeued: Held[] = [];
    for (const tag of msg.requeues) {
      const h = held.get(tag);
      if (h) requeued.push(h);
      held.delete(tag);
    }
    void requeue(requeued);
    pump();
  }

  async function requeue(list: Received[]): Promise<void> {
    const byQueue = Map.groupBy(list, (r) => r.queue);
    for (const [queue, rs] of byQueue) {
      await settle(
        () => `hand ${rs.length} message(s) back to ${queue}`,
        () => consumers.get(queue)!.requeue(rs.map((r) => r.message)),
      );
    }
  }

  /** Fails `stuck` (if given) and hands every other message of `slot` back. */
  async function handBack(slot: Slot, stuck?: Held): Promise<void> {
    const list = [...slot.held.values()];
    slot.held.clear();
    await requeue(list.filter((h) => h !== stuck));
    if (stuck) {
      await settle(() => `fail message ${stuck.message.messageId}`, () => failStuck(stuck));
    }
  }

  async function failStuck({ queue, message: m }: Held): Promise<void> {
    const error = new TimeLimitExceeded(
      `Actor ${m.actorName} exceeded its time limit and did not yield; its Web Worker was replaced.`,
    );
    m.error = error;
    const consumer = consumers.get(queue)!;
    const after = broker.emitAfter("processMessage", m, { error });
    if (after) await after;
    const hook = m.failed ? "nack" : "ack";
    const b = broker.emitBefore(hook, m);
    if (b) await b;
    await (m.failed ? consumer.nack(m) : consumer.ack(m));
    const a = broker.emitAfter(hook, m);
    if (a) await a;
  }

  // Watching the Web Workers

  let readyCount = 0;
  let resolveAllReady!: () => void;
  const allReady = new Promise<void>((r) => resolveAllReady = r);

  function onMessage(slot: Slot, msg: FromWebWorker): void {
    switch (msg.type) {
      case "settle":
        onSettle(slot, msg);
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
        // Whatever it still holds was never started: hand it back.
        slot.state = "stopped";
        slot.worker.terminate();
        void handBack(slot).then(slot.resolveStopped);
        break;
    }
  }

  async function onCrash(slot: Slot, reason: string): Promise<void> {
    if (slot.state === "dead" || slot.state === "stopped") return;
    logger.error(`Web Worker ${slot.index + 1} crashed (${reason}); replacing it.`);
    slot.state = "dead";
    slot.worker.terminate();
    await handBack(slot);
    slot.resolveStopped();
    if (!shuttingDown) spawn(slot.index);
  }

  async function onStuck(slot: Slot, stuck: Held): Promise<void> {
    slot.state = "dead";
    logger.warning(
      `Message ${stuck.message.messageId} ran ${config.grace} ms past its time limit without ` +
        `yielding: failing it with TimeLimitExceeded and replacing Web Worker ${slot.index + 1}.`,
    );
    if (runtime === "bun") slot.worker.terminate(); // stops the thread on Bun
    await handBack(slot, stuck);
    slot.resolveStopped();
    if (runtime === "bun") {
      if (!shuttingDown) spawn(slot.index);
    } else {
      // Deno cannot stop the thread: stop the others and let the supervisor start a fresh process.
      recycling = true;
      logger.warning("Recycling this worker process to free the stuck thread.");
      await shutdown(EXIT.RECYCLE);
    }
  }

  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const slot of slots) {
      if (!slot || slot.state !== "ready") continue;
      const current = slot.held.get(slot.current[0]);
      if (current && current.deadline === Infinity) current.deadline = slot.current[1];
      for (const h of slot.held.values()) {
        if (now > h.deadline + config.grace) {
          void onStuck(slot, h);
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
      stopController.abort();
      pump(); // wakes the consumer loops, which end
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
          await handBack(slot);
        }
      }
      await Promise.all(loops);
      await requeue(pending.splice(0));
      for (const c of consumers.values()) await settle(() => "close a consumer", () => c.close());
      await broker.close();
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

  const loops = [...consumers].map(([queue, consumer]) => consumeLoop(queue, consumer));
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
