// Benchmark: next-tick computation (ticks/s) of `Cron` for a few expressions and zones.
//   deno run -A bench/cron.ts   |   bun bench/cron.ts
// Each case walks successive ticks with `next()` from 2025-01-01 through 2027 (DST changes
// crossed), then starts over: the steady state of a worker, whose zone year tables are cached.
// BENCH_SECONDS per run, median of BENCH_RUNS runs. Two rows show the cold costs instead: a yearly
// schedule walked into new years (each tick builds a UTC year's table of offsets, ~130 `Intl`
// calls), and the first `next()` in a zone no `Cron` used before. With bench/peers installed
// (`cd bench/peers && npm ci`), the same walks run through cron-parser, the cron library BullMQ
// uses, in the same run (ratio = ours / theirs). Also prints the cost of one
// `Intl.DateTimeFormat.format()` call, for scale.
import process from "node:process";
import { existsSync } from "node:fs";
import { Cron } from "../schedule/mod.ts";
import { FORMAT } from "../schedule/_zone.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const START = Date.UTC(2025, 0, 1);

interface Case {
  name: string;
  expr: string;
  tz: string;
  /** cron-parser takes no `@every`, no `L`/`#`: skip the peer for those. */
  peer?: boolean;
}
const CASES: Case[] = [
  { name: "every second", expr: "* * * * * *", tz: "Europe/Berlin", peer: true },
  { name: "every 5 minutes", expr: "*/5 * * * *", tz: "America/New_York", peer: true },
  { name: "weekdays 09:00", expr: "0 9 * * MON-FRI", tz: "Europe/Berlin", peer: true },
  { name: "daily 02:30", expr: "30 2 * * *", tz: "Australia/Lord_Howe", peer: true },
  { name: "yearly", expr: "0 0 1 1 *", tz: "UTC", peer: true },
  { name: "yearly, zone", expr: "0 0 1 1 *", tz: "Europe/Berlin", peer: true },
  { name: "Feb 1st on a Monday", expr: "0 0 */31 2 MON", tz: "America/New_York", peer: false },
  { name: "last Friday", expr: "0 18 * * 5L", tz: "Asia/Kolkata", peer: false },
  { name: "@every 10s", expr: "@every 10s", tz: "UTC", peer: false },
];

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** Calls `step` until SECONDS have passed; returns calls per second. */
function rate(step: () => void): number {
  let n = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 256; i++) step();
    n += 256;
  }
  return n / ((performance.now() - t0) / 1000);
}

const END = Date.UTC(2028, 0, 1);

function walk(expr: string, tz: string, end = END): () => void {
  const cron = new Cron(expr, { timezone: tz });
  let t = START;
  return () => {
    const next = cron.next(t);
    t = next === null || next > end ? START : next;
  };
}

type PeerIterator = { next(): { getTime(): number } };
type PeerParse = (expr: string, o: { currentDate: Date; tz: string }) => PeerIterator;
let peerParse: PeerParse | undefined;
const peerPath = new URL("./peers/node_modules/cron-parser/dist/index.js", import.meta.url);
if (existsSync(peerPath)) {
  const mod = await import(peerPath.href);
  const P = (mod.CronExpressionParser ?? mod.default?.CronExpressionParser) as {
    parse: PeerParse;
  };
  peerParse = (expr, o) => P.parse(expr, o);
}

function peerWalk(expr: string, tz: string): () => void {
  let it = peerParse!(expr, { currentDate: new Date(START), tz });
  return () => {
    if (it.next().getTime() > END) it = peerParse!(expr, { currentDate: new Date(START), tz });
  };
}

const runtime = "Bun" in globalThis
  ? `Bun ${process.versions.bun}`
  : `Deno ${process.versions.deno}`;
console.log(
  `bench/cron.ts on ${runtime}: next() ticks/s, median of ${RUNS} runs of ${SECONDS} s` +
    (peerParse ? "; peer: cron-parser (BullMQ's)" : "; no peer (cd bench/peers && npm ci)"),
);
const fmt = new Intl.DateTimeFormat("en-US", { ...FORMAT, timeZone: "Europe/Berlin" });
let ms = START;
const intl = median(Array.from({ length: RUNS }, () => rate(() => fmt.format(ms += 1000))));
console.log(`(one Intl.DateTimeFormat.format() call: ${(1e6 / intl).toFixed(2)} µs)`);

const rows: string[][] = [];
const n = (x: number) => Math.round(x).toLocaleString("en");
for (const c of CASES) {
  const ours = median(Array.from({ length: RUNS }, () => rate(walk(c.expr, c.tz))));
  const theirs = c.peer && peerParse
    ? median(Array.from({ length: RUNS }, () => rate(peerWalk(c.expr, c.tz))))
    : undefined;
  rows.push([
    `${c.name} \`${c.expr}\` ${c.tz}`,
    n(ours),
    `${(1e6 / ours).toFixed(2)} µs`,
    theirs === undefined ? "-" : n(theirs),
    theirs === undefined ? "-" : `${(ours / theirs).toFixed(1)}x`,
  ]);
}
const years = median(
  Array.from(
    { length: RUNS },
    () => rate(walk("0 0 1 1 *", "Europe/Berlin", Date.UTC(9000, 0, 1))),
  ),
);
rows.push([
  "cold: yearly in Europe/Berlin, walked into new years",
  n(years),
  `${(1e6 / years).toFixed(0)} µs`,
  "-",
  "-",
]);
// Cold: the first next() in a zone no Cron has used yet in this process.
const coldZones = ["Europe/Paris", "Europe/Madrid", "Europe/Rome", "Europe/Oslo", "Europe/Prague"];
const cold = coldZones.map((tz) => {
  const t0 = performance.now();
  new Cron("0 9 * * *", { timezone: tz }).next(START);
  return performance.now() - t0;
});
rows.push([
  "cold: first next() in a new zone",
  "-",
  `${(median(cold) * 1000).toFixed(0)} µs`,
  "-",
  "-",
]);

console.log("| case | ticks/s | per tick | cron-parser ticks/s | ours / theirs |");
console.log("| --- | --- | --- | --- | --- |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
