// Pausing a schedule (broker.pauseSchedule / resumeSchedule, `dramatis schedules pause|resume`):
// two real `cli.ts worker` processes (Deno and Bun) run a per-second schedule; paused from the
// CLI, neither enqueues a tick; resumed, both go on from the next tick, the ticks of the pause
// dropped ("skip"). The rounds of the scheduler after a resume, per missed policy, on a StubBroker;
// the broker refuses a paused schedule's ticks itself (file, Redis, stub).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actor,
  type Broker,
  brokerFromUrl,
  Cron,
  FileBroker,
  Message,
  removeSchedule,
  schedule,
  SCHEDULE_TICK_OPTION,
  StubBroker,
} from "../mod.ts";
import { enqueueDue } from "../schedule/_enqueue_due.ts";
import { Logger } from "../util/log.ts";
import { cleanup, e2e, type Env, runCli, setup, sleep, until } from "./_cli.ts";
import {
  iso,
  lastBeforeStop,
  noDuplicates,
  secondsIn,
  stop,
  ticksOf,
  untilMidSecond,
  worker,
} from "./_scheduler.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";

const SECOND = new Cron("* * * * * *");

/** Two workers run the schedule; paused and resumed from the CLI (another process). */
async function pauseAcrossProcesses(e: Env, url: string): Promise<void> {
  const name = e.env.SCHED_NAME!;
  const procs = [worker(e, "deno", {}), worker(e, "bun", {})];
  const all = Math.max(...await Promise.all(procs.map((p) => p.since())));
  await untilMidSecond(all + 2_000); // 2-3 ticks by both
  const p0 = Date.now();
  let r = await runCli(e, ["schedules", "pause", name, e.tasks]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, new RegExp(`^Paused schedule ${name} on the `));
  const p1 = Date.now();
  for (const p of procs) {
    await until("the pause seen", () => /is paused \(since/.test(p.log()), 20_000, p.log);
  }
  await sleep(3_000); // three rounds of each process with the schedule paused
  const r0 = Date.now();
  r = await runCli(e, ["schedules", "resume", name, e.tasks]);
  assert.equal(r.code, 0, r.out);
  const r1 = Date.now();
  for (const p of procs) {
    await until("the resume seen", () => /was resumed at/.test(p.log()), 20_000, p.log);
  }
  const stopAt = await untilMidSecond(r1 + 2_000);
  await Promise.all(procs.map(stop));
  const exitedAt = Date.now();

  const list = noDuplicates(await ticksOf(url, e.env.SCHED_QUEUE!, name), "pause");
  const last = lastBeforeStop(list, stopAt, exitedAt);
  assert.deepEqual(
    list.filter((t) => t > p1 && t < r0).map(iso),
    [],
    `ticks enqueued while paused (${iso(p1)} to ${iso(r0)})`,
  );
  // Before the pause: every tick from when both ran; after the resume: every tick, no burst.
  assert.deepEqual(list.filter((t) => t >= all && t < p0).map(iso), secondsIn(all, p0).map(iso));
  assert.deepEqual(list.filter((t) => t >= r1).map(iso), secondsIn(r1, last + 1).map(iso));
  assert.ok(list.filter((t) => t > p1 && t < r1).length <= 1, "a burst after the resume");
}

async function scenario(redisUrl?: string): Promise<void> {
  const e = setup("schedules.ts");
  if (redisUrl) e.env.DRAMATIS_BROKER = redisUrl;
  const unique = Math.random().toString(36).slice(2, 8);
  e.env.SCHED_NAME = `paused-${unique}`;
  e.env.SCHED_QUEUE = `ticks-paused-${unique}`;
  try {
    await pauseAcrossProcesses(e, e.env.DRAMATIS_BROKER!);
  } finally {
    cleanup(e);
  }
}

test("pause a schedule on the file broker: no process ticks; resumed, on from the next tick", {
  ...e2e,
  timeout: 90_000,
}, async () => {
  await scenario();
});

const redis: { skip: string | false; ns: string } = { skip: false, ns: randomNamespace("pause") };
try {
  await brokerFromUrl(`${SHARED_URL}?namespace=${redis.ns}`).close();
} catch (e) {
  redis.skip = `no Redis: ${(e as Error).message}`;
}

test(
  "pause a schedule on Redis: the same",
  { ...e2e, skip: redis.skip, timeout: 90_000 },
  async () => {
    try {
      await scenario(`${SHARED_URL}?namespace=${redis.ns}`);
    } finally {
      await deleteKeys(`${redis.ns}:`);
    }
  },
);

/** The broker itself refuses a paused schedule's ticks, and keeps the pause across instances. */
async function brokerRefuses(make: () => Broker): Promise<void> {
  const broker = make();
  broker.declareQueue("pz");
  const msg = (id: string) => new Message({ queueName: "pz", actorName: "pz", messageId: id });
  const t = SECOND.previous(Date.now())!;
  assert.equal(await broker.enqueueTick("pz", t - 2000, msg("a")), true);
  assert.deepEqual(await broker.schedulePauses(), new Map());
  const before = Date.now();
  await broker.pauseSchedule("pz");
  await broker.pauseSchedule("pz"); // twice: no change
  const p = (await broker.schedulePauses()).get("pz")!;
  assert.equal(p.paused, true);
  assert.ok(p.at >= before && p.at <= Date.now(), String(p.at));
  assert.equal(await broker.enqueueTick("pz", t - 1000, msg("b")), false);
  const other = make(); // another process's view
  try {
    assert.equal((await other.schedulePauses()).get("pz")?.paused, true);
    other.declareQueue("pz");
    assert.equal(await other.enqueueTick("pz", t, msg("c")), false);
    await other.resumeSchedule("pz");
  } finally {
    if (other !== broker) await other.close();
  }
  const resumed = (await broker.schedulePauses()).get("pz")!;
  assert.equal(resumed.paused, false);
  assert.ok(resumed.at >= p.at);
  assert.equal(await broker.enqueueTick("pz", t, msg("d")), true);
  assert.equal((await broker.lastTicks()).get("pz"), t);
  assert.equal((await broker.stats("pz")).ready, 2);
  await broker.close();
}

test("the broker refuses a paused schedule's ticks: stub, file, Redis", async () => {
  const stub = new StubBroker();
  await brokerRefuses(() => stub);
  const dir = mkdtempSync(join(tmpdir(), "dramatis-pause-"));
  try {
    await brokerRefuses(() => new FileBroker({ dir }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (redis.skip) return;
  const ns = randomNamespace("pauseops");
  try {
    await brokerRefuses(() => brokerFromUrl(`${SHARED_URL}?namespace=${ns}`));
  } finally {
    await deleteKeys(`${ns}:`);
  }
});

class Lines extends Logger {
  lines: string[] = [];
  override info(text: string): void {
    this.lines.push(text);
  }
  override warning(text: string): void {
    this.lines.push(text);
  }
}

test("the rounds after a resume: the ticks of the pause follow the missed policy", async () => {
  for (const [missed, want] of [["skip", 0], ["once", 1], ["all", 3]] as const) {
    const broker = new StubBroker();
    const target = actor(function paused_job() {}, { broker, queueName: "pj" });
    const s = schedule(`pj-${missed}`, "* * * * * *", target, { missed, maxCatchUp: 3 });
    try {
      const t0 = Date.now(), since = t0 - 60_000;
      const last = SECOND.previous(t0 - 10_000)!;
      await broker.enqueueTick(s.name, last, s.message(last));
      const o = {
        since,
        grace: 60_000,
        logger: new Lines("a"),
        reported: new Map(),
        pauses: new Map(),
      };
      await broker.pauseSchedule(s.name);
      await enqueueDue(broker, [s], { ...o, now: t0 + 5_000 });
      await enqueueDue(broker, [s], { ...o, now: t0 + 6_000 });
      assert.equal((await broker.stats("pj")).ready, 1, "a tick while paused");
      assert.equal(o.logger.lines.length, 1, o.logger.lines.join("\n"));
      assert.match(o.logger.lines[0]!, new RegExp(`^Schedule ${s.name} is paused \\(since `));
      await broker.resumeSchedule(s.name);
      const resumedAt = (await broker.schedulePauses()).get(s.name)!.at;
      const now = resumedAt + 5_500;
      await enqueueDue(broker, [s], { ...o, now });
      await enqueueDue(broker, [s], { ...o, now: now + 1 }); // nothing new
      assert.match(o.logger.lines[1]!, new RegExp(`^Schedule ${s.name} was resumed at `));
      const c = broker.consume("pj");
      const ticks = (await c.receive(100, { timeout: 10 }))
        .map((m) => m.options[SCHEDULE_TICK_OPTION] as number).sort((a, b) => a - b);
      await c.close();
      assert.equal(ticks[0], last);
      const ofPause = ticks.filter((t) => t > last && t < resumedAt);
      assert.equal(ofPause.length, want, `${missed}: ${ticks.map(iso)}`);
      assert.deepEqual(
        ticks.filter((t) => t >= resumedAt).map(iso),
        secondsIn(resumedAt, now + 1).map(iso),
        `${missed}: the ticks from the resume on`,
      );
    } finally {
      removeSchedule(s.name);
    }
  }
});
