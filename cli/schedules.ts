// `dramatis schedules [MODULE...]`: the schedules MODULE(s) declare, with their next tick and the
// last tick the broker enqueued (and the schedules the broker has ticks of that no module declares).
import type { Schedule } from "../schedule/schedule.ts";
import { EXIT } from "../worker/_exit.ts";
import type { Run } from "./_commands.ts";
import { withBroker } from "./_broker.ts";
import { table } from "./_table.ts";

/** One row of `dramatis schedules --json`. */
export interface Row {
  name: string;
  /** The cron expression; null for a schedule the broker knows that no module declares. */
  cron: string | null;
  timezone: string | null;
  missed: string | null;
  actor: string | null;
  queue: string | null;
  /** The next tick, ms since the epoch (null: none ahead, or not declared). */
  next: number | null;
  /** The last tick enqueued, ms since the epoch (null: never, or the broker cannot tell). */
  last: number | null;
}

export const run: Run = (parsed, context) =>
  withBroker(parsed.positionals, context, async (broker, where) => {
    const { getSchedules } = await import("../schedule/schedule.ts");
    const declared = getSchedules(broker);
    const ticks = broker.capabilities.schedules ? await broker.lastTicks() : undefined;
    const now = Date.now();
    const rows: Row[] = declared.map((s) => row(s, now, ticks?.get(s.name) ?? null));
    for (const [name, last] of ticks ?? []) {
      if (!declared.some((s) => s.name === name)) {
        rows.push({
          name,
          cron: null,
          timezone: null,
          missed: null,
          actor: null,
          queue: null,
          next: null,
          last,
        });
      }
    }
    if (parsed.flags.json) {
      console.log(JSON.stringify(rows));
      return EXIT.OK;
    }
    if (rows.length === 0) {
      console.log(
        `No schedules: the modules declare none, and the ${where} has no ticks. Name the ` +
          `modules that call schedule(): dramatis schedules tasks.ts`,
      );
      return EXIT.OK;
    }
    console.log(`Schedules (${where}; times in UTC):`);
    console.log(table([
      ["name", "cron", "timezone", "missed", "actor", "next", "last"],
      ...rows.map((r) => [
        r.name,
        r.cron ?? "(not declared)",
        r.timezone ?? "-",
        r.missed ?? "-",
        r.actor ?? "-",
        r.cron === null ? "-" : r.next === null ? "none" : time(r.next),
        ticks === undefined ? "?" : r.last === null ? "never" : time(r.last),
      ]),
    ]));
    if (ticks === undefined) {
      console.log(`The ${where} does not store schedule ticks: it cannot run schedules.`);
    }
    return EXIT.OK;
  });

function row(s: Schedule, now: number, last: number | null): Row {
  return {
    name: s.name,
    cron: s.cron.expression,
    timezone: s.cron.timezone,
    missed: s.missed,
    actor: s.actorName,
    queue: s.queueName,
    next: s.cron.next(now),
    last,
  };
}

/** `2026-12-02 17:40:05Z`. */
function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}
