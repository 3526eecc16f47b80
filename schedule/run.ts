/**
 * `runSchedules()`: runs declared schedules, enqueueing each tick through the broker until a
 * signal aborts. `dramatis worker` runs it in every worker process; run it yourself when you
 * start workers in code. However many processes or machines run the same schedules on one
 * broker, each tick is enqueued once: the broker's `enqueueTick` stores the last tick of each
 * schedule and enqueues a tick only if it is later, in one atomic step. No leader is elected and
 * nothing is polled: a timer waits for the next tick.
 *
 * @example
 * ```ts
 * import { actor } from "../actor.ts";
 * import { StubBroker } from "../broker/stub.ts";
 * import { runSchedules } from "./run.ts";
 * import { schedule } from "./schedule.ts";
 *
 * const broker = new StubBroker();
 * const ping = actor(function ping() {}, { broker });
 * const s = schedule("run-example", "* * * * * *", ping); // every second
 * const stop = new AbortController();
 * const running = runSchedules({ broker, schedules: [s], signal: stop.signal });
 * setTimeout(() => stop.abort(), 1500);
 * await running;
 * console.log((await broker.lastTicks()).has("run-example")); // true
 * ```
 * @module
 */
import { sleep } from "../util/async.ts";
import { formatError, getLogger } from "../util/log.ts";
import type { Broker } from "../broker/broker.ts";
import { getBroker } from "../broker/global.ts";
import { Unsupported } from "../errors.ts";
import { getSchedules, type Schedule } from "./schedule.ts";
import { enqueueDue } from "./_enqueue_due.ts";

/**
 * Options of `runSchedules()`.
 *
 * @example
 * ```ts
 * import type { RunSchedulesOptions } from "./run.ts";
 * const o: RunSchedulesOptions = { signal: AbortSignal.timeout(60_000) };
 * ```
 */
export interface RunSchedulesOptions {
  /** The broker to enqueue through. Default: the global broker (`getBroker()`). */
  broker?: Broker;
  /** The schedules to run. Default: those declared for the broker (`getSchedules(broker)`). */
  schedules?: readonly Schedule[];
  /** Stops running them; the promise resolves once an enqueue under way has finished. */
  signal?: AbortSignal;
  /**
   * A tick older than this (ms) when a process gets to it counts as missed (the process was
   * suspended), and follows the schedule's `missed` policy. Default 60_000.
   */
  grace?: number;
  /**
   * Ticks from this time on (ms) are on time (enqueued, late if need be), not missed: pass when
   * the service started if this runner replaces one that stopped a moment ago (a restart, a
   * reload), so that the ticks in between are enqueued rather than missed. Default: now. Ticks
   * older than `grace` are missed whatever `since` says.
   */
  since?: number;
}

/** Longest single wait, in ms: a clock change or a suspended machine is noticed this soon. */
const MAX_WAIT = 60_000;
/** After a failed round (the broker down), the next try comes this much later at most, in ms. */
const RETRY_MS = 1_000;

/**
 * Runs `schedules` (default: those declared for the broker) until `signal` aborts: at each tick
 * it enqueues the schedule's message (options `schedule_name`, `schedule_tick`) with
 * `broker.enqueueTick`, which enqueues it only if no process did. At the start, the last tick
 * each schedule fired is read from the broker (`lastTicks()`), so a restart goes on from there;
 * ticks missed while no process ran follow the schedule's `missed` policy (`"skip"` none,
 * `"once"` one catch-up, `"all"` every one, at most `maxCatchUp` with a warning past it).
 * Rejects with `Unsupported` when the broker has no `schedules` capability (the file, Redis and
 * stub brokers have it). A broker error is logged and the tick is tried again a second later
 * (while it is within `grace`).
 *
 * @example
 * ```ts ignore
 * import { FileBroker, runSchedules, schedule, setBroker, Worker } from "@dramatis/dramatis";
 * import { report } from "./tasks.ts";
 *
 * const broker = setBroker(new FileBroker({ dir: "./.dramatis" }));
 * schedule("nightly-report", "0 2 * * *", report, { timezone: "Europe/Paris", missed: "once" });
 * const worker = new Worker(broker);
 * await worker.start();
 * const stop = new AbortController();
 * const schedules = runSchedules({ broker, signal: stop.signal });
 * Deno.addSignalListener("SIGTERM", async () => {
 *   stop.abort();
 *   await schedules;
 *   await worker.stop();
 * });
 * ```
 */
export async function runSchedules(options: RunSchedulesOptions = {}): Promise<void> {
  const broker = options.broker ?? getBroker();
  const schedules = [...(options.schedules ?? getSchedules(broker))];
  const signal = options.signal;
  const grace = options.grace ?? 60_000;
  if (!(grace >= 0)) {
    throw new TypeError(`runSchedules: grace must be a non-negative number of ms, got ${grace}`);
  }
  if (schedules.length === 0 || signal?.aborted) return;
  if (!broker.capabilities.schedules) {
    throw new Unsupported(
      `${broker.constructor.name} cannot run schedules (${describe(schedules)}): it has no ` +
        `enqueueTick(); use the file or the Redis broker.`,
    );
  }
  const logger = getLogger("dramatis.Scheduler");
  const since = Math.min(options.since ?? Date.now(), Date.now());
  if (!Number.isFinite(since)) {
    throw new TypeError(`runSchedules: since must be ms since the epoch, got ${options.since}`);
  }
  logger.info(`Running ${describe(schedules)}; ticks on time from ${iso(since)}.`);
  const reported = new Map<string, number>();
  const pauses = new Map<string, boolean>();
  let failures = 0;
  while (!signal?.aborted) {
    try {
      await enqueueDue(broker, schedules, { since, grace, logger, reported, pauses });
      failures = 0;
    } catch (e) {
      failures++;
      if (failures === 1 || failures % 60 === 0) {
        logger.error(`Could not enqueue schedule ticks (try ${failures}): ${formatError(e)}`);
      }
      await sleep(RETRY_MS, signal);
      continue;
    }
    const now = Date.now();
    let next = Infinity;
    for (const s of schedules) next = Math.min(next, s.cron.next(now) ?? Infinity);
    if (next === Infinity) {
      logger.info(`No schedule has a tick ahead: ${describe(schedules)} done.`);
      return;
    }
    await sleep(Math.min(MAX_WAIT, Math.max(0, next - Date.now())), signal);
  }
}

function describe(schedules: readonly Schedule[]): string {
  const names = schedules.map((s) => s.name);
  const shown = names.length > 5 ? [...names.slice(0, 5), `${names.length - 5} more`] : names;
  return `${schedules.length} schedule(s): ${shown.join(", ")}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
