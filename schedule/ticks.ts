/**
 * Which ticks of a schedule to enqueue now (`dueTicks`, the missed-tick policy as a pure
 * function), and the deterministic key and message id of a tick (`tickKey`, `tickMessageId`).
 *
 * Exactly once across processes comes from the broker: it stores each schedule's last tick and
 * enqueues a tick only if, in the same atomic step, the tick is greater than the stored one and
 * becomes it. `dueTicks` returns ticks in ascending order for that.
 *
 * @example
 * ```ts
 * import { Cron } from "./cron.ts";
 * import { dueTicks, tickKey } from "./ticks.ts";
 * const cron = new Cron("* * * * * *");
 * const now = Date.UTC(2025, 0, 1, 12, 0, 10, 5);
 * // The last tick handled was 12:00:04; this process has been running since 12:00:00.
 * const due = dueTicks(cron, { last: now - 6005, now, since: now - 10_005, missed: "skip" });
 * console.log(due.ticks.length); // 6: 12:00:05 to 12:00:10, late but not missed
 * console.log(tickKey("heartbeat", due.ticks[0])); // schedule:heartbeat:1735732805000
 * ```
 * @module
 */
import { md5Hex } from "../util/md5.ts";
import type { Cron } from "./cron.ts";

/**
 * What to do with ticks missed while no process ran the schedule: `"skip"` them, enqueue
 * `"once"` (one catch-up for all of them: the latest missed tick), or `"all"` of them (the most
 * recent `maxCatchUp` at most).
 *
 * @example
 * ```ts
 * import type { MissedPolicy } from "./ticks.ts";
 * const p: MissedPolicy = "once";
 * ```
 */
export type MissedPolicy = "skip" | "once" | "all";

/**
 * Options of `dueTicks`.
 *
 * @example
 * ```ts
 * import type { DueOptions } from "./ticks.ts";
 * const o: DueOptions = { last: 1735732800000, now: Date.now(), missed: "once" };
 * ```
 */
export interface DueOptions {
  /**
   * The schedule's last tick stored in the broker: every tick up to it was handled. None for a
   * schedule that never fired: it starts from `since` and does not back-fill.
   */
  last?: number | null;
  /** The current time, ms since the epoch. Default `Date.now()`. */
  now?: number;
  /**
   * When this process started running the schedule (ms). Ticks from then on are on time however
   * late the check comes (up to `grace`); earlier ones after `last` were missed. Default `now`.
   */
  since?: number;
  /** The missed-tick policy. Default `"skip"`. */
  missed?: MissedPolicy;
  /**
   * A tick older than this (ms) counts as missed even after `since` (a process that was
   * suspended, not just slow). Default 60_000.
   */
  grace?: number;
  /** With `missed: "all"`, at most this many missed ticks are enqueued (the latest). Default 100. */
  maxCatchUp?: number;
}

/**
 * What `dueTicks` found.
 *
 * @example
 * ```ts
 * import type { DueTicks } from "./ticks.ts";
 * const d: DueTicks = { ticks: [], last: undefined, catchUp: 0, firstMissed: undefined,
 *   latestMissed: undefined };
 * ```
 */
export interface DueTicks {
  /** The ticks to enqueue now, oldest first: the catch-ups, then the ticks on time. */
  ticks: number[];
  /**
   * The value to store as the schedule's last tick once `ticks` are enqueued (store it only if
   * greater than the stored one); `undefined` while the schedule has never had a tick.
   */
  last: number | undefined;
  /** How many of `ticks` (the first ones) are catch-ups for missed ticks. */
  catchUp: number;
  /** The first missed tick, for a log line; `undefined` when none was missed. */
  firstMissed: number | undefined;
  /** The latest missed tick; `undefined` when none was missed. */
  latestMissed: number | undefined;
}

/**
 * The missed-tick policy: which ticks of `source` (a `Cron`, or a `Schedule`, whose `missed` and
 * `maxCatchUp` then are the defaults) to enqueue now. A pure function: the scheduler calls it
 * with the last tick the broker stores, enqueues the ticks in order, each only if it is still
 * greater than the stored last tick, which the same atomic step raises to it (so racing processes
 * enqueue each tick once), then raises the stored last tick to the returned `last`.
 *
 * A tick is on time when it is after `last`, at or after `since` and no older than `grace`; such
 * ticks are always enqueued. Ticks after `last` and before that are missed: `"skip"` drops them,
 * `"once"` enqueues one catch-up, the latest missed tick (it covers the others as soon as it is
 * stored: another process, or this one restarted, never adds a second), `"all"` enqueues them, the
 * latest `maxCatchUp` at most (the older ones are dropped).
 *
 * @example
 * ```ts
 * import { Cron } from "./cron.ts";
 * import { dueTicks } from "./ticks.ts";
 * const cron = new Cron("* * * * * *");
 * const stoppedAt = Date.UTC(2025, 0, 1, 12, 0, 0);
 * const now = stoppedAt + 5_500; // every process was down for 5.5 s, one just started
 * const due = dueTicks(cron, { last: stoppedAt, now, missed: "once" });
 * console.log(due.ticks.map((t) => t - stoppedAt)); // [5000]: one catch-up, the latest
 * console.log(due.last === stoppedAt + 5000); // true: the ticks up to now are handled
 * ```
 */
export function dueTicks(
  source: Cron | { cron: Cron; missed: MissedPolicy; maxCatchUp: number },
  options: DueOptions = {},
): DueTicks {
  const cron = "cron" in source ? source.cron : source;
  const defaults = "cron" in source ? source : undefined;
  const now = options.now ?? Date.now();
  const missed = options.missed ?? defaults?.missed ?? "skip";
  const grace = options.grace ?? 60_000;
  const maxCatchUp = options.maxCatchUp ?? defaults?.maxCatchUp ?? 100;
  checkDueOptions(now, missed, grace, maxCatchUp, options);
  const since = Math.min(options.since ?? now, now);
  const onTime = Math.max(since, now - grace); // ticks at or after this are on time
  const last = options.last ?? undefined;

  const ticks: number[] = [];
  let firstMissed: number | undefined, latestMissed: number | undefined;
  if (last !== undefined) {
    const first = cron.next(last);
    if (first !== null && first < onTime) {
      firstMissed = first;
      latestMissed = cron.previous(onTime)!;
      if (missed === "once") ticks.push(latestMissed);
      else if (missed === "all") {
        for (let t: number | null = latestMissed; t !== null && t > last;) {
          ticks.push(t);
          if (ticks.length === maxCatchUp) break;
          t = cron.previous(t);
        }
        ticks.reverse();
      }
    }
  }
  const catchUp = ticks.length;
  const start = last === undefined ? onTime - 1 : Math.max(last, onTime - 1);
  for (let t = cron.next(start); t !== null && t <= now; t = cron.next(t)) ticks.push(t);
  // Every tick after `last` up to now is handled: enqueued, or dropped by the policy.
  const newest = catchUp < ticks.length ? ticks[ticks.length - 1] : latestMissed;
  return {
    ticks,
    last: newest ?? last,
    catchUp,
    firstMissed,
    latestMissed,
  };
}

function checkDueOptions(
  now: number,
  missed: unknown,
  grace: number,
  maxCatchUp: number,
  o: DueOptions,
): void {
  const bad = (what: string) => new TypeError(`dueTicks: ${what}`);
  if (!Number.isFinite(now)) throw bad(`now must be ms since the epoch, got ${now}`);
  if (o.last != null && !Number.isFinite(o.last)) throw bad(`last must be a number, got ${o.last}`);
  if (o.since !== undefined && !Number.isFinite(o.since)) {
    throw bad(`since must be a number, got ${o.since}`);
  }
  if (missed !== "skip" && missed !== "once" && missed !== "all") {
    throw bad(`missed must be "skip", "once" or "all", got ${JSON.stringify(missed)}`);
  }
  if (!(grace >= 0)) throw bad(`grace must be a non-negative number of ms, got ${grace}`);
  if (!Number.isInteger(maxCatchUp) || maxCatchUp < 1) {
    throw bad(`maxCatchUp must be a positive integer, got ${maxCatchUp}`);
  }
}

/**
 * The dedup key of one tick of a schedule: `schedule:<name>:<tick in ms UTC>`. Deterministic, so
 * every process computes the same key for the same tick; a broker enqueues the tick only if it
 * sets the key first (an atomic set-if-absent, with a TTL).
 *
 * @example
 * ```ts
 * import { tickKey } from "./ticks.ts";
 * console.log(tickKey("report", Date.UTC(2025, 0, 1))); // schedule:report:1735689600000
 * ```
 */
export function tickKey(name: string, tick: number): string {
  return `schedule:${name}:${tick}`;
}

/**
 * A deterministic message id for one tick of a schedule: a name-based UUID (version 3, MD5) of
 * `tickKey(name, tick)`. Every process builds the tick's message with the same id, so a broker
 * that dedups by id, or a log, sees one message per tick.
 *
 * @example
 * ```ts
 * import { tickMessageId } from "./ticks.ts";
 * const id = tickMessageId("report", Date.UTC(2025, 0, 1));
 * console.log(id === tickMessageId("report", Date.UTC(2025, 0, 1))); // true
 * ```
 */
export function tickMessageId(name: string, tick: number): string {
  const h = md5Hex(tickKey(name, tick));
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-3${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${
    h.slice(20, 32)
  }`;
}
