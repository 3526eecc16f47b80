// Next and previous tick of a parsed cron expression in a time zone.
//
// Wall-clock search steps by field (month, then day, hour, minute, second) with lookup tables,
// never second by second. The zone is a sequence of segments of constant offset (`_zone.ts`);
// within one, wall time is the instant plus the offset, so a wall-clock match converts straight
// to an instant. At a transition the DST rules apply (documented on `Cron` in cron.ts):
// - gap (clocks forward by d): a wall time that does not exist fires at the instant it would
//   have had under the offset before the change, that is shifted forward by d (02:30 -> 03:30),
//   once (merged with the schedule's own tick at that instant, if any);
// - overlap (clocks back by d): a schedule whose hour field is every hour fires at every
//   matching instant, both passes; any other fires a repeated wall time only the first time.
import type { CronSpec } from "./_parse.ts";
import { civil, daysFromCivil, daysInMonth, MAX_YEAR, MIN_YEAR, type Zone } from "./_zone.ts";

const DAY_S = 86_400;

/** The first tick strictly after `after` (ms), or null when there is none before year 10000. */
export function nextTick(spec: CronSpec, zone: Zone, after: number): number | null {
  if (spec.every) {
    const t = (Math.floor(after / spec.every) + 1) * spec.every;
    return t <= MAX_MS ? t : null;
  }
  let t = Math.max(Math.floor(after / 1000) * 1000 + 1000, MIN_MS);
  while (t <= MAX_MS) {
    const seg = zone.segment(t);
    let best = Infinity;
    let from = t;
    if (!spec.everyHour && seg.prevOff > seg.off) {
      from = Math.max(from, seg.start + (seg.prevOff - seg.off)); // skip the second pass
    }
    if (from < seg.end) {
      const w = nextWall(spec, from + seg.off, seg.end + seg.off);
      if (w === w) best = w - seg.off;
    }
    if (seg.prevOff < seg.off) {
      const gapEnd = Math.min(seg.start + (seg.off - seg.prevOff), seg.end);
      if (t < gapEnd) {
        const w = nextWall(spec, t + seg.prevOff, gapEnd + seg.prevOff);
        if (w === w) best = Math.min(best, w - seg.prevOff);
      }
    }
    if (best !== Infinity) return best;
    t = seg.end;
  }
  return null;
}

/** The last tick strictly before `before` (ms), or null when there is none after year 1. */
export function previousTick(spec: CronSpec, zone: Zone, before: number): number | null {
  if (spec.every) {
    const t = (Math.ceil(before / spec.every) - 1) * spec.every;
    return t >= MIN_MS ? t : null;
  }
  let t = Math.min(Math.ceil(before / 1000) * 1000 - 1000, MAX_MS);
  while (t >= MIN_MS) {
    const seg = zone.segment(t);
    let best = -Infinity;
    let lo = seg.start;
    if (!spec.everyHour && seg.prevOff > seg.off) lo = seg.start + (seg.prevOff - seg.off);
    if (t >= lo) {
      const w = prevWall(spec, t + seg.off, lo + seg.off);
      if (w === w) best = w - seg.off;
    }
    if (seg.prevOff < seg.off) {
      const hi = Math.min(t, seg.start + (seg.off - seg.prevOff) - 1000, seg.end - 1000);
      if (hi >= seg.start) {
        const w = prevWall(spec, hi + seg.prevOff, seg.start + seg.prevOff);
        if (w === w) best = Math.max(best, w - seg.prevOff);
      }
    }
    if (best !== -Infinity) return best;
    t = seg.start - 1000;
  }
  return null;
}

/** Whether the wall time `wall` (ms, read as UTC fields) matches the expression. */
export function matchesWall(spec: CronSpec, wall: number): boolean {
  const [days, y, m, d, h, mi, s] = split(Math.floor(wall / 1000));
  return spec.month.mask[m] === 1 && dayMatches(spec, y, m, d, days) && spec.hour.mask[h] === 1 &&
    spec.minute.mask[mi] === 1 && spec.second.mask[s] === 1;
}

/** A wall time in seconds as [day number, year, month, day, hour, minute, second]. */
function split(seconds: number): [number, number, number, number, number, number, number] {
  const days = Math.floor(seconds / DAY_S);
  const sod = seconds - days * DAY_S;
  const [y, m, d] = civil(days);
  return [days, y, m, d, Math.floor(sod / 3600), Math.floor(sod / 60) % 60, sod % 60];
}

const MIN_MS = daysFromCivil(MIN_YEAR, 1, 2) * DAY_S * 1000;
const MAX_MS = daysFromCivil(MAX_YEAR, 12, 31) * DAY_S * 1000;

function dayMatches(spec: CronSpec, y: number, m: number, d: number, days: number): boolean {
  const dim = daysInMonth(y, m);
  const wd = ((days + 4) % 7 + 7) % 7; // 1970-01-01 was a Thursday
  const dom = spec.dom[d] === 1 || (spec.domLast && d === dim);
  const dow = spec.dow[wd] === 1 || (spec.dowLast[wd] === 1 && d + 7 > dim) ||
    (spec.dowNth[wd]! & (1 << Math.ceil(d / 7))) !== 0;
  // Vixie cron: when either field starts with `*`, both must match; else either may.
  return spec.domStar || spec.dowStar ? dom && dow : dom || dow;
}

/** The smallest matching wall time in [from, limit) (ms, whole seconds), or NaN. */
function nextWall(spec: CronSpec, from: number, limit: number): number {
  const limitDay = Math.floor((limit - 1) / 1000 / DAY_S);
  let [days, y, m, d, h, mi, s] = split(Math.ceil(from / 1000));
  const { month, hour, minute, second } = spec;
  for (;;) {
    if (month.mask[m] !== 1) {
      const nm = month.next[m]!;
      if (nm < 0) {
        y++;
        m = month.first;
      } else m = nm;
      d = 1;
      h = mi = s = 0;
      if (daysFromCivil(y, m, 1) > limitDay) return NaN;
      continue;
    }
    if (d > daysInMonth(y, m)) {
      if (++m > 12) {
        m = 1;
        y++;
      }
      d = 1;
      h = mi = s = 0;
      continue;
    }
    days = daysFromCivil(y, m, d);
    if (days > limitDay) return NaN;
    if (!dayMatches(spec, y, m, d, days)) {
      d++;
      h = mi = s = 0;
      continue;
    }
    const nh = hour.next[h]!;
    if (nh < 0) {
      d++;
      h = mi = s = 0;
      continue;
    }
    if (nh !== h) {
      h = nh;
      mi = s = 0;
    }
    const nmi = minute.next[mi]!;
    if (nmi < 0) {
      h++;
      mi = s = 0;
      continue;
    }
    if (nmi !== mi) {
      mi = nmi;
      s = 0;
    }
    const ns = second.next[s]!;
    if (ns < 0) {
      mi++;
      s = 0;
      continue;
    }
    const w = ((days * 24 + h) * 60 + mi) * 60_000 + ns * 1000;
    return w < limit ? w : NaN;
  }
}

/** The largest matching wall time in [limit, from] (ms, whole seconds), or NaN. */
function prevWall(spec: CronSpec, from: number, limit: number): number {
  const limitDay = Math.floor(Math.ceil(limit / 1000) / DAY_S);
  let [days, y, m, d, h, mi, s] = split(Math.floor(from / 1000));
  const { month, hour, minute, second } = spec;
  for (;;) {
    if (month.mask[m] !== 1) {
      const pm = month.prev[m]!;
      if (pm < 0) {
        y--;
        m = month.last;
      } else m = pm;
      d = daysInMonth(y, m);
      h = 23;
      mi = s = 59;
      if (daysFromCivil(y, m, d) < limitDay) return NaN;
      continue;
    }
    if (d < 1) {
      if (--m < 1) {
        m = 12;
        y--;
      }
      d = daysInMonth(y, m);
      h = 23;
      mi = s = 59;
      continue;
    }
    days = daysFromCivil(y, m, d);
    if (days < limitDay) return NaN;
    if (!dayMatches(spec, y, m, d, days)) {
      d--;
      h = 23;
      mi = s = 59;
      continue;
    }
    const ph = h < 0 ? -1 : hour.prev[h]!;
    if (ph < 0) {
      d--;
      h = 23;
      mi = s = 59;
      continue;
    }
    if (ph !== h) {
      h = ph;
      mi = s = 59;
    }
    const pmi = mi < 0 ? -1 : minute.prev[mi]!;
    if (pmi < 0) {
      h--;
      mi = s = 59;
      continue;
    }
    if (pmi !== mi) {
      mi = pmi;
      s = 59;
    }
    const ps = s < 0 ? -1 : second.prev[s]!;
    if (ps < 0) {
      mi--;
      s = 59;
      continue;
    }
    const w = ((days * 24 + h) * 60 + mi) * 60_000 + ps * 1000;
    return w >= limit ? w : NaN;
  }
}
