// `dramatis schedules [MODULE...]`: the schedules MODULE(s) declare, with their next tick, the
// last tick the broker enqueued and whether they are paused (and the schedules the broker has
// ticks of that no module declares). `dramatis schedules pause|resume NAME [MODULE...]`.
import type { Broker } from "../broker/broker.ts";
import type { SchedulePause } from "../broker/ops.ts";
import type { Schedule } from "../schedule/schedule.ts";
import { EXIT } from "../worker/_exit.ts";
import { CliError, type Parsed, UsageError } from "./_args.ts";
import type { Context, Run } from "./_commands.ts";
import { withBroker } from "./_broker.ts";
import { need } from "./_capability.ts";
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
  /** Paused since this time (ms since the epoch); null when not paused. */
  paused: number | null;
}

export const run: Run = (parsed, context) => {
  const [first, name, ...modules] = parsed.positionals;
  if (first === "pause" || first === "resume") return toggle(first, name, modules, parsed, context);
  return list(parsed, context);
};

const list: Run = (parsed, context) =>
  withBroker(parsed.positionals, context, async (broker, where) => {
    const { getSchedules } = await import("../schedule/schedule.ts");
    const declared = getSchedules(broker);
    const can = broker.capabilities.schedules;
    const [ticks, pauses] = can
      ? await Promise.all([broker.lastTicks(), pausesOf(broker)])
      : [undefined, new Map<string, SchedulePause>()];
    const now = Date.now();
    const pausedAt = (name: string) => {
      const p = pauses.get(name);
      return p?.paused ? p.at : null;
    };
    const rows: Row[] = declared.map((s) =>
      row(s, now, ticks?.get(s.name) ?? null, pausedAt(s.name))
    );
    const known = new Set(declared.map((s) => s.name));
    for (const name of new Set([...ticks?.keys() ?? [], ...pauses.keys()])) {
      if (known.has(name)) continue;
      rows.push({
        name,
        cron: null,
        timezone: null,
        missed: null,
        actor: null,
        queue: null,
        next: null,
        last: ticks?.get(name) ?? null,
        paused: pausedAt(name),
      });
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
        r.paused !== null
          ? `paused ${time(r.paused)}`
          : r.cron === null
          ? "-"
          : r.next === null
          ? "none"
          : time(r.next),
        ticks === undefined ? "?" : r.last === null ? "never" : time(r.last),
      ]),
    ]));
    if (ticks === undefined) {
      console.log(`The ${where} does not store schedule ticks: it cannot run schedules.`);
    }
    return EXIT.OK;
  });

/**
 * `schedules pause NAME` / `schedules resume NAME`: NAME must be declared by MODULE(s) or known
 * to the broker (a tick, or a pause), else exit code 5 naming it.
 */
function toggle(
  action: "pause" | "resume",
  name: string | undefined,
  modules: string[],
  parsed: Parsed,
  context: Context,
): Promise<number> {
  if (!name) {
    throw new UsageError(
      `schedules ${action} needs a schedule name: dramatis schedules ${action} NAME [MODULE...]`,
      "schedules",
    );
  }
  return withBroker(modules, context, async (broker, where) => {
    need(broker, where, "schedules", `${action} schedules`);
    const { getSchedules } = await import("../schedule/schedule.ts");
    const [ticks, pauses] = await Promise.all([broker.lastTicks(), broker.schedulePauses()]);
    if (
      !getSchedules(broker).some((s) => s.name === name) && !ticks.has(name) && !pauses.has(name)
    ) {
      throw new CliError(
        `no schedule named ${JSON.stringify(name)}: no module given declares it and the ${where} ` +
          `has no tick of it; check the name with dramatis schedules MODULE...`,
        EXIT.NOT_FOUND,
      );
    }
    const was = pauses.get(name)?.paused ?? false;
    if (action === "pause") await broker.pauseSchedule(name);
    else await broker.resumeSchedule(name);
    const text = action === "pause"
      ? was
        ? `${name} was already paused on the ${where}.`
        : `Paused schedule ${name} on the ${where}: no process enqueues its ticks until ` +
          `dramatis schedules resume ${name}.`
      : was
      ? `Resumed schedule ${name} on the ${where}: its ticks from now on are enqueued.`
      : `${name} was not paused on the ${where}.`;
    if (parsed.flags.json) {
      console.log(JSON.stringify({ name, action, changed: was !== (action === "pause") }));
    } else console.log(text);
    return EXIT.OK;
  });
}

/** The broker's schedule pauses; none from a broker that cannot store them. */
async function pausesOf(broker: Broker): Promise<Map<string, SchedulePause>> {
  const { pausesOf } = await import("../schedule/_enqueue_due.ts");
  return pausesOf(broker);
}

function row(s: Schedule, now: number, last: number | null, paused: number | null): Row {
  return {
    name: s.name,
    cron: s.cron.expression,
    timezone: s.cron.timezone,
    missed: s.missed,
    actor: s.actorName,
    queue: s.queueName,
    next: paused === null ? s.cron.next(now) : null,
    last,
    paused,
  };
}

/** `2026-12-02 17:40:05Z`. */
function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}
