// Cron expression parsing: the text of a schedule into lookup tables that `_next.ts` steps
// through. Every mistake is a TypeError that names the field, the value and what is allowed.

/** One time field (second, minute, hour or month) as lookup tables. */
export interface TimeField {
  /** `mask[v]` is 1 when value `v` is allowed. */
  readonly mask: Uint8Array;
  /** `next[v]`: the smallest allowed value >= v, or -1 (sized max + 2, so `next[max + 1]` is -1). */
  readonly next: Int8Array;
  /** `prev[v]`: the largest allowed value <= v, or -1. */
  readonly prev: Int8Array;
  /** Smallest and largest allowed values. */
  readonly first: number;
  readonly last: number;
}

/** A parsed cron expression. */
export interface CronSpec {
  /** The expression as written (trimmed). */
  readonly source: string;
  /** For `@every <duration>`: the interval in ms (ticks at multiples of it since the epoch); else 0. */
  readonly every: number;
  readonly second: TimeField;
  readonly minute: TimeField;
  readonly hour: TimeField;
  readonly month: TimeField;
  /** Allowed days of the month, indexed 1-31. */
  readonly dom: Uint8Array;
  /** `L` in day-of-month: the last day of the month. */
  readonly domLast: boolean;
  /** Allowed days of the week, 0 (Sunday) to 6. */
  readonly dow: Uint8Array;
  /** `5L`: the last such weekday of the month, indexed 0-6. */
  readonly dowLast: Uint8Array;
  /** `5#3`: bit k set when the k-th such weekday of the month (k = 1..5) is allowed. */
  readonly dowNth: Uint8Array;
  /** The day-of-month field starts with `*` or is `?` (Vixie's DOM_STAR). */
  readonly domStar: boolean;
  /** The day-of-week field starts with `*` or is `?` (Vixie's DOW_STAR). */
  readonly dowStar: boolean;
  /** The hour field allows all 24 hours: the schedule runs by elapsed time in a DST overlap. */
  readonly everyHour: boolean;
}

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MAX_DAYS = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

interface FieldDef {
  name: string;
  min: number;
  max: number;
  /** Names accepted for the values min.. (case-insensitive). */
  names?: string[];
  hint: string;
}

const SECOND: FieldDef = { name: "second", min: 0, max: 59, hint: "0-59" };
const MINUTE: FieldDef = { name: "minute", min: 0, max: 59, hint: "0-59" };
const HOUR: FieldDef = { name: "hour", min: 0, max: 23, hint: "0-23" };
const DOM: FieldDef = { name: "day-of-month", min: 1, max: 31, hint: "1-31 or L" };
const MONTH: FieldDef = { name: "month", min: 1, max: 12, names: MONTHS, hint: "1-12 or JAN-DEC" };
const DOW: FieldDef = {
  name: "day-of-week",
  min: 0,
  max: 7,
  names: DAYS,
  hint: "0-7 (0 and 7 are Sunday) or SUN-SAT",
};

const NICKNAMES: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};
const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };

/**
 * Parses a cron expression. `prefix` starts every error message (`schedule "report": `).
 * Throws a TypeError naming the field, the value and what the field allows.
 */
export function parseCron(expression: string, prefix = ""): CronSpec {
  if (typeof expression !== "string") {
    throw new TypeError(`${prefix}the cron expression must be a string, got ${typeof expression}`);
  }
  const source = expression.trim();
  if (source === "") {
    throw new TypeError(
      `${prefix}the cron expression is empty; write 5 fields (minute hour day-of-month month ` +
        `day-of-week), 6 with seconds first, or a shortcut such as @daily`,
    );
  }
  if (source.startsWith("@")) return parseNickname(source, prefix);
  const parts = source.split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) {
    throw new TypeError(
      `${prefix}cron "${source}" has ${parts.length} field${parts.length === 1 ? "" : "s"}; ` +
        `write 5 (minute hour day-of-month month day-of-week) or 6 (second first)` +
        (parts.length === 7 ? "; a year field is not supported" : ""),
    );
  }
  return build(source, parts.length === 6 ? parts : ["0", ...parts], prefix, 0);
}

function parseNickname(source: string, prefix: string): CronSpec {
  const lower = source.toLowerCase();
  const expansion = NICKNAMES[lower];
  if (expansion) return build(source, ["0", ...expansion.split(" ")], prefix, 0);
  const every = /^@every\s+(\S+)$/i.exec(source);
  if (every) {
    const text = every[1]!.toLowerCase();
    let ms = 0;
    if (/^(\d+[dhms])+$/.test(text)) {
      for (const [, n, unit] of text.matchAll(/(\d+)([dhms])/g)) ms += Number(n) * UNIT_MS[unit!]!;
    }
    if (ms < 1000 || !Number.isSafeInteger(ms)) {
      throw new TypeError(
        `${prefix}cron "${source}": the duration "${every[1]}" is not valid; ` +
          `write a whole number of seconds or more, such as 10s, 5m, 1h30m or 1d`,
      );
    }
    return build(source, ["*", "*", "*", "*", "*", "*"], prefix, ms);
  }
  throw new TypeError(
    `${prefix}cron "${source}" is not a known shortcut; use @yearly, @annually, @monthly, ` +
      `@weekly, @daily, @midnight, @hourly or @every <duration> (such as @every 10s)` +
      (lower === "@reboot" ? "; @reboot is not a clock time: run startup code in your module" : ""),
  );
}

function build(source: string, f: string[], prefix: string, every: number): CronSpec {
  const ctx = (def: FieldDef, value: string) => ({ def, value, source, prefix });
  const second = timeField(f[0]!, SECOND, ctx);
  const minute = timeField(f[1]!, MINUTE, ctx);
  const hour = timeField(f[2]!, HOUR, ctx);
  const month = timeField(f[4]!, MONTH, ctx);

  const dom = new Uint8Array(32);
  let domLast = false;
  const domStar = isStar(f[3]!);
  if (f[3] === "?") dom.fill(1, 1);
  else {
    for (const item of items(f[3]!, DOM, ctx)) {
      if (item.toUpperCase() === "L") domLast = true;
      else setItem(dom, item, DOM, ctx);
    }
  }

  const dow = new Uint8Array(7);
  const dowLast = new Uint8Array(7);
  const dowNth = new Uint8Array(7);
  const dowStar = isStar(f[5]!);
  if (f[5] === "?") dow.fill(1);
  else {
    const mask = new Uint8Array(8);
    for (const item of items(f[5]!, DOW, ctx)) {
      const upper = item.toUpperCase();
      const nth = /^(\w+)#(\w*)$/.exec(upper);
      const last = /^(\w+)L$/.exec(upper);
      if (nth) {
        const day = single(nth[1]!, DOW, ctx(DOW, item)) % 7;
        const k = Number(nth[2]);
        if (!/^[1-5]$/.test(nth[2]!)) {
          throw fail(
            ctx(DOW, item),
            `has occurrence "${nth[2]}"; after # write 1-5 (FRI#2 is the second Friday)`,
          );
        }
        dowNth[day]! |= 1 << k;
      } else if (last && upper !== "L") {
        dowLast[single(last[1]!, DOW, ctx(DOW, item)) % 7] = 1;
      } else if (upper === "L") {
        throw fail(ctx(DOW, item), "needs a day: 5L or FRIL is the last Friday of the month");
      } else setItem(mask, item, DOW, ctx);
    }
    for (let d = 0; d < 7; d++) dow[d] = mask[d]!;
    if (mask[7]) dow[0] = 1;
  }

  checkDaysExist(dom, domLast, domStar, dowStar, month, source, prefix, f[3]!);
  return {
    source,
    every,
    second,
    minute,
    hour,
    month,
    dom,
    domLast,
    dow,
    dowLast,
    dowNth,
    domStar,
    dowStar,
    everyHour: hour.mask.every((v) => v === 1),
  };
}

interface Ctx {
  def: FieldDef;
  value: string;
  source: string;
  prefix: string;
}
type MakeCtx = (def: FieldDef, value: string) => Ctx;

function fail(c: Ctx, problem: string): TypeError {
  return new TypeError(
    `${c.prefix}cron field "${c.def.name}" value "${c.value}" ${problem} (in "${c.source}")`,
  );
}

function isStar(field: string): boolean {
  return field.startsWith("*") || field === "?";
}

function items(field: string, def: FieldDef, ctx: MakeCtx): string[] {
  const list = field.split(",");
  for (const item of list) {
    if (item === "") {
      throw fail(ctx(def, field), `has an empty list item; separate values with single commas`);
    }
  }
  return list;
}

function timeField(field: string, def: FieldDef, ctx: MakeCtx): TimeField {
  if (field === "?") {
    throw fail(ctx(def, field), `is only allowed in day-of-month and day-of-week; use *`);
  }
  const mask = new Uint8Array(def.max + 1);
  for (const item of items(field, def, ctx)) setItem(mask, item, def, ctx);
  const next = new Int8Array(def.max + 2).fill(-1);
  const prev = new Int8Array(def.max + 1).fill(-1);
  for (let v = def.max, n = -1; v >= 0; v--) {
    if (mask[v]) n = v;
    next[v] = n;
  }
  for (let v = 0, p = -1; v <= def.max; v++) {
    if (mask[v]) p = v;
    prev[v] = p;
  }
  return { mask, next, prev, first: next[0]!, last: prev[def.max]! };
}

/** Sets the values of one list item (`*`, `5`, `1-5`, `*\/15`, `1-10/2`, `5/10`, `MON-FRI`). */
function setItem(mask: Uint8Array, item: string, def: FieldDef, ctx: MakeCtx): void {
  const c = ctx(def, item);
  const slash = item.split("/");
  if (slash.length > 2) throw fail(c, `has more than one "/"; write a step once, as in */15`);
  const [base, stepText] = slash;
  const isDow = def === DOW;
  let lo: number, hi: number;
  if (base === "*") {
    lo = def.min;
    hi = isDow ? 6 : def.max;
  } else {
    const dash = base!.split("-");
    if (dash.length > 2) throw fail(c, `is not a range; write a range as 1-5`);
    lo = single(dash[0]!, def, c);
    if (dash.length === 2) {
      // In day-of-week, SUN ends a range as 7: FRI-SUN is 5-7.
      hi = isDow && dash[1]!.toUpperCase() === "SUN" ? 7 : single(dash[1]!, def, c);
      if (hi < lo) {
        throw fail(
          c,
          `is a range that ends before it starts; list two ranges instead (such as 22-23,0-2)`,
        );
      }
    } else {
      hi = stepText === undefined ? lo : (isDow ? 6 : def.max);
    }
  }
  let step = 1;
  if (stepText !== undefined) {
    const size = hi - lo + 1;
    if (!/^\d+$/.test(stepText) || Number(stepText) < 1 || Number(stepText) > Math.max(size, 1)) {
      throw fail(c, `has step "${stepText}"; the step must be a whole number from 1 to ${size}`);
    }
    step = Number(stepText);
  }
  for (let v = lo; v <= hi; v += step) mask[v] = 1;
}

/** One number or name of a field, checked against its range. */
function single(text: string, def: FieldDef, c: Ctx): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < def.min || n > def.max) throw fail(c, `is out of range ${def.min}-${def.max}`);
    return n;
  }
  const i = def.names?.indexOf(text.toUpperCase()) ?? -1;
  if (i >= 0) return i + (def === MONTH ? 1 : 0);
  throw fail(
    c,
    text === ""
      ? `is missing a number; the field allows ${def.hint}`
      : `is not a number${def.names ? " or a name" : ""}; the field allows ${def.hint}, ` +
        `ranges (1-5), lists (1,5) and steps (*/5)`,
  );
}

/** A day-of-month restriction alone that no allowed month has (`0 0 30 2 *`) never fires. */
function checkDaysExist(
  dom: Uint8Array,
  domLast: boolean,
  domStar: boolean,
  dowStar: boolean,
  month: TimeField,
  source: string,
  prefix: string,
  field: string,
): void {
  // With a day-of-week restriction too, days match when EITHER matches (or, with `*/n` in
  // day-of-month, when both do, and `*/n` always holds day 1): those always fire.
  if (domLast || domStar || !dowStar) return;
  let firstDay = 1;
  while (!dom[firstDay]) firstDay++;
  for (let m = 1; m <= 12; m++) if (month.mask[m] && MAX_DAYS[m]! >= firstDay) return;
  const names = [];
  for (let m = 1; m <= 12; m++) if (month.mask[m]) names.push(MONTHS[m - 1]!);
  throw new TypeError(
    `${prefix}cron field "day-of-month" value "${field}" never occurs in ${names.join(",")} ` +
      `(the longest has ${Math.max(...names.map((n) => MAX_DAYS[MONTHS.indexOf(n) + 1]!))} ` +
      `days), so the schedule would never fire; use L for the last day of the month (in "${source}")`,
  );
}
