// Stop signals as terminals, shells, `timeout`, systemd and Docker deliver them: to the whole
// process group the supervisor leads (its worker processes included), sometimes twice. One stop
// must be one graceful stop; a second one, later, the immediate stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  cleanup,
  e2e,
  events,
  queueStats,
  sendMany,
  setup,
  sleep,
  startWorker,
  until,
} from "./_cli.ts";

const count = (e: ReturnType<typeof setup>, event: string) =>
  events(e).filter((x) => x.event === event).length;

for (const sig of ["SIGINT", "SIGTERM"] as const) {
  test(`cli signals: one ${sig} to the process group is one graceful stop`, e2e, async () => {
    const e = setup();
    try {
      await sendMany(e, "slow", [[1, 3_000]]);
      const w = startWorker(e, ["-t", "1"], { group: true });
      await until("the actor started", () => count(e, "slow-start") === 1, 20_000, w.log);
      process.kill(-w.proc.pid!, sig); // the supervisor and its worker processes, as Ctrl-C does
      assert.equal(await w.exited, 0, w.log());
      assert.equal(count(e, "slow-end"), 1, `the running actor did not finish:\n${w.log()}`);
      assert.doesNotMatch(w.log(), /exiting now|killing worker processes/);
      const q = await queueStats(e);
      assert.equal(q.inFlight, 0, "the message was not acked");
      assert.equal(q.ready + q.delayed + q.dead, 0);
    } finally {
      cleanup(e);
    }
  });
}

test(
  "cli signals: TERM to the supervisor and then its group (as `timeout` sends) is one stop",
  e2e,
  async () => {
    const e = setup();
    try {
      await sendMany(e, "slow", [[1, 3_000]]);
      const w = startWorker(e, ["-t", "1"], { group: true });
      await until("the actor started", () => count(e, "slow-start") === 1, 20_000, w.log);
      process.kill(w.proc.pid!, "SIGTERM");
      process.kill(-w.proc.pid!, "SIGTERM");
      assert.equal(await w.exited, 0, w.log());
      assert.equal(count(e, "slow-end"), 1, `the running actor did not finish:\n${w.log()}`);
      assert.equal((await queueStats(e)).inFlight, 0);
    } finally {
      cleanup(e);
    }
  },
);

test("cli signals: a second group INT, later, stops at once with exit code 1", e2e, async () => {
  const e = setup();
  try {
    await sendMany(e, "slow", [[1, 60_000]]);
    const w = startWorker(e, ["-t", "1"], { group: true });
    await until("the actor started", () => count(e, "slow-start") === 1, 20_000, w.log);
    process.kill(-w.proc.pid!, "SIGINT");
    await until("the graceful stop", () => /stopping gracefully/.test(w.log()), 10_000, w.log);
    await sleep(500);
    const t0 = Date.now();
    process.kill(-w.proc.pid!, "SIGINT");
    assert.equal(await w.exited, 1, w.log());
    assert.ok(Date.now() - t0 < 5_000, "the second signal did not stop it at once");
    assert.match(w.log(), /Received SIGINT again: killing worker processes/);
    assert.equal(count(e, "slow-end"), 0);
    // Killed, not acked: the broker gives the message back when its lease expires.
    const q = await queueStats(e);
    assert.equal(q.inFlight + q.ready, 1, "the message was lost");
  } finally {
    cleanup(e);
  }
});

test(
  "cli signals: HUP to the process group reloads; the running actor finishes once",
  e2e,
  async () => {
    const e = setup();
    try {
      await sendMany(e, "slow", [[1, 2_000]]);
      const w = startWorker(e, ["-t", "1"], { group: true });
      await until("the actor started", () => count(e, "slow-start") === 1, 20_000, w.log);
      process.kill(-w.proc.pid!, "SIGHUP");
      await until(
        "the reload",
        () => (w.log().match(/ready for action/g) ?? []).length >= 2,
        20_000,
        w.log,
      );
      assert.equal(count(e, "slow-end"), 1, w.log());
      assert.equal((await queueStats(e)).inFlight, 0);
      process.kill(-w.proc.pid!, "SIGINT");
      assert.equal(await w.exited, 0, w.log());
      assert.equal(count(e, "slow-start"), 1, "the message ran twice");
    } finally {
      cleanup(e);
    }
  },
);
