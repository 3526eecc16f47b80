// Time zone offsets from `Intl.DateTimeFormat` alone (no time zone database of our own).
//
// A zone's UTC offset is piecewise constant. For each UTC year that a computation touches, the
// offset is sampled every 3 days (123 `Intl` calls, about 0.25 ms) and every change found is
// bisected to the second (about 17 calls each): the year's transitions. After that, the offset in
// force at an instant is a lookup, so a per-second schedule costs no `Intl` call per tick.
// Sampling every 3 days finds every transition as long as no two are closer than 3 days: in the
// time zone data of Deno 2.9.6 and Bun 1.4.5 (418 and 445 zones, 1900-2100) the closest two are
// 7 days apart (America/Boa_Vista and Recife in 2000, Asia/Gaza's future Ramadan rules).

const DAY = 86_400_000;
/** How far apart the offset is sampled (see above). */
const SAMPLE = 3 * DAY;
/** Years a computation may reach: those `Intl` formats without an era. */
export const MIN_YEAR = 1;
export const MAX_YEAR = 9999;

/** A change of offset: from `at` (ms, UTC) on, the offset is `after` instead of `before`. */
export interface Transition {
  readonly at: number;
  readonly before: number;
  readonly after: number;
}

/**
 * A stretch of constant offset `off` from `start` (a transition, or the start of a year when none
 * is near) to `end` (exclusive). `prevOff` is the offset before `start` (equal to `off` at the
 * start of a year).
 */
export interface Segment {
  readonly start: number;
  readonly end: number;
  readonly off: number;
  readonly prevOff: number;
}

interface Year {
  readonly start: number;
  readonly end: number;
  readonly startOff: number;
  readonly transitions: readonly Transition[];
}

/** A time zone: offsets and transitions, cached per UTC year. Get one with `getZone`. */
export class Zone {
  /** The zone's canonical name (`Europe/Berlin`, `UTC`, `+05:30`). */
  readonly name: string;
  readonly #format: Intl.DateTimeFormat | undefined;
  readonly #years = new Map<number, Year>();
  #last: Segment | undefined;

  constructor(name: string, format: Intl.DateTimeFormat | undefined) {
    this.name = name;
    this.#format = format;
  }

  /** The offset (ms) at instant `t` (whole seconds), straight from `Intl`. */
  rawOffset(t: number): number {
    if (!this.#format) return 0;
    const s = Math.floor(t / 1000) * 1000;
    // en-US: month/day/year, hour:minute:second
    const p = this.#format.format(s).match(DIGITS)!;
    return daysFromCivil(+p[2]!, +p[0]!, +p[1]!) * DAY +
      ((+p[3]! * 60 + +p[4]!) * 60 + +p[5]!) * 1000 -
      s;
  }

  /** The offset (ms) in force at instant `t`. */
  offset(t: number): number {
    const y = this.#year(yearOf(t));
    let off = y.startOff;
    for (const tr of y.transitions) {
      if (tr.at > t) break;
      off = tr.after;
    }
    return off;
  }

  /** The segment of constant offset that holds instant `t`. */
  segment(t: number): Segment {
    const last = this.#last;
    if (last && t >= last.start && t < last.end) return last;
    const year = yearOf(t);
    const y = this.#year(year);
    let i = -1;
    while (i + 1 < y.transitions.length && y.transitions[i + 1]!.at <= t) i++;
    const end = i + 1 < y.transitions.length ? y.transitions[i + 1]!.at : y.end;
    let seg: Segment;
    if (i >= 0) {
      const tr = y.transitions[i]!;
      seg = { start: tr.at, end, off: tr.after, prevOff: tr.before };
    } else {
      // When the gap or overlap of the previous year's last transition reaches into this year,
      // the segment starts at that transition.
      const prior = year > MIN_YEAR ? this.#year(year - 1).transitions.at(-1) : undefined;
      seg = prior && prior.at + Math.abs(prior.after - prior.before) > y.start
        ? { start: prior.at, end, off: prior.after, prevOff: prior.before }
        : { start: y.start, end, off: y.startOff, prevOff: y.startOff };
    }
    this.#last = seg;
    return seg;
  }

  #year(year: number): Year {
    let y = this.#years.get(year);
    if (y) return y;
    if (this.#years.size >= 256) this.#years.clear();
    const start = daysFromCivil(year, 1, 1) * DAY;
    const end = daysFromCivil(year + 1, 1, 1) * DAY;
    const transitions: Transition[] = [];
    const startOff = this.rawOffset(start);
    if (this.#format) {
      // A transition exactly at the year's first second belongs to this year.
      if (year > MIN_YEAR) {
        const before = this.rawOffset(start - 1000);
        if (before !== startOff) transitions.push({ at: start, before, after: startOff });
      }
      let prevT = start, prevOff = startOff;
      for (let t = start + SAMPLE; prevT < end; t = Math.min(t + SAMPLE, end)) {
        const off = this.rawOffset(t);
        if (off !== prevOff) {
          const at = this.#bisect(prevT, t, prevOff);
          if (at < end) transitions.push({ at, before: prevOff, after: off });
        }
        prevT = t;
        prevOff = off;
      }
    }
    y = { start, end, startOff, transitions };
    this.#years.set(year, y);
    return y;
  }

  /** The first second in (lo, hi] whose offset is not `offLo` (the offset at lo). */
  #bisect(lo: number, hi: number, offLo: number): number {
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (this.rawOffset(mid) === offLo) lo = mid;
      else hi = mid;
    }
    return hi;
  }
}

const DIGITS = /\d+/g;
/** The `Intl.DateTimeFormat` options (en-US) whose output `rawOffset` parses. */
export const FORMAT: Intl.DateTimeFormatOptions = {
  hourCycle: "h23",
  year: "numeric",
  month: "numeric",
  day: "numeric",
  hour: "numeric",
  minute: "numeric",
  second: "numeric",
};
const zones = new Map<string, Zone>();

/**
 * The zone named `name` (an IANA name such as `Europe/Berlin`, `UTC`, or an offset such as
 * `+05:30`). Throws a TypeError, starting with `prefix`, for a zone `Intl` does not know.
 */
export function getZone(name: string, prefix = ""): Zone {
  const cached = zones.get(name);
  if (cached) return cached;
  if (typeof name !== "string" || name === "") {
    throw new TypeError(
      `${prefix}timezone must be an IANA time zone name such as "Europe/Berlin" or "UTC", got ${
        typeof name === "string" ? '""' : typeof name
      }`,
    );
  }
  let format: Intl.DateTimeFormat;
  try {
    format = new Intl.DateTimeFormat("en-US", { ...FORMAT, timeZone: name });
  } catch {
    throw new TypeError(
      `${prefix}unknown time zone ${JSON.stringify(name)}; use an IANA name such as ` +
        `"Europe/Berlin", "America/New_York" or "UTC"`,
    );
  }
  const canonical = format.resolvedOptions().timeZone;
  let zone = zones.get(canonical);
  if (!zone) {
    const utc = canonical === "UTC" || canonical === "Etc/UTC" || canonical === "Etc/GMT" ||
      canonical === "GMT";
    zone = new Zone(canonical, utc ? undefined : format);
    zones.set(canonical, zone);
  }
  zones.set(name, zone);
  return zone;
}

/** The proleptic Gregorian year of the UTC day holding instant `t`. */
export function yearOf(t: number): number {
  return civil(Math.floor(t / DAY))[0];
}

/** Days since 1970-01-01 of a Gregorian date (month 1-12). Howard Hinnant's algorithm. */
export function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The Gregorian `[year, month (1-12), day]` of a day number since 1970-01-01. */
export function civil(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) -
      Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** Days in month `m` (1-12) of year `y`. */
export function daysInMonth(y: number, m: number): number {
  if (m !== 2) return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
}
