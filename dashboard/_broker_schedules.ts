// The schedules page of a broker's dashboard source (broker_source.ts): the declared schedules
// with their last tick and pause from the broker, and the actions run now, pause and resume.
import type { Broker } from "../broker/broker.ts";
import type { SchedulePause } from "../broker/ops.ts";
import type { Schedule } from "../schedule/schedule.ts";
import { tickMessageId } from "../schedule/ticks.ts";
import { pausesOf } from "../schedule/_enqueue_due.ts";
import {
  type ActionResult,
  DashboardUnsupported,
  type ScheduleAction,
  type ScheduleInfo,
} from "./source.ts";

/** The schedules `list` with their last tick and pause state as `broker` stores them. */
export async function scheduleInfos(
  broker: Broker,
  list: readonly Schedule[],
): Promise<ScheduleInfo[]> {
  const [ticks, pauses] = broker.capabilities.schedules
    ? await Promise.all([broker.lastTicks(), pausesOf(broker)])
    : [new Map<string, number>(), new Map<string, SchedulePause>()];
  return list.map((s) => {
    const last = ticks.get(s.name) ?? null;
    const paused = pauses.get(s.name)?.paused ?? false;
    const info: ScheduleInfo = {
      name: s.name,
      actor: s.actorName,
      queue: s.queueName,
      spec: s.cron.expression,
      nextAt: paused ? null : s.cron.next(),
      lastAt: last,
      paused,
    };
    if (s.cron.timezone !== "UTC") info.timezone = s.cron.timezone;
    if (last !== null) info.lastMessageId = tickMessageId(s.name, last);
    return info;
  });
}

/**
 * Runs schedule `name` now, or pauses or resumes it (done 1, or skipped 1 when it already was).
 * A paused schedule runs now all the same: its message is enqueued, its ticks stay paused.
 */
export async function actOnSchedule(
  broker: Broker,
  list: readonly Schedule[],
  name: string,
  action: ScheduleAction,
  sourceName: string,
): Promise<ActionResult> {
  const s = list.find((x) => x.name === name);
  if (!s) throw new TypeError(`No schedule named ${JSON.stringify(name)} is declared.`);
  const can = broker.capabilities.schedules;
  if (action !== "run-now") {
    if (!can) {
      throw new DashboardUnsupported(
        `${sourceName} cannot pause a schedule (it has no pauseSchedule()): use the file or ` +
          "Redis broker.",
      );
    }
    const was = (await broker.schedulePauses()).get(name)?.paused ?? false;
    if (action === "pause") await broker.pauseSchedule(name);
    else await broker.resumeSchedule(name);
    const changed = was !== (action === "pause");
    return { done: changed ? 1 : 0, skipped: changed ? 0 : 1 };
  }
  const tick = Date.now();
  if (can && !(await pausesOf(broker)).get(name)?.paused) {
    const sent = await broker.enqueueTick(name, tick, s.message(tick));
    return { done: sent ? 1 : 0, skipped: sent ? 0 : 1 };
  }
  await broker.enqueue(s.message(tick));
  return { done: 1, skipped: 0 };
}
