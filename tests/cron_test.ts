import { test } from "node:test";
import assert from "node:assert/strict";
import { actor, Message, StubBroker } from "../mod.ts";
import {
  Cron,
  dueTicks,
  getSchedule,
  getSchedules,
  removeSchedule,
  schedule,
  tickKey,
  tickMessageId,
} from "../schedule/mod.ts";
import { parseCron } from "../schedule/_parse.ts";
import { matchesWall } from "../schedule/_next.ts";
import { getZone } from "../schedule/_zone.ts";

const MIN = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
const utc = (iso: string) => Date.parse(iso.endsWith("Z") ? iso : iso + "Z");
const iso = (t: number | null) => t === null ? "null" : new Date(t).toISOString();

/** The ticks of `cron` in (from, to], by `next()`. */
function ticks(cron: Cron, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = cron.next(from); t !== null && t <= to; t = cron.next(t)) out.push(t);
  return out;
}

/** The same ticks walked backwards with `previous()`, in ascending order. */
function ticksBack(cron: Cron, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = cron.previous(to + 1); t !== null && t > from; t = cron.previous(t)) out.push(t);
  return out.reverse();
}

/** Asserts the ticks of `expr` in `zone` in (from, to], walked both ways (wall times: UTC). */
function assertTicks(zone: string, expr: string, from: string, to: string, want: string[]) {
  const cron = new Cron(expr, { timezone: zone });
  const w = want.map((x) => iso(utc(x)));
  assert.deepEqual(ticks(cron, utc(from), utc(to)).map(iso), w, `${expr} in ${zone}`);
  assert.deepEqual(ticksBack(cron, utc(from), utc(to)).map(iso), w, `${expr} in ${zone}, back`);
}

// --- Parsing -----------------------------------------------------------------------------------

test("cron: fields, ranges, lists, steps and names expand as in Vixie cron", () => {
  const set = (mask: Uint8Array) => [...mask.keys()].filter((i) => mask[i] === 1);
  const s = parseCron("*/20 1-10/3 5,10,L 1/4 mon-FRI");
  assert.deepEqual(set(s.minute.mask), [0, 20, 40]);
  assert.deepEqual(set(s.second.mask), [0]); // 5 fields: at second 0
  assert.deepEqual(set(s.hour.mask), [1, 4, 7, 10]);
  assert.deepEqual(set(s.dom), [5, 10]);
  assert.equal(s.domLast, true);
  assert.deepEqual(set(s.month.mask), [1, 5, 9]); // 1/4: from 1 to the end by 4
  assert.deepEqual(set(s.dow), [1, 2, 3, 4, 5]);
  assert.equal(s.everyHour, false);

  const six = parseCron("15,45 * * * Jan,jul 7");
  assert.deepEqual(set(six.second.mask), [15, 45]);
  assert.deepEqual(set(six.month.mask), [1, 7]);
  assert.deepEqual(set(six.dow), [0]); // 7 is Sunday
  assert.equal(six.everyHour, true);

  assert.deepEqual(set(parseCron("0 0 * * FRI-SUN").dow), [0, 5, 6]); // SUN ends a range as 7
  assert.deepEqual(set(parseCron("0 0 * * 5-7").dow), [0, 5, 6]);
  assert.deepEqual(set(parseCron("0 0 * * */2").dow), [0, 2, 4, 6]);
  const q = parseCron("0 0 ? * 5L,MON#2");
  assert.equal(q.domStar, true);
  assert.equal(q.dowLast[5], 1);
  assert.equal(q.dowNth[1], 1 << 2);
  assert.equal(parseCron("0 0 */2 * 1").domStar, true); // starts with *: Vixie's DOM_STAR
  assert.equal(parseCron("0 0 1-31/2 * 1").domStar, false);
});

test("cron: shortcuts expand to their 5-field forms; @every is an interval", () => {
  const same = (a: string, b: string) => {
    const x = parseCron(a), y = parseCron(b);
    assert.deepEqual({ ...x, source: "" }, { ...y, source: "" }, `${a} = ${b}`);
  };
  same("@yearly", "0 0 1 1 *");
  same("@annually", "0 0 1 1 *");
  same("@MONTHLY", "0 0 1 * *");
  same("@weekly", "0 0 * * 0");
  same("@daily", "0 0 * * *");
  same("@midnight", "0 0 * * *");
  same("@hourly", "0 * * * *");
  assert.equal(parseCron("@every 10s").every, 10_000);
  assert.equal(parseCron("@every 1h30m").every, 90 * MIN);
  assert.equal(parseCron("@every 2d").every, 2 * DAY);
});

test("cron: every mistake is a TypeError naming the field, the value and what is allowed", () => {
  const cases: [string, RegExp][] = [
    ["0 25 * * *", /^cron field "hour" value "25" is out of range 0-23 \(in "0 25 \* \* \*"\)$/],
    ["60 * * * *", /field "minute" value "60" is out of range 0-59/],
    ["0 0 0 * *", /field "day-of-month" value "0" is out of range 1-31/],
    ["0 0 * 13 *", /field "month" value "13" is out of range 1-12/],
    ["0 0 * * 8", /field "day-of-week" value "8" is out of range 0-7/],
    ["61 * * * * *", /field "second" value "61" is out of range 0-59/],
    ["0 0 * FOO *", /field "month" value "FOO" is not a number or a name; .*1-12 or JAN-DEC/],
    ["0 0 * * MONDAY", /field "day-of-week" value "MONDAY" is not a number or a name/],
    ["x * * * *", /field "minute" value "x" is not a number; the field allows 0-59/],
    ["*/0 * * * *", /value "\*\/0" has step "0"; the step must be a whole number from 1 to 60/],
    ["*/61 * * * *", /has step "61"/],
    ["5-1 * * * *", /value "5-1" is a range that ends before it starts/],
    ["1-2-3 * * * *", /is not a range/],
    ["1/2/3 * * * *", /more than one "\/"/],
    ["1,,2 * * * *", /empty list item/],
    ["? * * * *", /field "minute" value "\?" is only allowed in day-of-month and day-of-week/],
    ["0 0 * * L", /field "day-of-week" value "L" needs a day: 5L or FRIL/],
    ["0 0 * * 5#6", /value "5#6" has occurrence "6"; after # write 1-5/],
    ["0 0 30 2 *", /field "day-of-month" value "30" never occurs in FEB .*29 days.*never fire/],
    ["0 0 31 4,6 *", /value "31" never occurs in APR,JUN/],
    ["* * * *", /has 4 fields; write 5 .* or 6/],
    ["0 0 * * * * 2025", /has 7 fields; .*a year field is not supported/],
    ["", /the cron expression is empty/],
    ["@reboot", /not a known shortcut; .*@reboot is not a clock time/],
    ["@fortnightly", /not a known shortcut; use @yearly/],
    ["@every 10x", /the duration "10x" is not valid/],
    ["@every 500ms", /the duration "500ms" is not valid/],
    ["@every 0s", /the duration "0s" is not valid/],
  ];
  for (const [expr, re] of cases) {
    assert.throws(
      () => new Cron(expr),
      (e: Error) => e instanceof TypeError && re.test(e.message),
      expr,
    );
  }
  assert.throws(
    () => new Cron("0 25 * * *", { name: "report" }),
    {
      name: "TypeError",
      message:
        'schedule "report": cron field "hour" value "25" is out of range 0-23 (in "0 25 * * *")',
    },
  );
  assert.throws(
    () => new Cron("0 0 * * *", { timezone: "Mars/Olympus_Mons", name: "r" }),
    {
      name: "TypeError",
      message: /^schedule "r": unknown time zone "Mars\/Olympus_Mons"; use an IANA name/,
    },
  );
  // The February 29th alone does fire (in leap years), and L always does.
  assert.equal(
    iso(new Cron("0 0 29 2 *").next(utc("2025-01-01T00:00"))),
    "2028-02-29T00:00:00.000Z",
  );
  assert.equal(
    iso(new Cron("0 0 L 2 *").next(utc("2025-01-01T00:00"))),
    "2025-02-28T00:00:00.000Z",
  );
});

// --- Ticks without daylight-saving time ---------------------------------------------------------

test("cron: next and previous in UTC, with the Vixie day-of-month OR day-of-week rule", () => {
  const at = (expr: string, from: string) => iso(new Cron(expr).next(utc(from)));
  assert.equal(at("*/5 * * * *", "2025-01-01T10:07"), "2025-01-01T10:10:00.000Z");
  assert.equal(at("*/5 * * * *", "2025-01-01T10:10"), "2025-01-01T10:15:00.000Z"); // strictly after
  assert.equal(at("0 9 * * MON-FRI", "2025-01-03T09:00"), "2025-01-06T09:00:00.000Z"); // Fri -> Mon
  // 13th OR Friday: from Sat 2025-06-07, Fri 06-13 is both; from 06-14 the next is Fri 06-20.
  assert.equal(at("0 0 13 * FRI", "2025-06-07T00:00"), "2025-06-13T00:00:00.000Z");
  assert.equal(at("0 0 13 * FRI", "2025-07-05T00:00"), "2025-07-11T00:00:00.000Z"); // a Friday
  assert.equal(at("0 0 13 * FRI", "2025-07-11T00:00"), "2025-07-13T00:00:00.000Z"); // a Sunday, the 13th
  // `*/n` in day-of-month makes both fields required: odd days that are Mondays.
  assert.equal(at("0 0 */2 * MON", "2025-06-01T00:00"), "2025-06-09T00:00:00.000Z");
  assert.equal(at("0 0 L * *", "2024-02-01T00:00"), "2024-02-29T00:00:00.000Z");
  assert.equal(at("0 0 * * 5L", "2025-01-01T00:00"), "2025-01-31T00:00:00.000Z"); // last Friday
  assert.equal(at("0 0 * * FRI#2", "2025-01-01T00:00"), "2025-01-10T00:00:00.000Z");
  assert.equal(at("0 0 * * 1#5", "2025-01-01T00:00"), "2025-03-31T00:00:00.000Z"); // 5th Monday
  // Feb 29th OR a Monday in February: Thursday the 29th, then Monday 2025-02-03.
  assert.equal(at("0 0 29 2 1", "2024-02-26T00:00"), "2024-02-29T00:00:00.000Z");
  assert.equal(at("0 0 29 2 1", "2024-02-29T00:00"), "2025-02-03T00:00:00.000Z");
  assert.equal(at("0 0 */31 2 1", "2024-03-01T00:00"), "2027-02-01T00:00:00.000Z"); // AND: Feb 1, a Monday
  assert.equal(at("@yearly", "2025-06-01T00:00"), "2026-01-01T00:00:00.000Z");
  assert.equal(at("30 59 23 31 12 *", "2025-12-31T23:59:30"), "2026-12-31T23:59:30.000Z");
  assert.equal(at("* * * * * *", "2025-12-31T23:59:59.999"), "2026-01-01T00:00:00.000Z");
  const back = (expr: string, from: string) => iso(new Cron(expr).previous(utc(from)));
  assert.equal(back("*/5 * * * *", "2025-01-01T10:10"), "2025-01-01T10:05:00.000Z"); // strictly before
  assert.equal(back("*/5 * * * *", "2025-01-01T10:10:00.001"), "2025-01-01T10:10:00.000Z");
  assert.equal(back("0 0 L * *", "2024-03-15T00:00"), "2024-02-29T00:00:00.000Z");
  assert.equal(back("@yearly", "2026-01-01T00:00"), "2025-01-01T00:00:00.000Z");
  assert.equal(back("0 0 29 2 *", "2028-02-28T00:00"), "2024-02-29T00:00:00.000Z");
  assert.equal(new Cron("@daily").next(new Date(utc("2025-03-01T12:00"))), utc("2025-03-02T00:00"));
  assert.equal(new Cron("@daily").next(utc("9999-12-31T00:00")), null);
});

test("cron: random expressions agree with a brute-force scan, forwards and backwards", {
  timeout: 60_000,
}, () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const field = (lo: number, hi: number) => {
    switch (rand(6)) {
      case 0:
        return "*";
      case 1:
        return String(lo + rand(hi - lo + 1));
      case 2: {
        const a = lo + rand(hi - lo + 1);
        return `${a}-${a + rand(hi - a + 1)}`;
      }
      case 3:
        return `*/${1 + rand(Math.min(12, hi - lo + 1))}`;
      case 4:
        return `${lo + rand(hi - lo + 1)},${lo + rand(hi - lo + 1)}`;
      default: {
        const a = lo + rand(hi - lo + 1);
        return `${a}-${hi}/${1 + rand(4)}`;
      }
    }
  };
  const zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"];
  let compared = 0;
  for (let i = 0; i < 60; i++) {
    const expr = [
      field(0, 59),
      rand(2) ? "*" : field(0, 23),
      field(1, 31),
      field(1, 12),
      field(0, 6),
    ]
      .join(" ");
    let spec;
    try {
      spec = parseCron(expr);
    } catch {
      continue; // a day-of-month that the months never have
    }
    const zone = zones[rand(zones.length)];
    const cron = new Cron(expr, { timezone: zone });
    // A window of 3 days at minute resolution, somewhere in 2024-2026 (DST changes included).
    const from = utc("2024-01-01T00:00") + rand(1000) * DAY + rand(1440) * MIN;
    const to = from + 3 * DAY;
    const want = oracle(spec, zone, from, to, MIN);
    assert.deepEqual(ticks(cron, from, to).map(iso), want.map(iso), `${expr} in ${zone}`);
    assert.deepEqual(ticksBack(cron, from, to).map(iso), want.map(iso), `${expr} back, ${zone}`);
    compared += want.length;
  }
  assert.ok(compared > 1000, `only ${compared} ticks compared`);
});

test("cron: rare schedules step by field, not by second (years ahead)", () => {
  const cron = new Cron("0 0 0 29 2 1", { timezone: "Europe/Berlin" }); // OR: Feb 29 or a Monday
  assert.equal(new Date(cron.next(utc("2024-02-27T00:00"))!).getUTCDate(), 28); // Feb 29 00:00 CET
  // AND (`*/31` = day 1): Feb 1st on a Monday, 2027 then 2038; next walks only February days.
  const rare = new Cron("0 0 */31 2 MON", { timezone: "America/New_York" });
  assert.deepEqual(
    ticks(rare, utc("2025-01-01T00:00"), utc("2040-01-01T00:00")).map(iso),
    ["2027-02-01T05:00:00.000Z", "2038-02-01T05:00:00.000Z"],
  );
  assert.equal(iso(rare.previous(utc("2027-01-01T00:00"))), "2021-02-01T05:00:00.000Z");
});

test("cron: @every ticks at multiples of the interval since the epoch, in any zone", () => {
  const every7m = new Cron("@every 7m", { timezone: "Australia/Lord_Howe" });
  const t = every7m.next(utc("2024-10-05T15:29:59"))!;
  assert.equal(t % (7 * MIN), 0);
  assert.ok(t > utc("2024-10-05T15:29:59") && t - 7 * MIN <= utc("2024-10-05T15:29:59"));
  assert.equal(every7m.previous(t), t - 7 * MIN);
  const all = ticks(every7m, utc("2024-10-05T12:00"), utc("2024-10-05T18:00"));
  for (let i = 1; i < all.length; i++) assert.equal(all[i] - all[i - 1], 7 * MIN);
  assert.equal(new Cron("@every 15m").next(utc("2025-01-01T10:07")), utc("2025-01-01T10:15"));
});

// --- Daylight-saving time ----------------------------------------------------------------------

/** Checks that `zone` changes from `before` to `after` (minutes east of UTC) at `at`. */
function assertTransition(zone: string, at: string, before: number, after: number) {
  assert.equal(rawOffset(zone, utc(at) - 1000), before * MIN, `${zone} before ${at}`);
  assert.equal(rawOffset(zone, utc(at)), after * MIN, `${zone} at ${at}`);
}

const TRANSITIONS: [string, string, number, number][] = [
  ["Europe/Berlin", "2024-03-31T01:00", 60, 120], // 02:00 -> 03:00
  ["Europe/Berlin", "2024-10-27T01:00", 120, 60], // 03:00 -> 02:00
  ["America/New_York", "2024-03-10T07:00", -300, -240], // 02:00 -> 03:00
  ["America/New_York", "2024-11-03T06:00", -240, -300], // 02:00 -> 01:00
  ["Australia/Sydney", "2024-04-06T16:00", 660, 600], // 03:00 -> 02:00
  ["Australia/Sydney", "2024-10-05T16:00", 600, 660], // 02:00 -> 03:00
  ["Australia/Lord_Howe", "2024-04-06T15:00", 660, 630], // 02:00 -> 01:30
  ["Australia/Lord_Howe", "2024-10-05T15:30", 630, 660], // 02:00 -> 02:30
  ["America/Santiago", "2024-09-08T04:00", -240, -180], // 00:00 -> 01:00: midnight is skipped
  ["America/Havana", "2024-11-03T05:00", -240, -300], // 01:00 -> 00:00: midnight happens twice
];

test("cron: the zones' DST changes used below are where the tests expect them", () => {
  for (const [zone, at, before, after] of TRANSITIONS) assertTransition(zone, at, before, after);
  for (const t of [utc("2024-03-31T01:00"), utc("2024-10-27T01:00"), utc("2024-07-01T00:00")]) {
    assert.equal(rawOffset("Asia/Kolkata", t), 330 * MIN); // no DST, +05:30
  }
});

test("DST gap: a wall time that does not exist fires once, shifted forward by the change", () => {
  const cases: [string, string, string, string, string[]][] = [
    // zone, expression, from, to, ticks (UTC)
    ["Europe/Berlin", "30 2 * * *", "2024-03-30T00:00", "2024-04-01T12:00", [
      "2024-03-30T01:30", // 02:30 CET
      "2024-03-31T01:30", // 02:30 does not exist: 03:30 CEST, 24 h after the day before
      "2024-04-01T00:30", // 02:30 CEST
    ]],
    ["Europe/Berlin", "0,30 2 * * *", "2024-03-31T00:00", "2024-03-31T12:00", [
      "2024-03-31T01:00", // 02:00 -> 03:00 CEST
      "2024-03-31T01:30", // 02:30 -> 03:30 CEST: two ticks stay two
    ]],
    ["Europe/Berlin", "0 2,3 * * *", "2024-03-31T00:00", "2024-03-31T12:00", [
      "2024-03-31T01:00", // 02:00 shifted to 03:00 CEST, which is a tick anyway: once
    ]],
    ["America/New_York", "30 2 * * *", "2024-03-10T00:00", "2024-03-10T12:00", [
      "2024-03-10T07:30", // 03:30 EDT
    ]],
    ["Australia/Sydney", "30 2 * * *", "2024-10-05T00:00", "2024-10-06T00:00", [
      "2024-10-05T16:30", // 03:30 AEDT
    ]],
    ["Australia/Lord_Howe", "15 2 * * *", "2024-10-05T00:00", "2024-10-06T00:00", [
      "2024-10-05T15:45", // 02:15 -> 02:45 LHDT (a 30-minute change)
    ]],
    ["Australia/Lord_Howe", "0 * * * *", "2024-10-05T13:00", "2024-10-05T17:00", [
      "2024-10-05T13:30", // 00:00 LHST
      "2024-10-05T14:30", // 01:00 LHST
      "2024-10-05T15:30", // 02:00 does not exist: 02:30 LHDT, one hour after 01:00
      "2024-10-05T16:00", // 03:00 LHDT
      "2024-10-05T17:00",
    ]],
    ["America/Santiago", "0 0 * * *", "2024-09-07T00:00", "2024-09-09T12:00", [
      "2024-09-07T04:00", // 00:00 -04
      "2024-09-08T04:00", // midnight does not exist: 01:00 -03, still on the 8th
      "2024-09-09T03:00", // 00:00 -03
    ]],
  ];
  for (const [zone, expr, from, to, want] of cases) assertTicks(zone, expr, from, to, want);
});

test("DST overlap: a wall time that happens twice fires once, the first time", () => {
  const cases: [string, string, string, string, string[]][] = [
    ["America/New_York", "30 1 * * *", "2024-11-02T00:00", "2024-11-04T12:00", [
      "2024-11-02T05:30", // 01:30 EDT
      "2024-11-03T05:30", // 01:30 EDT, the first of two; not again at 06:30Z (01:30 EST)
      "2024-11-04T06:30", // 01:30 EST
    ]],
    ["America/New_York", "0 1,2 * * *", "2024-11-03T00:00", "2024-11-03T12:00", [
      "2024-11-03T05:00", // 01:00 EDT
      "2024-11-03T07:00", // 02:00 EST
    ]],
    ["Europe/Berlin", "30 2 * * *", "2024-10-27T00:00", "2024-10-27T12:00", [
      "2024-10-27T00:30", // 02:30 CEST only
    ]],
    ["Australia/Sydney", "15 2 * * *", "2024-04-06T00:00", "2024-04-07T00:00", [
      "2024-04-06T15:15", // 02:15 AEDT only
    ]],
    ["Australia/Lord_Howe", "45 1 * * *", "2024-04-06T00:00", "2024-04-07T00:00", [
      "2024-04-06T14:45", // 01:45 LHDT only (01:30-02:00 happens twice)
    ]],
    ["America/Havana", "0 0 * * *", "2024-11-02T00:00", "2024-11-04T12:00", [
      "2024-11-02T04:00", // 00:00 CDT
      "2024-11-03T04:00", // 00:00 CDT; not again at 05:00Z (00:00 CST)
      "2024-11-04T05:00",
    ]],
  ];
  for (const [zone, expr, from, to, want] of cases) assertTicks(zone, expr, from, to, want);
});

test("DST: schedules that run every hour fire on every real instant, neither doubled nor skipped", () => {
  for (const [zone, at] of TRANSITIONS) {
    const from = utc(at) - 2 * HOUR, to = utc(at) + 2 * HOUR;
    const seconds = ticks(new Cron("* * * * * *", { timezone: zone }), from, to);
    assert.equal(seconds.length, 4 * 3600, `${zone} ${at}: per second`);
    assert.ok(seconds.every((t, i) => t === from + (i + 1) * 1000), `${zone} ${at}: every second`);
    const minutes = ticks(new Cron("* * * * *", { timezone: zone }), from, to);
    assert.equal(minutes.length, 4 * 60, `${zone} ${at}: per minute`);
    const quarters = ticks(new Cron("*/15 * * * *", { timezone: zone }), from, to);
    assert.ok(
      quarters.every((t, i) => i === 0 || t - quarters[i - 1] === 15 * MIN),
      `${zone} ${at}`,
    );
  }
  // Hourly at :30 in New York's overlap: 01:30 EDT and 01:30 EST, one real hour apart ...
  assertTicks("America/New_York", "30 * * * *", "2024-11-03T04:00", "2024-11-03T08:00", [
    "2024-11-03T04:30",
    "2024-11-03T05:30",
    "2024-11-03T06:30",
    "2024-11-03T07:30",
  ]);
  // ... and in Berlin's gap: 01:30 CET then 03:30 CEST, one real hour apart.
  assertTicks("Europe/Berlin", "30 * * * *", "2024-03-30T23:00", "2024-03-31T02:00", [
    "2024-03-30T23:30",
    "2024-03-31T00:30",
    "2024-03-31T01:30",
  ]);
});

// A few seconds of CPU (a brute-force scan per change): more than Bun's 5 s default under load.
test("DST: around every change, next and previous agree with a brute-force scan", {
  timeout: 60_000,
}, () => {
  const exprs = [
    "30 2 * * *",
    "0,30 2 * * *",
    "0 2,3 * * *",
    "* * * * *",
    "*/15 * * * *",
    "30 * * * *",
    "0 */2 * * *",
    "30 1 * * *",
    "* 1 * * *",
    "0 1,2 * * *",
    "15 2 * * *",
    "45 1 * * *",
    "0 0 * * *",
    "0,30 0-3 * * *",
    "*/7 1-2 * * *",
    "0 0-3 * * SUN",
  ];
  const seconds = ["*/10 * * * * *", "*/20 30 1 * * *", "5 * 2 * * *"];
  for (const [zone, at] of [...TRANSITIONS, ["Asia/Kolkata", "2024-03-31T01:00"] as const]) {
    const from = utc(at) - 4 * HOUR, to = utc(at) + 4 * HOUR;
    for (const expr of exprs) {
      const cron = new Cron(expr, { timezone: zone });
      const want = oracle(parseCron(expr), zone, from, to, MIN).map(iso);
      assert.deepEqual(ticks(cron, from, to).map(iso), want, `${expr} in ${zone} at ${at}`);
      assert.deepEqual(
        ticksBack(cron, from, to).map(iso),
        want,
        `${expr} back in ${zone} at ${at}`,
      );
    }
    for (const expr of seconds) {
      const cron = new Cron(expr, { timezone: zone });
      const [a, b] = [utc(at) - 90 * MIN, utc(at) + 90 * MIN];
      const want = oracle(parseCron(expr), zone, a, b, 1000).map(iso);
      assert.deepEqual(
        ticks(cron, a, b).map(iso),
        want,
        `${expr} in ${zone}`,
      );
    }
  }
});

test("DST: a whole skipped day (Kiritimati, 1994-12-31) whose gap reaches into the next year", () => {
  // At 1994-12-31T10:00Z the clocks went from Dec 30 23:59:59 (-10:00) to Jan 1 00:00 (+14:00).
  assertTransition("Pacific/Kiritimati", "1994-12-31T10:00", -600, 840);
  const both = (expr: string, from: string, to: string, want: string[]) =>
    assertTicks("Pacific/Kiritimati", expr, from, to, want);
  // Noon every 24 real hours: Dec 31 noon (which did not exist) is Jan 1 noon, +14:00.
  both("0 12 * * *", "1994-12-29T12:00", "1995-01-01T12:00", [
    "1994-12-29T22:00",
    "1994-12-30T22:00",
    "1994-12-31T22:00",
  ]);
  // Dec 31 18:00 did not exist in 1994: it fires 24 hours after Dec 30 18:00, in the next UTC year.
  both("0 18 31 12 *", "1994-06-01T00:00", "1996-06-01T00:00", [
    "1995-01-01T04:00",
    "1995-12-31T04:00",
  ]);
  const minutes = ticks(
    new Cron("* * * * *", { timezone: "Pacific/Kiritimati" }),
    utc("1994-12-31T08:00"),
    utc("1994-12-31T12:00"),
  );
  assert.equal(minutes.length, 240);
});

test("cron: the zone tables find changes one week apart (Boa Vista 2000, Gaza 2040)", () => {
  // The offsets are sampled every 3 days, then bisected: check them hour by hour against Intl.
  for (const [zone, year] of [["America/Boa_Vista", 2000], ["Asia/Gaza", 2040]] as const) {
    const z = getZone(zone);
    let changes = 0;
    for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += HOUR) {
      assert.equal(z.offset(t), rawOffset(zone, t), `${zone} at ${iso(t)}`);
      if (t > Date.UTC(year, 0, 1) && rawOffset(zone, t) !== rawOffset(zone, t - HOUR)) changes++;
    }
    assert.ok(changes >= 2, `${zone} ${year}: ${changes} changes`);
  }
});

test("cron: Asia/Kolkata (+05:30, no DST) and the zone names Intl accepts", () => {
  const cron = new Cron("30 2 * * *", { timezone: "Asia/Kolkata" });
  assert.deepEqual(
    ticks(cron, utc("2024-03-30T00:00"), utc("2024-04-02T00:00")).map(iso),
    ["2024-03-30T21:00", "2024-03-31T21:00", "2024-04-01T21:00"].map((w) => iso(utc(w))),
  );
  assert.equal(new Cron("@daily", { timezone: "europe/berlin" }).timezone, "Europe/Berlin");
  assert.equal(
    String(new Cron("0 9 * * *", { timezone: "Europe/Paris" })),
    "0 9 * * * (Europe/Paris)",
  );
  assert.equal(String(new Cron(" @daily ")), "@daily");
  assert.equal(
    new Cron("0 0 * * *", { timezone: "+05:30" }).next(utc("2024-01-01T00:00")),
    utc("2024-01-01T18:30"),
  );
  assert.throws(
    () => new Cron("@daily", { timezone: "" }),
    /timezone must be an IANA time zone name/,
  );
  assert.throws(
    () => new Cron("* * * * *").next(NaN),
    /`after` must be a Date or ms since the epoch/,
  );
});

// --- The missed-tick policy ---------------------------------------------------------------------

test("dueTicks: a new schedule starts from now and does not back-fill", () => {
  const cron = new Cron("* * * * * *");
  const now = utc("2025-01-01T12:00:00.300");
  assert.deepEqual(dueTicks(cron, { now }), {
    ticks: [],
    last: undefined,
    catchUp: 0,
    firstMissed: undefined,
    latestMissed: undefined,
  });
  // The process has run since 11:59:58.5: ticks from then on are due, even if checked late.
  const d = dueTicks(cron, { now, since: now - 1800, missed: "all" });
  assert.deepEqual(d.ticks.map(iso), ["2025-01-01T11:59:59.000Z", "2025-01-01T12:00:00.000Z"]);
  assert.equal(d.last, utc("2025-01-01T12:00:00"));
  assert.equal(d.catchUp, 0);
});

test("dueTicks: on-time ticks are due however late the check, up to the grace", () => {
  const cron = new Cron("*/10 * * * * *");
  const since = utc("2025-01-01T12:00:00");
  const last = utc("2025-01-01T12:00:10");
  const now = utc("2025-01-01T12:00:45.500"); // a slow check: three ticks since the last
  for (const missed of ["skip", "once", "all"] as const) {
    const d = dueTicks(cron, { last, now, since, missed });
    assert.deepEqual(
      d.ticks.map(iso),
      ["12:00:20", "12:00:30", "12:00:40"].map((s) => iso(utc(`2025-01-01T${s}`))),
      missed,
    );
    assert.equal(d.last, utc("2025-01-01T12:00:40"));
    assert.equal(d.firstMissed, undefined);
  }
  // Suspended for 5 minutes (no restart): ticks older than the grace count as missed.
  const late = utc("2025-01-01T12:05:15");
  const d = dueTicks(cron, { last, now: late, since, missed: "skip", grace: 30_000 });
  assert.deepEqual(
    d.ticks.map(iso),
    ["12:04:50", "12:05:00", "12:05:10"].map((s) => iso(utc(`2025-01-01T${s}`))),
  );
  assert.equal(d.firstMissed, utc("2025-01-01T12:00:20"));
  assert.equal(d.latestMissed, utc("2025-01-01T12:04:40"));
});

test("dueTicks: after downtime, skip drops the missed ticks, once enqueues one, all catches up", () => {
  const cron = new Cron("* * * * * *");
  const last = utc("2025-01-01T12:00:00"); // then every process stopped for about 5 s
  const now = utc("2025-01-01T12:00:05.200"); // a process starts now
  const skip = dueTicks(cron, { last, now, missed: "skip" });
  assert.deepEqual(skip.ticks, []);
  assert.equal(skip.last, utc("2025-01-01T12:00:05")); // the missed ticks count as handled
  assert.equal(skip.firstMissed, utc("2025-01-01T12:00:01"));
  assert.equal(skip.latestMissed, utc("2025-01-01T12:00:05"));

  const once = dueTicks(cron, { last, now, missed: "once" });
  assert.deepEqual(once.ticks, [utc("2025-01-01T12:00:05")]); // the latest missed tick
  assert.equal(once.catchUp, 1);
  assert.equal(once.last, utc("2025-01-01T12:00:05"));
  // Once the last tick is stored, nothing more is due until the next tick.
  assert.deepEqual(dueTicks(cron, { last: once.last, now, since: now, missed: "once" }).ticks, []);

  const all = dueTicks(cron, { last, now, missed: "all" });
  assert.deepEqual(all.ticks.map((t) => (t - last) / 1000), [1, 2, 3, 4, 5]);
  const capped = dueTicks(cron, { last, now, missed: "all", maxCatchUp: 2 });
  assert.deepEqual(capped.ticks.map((t) => (t - last) / 1000), [4, 5]); // the latest two
  assert.equal(capped.last, utc("2025-01-01T12:00:05"));
  // A schedule's own policy is the default.
  const s = { cron, missed: "all" as const, maxCatchUp: 3 };
  assert.deepEqual(dueTicks(s, { last, now }).ticks.map((t) => (t - last) / 1000), [3, 4, 5]);
  // A week of downtime with "all" costs maxCatchUp steps, not one per missed tick.
  const week = dueTicks(cron, { last, now: last + 7 * DAY + 500, missed: "all" });
  assert.equal(week.ticks.length, 100);
  assert.equal(week.ticks.at(-1), last + 7 * DAY);
});

test("dueTicks: processes racing after downtime enqueue one catch-up in all, even if one dies", () => {
  // The broker's atomic step: enqueue a tick only if it is above the stored last tick, which it
  // then becomes; after its ticks, a process raises the stored last tick to `due.last`. After every
  // process was down for 5 s, A starts at 12:00:05.2 and B at 12:00:05.9 (no tick in between).
  // B reads the stored last tick before A writes or after; A may be killed after any step.
  const cron = new Cron("* * * * * *");
  const last = utc("2025-01-01T12:00:00");
  for (const missed of ["once", "all", "skip"] as const) {
    for (let killAfter = 0; killAfter <= 2; killAfter++) {
      for (const bReadsFirst of [true, false]) {
        let stored = last;
        const enqueued: number[] = [];
        const run = (plan: ReturnType<typeof dueTicks>, steps: number) => {
          plan.ticks.slice(0, steps).forEach((tick) => {
            if (tick > stored) {
              stored = tick;
              enqueued.push(tick);
            }
          });
          if (steps > plan.ticks.length && plan.last !== undefined) {
            stored = Math.max(stored, plan.last);
          }
        };
        const planA = dueTicks(cron, { last: stored, now: last + 5_200, missed });
        const planBStale = dueTicks(cron, { last: stored, now: last + 5_900, missed });
        run(planA, killAfter === 2 ? Infinity : killAfter);
        const planB = bReadsFirst
          ? planBStale
          : dueTicks(cron, { last: stored, now: last + 5_900, missed });
        run(planB, Infinity);
        const want = { once: [5], all: [1, 2, 3, 4, 5], skip: [] }[missed];
        assert.deepEqual(
          enqueued.map((t) => (t - last) / 1000),
          want,
          `${missed}, A killed after ${killAfter}, B read ${bReadsFirst ? "first" : "after"}`,
        );
        assert.equal(stored, last + 5000);
      }
    }
  }
});

test("dueTicks: catch-ups come before the on-time ticks; bad options are TypeErrors", () => {
  const cron = new Cron("* * * * * *");
  const last = utc("2025-01-01T12:00:00");
  const since = utc("2025-01-01T12:00:03.500");
  const d = dueTicks(cron, { last, since, now: since + 2000, missed: "all" });
  assert.deepEqual(d.ticks.map((t) => (t - last) / 1000), [1, 2, 3, 4, 5]);
  assert.equal(d.catchUp, 3);
  assert.throws(
    () => dueTicks(cron, { missed: "twice" as "once" }),
    /missed must be "skip", "once" or "all"/,
  );
  assert.throws(() => dueTicks(cron, { maxCatchUp: 0 }), /maxCatchUp must be a positive integer/);
  assert.throws(() => dueTicks(cron, { now: NaN }), /now must be ms since the epoch/);
});

test("tickKey and tickMessageId are deterministic per schedule and tick", () => {
  const t = utc("2025-01-01T00:00");
  assert.equal(tickKey("report", t), "schedule:report:1735689600000");
  const id = tickMessageId("report", t);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-3[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(id, tickMessageId("report", t));
  assert.notEqual(id, tickMessageId("report", t + 1000));
  assert.notEqual(id, tickMessageId("reports", t));
});

// --- schedule() --------------------------------------------------------------------------------

test("schedule: declares, validates at declaration and lists by broker", () => {
  const broker = new StubBroker();
  const other = new StubBroker();
  const report = actor(function cronTestReport(kind: string, n: number) {
    return `${kind}${n}`;
  }, { broker, queueName: "reports" });
  const names = ["cron-test-a", "cron-test-b", "cron-test-c"];
  try {
    const a = schedule("cron-test-a", "0 9 * * MON-FRI", report, {
      timezone: "Europe/Berlin",
      args: ["sales", 3],
      missed: "once",
    });
    assert.equal(a.cron.expression, "0 9 * * MON-FRI");
    assert.equal(a.cron.timezone, "Europe/Berlin");
    assert.equal(a.actorName, "cronTestReport");
    assert.equal(a.queueName, "reports");
    assert.deepEqual(a.args, ["sales", 3]);
    assert.equal(a.missed, "once");
    assert.equal(a.maxCatchUp, 100);
    assert.equal(a.broker, broker); // the actor's
    assert.equal(getSchedule("cron-test-a"), a);
    const b = schedule("cron-test-b", "@hourly", report, { args: ["x", 1], broker: other });
    assert.equal(b.broker, other);
    const msg = new Message({
      queueName: "q",
      actorName: "cronTestReport",
      kwargs: { full: true },
    });
    const c = schedule("cron-test-c", "*/5 * * * * *", msg, { missed: "all", maxCatchUp: 5 });
    assert.deepEqual(getSchedules(broker).map((s) => s.name), ["cron-test-a"]);
    assert.deepEqual(getSchedules(other).map((s) => s.name), ["cron-test-b"]);
    assert.ok(getSchedules().includes(c));
    assert.equal(c.broker, undefined); // the global broker

    const tick = utc("2025-01-06T08:00");
    const m = a.message(tick);
    assert.equal(m.actorName, "cronTestReport");
    assert.equal(m.queueName, "reports");
    assert.deepEqual(m.args, ["sales", 3]);
    assert.equal(m.options.schedule_name, "cron-test-a");
    assert.equal(m.options.schedule_tick, tick);
    assert.equal(m.messageId, tickMessageId("cron-test-a", tick));
    assert.equal(a.message(tick).messageId, m.messageId);
    const mc = c.message(tick);
    assert.deepEqual(mc.kwargs, { full: true });
    assert.equal(mc.queueName, "q");
    assert.notEqual(mc.messageId, msg.messageId);
    assert.deepEqual(msg.options, {}); // the declared message is not changed

    const bad: [() => unknown, RegExp][] = [
      [
        () => schedule("bad name", "@daily", report),
        /^schedule name must be 1 to 200 letters, digits/,
      ],
      [() => schedule("", "@daily", report), /schedule name must be/],
      [
        () => schedule("cron-test-a", "@daily", report),
        /^schedule "cron-test-a": already declared \(0 9 \* \* MON-FRI \(Europe\/Berlin\), actor cronTestReport\)/,
      ],
      [
        () => schedule("cron-test-x", "0 25 * * *", report),
        /^schedule "cron-test-x": cron field "hour" value "25" is out of range 0-23/,
      ],
      [
        () => schedule("cron-test-x", "@daily", report, { timezone: "Europe/Berlín" }),
        /^schedule "cron-test-x": unknown time zone "Europe\/Berlín"/,
      ],
      [
        () =>
          schedule("cron-test-x", "@daily", report, {
            args: ["a", new Date() as unknown as number],
          }),
        /^schedule "cron-test-x": args\[1\] is an instance of Date .*not a JSON value/,
      ],
      [
        () =>
          schedule("cron-test-x", "@daily", report, { args: "a" as unknown as [string, number] }),
        /args must be an array/,
      ],
      [
        () => schedule("cron-test-x", "@daily", msg, { args: [1] } as never),
        /args cannot be given with a message target/,
      ],
      [
        () => schedule("cron-test-x", "@daily", (() => {}) as never),
        /target must be an actor or a message built with actor.message\(\)/,
      ],
      [
        () => schedule("cron-test-x", "@daily", report, { missed: "twice" as "once" }),
        /missed must be "skip", "once" or "all", got "twice"/,
      ],
      [
        () => schedule("cron-test-x", "@daily", report, { maxCatchUp: 1.5 }),
        /maxCatchUp must be a positive integer/,
      ],
      [
        () => schedule("cron-test-x", "@daily", report, { timeZone: "UTC" } as never),
        /unknown option "timeZone"; the options are timezone, args, missed, maxCatchUp, broker/,
      ],
      [
        () => schedule("cron-test-x", "@daily", report, { broker: {} as never }),
        /broker must be a Broker, got an instance of Object/,
      ],
    ];
    for (const [fn, re] of bad) {
      assert.throws(fn, (e: Error) => e instanceof TypeError && re.test(e.message), String(re));
    }
    assert.equal(getSchedule("cron-test-x"), undefined); // nothing rejected was registered
    assert.equal(removeSchedule("cron-test-b"), true);
    assert.equal(removeSchedule("cron-test-b"), false);
    assert.deepEqual(getSchedules(other), []);
  } finally {
    for (const n of names) removeSchedule(n);
  }
});

// --- The brute-force reference ------------------------------------------------------------------

const formats = new Map<string, { format: Intl.DateTimeFormat; memo: Map<number, number> }>();

/** The zone's offset at `t` (ms), read from Intl's formatToParts (not from the code under test). */
function rawOffset(zone: string, t: number): number {
  let z = formats.get(zone);
  if (!z) {
    const format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    z = { format, memo: new Map() };
    formats.set(zone, z);
  }
  const hit = z.memo.get(t);
  if (hit !== undefined) return hit;
  const p = Object.fromEntries(z.format.formatToParts(t).map((x) => [x.type, Number(x.value)]));
  const off = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - t;
  if (z.memo.size > 100_000) z.memo.clear();
  z.memo.set(t, off);
  return off;
}

/**
 * The ticks in (from, to] by the documented rules, checking every `step` ms:
 * - an instant fires when its wall time matches, unless the schedule does not run every hour
 *   and the same wall time already happened shortly before (the second pass of an overlap);
 * - an instant just after a gap also fires when the wall time it would have had under the
 *   offset before the change (a wall time that does not exist) matches.
 */
function oracle(
  spec: ReturnType<typeof parseCron>,
  zone: string,
  from: number,
  to: number,
  step: number,
): number[] {
  const out: number[] = [];
  for (let t = Math.floor(from / step) * step + step; t <= to; t += step) {
    const off = rawOffset(zone, t);
    let fires = matchesWall(spec, t + off);
    if (fires && !spec.everyHour) {
      for (const d of [30 * MIN, HOUR, 2 * HOUR]) {
        if (rawOffset(zone, t - d) === off + d) fires = false; // seen d ago
      }
    }
    if (!fires) {
      const before = rawOffset(zone, t - 3 * HOUR);
      const gap = off - before;
      fires = gap > 0 && rawOffset(zone, t - gap) !== off && matchesWall(spec, t + before);
    }
    if (fires) out.push(t);
  }
  return out;
}
