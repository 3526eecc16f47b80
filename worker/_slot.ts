// A Web Worker of a worker process (see worker/_process.ts) and the messages it holds: starting
// one (its shared memory and its `init` message), and reading what a held message is.
import type { RawDelivery } from "../broker/broker.ts";
import type { JsonValue } from "../message.ts";
import type { ProcessConfig } from "./_process_config.ts";
import type { FromWebWorker, ToWebWorker } from "./_protocol.ts";

/** A message received from the broker, not yet handed to a Web Worker. */
export interface Received {
  queue: string;
  /** Its receipt and undecoded JSON: this thread decodes a message only when it must. */
  delivery: RawDelivery;
  /** Its id and actor, once read (null: not a message). */
  wire?: { id: string; actor: string } | null | undefined;
  /** The cancel poll that first saw it held. */
  polled?: number | undefined;
}

/** A message delivered to a Web Worker and not settled yet. */
export interface Held extends Received {
  /** When its actor's time limit passes; Infinity until it started, or without a limit. */
  deadline: number;
  /** When its actor started, as reported (ms since the epoch). */
  startedAt?: number;
  /** The last progress its actor reported. */
  progress?: JsonValue;
  /** When this thread first told its Web Worker it was cancelled while it ran (ms since the epoch). */
  cancelledAt?: number;
  /** The `seq` of that CancelMessage. */
  cancelSeq?: number;
}

/** A Web Worker and what it holds. */
export interface Slot {
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
  /** How many messages it may hold (see "Flow control" in worker/_feeder.ts). */
  capacity: number;
  /** Messages settled since `paceSince` (performance.now()). */
  settled: number;
  paceSince: number;
  stopped: Promise<void>;
  resolveStopped: () => void;
}

/**
 * Every Web Worker that may run actors is watched: one still booting runs the messages it was
 * given as soon as its Worker starts (maybe before it reports ready), and one stopping runs its
 * last ones.
 */
export const WATCHED: ReadonlySet<Slot["state"]> = new Set<Slot["state"]>([
  "booting",
  "ready",
  "stopping",
]);

/** How often a Web Worker sends its events (and every 4th time its metrics), in ms. */
const OPS_EVERY = 250;

/** What a Web Worker reports, and how it ends. */
export interface SlotEvents {
  message(slot: Slot, msg: FromWebWorker): void;
  crash(slot: Slot, reason: string): void;
}

/**
 * Starts Web Worker `index` (booting): it may hold `capacity.min` messages at first and
 * `capacity.max` at most (one shared-memory cell each).
 */
export function startSlot(
  index: number,
  options: {
    config: ProcessConfig;
    capacity: { min: number; max: number };
    on: SlotEvents;
  },
): Slot {
  const { config, capacity: { min, max }, on } = options;
  const worker = new Worker(config.webWorkerUrl, { type: "module", name: `Worker-${index + 1}` });
  let resolveStopped!: () => void;
  const slot: Slot = {
    index,
    worker,
    held: new Map(),
    current: new Float64Array(new SharedArrayBuffer(24)),
    states: new Int32Array(new SharedArrayBuffer(4 * max)),
    free: Array.from({ length: max }, (_, i) => max - 1 - i),
    seq: 0,
    state: "booting",
    lastDelivery: -Infinity,
    capacity: min,
    settled: 0,
    paceSince: performance.now(),
    stopped: new Promise<void>((r) => resolveStopped = r),
    resolveStopped,
  };
  worker.onmessage = (e: MessageEvent<FromWebWorker>) => on.message(slot, e.data);
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault?.();
    on.crash(slot, crashReason(e));
  };
  const init: ToWebWorker = {
    type: "init",
    modules: config.modules,
    queues: config.queues,
    concurrency: config.concurrency,
    prefetch: max - config.concurrency,
    workerTimeout: config.workerTimeout,
    thread: `Worker-${index + 1}`,
    logLevel: config.logLevel,
    logFile: config.logFile,
    current: slot.current,
    states: slot.states,
    opsEvery: OPS_EVERY,
  };
  worker.postMessage(init);
  return slot;
}

/** The shared-memory cell of the message tagged `tag`. */
export function cellOf(slot: Slot, tag: number): number {
  return tag % slot.states.length;
}

const decoder = new TextDecoder();

/** The id and actor of a received message (read once, only when needed). */
export function wireOf(r: Received): { id: string; actor: string } | null {
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

/** The message id of a held message, for log lines (without decoding it for good). */
export function idOf(h: Received): string {
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
