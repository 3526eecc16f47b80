/**
 * `Cron`: a cron expression bound to a time zone, with its next and previous ticks.
 *
 * Syntax: 5 fields `minute hour day-of-month month day-of-week`, or 6 with a leading `second`.
 * Each field takes `*`, numbers, ranges (`1-5`), lists (`1,15,30`), steps (`*\/5`, `1-10/2`, and
 * `5/15` for 5 to the field's end by 15); month takes `JAN`-`DEC`, day-of-week `SUN`-`SAT` (any
 * case; 0 and 7 are Sunday; `FRI-SUN` works). Day-of-month also takes `L` (the last day of the
 * month), day-of-week `5L` (the month's last Friday) and `5#2` (its second Friday), and both take
 * `?` as `*`. Shortcuts: `@yearly` (= `@annually`, `0 0 1 1 *`), `@monthly`, `@weekly` (Sunday),
 * `@daily` (= `@midnight`), `@hourly`, and `@every <duration>` (`10s`, `5m`, `1h30m`, `1d`).
 *
 * Days: as in Vixie cron, when both day-of-month and day-of-week are restricted, a day matches
 * when EITHER matches (`0 0 1 * MON` is the 1st and every Monday); when either field starts with
 * `*` (as in `*\/2`) or is `?`, both must match.
 *
 * `@every d` ticks at every multiple of d since the Unix epoch (1970-01-01T00:00:00Z), in elapsed
 * time: `@every 15m` fires at :00, :15, :30 and :45 UTC, whenever the process started, so every
 * process computes the same ticks; the time zone does not affect it.
 *
 * Ticks are whole seconds, in milliseconds since the epoch. The default zone is UTC, not the
 * machine's: every process sharing a schedule must compute the same ticks.
 *
 * Daylight-saving changes (the wall times are local to the schedule's zone):
 * - Clocks forward (a gap, 02:00-03:00 on the spring day in Europe/Berlin): a wall time that
 *   does not exist fires once, at the instant it would have had without the change, that is
 *   shifted forward by the change: `30 2 * * *` fires at 03:30 (still 24 hours after the day
 *   before), `0,30 2 * * *` at 03:00 and 03:30, `15 2 * * *` on Lord Howe Island (a 30-minute
 *   change at 02:00) at 02:45. When that instant is a tick of the schedule anyway, it fires
 *   once. So `* * * * *`, `*\/15 * * * *` and `30 * * * *` simply go on by elapsed time:
 *   01:59 then 03:00, neither doubled nor skipped. (This is how `Date`, Temporal's
 *   "compatible" and Python's zoneinfo read such a time. Vixie cron runs gap jobs at 03:00, but
 *   that puts 02:00 and 02:30 on the same instant, and a per-tick dedup key would then fire
 *   one of them, silently dropping the other.)
 * - Clocks back (an overlap, 01:00-02:00 happens twice on the autumn day in America/New_York):
 *   a schedule whose hour field is every hour (`*`, as in `* * * * * *`, `*\/5 * * * *`,
 *   `30 * * * *`) fires at every matching instant, in both passes: it runs by elapsed time,
 *   neither doubled nor skipped. Any other schedule (`30 1 * * *`, `* 1 * * *`) fires a wall
 *   time that happens twice only once, the first time.
 *
 * @example
 * ```ts
 * import { Cron } from "./cron.ts";
 * const cron = new Cron("30 2 * * *", { timezone: "Europe/Berlin" });
 * const tick = cron.next(Date.UTC(2024, 2, 30, 12)); // the day before the spring change
 * console.log(new Date(tick!).toISOString()); // 2024-03-31T01:30:00.000Z, 03:30 in Berlin
 * ```
 * @module
 */
import { type CronSpec, parseCron } from "./_parse.ts";
import { getZone, type Zone } from "./_zone.ts";
import { nextTick, previousTick } from "./_next.ts";

/**
 * Options of `new Cron()`.
 *
 * @example
 * ```ts
 * import type { CronOptions } from "./cron.ts";
 * const o: CronOptions = { timezone: "America/New_York" };
 * ```
 */
export interface CronOptions {
  /** IANA time zone the fields are read in. Default `"UTC"`. */
  timezone?: string | undefined;
  /** A schedule name for error messages (`schedule "report": cron field ...`). */
  name?: string;
}

/**
 * A parsed cron expression in a time zone. The constructor throws a TypeError naming the field,
 * the value and what is allowed, or the unknown time zone.
 *
 * @example
 * ```ts
 * import { Cron } from "./cron.ts";
 * const cron = new Cron("0 9 * * MON-FRI", { timezone: "Europe/Paris" });
 * const next = cron.next(); // ms since the epoch, after now
 * try {
 *   new Cron("0 25 * * *", { name: "report" });
 * } catch (e) {
 *   // schedule "report": cron field "hour" value "25" is out of range 0-23 (in "0 25 * * *")
 *   console.log((e as TypeError).message);
 * }
 * ```
 */
export class Cron {
  /** The expression as written (trimmed). */
  readonly expression: string;
  /** The canonical name of the time zone (`Europe/Berlin`, `UTC`). */
  readonly timezone: string;
  readonly #spec: CronSpec;
  readonly #zone: Zone;

  /** Parses `expression`; throws a TypeError for a bad expression or an unknown zone. */
  constructor(expression: string, options: CronOptions = {}) {
    const prefix = options.name === undefined ? "" : `schedule ${JSON.stringify(options.name)}: `;
    this.#spec = parseCron(expression, prefix);
    this.#zone = getZone(options.timezone ?? "UTC", prefix);
    this.expression = this.#spec.source;
    this.timezone = this.#zone.name;
  }

  /**
   * The first tick strictly after `after` (default now), in ms since the epoch; null when there
   * is none before the year 10000.
   *
   * @example
   * ```ts
   * import { Cron } from "./cron.ts";
   * const every5 = new Cron("*\/5 * * * *");
   * console.log(every5.next(Date.UTC(2025, 0, 1, 10, 7)) === Date.UTC(2025, 0, 1, 10, 10)); // true
   * ```
   */
  next(after: number | Date = Date.now()): number | null {
    return nextTick(this.#spec, this.#zone, toMs(after, "after"));
  }

  /**
   * The last tick strictly before `before` (default now), in ms since the epoch; null when there
   * is none after the year 1.
   *
   * @example
   * ```ts
   * import { Cron } from "./cron.ts";
   * const daily = new Cron("@daily", { timezone: "Asia/Kolkata" });
   * const last = daily.previous(Date.UTC(2025, 0, 1, 12));
   * console.log(new Date(last!).toISOString()); // 2024-12-31T18:30:00.000Z (midnight in India)
   * ```
   */
  previous(before: number | Date = Date.now()): number | null {
    return previousTick(this.#spec, this.#zone, toMs(before, "before"));
  }

  /** The expression, and the zone when it is not UTC: `0 9 * * MON-FRI (Europe/Paris)`. */
  toString(): string {
    return this.timezone === "UTC" ? this.expression : `${this.expression} (${this.timezone})`;
  }
}

function toMs(t: number | Date, what: string): number {
  const ms = typeof t === "number" ? t : t instanceof Date ? t.getTime() : NaN;
  if (!Number.isFinite(ms)) {
    throw new TypeError(`Cron: \`${what}\` must be a Date or ms since the epoch, got ${t}`);
  }
  return ms;
}
