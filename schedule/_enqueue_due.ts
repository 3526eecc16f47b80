// One round of the scheduler (schedule/run.ts): which ticks are due now, per schedule, enqueued
// through the broker's enqueueTick (once across processes), with a log line per stretch of missed
// ticks. Separate from the timer loop so that tests can play it at any clock time.
import type { Logger } from "../util/log.ts";
import type { Broker } from "../broker/broker.ts";
import type { SchedulePause } from "../broker/ops.ts";
import { Unsupported } from "../errors.ts";
import type { Schedule } from "./schedule.ts";
import { dueTicks } from "./ticks.ts";

/** Options of `enqueueDue`. */
export interface RoundOptions {
  /** The current time (ms). Default `Date.now()` after reading the last ticks. */
  now?: number;
  since: number;
  grace: number;
  logger: Logger;
  /** The latest missed tick already logged, per schedule (one line per stretch of downtime). */
  reported: Map<string, number>;
  /** The pause state last logged, per schedule (a line when it changes). */
  pauses?: Map<string, boolean>;
}

/** The broker's schedule pauses; none from a broker that cannot store them. */
export async function pausesOf(broker: Broker): Promise<Map<string, SchedulePause>> {
  try {
    return await broker.schedulePauses();
  } catch (e) {
    if (e instanceof Unsupported) return new Map();
    throw e;
  }
}

/**
 * One round of the scheduler: reads the last ticks once, then enqueues every due tick of every
 * schedule (`dueTicks`), oldest first per schedule, each through `broker.enqueueTick`; logs a
 * stretch of missed ticks once.
 */
export async function enqueueDue(
  broker: Broker,
  schedules: readonly Schedule[],
  o: RoundOptions,
): Promise<void> {
  const [lastTicks, pauses] = await Promise.all([broker.lastTicks(), pausesOf(broker)]);
  const now = o.now ?? Date.now();
  for (const s of schedules) {
    const pause = pauses.get(s.name);
    if (noticePause(s, pause, o)) continue;
    // After a resume, the ticks of the pause are missed (the policy decides), not on time.
    const since = pause ? Math.max(o.since, Math.min(pause.at, now)) : o.since;
    const due = dueTicks(s, { last: lastTicks.get(s.name) ?? null, now, since, grace: o.grace });
    let catchUps = 0; // enqueued by this process (another may have won the race)
    for (const [i, tick] of due.ticks.entries()) {
      if (await broker.enqueueTick(s.name, tick, s.message(tick)) && i < due.catchUp) catchUps++;
    }
    if (due.firstMissed === undefined || o.reported.get(s.name) === due.latestMissed) continue;
    o.reported.set(s.name, due.latestMissed!);
    const from = `${iso(due.firstMissed)} to ${iso(due.latestMissed!)}`;
    if (s.missed === "skip") {
      o.logger.info(`Schedule ${s.name}: skipped the ticks missed from ${from} (missed: "skip").`);
    } else if (catchUps > 0) {
      const capped = s.missed === "all" && due.catchUp === s.maxCatchUp &&
        due.ticks[0]! > due.firstMissed;
      const text = `Schedule ${s.name}: ticks were missed from ${from}; enqueued ${
        s.missed === "once" ? "one catch-up" : `${catchUps} catch-up(s)`
      } (missed: "${s.missed}")`;
      if (capped) {
        o.logger.warning(
          `${text}, the latest ${s.maxCatchUp} only: more were missed, the older ones are ` +
            `dropped (raise maxCatchUp to keep more).`,
        );
      } else o.logger.info(`${text}.`);
    }
  }
}

/** Logs a pause or a resume once; true while `s` is paused (its ticks are not enqueued). */
function noticePause(s: Schedule, pause: SchedulePause | undefined, o: RoundOptions): boolean {
  const paused = pause?.paused ?? false;
  const pauses = o.pauses ??= new Map();
  if ((pauses.get(s.name) ?? false) !== paused) {
    pauses.set(s.name, paused);
    o.logger.info(
      paused
        ? `Schedule ${s.name} is paused (since ${iso(pause!.at)}): its ticks are not enqueued ` +
          `until dramatis schedules resume ${s.name}.`
        : `Schedule ${s.name} was resumed at ${iso(pause!.at)}: its ticks are enqueued again ` +
          `(those of the pause count as missed: missed: "${s.missed}").`,
    );
  }
  return paused;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
