/**
 * Periodic jobs: `schedule()` declares an actor (or a built message) sent at every tick of a
 * cron expression in an IANA time zone; `Cron` computes ticks (daylight-saving rules on `Cron`);
 * `dueTicks` is the missed-tick policy and `tickKey` the per-tick dedup key a broker uses to
 * enqueue each tick once across processes; `runSchedules` runs them (as `dramatis worker` does).
 *
 * @example
 * ```ts
 * import { actor } from "../actor.ts";
 * import { StubBroker } from "../broker/stub.ts";
 * import { Cron, getSchedules, schedule } from "./mod.ts";
 *
 * const broker = new StubBroker();
 * const ping = actor(function ping() {}, { broker });
 * schedule("ping", "*\/10 * * * * *", ping); // every 10 seconds
 * console.log(getSchedules(broker).length); // 1
 * console.log(new Cron("@hourly").next(Date.UTC(2025, 0, 1, 10, 30)) === Date.UTC(2025, 0, 1, 11)); // true
 * ```
 * @module
 */
export { Cron } from "./cron.ts";
export type { CronOptions } from "./cron.ts";
export { getSchedule, getSchedules, removeSchedule, schedule } from "./schedule.ts";
export type { Schedule, ScheduleOptions } from "./schedule.ts";
export { dueTicks, tickKey, tickMessageId } from "./ticks.ts";
export type { DueOptions, DueTicks, MissedPolicy } from "./ticks.ts";
export { runSchedules } from "./run.ts";
export type { RunSchedulesOptions } from "./run.ts";
