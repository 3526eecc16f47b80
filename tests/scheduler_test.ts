// Schedules run by real `cli.ts worker` processes (two on Deno, one on Bun) sharing one broker:
// each tick of a per-second schedule is enqueued exactly once while processes are SIGKILLed and
// restarted; after every process was down, `missed` decides the catch-up ("once": one, "skip":
// none, "all": every missed tick up to maxCatchUp, with a warning past it), from the last tick the
// broker stored. The workers consume another queue (-Q idle): the test counts the schedule's
// messages in the broker, by their tick option. The scenarios of one broker run concurrently.
// Runs on the file broker, and on Redis when its broker has the `schedules` capability.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actor,
  type Broker,
  brokerFromUrl,
  Cron,
  NO_CAPABILITIES,
  removeSchedule,
  runSchedules,
  schedule,
  SCHEDULE_OPTION,
  SCHEDULE_TICK_OPTION,
  StubBroker,
  Unsupported,
} from "../mod.ts";
import { cleanup, descendants, e2e, type Env, setup, sleep, until } from "./_cli.ts";
import {
  iso,
  killTree,
  lastBeforeStop,
  noDuplicates,
  secondsIn,
  stop,
  ticksOf,
  untilMidSecond,
  worker,
} from "./_scheduler.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

const SECOND = new Cron("* * * * * *");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/**
 * Three workers (Deno, Deno, Bun) run a per-second schedule for 20 s: one's worker process is
 * SIGKILLed at 5 s (its supervisor restarts it), the Bun one is SIGKILLed whole at 10 s. Every
 * tick from the first scheduler's start to the stop is enqueued exactly once.
 */
async function threeWorkers(e: Env, url: string, unique: string): Promise<void> {
  const env = { SCHED_NAME: `every-${unique}`, SCHED_QUEUE: `ticks-${unique}` };
  const procs = [worker(e, "deno", env), worker(e, "deno", env), worker(e, "bun", env)];
  const sinces = await Promise.all(procs.map((p) => p.since()));
  const first = Math.min(...sinces), all = Math.max(...sinces);
  const start = await untilMidSecond(all, 0); // the 20 s window: [start, start + 20 s)
  await sleep(5_500);
  const workerProcess = descendants(procs[1]!.proc.pid!)[0];
  assert.ok(workerProcess, "the second worker has no worker process");
  process.kill(workerProcess, "SIGKILL");
  await sleep(5_000);
  killTree(procs[2]!);
  const stopAt = await untilMidSecond(start + 19_000); // start + 20.5 s
  await Promise.all([stop(procs[0]!), stop(procs[1]!)]);
  await procs[2]!.exited;
  const exitedAt = Date.now();
  assert.match(procs[1]!.log(), /Worker process 0 exited unexpectedly/, "no restart after SIGKILL");

  const ticks = await ticksOf(url, env.SCHED_QUEUE, env.SCHED_NAME);
  const list = noDuplicates(ticks, "three workers");
  const inWindow = list.filter((t) => t >= start && t < start + 20_000);
  assert.deepEqual(inWindow.map(iso), secondsIn(start, start + 20_000).map(iso));
  assert.equal(inWindow.length, 20);
  // Also after the window, and before it from when every scheduler was on: none missing. (A
  // tick between the first and the last start can be skipped: a process started later but
  // booted sooner may store a later tick first, and a tick older than the stored one is not
  // enqueued; docs/schedules.md.)
  const last = lastBeforeStop(list, stopAt, exitedAt);
  assert.deepEqual(list.filter((t) => t >= all).map(iso), secondsIn(all, last + 1).map(iso));
  assert.ok(
    list.every((t) => t >= first - 1000),
    `a tick before any process ran: ${list.map(iso)}`,
  );
  const lags = ticks.map((t) => t.lag);
  console.log(
    `three workers (${url.split(":")[0]}): ${ticks.length} ticks, enqueued after the tick: ` +
      `median ${median(lags)} ms, max ${Math.max(...lags)} ms`,
  );
  // "Within a few ms" is the design (a timer per tick); a loaded 2-core box gets slack.
  assert.ok(median(lags) < 1000, `ticks enqueued late: median ${median(lags)} ms`);
}

/**
 * One worker runs the schedule, stops; no process runs for 5 s; another (the other runtime)
 * starts: the missed ticks follow `missed`, from the last tick the broker stored.
 */
async function downtime(
  e: Env,
  url: string,
  unique: string,
  missed: "once" | "skip" | "all",
  runtimes: ["deno" | "bun", "deno" | "bun"],
): Promise<void> {
  const env: Record<string, string> = {
    SCHED_NAME: `${missed}-${unique}`,
    SCHED_QUEUE: `ticks-${missed}-${unique}`,
    SCHED_MISSED: missed,
  };
  if (missed === "all") env.SCHED_MAX_CATCH_UP = "3";
  const a = worker(e, runtimes[0], env);
  const since1 = await a.since();
  const stop1 = await untilMidSecond(since1 + 2_000); // 2-3 ticks
  await stop(a);
  const exit1 = Date.now();
  await sleep(5_000);
  const b = worker(e, runtimes[1], env);
  const since2 = await b.since();
  const stop2 = await untilMidSecond(since2 + 2_000);
  await stop(b);
  const exit2 = Date.now();

  const list = noDuplicates(await ticksOf(url, env.SCHED_QUEUE, env.SCHED_NAME), missed);
  // The last tick the first worker enqueued: the one before its stop signal, or (on a loaded box,
  // where its timer may fire before the signal is handled) the next one, before it exited.
  const last = Math.max(...list.filter((t) => t < exit1));
  assert.ok(
    last >= Math.floor(stop1 / 1000) * 1000,
    `the first worker stopped early: ${iso(last)}`,
  );
  const before = secondsIn(since1, last + 1), gap = secondsIn(last + 1, since2);
  const after = secondsIn(since2, lastBeforeStop(list, stop2, exit2) + 1);
  assert.ok(gap.length >= 4, `only ${gap.length} ticks missed`);
  const caughtUp = { once: gap.slice(-1), skip: [], all: gap.slice(-3) }[missed];
  assert.deepEqual(
    list.map(iso),
    [...before, ...caughtUp, ...after].map(iso),
    `missed: "${missed}" (down from ${iso(last)} to ${iso(since2)})`,
  );
  assert.equal(list.filter((t) => t > last && t < since2).length, caughtUp.length);
  if (missed === "all") {
    assert.match(b.log(), /enqueued 3 catch-up\(s\) \(missed: "all"\), the latest 3 only/);
  } else if (missed === "once") {
    assert.match(b.log(), /enqueued one catch-up \(missed: "once"\)/);
  }
}

/**
 * One worker whose worker process is SIGKILLed just after a tick: its supervisor restarts it at
 * least 500 ms later, after the next tick. That tick is not missed (the supervisor ran on): the
 * restarted process enqueues it late, and every tick is there once, even with `missed: "skip"`.
 */
async function restart(e: Env, url: string, unique: string): Promise<void> {
  const env = { SCHED_NAME: `restart-${unique}`, SCHED_QUEUE: `ticks-restart-${unique}` };
  const p = worker(e, "deno", env);
  const since = await p.since();
  await untilMidSecond(since + 1_000, 600);
  process.kill(descendants(p.proc.pid!)[0]!, "SIGKILL");
  const killedAt = Date.now(); // >= 600 ms after a tick: the restart (+500 ms) is after the next
  await until(
    "the restarted worker process",
    () => /ticks on time from[\s\S]*ticks on time from/.test(p.log()),
    30_000,
    p.log,
  );
  const stopAt = await untilMidSecond(Date.now() + 1_000);
  await stop(p);
  const exitedAt = Date.now();
  const ticks = await ticksOf(url, env.SCHED_QUEUE, env.SCHED_NAME);
  const list = noDuplicates(ticks, "restart");
  const last = lastBeforeStop(list, stopAt, exitedAt);
  assert.deepEqual(list.map(iso), secondsIn(since, last + 1).map(iso));
  // The tick after the kill was enqueued by the restarted process, late, not skipped.
  const inGap = ticks.find((t) => t.tick > killedAt)!;
  assert.ok(
    inGap.tick + inGap.lag >= killedAt + 400,
    `the tick after the kill (${iso(killedAt)}) was enqueued ${inGap.lag} ms after it:\n${p.log()}`,
  );
  console.log(`restart: the tick during the restart was enqueued ${inGap.lag} ms late`);
}

/** All the scenarios at once, on `url` (default: a file broker in a temp directory). */
async function scenarios(redisUrl?: string): Promise<void> {
  const e = setup("schedules.ts");
  if (redisUrl) e.env.DRAMATIS_BROKER = redisUrl;
  const url = e.env.DRAMATIS_BROKER!;
  const unique = Math.random().toString(36).slice(2, 8);
  try {
    await Promise.all([
      threeWorkers(e, url, unique),
      restart(e, url, unique),
      downtime(e, url, unique, "once", ["deno", "bun"]),
      downtime(e, url, unique, "skip", ["bun", "deno"]),
      downtime(e, url, unique, "all", ["deno", "deno"]),
    ]);
  } finally {
    cleanup(e);
  }
}

test(
  "schedules on the file broker: 3 workers, SIGKILL, downtime: each tick once, missed policies",
  {
    ...e2e,
    timeout: 120_000,
  },
  async () => {
    await scenarios();
  },
);

const redis: { broker?: Broker; skip: string | false } = { skip: false };
try {
  redis.broker = brokerFromUrl(`${SHARED_URL}?namespace=${randomNamespace("sched")}`);
  if (!redis.broker.capabilities.schedules) {
    redis.skip = "this RedisBroker has no schedules capability";
  }
} catch (e) {
  redis.skip = `no Redis: ${(e as Error).message}`;
}

test("schedules on Redis: the same scenarios", {
  ...e2e,
  skip: redis.skip,
  timeout: 120_000,
}, async () => {
  const ns = (redis.broker as Broker & { namespace: string }).namespace;
  await redis.broker!.close();
  try {
    await scenarios(`${SHARED_URL}?namespace=${ns}`);
  } finally {
    await deleteKeys(`${ns}:`);
  }
});

test("secondsIn and the per-second cron agree", () => {
  const from = Date.UTC(2026, 0, 1, 0, 0, 0, 300);
  const expected: number[] = [];
  for (let t = SECOND.next(from - 1)!; t < from + 5000; t = SECOND.next(t)!) expected.push(t);
  assert.deepEqual(secondsIn(from, from + 5000), expected);
});

test("runSchedules in code: two runners on one broker enqueue each tick once, on time", async () => {
  const broker = new StubBroker();
  const ping = actor(function ping() {}, { broker, actorName: "ping", queueName: "pings" });
  const s = schedule("in-code-ping", "* * * * * *", ping);
  try {
    const stop = new AbortController();
    const from = Date.now();
    const runners = [1, 2].map(() => runSchedules({ broker, signal: stop.signal }));
    await sleep(2_600);
    stop.abort();
    await Promise.all(runners);
    const to = Date.now();
    const c = broker.consume("pings");
    const got = await c.receive(100, { timeout: 10 });
    const ticks = got.map((m) => m.options[SCHEDULE_TICK_OPTION] as number).sort((a, b) => a - b);
    const expected = secondsIn(from, to);
    // A tick within a few ms of the stop may or may not be in: compare the sure ones.
    assert.deepEqual(
      ticks.filter((t) => t < to - 100).map(iso),
      expected.filter((t) => t < to - 100).map(iso),
    );
    assert.ok(ticks.length >= 2, `only ${ticks.length} ticks`);
    for (const m of got) assert.equal(m.options[SCHEDULE_OPTION], "in-code-ping");
    const lags = got.map((m) => m.messageTimestamp - (m.options[SCHEDULE_TICK_OPTION] as number));
    console.log(`in code: enqueued after the tick: ${lags.join(", ")} ms`);
    assert.ok(Math.max(...lags) < 1000, `late: ${lags}`);
    assert.equal((await broker.lastTicks()).get("in-code-ping"), ticks.at(-1));
  } finally {
    removeSchedule(s.name);
  }
});

test("runSchedules: a broker without the schedules capability is refused with Unsupported", async () => {
  class Plain extends StubBroker {
    override get capabilities() {
      return NO_CAPABILITIES;
    }
  }
  const broker = new Plain();
  const s = schedule("no-ticks", "@hourly", actor(function hourly() {}, { broker }));
  try {
    await assert.rejects(
      runSchedules({ broker, signal: AbortSignal.timeout(1000) }),
      (e: Error) =>
        e instanceof Unsupported &&
        /Plain cannot run schedules \(1 schedule\(s\): no-ticks\)/.test(e.message),
    );
    // No schedules: nothing to run, whatever the broker.
    await runSchedules({ broker, schedules: [] });
  } finally {
    removeSchedule(s.name);
  }
});

test("the scheduler's rounds across DST: a repeated hour's tick once, a skipped hour's shifted, once", async () => {
  const { enqueueDue } = await import("../schedule/_enqueue_due.ts");
  const { getLogger } = await import("../util/log.ts");
  const cases: [string, string, string, string, string[]][] = [
    // zone, cron, from, to (UTC), the ticks enqueued (UTC)
    ["America/New_York", "30 1 * * *", "2024-11-03T04:00Z", "2024-11-03T09:00Z", [
      "2024-11-03T05:30", // 01:30 EDT; 01:30 EST (06:30Z) is the same wall time: not again
    ]],
    ["America/New_York", "*/30 * * * *", "2024-11-03T04:50Z", "2024-11-03T07:10Z", [
      "2024-11-03T05:00", // 01:00 EDT
      "2024-11-03T05:30",
      "2024-11-03T06:00", // 01:00 EST: every 30 minutes by elapsed time, both passes
      "2024-11-03T06:30",
      "2024-11-03T07:00",
    ]],
    ["Europe/Berlin", "30 2 * * *", "2024-03-30T23:00Z", "2024-03-31T03:00Z", [
      "2024-03-31T01:30", // 02:30 does not exist: 03:30 CEST, once
    ]],
    ["Europe/Berlin", "0 * * * *", "2024-03-30T23:30Z", "2024-03-31T02:30Z", [
      "2024-03-31T00:00", // 01:00 CET
      "2024-03-31T01:00", // 03:00 CEST: 02:00 does not exist, the hour goes on by elapsed time
      "2024-03-31T02:00",
    ]],
  ];
  for (const [zone, expr, from, to, want] of cases) {
    const broker = new StubBroker();
    const target = actor(function dst() {}, { broker, actorName: "dst", queueName: "dst" });
    const s = schedule(`dst-${zone}-${expr}`.replace(/[^\w.:-]/g, "_"), expr, target, {
      timezone: zone,
    });
    try {
      // Two processes, started at `from`, each waking at every next tick (one a little late).
      const since = Date.parse(from), end = Date.parse(to);
      const procs = [0, 7].map((late) => ({ late, reported: new Map<string, number>() }));
      for (let t: number | null = since; t !== null && t < end; t = s.cron.next(t)) {
        for (const p of procs) {
          await enqueueDue(broker, [s], {
            now: t + p.late,
            since,
            grace: 60_000,
            logger: getLogger("test"),
            reported: p.reported,
          });
        }
      }
      const c = broker.consume("dst");
      const got = (await c.receive(100, { timeout: 10 })).map((m) =>
        m.options[SCHEDULE_TICK_OPTION] as number
      );
      assert.deepEqual(
        got.sort((a, b) => a - b).map((t) => iso(t).slice(0, 16)),
        want,
        `${zone} ${expr}`,
      );
    } finally {
      removeSchedule(s.name);
    }
  }
});

test("the scheduler's log after downtime: one line per stretch, by the process that enqueued", async () => {
  const { enqueueDue } = await import("../schedule/_enqueue_due.ts");
  const { Logger } = await import("../util/log.ts");
  class Lines extends Logger {
    lines: string[] = [];
    override info(text: string): void {
      this.lines.push(`INFO ${text}`);
    }
    override warning(text: string): void {
      this.lines.push(`WARNING ${text}`);
    }
  }
  const stopped = Date.UTC(2026, 0, 1, 12, 0, 0), now = stopped + 10_500; // 10 ticks missed
  for (
    const [missed, maxCatchUp, want] of [
      [
        "once",
        100,
        /^INFO Schedule log-once: ticks were missed from 2026-01-01T12:00:01\.000Z to 2026-01-01T12:00:10\.000Z; enqueued one catch-up \(missed: "once"\)\.$/,
      ],
      [
        "all",
        4,
        /^WARNING Schedule log-all: .*; enqueued 4 catch-up\(s\) \(missed: "all"\), the latest 4 only: more were missed, the older ones are dropped \(raise maxCatchUp to keep more\)\.$/,
      ],
      ["all", 100, /^INFO Schedule log-all: .*; enqueued 10 catch-up\(s\) \(missed: "all"\)\.$/],
      [
        "skip",
        100,
        /^INFO Schedule log-skip: skipped the ticks missed from 2026-01-01T12:00:01\.000Z to 2026-01-01T12:00:10\.000Z \(missed: "skip"\)\.$/,
      ],
    ] as const
  ) {
    const broker = new StubBroker();
    const target = actor(function logged() {}, {
      broker,
      actorName: "logged",
      queueName: "logged",
    });
    const s = schedule(`log-${missed}`, "* * * * * *", target, { missed, maxCatchUp });
    try {
      await broker.enqueueTick(s.name, stopped, s.message(stopped));
      // Two processes start at `now`, each runs two rounds (the second finds nothing new).
      const procs = [new Lines("a"), new Lines("b")].map((logger) => ({
        logger,
        reported: new Map(),
      }));
      for (let round = 0; round < 2; round++) {
        for (const p of procs) {
          await enqueueDue(broker, [s], { now: now + round, since: now, grace: 60_000, ...p });
        }
      }
      const lines = procs.flatMap((p) => p.logger.lines);
      // skip: each process says it skipped; the others: only the one whose enqueue won.
      assert.equal(lines.length, missed === "skip" ? 2 : 1, lines.join("\n"));
      for (const l of lines) assert.match(l, want);
      const expected = { once: 1, skip: 0, all: Math.min(maxCatchUp, 10) }[missed];
      assert.equal((await broker.stats("logged")).ready, 1 + expected);
    } finally {
      removeSchedule(s.name);
    }
  }
});
