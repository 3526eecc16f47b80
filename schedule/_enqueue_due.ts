// One round of the scheduler (schedule/run.ts): which ticks are due now, per schedule, enqueued
// through the broker's enqueueTick (once across processes), with a log line per stretch of missed
// ticks. Separate from the timer loop so that tests can play it at any clock time.
import type { Logger } from "../util/log.ts";
import type { Broker } from "../broker/broker.ts";
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
  const lastTicks = await broker.lastTicks();
  const now = o.now ?? Date.now();
  for (const s of schedules) {
    const due = dueTicks(s, {
      last: lastTicks.get(s.name) ?? null,
      now,
      since: o.since,
      grace: o.grace,
    });
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

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
