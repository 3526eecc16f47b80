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
//     other Web Workers gracefully and exits with EXIT.RECYCLE: the supervisor starts a fresh
//     process, and the stuck thread dies with this one.
// Cancels. This thread polls `broker.cancelled()` for the messages it holds (worker/
// _process_ops.ts; from their second poll on, see worker/_held.ts): one not delivered yet is
// settled here as cancelled; one a Web Worker holds is cancelled there (CancelMessage). If that
// Web Worker has not handled the CancelMessage `grace` ms later while the actor runs, it is stuck
// in it: the message is failed with Cancelled (not retried) and the Web Worker replaced as for a
// hard time limit.
//
// The broker modules (broker/url.ts names every broker: most of the library) are imported once
// the Web Workers are on their way (see WorkerProcess.run): they boot while this thread loads the
// rest. Nothing imported statically here may import them.
//
// The parts: worker/_slot.ts (a Web Worker and what it holds), worker/_feeder.ts (receiving and
// delivering), worker/_settle.ts (acks, nacks, hand-backs, failing a message here),
// worker/_held.ts (what the broker operations of worker/_process_ops.ts see), worker/_watchdog.ts
// (stuck Web Workers), worker/_parent.ts (the supervisor and the stop signals) and
// worker/_deadline.ts (the last steps of a stop). This file composes them.
import type { Broker } from "../broker/broker.ts";
import { dqName, qName } from "../broker/queue_name.ts";
import { configureLogging, getLogger, type Logger, logToFile } from "../util/log.ts";
import type { FromWebWorker, ToWebWorker } from "./_protocol.ts";
import { importModules } from "./_import.ts";
import { EXIT } from "./_exit.ts";
import { runProcessSchedules } from "./_scheduler.ts";
import { exit, runtime } from "../runtime/process.ts";
import { Feeder } from "./_feeder.ts";
import { Settler } from "./_settle.ts";
import { HeldMessages } from "./_held.ts";
import { startWatchdog } from "./_watchdog.ts";
import { watchParent } from "./_parent.ts";
import { withDeadline } from "./_deadline.ts";
import { type Held, idOf, type Slot, startSlot } from "./_slot.ts";
import { reportMemory } from "./_memory_report.ts";
import { startGcTrigger } from "./_gc.ts";

import type { ProcessConfig } from "./_process_config.ts";
export type { ProcessConfig };

/** Runs a worker process until it stops; then exits. */
export function runWorkerProcess(config: ProcessConfig): Promise<never> {
  if (config.logFile) logToFile(config.logFile);
  configureLogging({ level: config.logLevel, thread: "MainThread" });
  reportMemory(`process-${config.index}`);
  startGcTrigger();
  return new WorkerProcess(config).run();
}

/** Least time the last steps of a stop get with the broker, in ms. */
const CLOSE_MS = 2_000;

/** A worker process: its Web Workers, fed, watched and settled. */
class WorkerProcess {
  readonly #config: ProcessConfig;
  readonly #logger: Logger;
  readonly #feeder: Feeder;
  readonly #settler: Settler;
  readonly #held: HeldMessages;
  readonly #stopController = new AbortController();
  #loops: Promise<void>[] = [];
  #scheduling: Promise<void> = Promise.resolve();
  #recycling = false;
  #failed = false;
  #exiting: Promise<never> | undefined;
  #readyCount = 0;
  #resolveAllReady!: () => void;
  readonly #allReady = new Promise<void>((r) => this.#resolveAllReady = r);
  readonly #stopWatchdog: () => void;
  #stopWatchingParent: () => void = () => {};
  /** broker/url.ts, once imported (after the Web Workers were started). */
  #url: typeof import("../broker/url.ts") | undefined;

  constructor(config: ProcessConfig) {
    this.#config = config;
    this.#logger = getLogger(`dramatis.WorkerProcess(${config.index})`);
    this.#feeder = new Feeder(config.concurrency);
    this.#settler = new Settler(this.#feeder, this.#logger);
    this.#held = new HeldMessages({
      feeder: this.#feeder,
      settler: this.#settler,
      logger: this.#logger,
    });
    this.#stopWatchdog = startWatchdog(this.#feeder.slots, {
      grace: config.grace,
      stuck: (slot, h) => void this.#onStuck(slot, h),
    });
  }

  /**
   * Starts the Web Workers, then (while they boot) imports the modules and the broker, and
   * consumes the queues; never resolves (the process exits when it stops).
   */
  async run(): Promise<never> {
    const config = this.#config;
    this.#stopWatchingParent = watchParent({
      logger: this.#logger,
      stopping: () => this.#feeder.closed,
      stop: (code) => this.#shutdown(code),
    });
    // The Web Workers boot (and import the modules) while this thread imports them too.
    for (let i = 0; i < config.threads; i++) this.#spawn(i);
    try {
      await importModules(config.modules);
    } catch (e) {
      return this.#fail(EXIT.IMPORT, (e as Error).message);
    }
    const module = await import("../broker/broker.ts");
    const { getBroker } = await import("../broker/global.ts");
    const { describeBroker, redactUrls } = this.#url = await import("../broker/url.ts");
    // A bad broker URL or option, or a broker that cannot be reached (Redis checks its
    // connection now), is one clear error and exit code 3 (the supervisor then stops), not a
    // worker process restarted for ever or a loop of failing receives.
    let broker: Broker;
    try {
      broker = getBroker();
    } catch (e) {
      return this.#fail(
        EXIT.CONNECT,
        `The broker is misconfigured: ${redactUrls((e as Error).message)}`,
      );
    }
    this.#settler.broker = { broker, module };
    // DRAMATIS_METRICS=1 (`--metrics`): a Metrics middleware here too, so the record sums the Web Workers'.
    (await import("../telemetry/_enable.ts")).addMetricsIfAsked(broker);
    const connect = (broker as { connect?: () => Promise<void> }).connect;
    if (typeof connect === "function") {
      try {
        await connect.call(broker);
      } catch (e) {
        return this.#fail(
          EXIT.CONNECT,
          `Could not connect to the broker: ${redactUrls((e as Error).message)}`,
        );
      }
    }
    const names = config.queues?.map(qName) ?? [...broker.getDeclaredQueues()];
    this.#consume(broker, names, module.toRawDelivery);
    await this.#startOps(broker, names);
    await this.#allReady;
    this.#logger.info(
      `Worker process is ready for action: ${describeBroker(broker)}, queues ${
        names.join(", ") || "(none)"
      }.`,
    );
    return await new Promise<never>(() => {});
  }

  /** Consumes queues `names` and their delay queues. */
  #consume(
    broker: Broker,
    names: string[],
    toRaw: typeof import("../broker/broker.ts").toRawDelivery,
  ): void {
    const { consumers } = this.#settler, feeder = this.#feeder;
    const prefetch = feeder.capacity.max * this.#config.threads;
    for (const name of names) {
      broker.declareQueue(name);
      for (const queue of [name, dqName(name)]) {
        consumers.set(queue, broker.consume(queue, { prefetch }));
      }
    }
    const queues = [...consumers.keys()];
    feeder.setQueues(queues);
    if (feeder.closed) return;
    const options = {
      timeout: this.#config.workerTimeout,
      signal: this.#stopController.signal,
      logger: this.#logger,
      toRaw,
    };
    this.#loops = queues.map((q) => feeder.consume(q, consumers.get(q)!, options));
  }

  /** Starts the broker operations (cancel poll, heartbeat, events) and the schedules. */
  async #startOps(broker: Broker, names: string[]): Promise<void> {
    const { ProcessOps } = await import("./_process_ops.ts");
    const held = this.#held;
    const ops = this.#settler.ops = await ProcessOps.create({
      broker,
      queues: names,
      concurrency: this.#config.threads * this.#config.concurrency,
      heldIds: () => held.heldIds(),
      cancel: (ids) => held.cancel(ids),
      running: () => held.running(),
    });
    if (!this.#feeder.closed) ops.start();
    if (!this.#feeder.closed) {
      this.#scheduling = runProcessSchedules(
        broker,
        this.#stopController.signal,
        this.#config.schedulesSince,
      );
    }
  }

  /** Starts Web Worker `index` (again, after one was replaced). */
  #spawn(index: number): void {
    const feeder = this.#feeder;
    feeder.slots[index] = startSlot(index, {
      config: this.#config,
      capacity: feeder.capacity,
      on: {
        message: (slot, msg) => this.#onMessage(slot, msg),
        crash: (slot, reason) => void this.#onCrash(slot, reason),
      },
    });
    feeder.pump(); // a booting Web Worker takes messages: they wait for its Worker to start
  }

  #onMessage(slot: Slot, msg: FromWebWorker): void {
    const ops = this.#settler.ops;
    switch (msg.type) {
      case "settle":
        this.#settler.onSettle(slot, msg);
        break;
      case "ready":
        slot.state = "ready";
        if (++this.#readyCount === this.#config.threads) this.#resolveAllReady();
        break;
      case "fatal":
        void this.#fail(msg.code, msg.error);
        break;
      case "progress": {
        const h = slot.held.get(msg.tag);
        if (h) h.progress = msg.value;
        break;
      }
      case "ops":
        for (const e of msg.events) ops?.event(e);
        if (msg.metrics) {
          slot.metricsInstance = msg.metrics.instance;
          ops?.metrics(msg.metrics);
        }
        break;
      case "stopped":
        // Whatever it still holds was never started: hand it back.
        slot.state = "stopped";
        slot.worker.terminate();
        void this.#settler.handBack(slot).then(slot.resolveStopped);
        break;
    }
  }

  async #onCrash(slot: Slot, reason: string): Promise<void> {
    if (slot.state === "dead" || slot.state === "stopped") return;
    this.#logger.error(`Web Worker ${slot.index + 1} crashed (${reason}); replacing it.`);
    slot.state = "dead";
    slot.worker.terminate();
    this.#settler.ops?.retire(slot.metricsInstance);
    await this.#settler.handBack(slot);
    slot.resolveStopped();
    if (!this.#feeder.closed) this.#spawn(slot.index);
  }

  async #onStuck(slot: Slot, stuck: Held): Promise<void> {
    const { grace } = this.#config;
    slot.state = "dead";
    this.#settler.ops?.retire(slot.metricsInstance);
    this.#logger.warning(
      stuck.cancelledAt !== undefined
        ? `Message ${idOf(stuck)} was cancelled and its actor did not yield for ` +
          `${grace} ms: failing it with Cancelled and replacing Web Worker ${slot.index + 1}.`
        : `Message ${idOf(stuck)} ran ${grace} ms past its time limit without ` +
          `yielding: failing it with TimeLimitExceeded and replacing Web Worker ${slot.index + 1}.`,
    );
    if (runtime === "bun") slot.worker.terminate(); // stops the thread on Bun
    await this.#settler.handBack(slot, stuck);
    slot.resolveStopped();
    if (runtime === "bun") {
      if (!this.#feeder.closed) this.#spawn(slot.index);
    } else if (!this.#feeder.closed) {
      // Deno cannot stop the thread: stop the others and let the supervisor start a fresh process.
      this.#recycling = true;
      this.#logger.warning("Recycling this worker process to free the stuck thread.");
      await this.#shutdown(EXIT.RECYCLE);
    }
  }

  /**
   * A boot failure: one line (the main thread and each Web Worker may find the same problem, it
   * is logged once), then exit with `code`.
   */
  #fail(code: number, error: string): Promise<never> {
    if (!this.#failed) this.#logger.critical(error);
    this.#failed = true;
    if (!this.#settler.broker) exit(code); // nothing was received yet
    return this.#shutdown(code);
  }

  /**
   * Stops: the Web Workers finish what they run and hand the rest back, then the consumers,
   * the broker operations and the broker close; exits with `code`.
   */
  #shutdown(code: number): Promise<never> {
    if (this.#exiting) return this.#exiting;
    const feeder = this.#feeder, slots = feeder.slots;
    feeder.closed = true;
    const stopAt = Date.now();
    this.#exiting = (async () => {
      this.#stopWatchingParent();
      this.#stopController.abort();
      feeder.close(); // wakes the consumer loops, which end
      const stop: ToWebWorker = { type: "stop", timeout: this.#config.shutdownTimeout };
      for (const slot of slots) {
        if (slot && (slot.state === "ready" || slot.state === "booting")) {
          slot.state = "stopping";
          slot.worker.postMessage(stop);
        }
      }
      await Promise.race([
        Promise.all(slots.map((s) => s?.stopped)),
        new Promise((r) => setTimeout(r, this.#config.shutdownTimeout + 5_000)),
      ]);
      this.#stopWatchdog();
      const late = slots.filter((s) => s && s.state !== "stopped" && s.state !== "dead");
      for (const slot of late) {
        this.#logger.warning(`Web Worker ${slot.index + 1} did not stop in time.`);
      }
      // What is left talks to the broker: a broker that stops answering must not hold the stop
      // beyond the shutdown timeout (and at least CLOSE_MS is given to it).
      const deadline = Math.max(stopAt + this.#config.shutdownTimeout, Date.now() + CLOSE_MS);
      await withDeadline(this.#logger, deadline, this.#closeSteps(late));
      if (!this.#recycling) this.#logger.info("Worker process stopped.");
      return exit(code);
    })();
    return this.#exiting;
  }

  /** The last steps of a stop, once the Web Workers stopped (but those `late`). */
  #closeSteps(late: Slot[]): [what: string, run: () => Promise<unknown>][] {
    const settler = this.#settler, broker = settler.broker?.broker;
    const where = broker && this.#url ? ` (${this.#url.describeBroker(broker)})` : "";
    const pending = this.#feeder.pending;
    return [
      [
        `the broker${where} to take back the messages of ${late.length} Web Worker(s)`,
        () => Promise.all(late.map((slot) => settler.handBack(slot))),
      ],
      [`the consumers' last receive from the broker${where}`, () => Promise.all(this.#loops)],
      [`the schedules' last enqueue to the broker${where}`, () => this.#scheduling],
      [
        `the broker${where} to take back ${pending.length} message(s) not delivered`,
        () => settler.requeue(pending.splice(0)),
      ],
      [
        `the consumers to write their last acks to the broker${where}`,
        () =>
          Promise.all(
            [...settler.consumers.values()].map((c) =>
              settler.settle(() => "close a consumer", () => c.close())
            ),
          ),
      ],
      [`the broker${where} to take the last events`, async () => await settler.ops?.stop()],
      [`the broker${where} to close`, async () => await broker?.close()],
    ];
  }
}
