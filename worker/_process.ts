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
// Cancels. This thread polls `broker.cancelled()` for every message it holds (worker/
// _process_ops.ts): one not delivered yet is settled here as cancelled; one a Web Worker holds is
// cancelled there (CancelMessage). If that Web Worker has not handled the CancelMessage `grace`
// ms later while the actor runs, it is stuck in it: the message is failed with Cancelled (not
// retried) and the Web Worker replaced as for a hard time limit.
//
// The broker modules are imported once the Web Workers are on their way (see the end of
// runWorkerProcess): they boot while this thread loads the rest.
import type { Broker, Consumer, MessageProxy, RawDelivery } from "../broker/broker.ts";
import type { JsonValue } from "../message.ts";
import type { RunningMessage } from "../broker/ops.ts";
import { Cancelled, TimeLimitExceeded } from "../errors.ts";
import { configureLogging, formatError, getLogger, type Logger, logToFile } from "../_log.ts";
import {
  type FromWebWorker,
  MessageState,
  type SettleMessage,
  type ToWebWorker,
} from "./_protocol.ts";
import { importModules } from "./_import.ts";
import { EXIT } from "./_exit.ts";
import { runProcessSchedules } from "./_scheduler.ts";
import { exit, onSignal, ppid, runtime } from "../_runtime.ts";
import { describeBroker, redactUrls } from "../broker/url.ts";
import type { ProcessOps } from "./_process_ops.ts";
import { reportMemory } from "./_memory_report.ts";

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

/** A message received from the broker, not yet handed to a Web Worker. */
interface Received {
  queue: string;
  /** Its receipt and undecoded JSON: this thread decodes a message only when it must. */
  delivery: RawDelivery;
  /** Its id and actor, once read (null: not a message). */
  wire?: { id: string; actor: string } | null;
}

/** A message delivered to a Web Worker and not settled yet. */
interface Held extends Received {
  /** When its actor's time limit passes; Infinity until it started, or without a limit. */
  deadline: number;
  /** When its actor started, as reported (ms since the epoch). */
  startedAt?: number;
  /** The last progress its actor reported. */
  progress?: JsonValue;
  /** When this thread first told its Web Worker it was cancelled (ms since the epoch). */
  cancelledAt?: number;
  /** The `seq` of the last CancelMessage naming it. */
  cancelSeq?: number;
}

interface Slot {
  index: number;
  worker: globalThis.Worker;
  /** By tag. */
  held: Map<number, Held>;
  /** [tag, deadline] of the actor it started last, seq of the last cancel handled (shared). */
  current: Float64Array;
  /** The `instance` of its last `Metrics` snapshot. */
  metricsInstance?: string;
  /** The MessageState of each cell (shared memory): the message tagged `t` is in `t % length`. */
  states: Int32Array;
  /** Cells not in use. */
  free: number[];
  /** Messages delivered so far (tags are `seq * states.length + cell`). */
  seq: number;
  state: "booting" | "ready" | "stopping" | "stopped" | "dead";
  /** performance.now() of the last delivery. */
  lastDelivery: number;
  /** How many messages it may hold (see "Flow control"). */
  capacity: number;
  /** Messages settled since `paceSince` (performance.now()). */
  settled: number;
  paceSince: number;
  stopped: Promise<void>;
  resolveStopped: () => void;
}

/** Most messages a Web Worker holds beyond its concurrency. */
const MAX_PREFETCH = 512;
/** How much work, in ms at its recent pace, each Web Worker is given ahead. */
const AHEAD_MS = 5;
/** Longest time a Web Worker with room waits for a bigger batch, in ms. */
const BATCH_WAIT = 1;

export async function runWorkerProcess(config: ProcessConfig): Promise<never> {
  if (config.logFile) logToFile(config.logFile);
  configureLogging({ level: config.logLevel, thread: "MainThread" });
  const logger = getLogger(`dramatis.WorkerProcess(${config.index})`);
  reportMemory(`process-${config.index}`);
  // Flow control. A postMessage costs tens of microseconds whatever it carries, so messages go
  // to a Web Worker in batches. Each Web Worker may hold `slot.capacity` messages: its
  // concurrency plus about AHEAD_MS of work at the pace it has been settling them (so quick
  // actors get big batches), at least twice its concurrency, at most concurrency +
  // MAX_PREFETCH. It is topped up once half its room is free, or when it has waited BATCH_WAIT
  // ms (so a slow actor's Web Worker still gets the next message at once).
  const c = config.concurrency;
  const minCapacity = 2 * c, maxCapacity = c + Math.max(c, MAX_PREFETCH);
  // Set once the modules are imported (the Web Workers start meanwhile).
  let broker: Broker | undefined = undefined;
  let brokerModule: typeof import("../broker/broker.ts") | undefined = undefined;
  /** The broker operations (set once the consumers run). */
  let ops: ProcessOps | undefined = undefined;
  let cancelSeq = 0;
  const consumers = new Map<string, Consumer>();
  // Queue names travel to the Web Workers as indexes into this list.
  let queues: string[] = [];
  let queueIndex = new Map<string, number>();
  let loops: Promise<void>[] = [];
  let scheduling: Promise<void> = Promise.resolve();

  const slots: Slot[] = [];
  const pending: Received[] = [];
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
      current: new Float64Array(new SharedArrayBuffer(24)),
      // A Web Worker holds at most maxCapacity messages: one cell each.
      states: new Int32Array(new SharedArrayBuffer(4 * maxCapacity)),
      free: Array.from({ length: maxCapacity }, (_, i) => maxCapacity - 1 - i),
      seq: 0,
      state: "booting",
      lastDelivery: -Infinity,
      capacity: minCapacity,
      settled: 0,
      paceSince: performance.now(),
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
      prefetch: maxCapacity - c,
      workerTimeout: config.workerTimeout,
      thread: `Worker-${index + 1}`,
      logLevel: config.logLevel,
      logFile: config.logFile,
      current: slot.current,
      states: slot.states,
      opsEvery: OPS_EVERY,
    };
    worker.postMessage(init);
    slots[index] = slot;
    pump(); // a booting Web Worker takes messages: they wait for its Worker to start
    return slot;
  }

  // Feeding the Web Workers

  const accepts = (slot: Slot | undefined): slot is Slot =>
    !shuttingDown && (slot?.state === "ready" || slot?.state === "booting");

  /**
   * How many more messages to receive: the free room in the Web Workers plus a reserve of half
   * their capacity (so the next batch is ready when a Web Worker reports), less what is already
   * waiting here.
   */
  function room(): number {
    let n = -pending.length;
    for (const slot of slots) {
      if (accepts(slot)) {
        n += Math.max(0, slot.capacity - slot.held.size) + (slot.capacity >> 1);
      }
    }
    return n;
  }

  let wakeLoops: (() => void)[] = [];

  let pumpTimer: ReturnType<typeof setTimeout> | undefined;

  /** Delivers pending messages to Web Workers with room, then lets the consumers receive more. */
  function pump(): void {
    const now = performance.now();
    let wait = Infinity;
    const open: Slot[] = [];
    for (const s of slots) {
      if (!accepts(s) || s.held.size >= s.capacity) continue;
      const since = now - s.lastDelivery;
      if (s.capacity - s.held.size >= s.capacity / 2 || since >= BATCH_WAIT) open.push(s);
      else wait = Math.min(wait, BATCH_WAIT - since);
    }
    if (pending.length > 0 && wait < Infinity && pumpTimer === undefined) {
      pumpTimer = setTimeout(() => {
        pumpTimer = undefined;
        pump();
      }, wait);
    }
    // Share them evenly, roomiest Web Worker first.
    open.sort((a, b) => a.held.size - b.held.size);
    for (let i = 0; i < open.length && pending.length > 0; i++) {
      const slot = open[i]!;
      const n = Math.min(
        slot.capacity - slot.held.size,
        Math.ceil(pending.length / (open.length - i)),
      );
      slot.lastDelivery = now;
      // One buffer of JSON for the whole batch, transferred, not copied.
      const batch = pending.splice(0, n);
      const tags = new Float64Array(batch.length);
      const ends = new Uint32Array(batch.length);
      const queueOf = new Uint16Array(batch.length);
      let size = 0;
      for (const r of batch) size += r.delivery.data.length;
      const bytes = new Uint8Array(size);
      let at = 0;
      for (let k = 0; k < batch.length; k++) {
        const r = batch[k]!;
        const cell = slot.free.pop()!;
        const tag = ++slot.seq * maxCapacity + cell;
        Atomics.store(slot.states, cell, MessageState.DELIVERED);
        slot.held.set(tag, { queue: r.queue, delivery: r.delivery, deadline: Infinity });
        tags[k] = tag;
        bytes.set(r.delivery.data, at);
        ends[k] = at += r.delivery.data.length;
        queueOf[k] = queueIndex.get(r.queue)!;
      }
      const deliver: ToWebWorker = { type: "deliver", tags, queues, queueOf, bytes, ends };
      slot.worker.postMessage(deliver, [tags.buffer, ends.buffer, queueOf.buffer, bytes.buffer]);
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
        const options = { timeout: config.workerTimeout, signal: stopController.signal };
        const batch = consumer.receiveRaw
          ? await consumer.receiveRaw(max, options)
          : (await consumer.receive(max, options)).map(brokerModule!.toRawDelivery);
        failures = 0;
        for (const delivery of batch) pending.push({ queue, delivery });
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
      const h = held.get(started[i]!);
      if (h) {
        h.deadline = started[i + 1]!;
        h.startedAt = Date.now();
      }
    }
    for (const tag of msg.acks) {
      const h = release(slot, tag);
      if (!h) continue;
      settle(() => `ack message ${idOf(h)}`, () => consumers.get(h.queue)!.ack(h.delivery));
    }
    for (const [tag, json] of msg.nacks) {
      const h = release(slot, tag);
      if (!h) continue;
      const m = brokerModule!.MessageProxy.decode(json) as MessageProxy;
      m.receipt = h.delivery.receipt;
      settle(() => `nack message ${m.messageId}`, () => consumers.get(h.queue)!.nack(m));
    }
    for (const [tag, error] of msg.bad) {
      const h = release(slot, tag);
      if (!h) continue;
      // The consumer's decode() dead-letters a message that cannot be decoded, and logs why.
      const m = h.delivery.decode();
      if (m) {
        logger.error(
          `Web Worker ${slot.index + 1} could not decode message ${m.messageId}: ${error}`,
        );
        settle(() => `nack message ${m.messageId}`, () => consumers.get(h.queue)!.nack(m));
      }
    }
    const requeued: Held[] = [];
    for (const tag of msg.requeues) {
      const h = release(slot, tag);
      if (h) requeued.push(h);
    }
    void requeue(requeued);
    pace(slot, msg.acks.length + msg.nacks.length + msg.requeues.length);
    pump();
  }

  /** Forgets the message tagged `tag` (settled), freeing its cell; returns it if it was held. */
  function release(slot: Slot, tag: number): Held | undefined {
    const h = slot.held.get(tag);
    if (h) {
      slot.held.delete(tag);
      slot.free.push(tag % maxCapacity);
    }
    return h;
  }

  /** Sizes the slot's capacity to about AHEAD_MS of work at the pace it settles messages. */
  function pace(slot: Slot, settled: number): void {
    slot.settled += settled;
    const now = performance.now(), elapsed = now - slot.paceSince;
    if (elapsed < 10) return;
    const ahead = Math.ceil(slot.settled / elapsed * AHEAD_MS);
    slot.capacity = Math.min(maxCapacity, Math.max(minCapacity, c + ahead));
    slot.settled = 0;
    slot.paceSince = now;
  }

  async function requeue(list: Received[]): Promise<void> {
    const byQueue = Map.groupBy(list, (r) => r.queue);
    for (const [queue, rs] of byQueue) {
      await settle(
        () => `hand ${rs.length} message(s) back to ${queue}`,
        () => consumers.get(queue)!.requeue(rs.map((r) => r.delivery)),
      );
    }
  }

  /**
   * Settles every message of a Web Worker that is gone or being replaced: fails `stuck` (if
   * given), acks or nacks those it had finished (shared memory says so, even if it could not
   * report it), and hands the rest back: the unstarted ones, and those it was running (they were
   * interrupted: they run again, as after a crash).
   */
  async function handBack(slot: Slot, stuck?: Held): Promise<void> {
    const back: Held[] = [];
    for (const [tag, h] of slot.held) {
      if (h === stuck) continue;
      const state = Atomics.load(slot.states, tag % maxCapacity);
      const consumer = consumers.get(h.queue)!;
      if (state === MessageState.ACKED) {
        settle(() => `ack message ${idOf(h)}`, () => consumer.ack(h.delivery));
      } else if (state === MessageState.NACKED) {
        // Its report (with the traceback) did not arrive: dead-letter it as it was delivered.
        const m = h.delivery.decode();
        if (m) settle(() => `nack message ${m.messageId}`, () => consumer.nack(m));
      } else {
        back.push(h);
      }
    }
    slot.held.clear();
    await requeue(back);
    if (stuck) {
      const error = stuck.cancelledAt !== undefined ? cancelledError : stuckError;
      await settle(() => `fail message ${idOf(stuck)}`, () => failHere(stuck, error));
    }
  }

  const stuckError = (m: MessageProxy) =>
    new TimeLimitExceeded(
      `Actor ${m.actorName} exceeded its time limit and did not yield; its Web Worker was replaced.`,
    );
  const cancelledError = (m: MessageProxy) =>
    new Cancelled(`Message ${m.messageId} was cancelled.`);

  /**
   * Settles a message no Web Worker will finish, failed with `errorOf(m)`, as a Worker would:
   * the hooks run here (Retries retries a time limit, not a cancel; Results stores the failure).
   */
  async function failHere(
    { queue, delivery }: Received,
    errorOf: (m: MessageProxy) => Error,
  ): Promise<void> {
    const m = delivery.decode();
    if (!m) return; // undecodable: dead-lettered by decode()
    const retries = m.options.retries;
    const error = errorOf(m);
    m.error = error;
    const consumer = consumers.get(queue)!;
    const after = broker!.emitAfter("processMessage", m, { error });
    if (after) await after;
    const hook = m.failed ? "nack" : "ack";
    const b = broker!.emitBefore(hook, m);
    if (b) await b;
    await (m.failed ? consumer.nack(m) : consumer.ack(m));
    const a = broker!.emitAfter(hook, m);
    if (a) await a;
    ops?.settled(m, retries);
  }

  // Broker operations

  /** The id and actor of a received message (read once, only when needed). */
  function wireOf(r: Received): { id: string; actor: string } | null {
    if (r.wire !== undefined) return r.wire;
    try {
      const d = JSON.parse(decoder.decode(r.delivery.data));
      r.wire = typeof d?.message_id === "string"
        ? { id: d.message_id, actor: String(d.actor_name) }
        : null;
    } catch {
      r.wire = null;
    }
    return r.wire;
  }

  function heldIds(): string[] {
    const ids: string[] = [];
    for (const r of pending) {
      const w = wireOf(r);
      if (w) ids.push(w.id);
    }
    for (const slot of slots) {
      if (!slot) continue;
      for (const h of slot.held.values()) {
        const w = wireOf(h);
        if (w) ids.push(w.id);
      }
    }
    return ids;
  }

  function cancelHeld(ids: Set<string>): void {
    const now = Date.now();
    const here = pending.filter((r) => ids.has(wireOf(r)?.id!));
    if (here.length > 0) {
      pending.splice(0, pending.length, ...pending.filter((r) => !here.includes(r)));
      for (const r of here) {
        logger.info(`Message ${wireOf(r)!.id} (${wireOf(r)!.actor}) was cancelled.`);
        void settle(() => `cancel message ${idOf(r)}`, () => failHere(r, cancelledError));
      }
      pump();
    }
    for (const slot of slots) {
      if (!slot || !watched.has(slot.state)) continue;
      const told: string[] = [];
      const seq = cancelSeq + 1;
      for (const [tag, h] of slot.held) {
        const w = wireOf(h);
        if (!w || !ids.has(w.id)) continue;
        const state = Atomics.load(slot.states, tag % maxCapacity);
        if (state === MessageState.ACKED || state === MessageState.NACKED) continue;
        told.push(w.id);
        h.cancelledAt ??= now;
        h.cancelSeq = seq;
      }
      if (told.length === 0) continue;
      cancelSeq = seq;
      const cancel: ToWebWorker = { type: "cancel", ids: told, seq };
      slot.worker.postMessage(cancel);
    }
  }

  function running(): RunningMessage[] {
    const out: RunningMessage[] = [];
    const now = Date.now();
    for (const slot of slots) {
      if (!slot || !watched.has(slot.state)) continue;
      for (const [tag, h] of slot.held) {
        if (Atomics.load(slot.states, tag % maxCapacity) !== MessageState.STARTED) continue;
        const w = wireOf(h);
        if (!w) continue;
        out.push({
          messageId: w.id,
          actorName: w.actor,
          queueName: brokerModule!.qName(h.queue),
          since: h.startedAt ??= now,
          ...(h.progress !== undefined ? { progress: h.progress } : {}),
        });
      }
    }
    return out;
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
        void fail(msg.code, msg.error);
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
        void handBack(slot).then(slot.resolveStopped);
        break;
    }
  }

  async function onCrash(slot: Slot, reason: string): Promise<void> {
    if (slot.state === "dead" || slot.state === "stopped") return;
    logger.error(`Web Worker ${slot.index + 1} crashed (${reason}); replacing it.`);
    slot.state = "dead";
    slot.worker.terminate();
    ops?.retire(slot.metricsInstance);
    await handBack(slot);
    slot.resolveStopped();
    if (!shuttingDown) spawn(slot.index);
  }

  async function onStuck(slot: Slot, stuck: Held): Promise<void> {
    slot.state = "dead";
    ops?.retire(slot.metricsInstance);
    logger.warning(
      stuck.cancelledAt !== undefined
        ? `Message ${idOf(stuck)} was cancelled and its actor did not yield for ` +
          `${config.grace} ms: failing it with Cancelled and replacing Web Worker ${
            slot.index + 1
          }.`
        : `Message ${idOf(stuck)} ran ${config.grace} ms past its time limit without ` +
          `yielding: failing it with TimeLimitExceeded and replacing Web Worker ${slot.index + 1}.`,
    );
    if (runtime === "bun") slot.worker.terminate(); // stops the thread on Bun
    await handBack(slot, stuck);
    slot.resolveStopped();
    if (runtime === "bun") {
      if (!shuttingDown) spawn(slot.index);
    } else if (!shuttingDown) {
      // Deno cannot stop the thread: stop the others and let the supervisor start a fresh process.
      recycling = true;
      logger.warning("Recycling this worker process to free the stuck thread.");
      await shutdown(EXIT.RECYCLE);
    }
  }

  // Every Web Worker that may run actors is watched: one still booting runs the messages it was
  // given as soon as its Worker starts (maybe before it reports ready), and one stopping runs
  // its last ones.
  const watched = new Set<Slot["state"]>(["booting", "ready", "stopping"]);
  const watchdog = setInterval(() => {
    const now = Date.now();
    for (const slot of slots) {
      if (!slot || !watched.has(slot.state)) continue;
      const current = slot.held.get(slot.current[0]!);
      if (current && current.deadline === Infinity) current.deadline = slot.current[1]!;
      for (const [tag, h] of slot.held) {
        if (now > h.deadline + config.grace || stuckCancelled(slot, tag, h, now)) {
          void onStuck(slot, h);
          break;
        }
      }
    }
  }, 50);

  /** A cancelled message whose actor runs in a Web Worker that did not handle the cancel. */
  function stuckCancelled(slot: Slot, tag: number, h: Held, now: number): boolean {
    return h.cancelSeq !== undefined && now > h.cancelledAt! + config.grace &&
      slot.current[2]! < h.cancelSeq &&
      Atomics.load(slot.states, tag % maxCapacity) === MessageState.STARTED;
  }

  // A supervisor killed with SIGKILL cannot stop its worker processes: each notices that it was
  // orphaned (its parent changed) and stops gracefully, handing back what it has not finished.
  const parent = ppid();
  const orphanCheck = setInterval(() => {
    if (ppid() === parent || shuttingDown) return;
    logger.warning(`The supervisor (pid ${parent}) is gone: stopping this worker process.`);
    void shutdown(EXIT.OK);
  }, 1000);

  /**
   * A boot failure: one line (the main thread and each Web Worker may find the same problem, it
   * is logged once), then exit with `code`.
   */
  let failed = false;
  function fail(code: number, error: string): Promise<never> {
    if (!failed) logger.critical(error);
    failed = true;
    if (!broker) exit(code); // nothing was received yet
    return shutdown(code);
  }

  let exiting: Promise<never> | undefined;
  function shutdown(code: number): Promise<never> {
    if (exiting) return exiting;
    shuttingDown = true;
    const stopAt = Date.now();
    exiting = (async () => {
      clearInterval(orphanCheck);
      clearTimeout(pumpTimer);
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
      clearInterval(watchdog);
      const late = slots.filter((s) => s && s.state !== "stopped" && s.state !== "dead");
      for (const slot of late) logger.warning(`Web Worker ${slot.index + 1} did not stop in time.`);
      // What is left talks to the broker: a broker that stops answering must not hold the stop
      // beyond the shutdown timeout (and at least CLOSE_MS is given to it).
      const where = broker ? ` (${describeBroker(broker)})` : "";
      await withDeadline(logger, Math.max(stopAt + config.shutdownTimeout, Date.now() + CLOSE_MS), [
        [
          `the broker${where} to take back the messages of ${late.length} Web Worker(s)`,
          () => Promise.all(late.map((slot) => handBack(slot))),
        ],
        [`the consumers' last receive from the broker${where}`, () => Promise.all(loops)],
        [`the schedules' last enqueue to the broker${where}`, () => scheduling],
        [
          `the broker${where} to take back ${pending.length} message(s) not delivered`,
          () => requeue(pending.splice(0)),
        ],
        [
          `the consumers to write their last acks to the broker${where}`,
          () =>
            Promise.all(
              [...consumers.values()].map((c) => settle(() => "close a consumer", () => c.close())),
            ),
        ],
        [`the broker${where} to take the last events`, async () => await ops?.stop()],
        [`the broker${where} to close`, async () => await broker?.close()],
      ]);
      if (!recycling) logger.info("Worker process stopped.");
      return exit(code);
    })();
    return exiting;
  }

  // Stop signals. A terminal's Ctrl-C, `kill -- -PGID`, `timeout`, systemd and Docker signal the
  // whole process group (or cgroup), and the supervisor forwards the stop as well: this process
  // sees one user's stop two or three times. So the first INT/TERM stops gracefully and later
  // ones are ignored while the supervisor lives: it alone decides an immediate stop, by sending
  // SIGKILL (messages in flight then come back through the broker, as after a crash). HUP is the
  // supervisor's (a reload, which stops this process with TERM): here it must not kill.
  let stopSignals = 0;
  onSignal(["SIGINT", "SIGTERM"], (sig) => {
    if (++stopSignals === 1) {
      logger.info("Stopping: finishing in-flight messages, handing the rest back.");
      void shutdown(EXIT.OK);
    } else if (ppid() !== parent) {
      logger.warning(`${sig} again, and no supervisor: exiting now.`);
      exit(EXIT.KILLED);
    } else {
      logger.debug(`${sig} again: ignored (the supervisor decides an immediate stop).`);
    }
  });
  onSignal(["SIGHUP"], () => logger.debug("SIGHUP: ignored (the supervisor reloads)."));

  // The Web Workers boot (and import the modules) while this thread imports them too.
  for (let i = 0; i < config.threads; i++) spawn(i);
  try {
    await importModules(config.modules);
  } catch (e) {
    return fail(EXIT.IMPORT, (e as Error).message);
  }
  brokerModule = await import("../broker/broker.ts");
  const { getBroker } = await import("../broker/global.ts");
  // A bad broker URL or option, or a broker that cannot be reached (Redis checks its connection
  // now), is one clear error and exit code 3 (the supervisor then stops), not a worker process
  // restarted for ever or a loop of failing receives.
  try {
    broker = getBroker();
  } catch (e) {
    return fail(EXIT.CONNECT, `The broker is misconfigured: ${redactUrls((e as Error).message)}`);
  }
  // DRAMATIS_METRICS=1 (`--metrics`): a Metrics middleware here too, so the record sums the Web Workers'.
  (await import("../telemetry/_enable.ts")).addMetricsIfAsked(broker);
  const connect = (broker as { connect?: () => Promise<void> }).connect;
  if (typeof connect === "function") {
    try {
      await connect.call(broker);
    } catch (e) {
      return fail(
        EXIT.CONNECT,
        `Could not connect to the broker: ${redactUrls((e as Error).message)}`,
      );
    }
  }
  const names = config.queues?.map(brokerModule.qName) ?? [...broker.getDeclaredQueues()];
  for (const name of names) {
    broker.declareQueue(name);
    for (const queue of [name, `${name}.DQ`]) {
      consumers.set(queue, broker.consume(queue, { prefetch: maxCapacity * config.threads }));
    }
  }
  queues = [...consumers.keys()];
  queueIndex = new Map(queues.map((q, i) => [q, i]));
  if (!shuttingDown) loops = queues.map((q) => consumeLoop(q, consumers.get(q)!));
  const { ProcessOps } = await import("./_process_ops.ts");
  ops = await ProcessOps.create({
    broker,
    queues: names,
    concurrency: config.threads * config.concurrency,
    heldIds,
    cancel: cancelHeld,
    running,
  });
  if (!shuttingDown) ops.start();
  if (!shuttingDown) {
    scheduling = runProcessSchedules(broker, stopController.signal, config.schedulesSince);
  }
  await allReady;
  logger.info(
    `Worker process is ready for action: ${describeBroker(broker)}, queues ${
      names.join(", ") || "(none)"
    }.`,
  );
  return await new Promise<never>(() => {});
}

const decoder = new TextDecoder();

/** How often a Web Worker sends its events (and every 4th time its metrics), in ms. */
const OPS_EVERY = 250;

/** Least time the last steps of a stop get with the broker, in ms. */
const CLOSE_MS = 2_000;
/** After this long, a step of a stop says what it is waiting for, in ms. */
const NOTICE_MS = 1_000;

/**
 * Runs `steps` in order until `deadline` (ms since the epoch): a step that takes longer than
 * NOTICE_MS is logged with what it waits for; at the deadline the rest is given up, with a
 * warning (messages not settled come back when the broker's lease or heartbeat expires).
 */
async function withDeadline(
  logger: Logger,
  deadline: number,
  steps: [what: string, run: () => Promise<unknown>][],
): Promise<void> {
  for (const [what, run] of steps) {
    let notice: ReturnType<typeof setTimeout> | undefined, limit!: ReturnType<typeof setTimeout>;
    const done = await Promise.race([
      run().then(() => true, () => true),
      new Promise<boolean>((resolve) => {
        const left = Math.max(0, deadline - Date.now());
        limit = setTimeout(() => resolve(false), left);
        if (left > NOTICE_MS) {
          notice = setTimeout(
            () => {
              const more = Math.ceil((deadline - Date.now()) / 1000);
              logger.info(`Waiting for ${what} (giving up in ${more} s: the shutdown timeout).`);
            },
            NOTICE_MS,
          );
        }
      }),
    ]);
    clearTimeout(limit);
    clearTimeout(notice);
    if (!done) {
      logger.warning(
        `Gave up waiting for ${what}: the shutdown timeout passed. Messages not settled come ` +
          `back when the broker's lease or heartbeat timeout expires.`,
      );
      return;
    }
  }
}

/** The message id of a held message, for log lines (without decoding it for good). */
function idOf(h: Received): string {
  const m = /"message_id"\s*:\s*"([^"]*)"/.exec(decoder.decode(h.delivery.data));
  return m ? m[1]! : "(without an id)";
}

/** One line saying why a Web Worker died (Bun puts a code frame in the event's message). */
function crashReason(e: ErrorEvent): string {
  if (e.error instanceof Error) return `${e.error.name}: ${e.error.message}`;
  const lines = String(e.message ?? e.error ?? "unknown error").split("\n").map((l) => l.trim());
  return lines.find((l) => /^(\w*error|uncaught)\b/i.test(l)) ?? lines.find((l) => l) ??
    "unknown error";
}
