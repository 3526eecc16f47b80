// Hard time limits in `cli.ts worker`: an actor that never yields is failed and its Web Worker
// replaced, whatever state the Web Worker is in, and replacing it runs nothing twice.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  cleanup,
  e2e,
  events,
  runCli,
  sendAll,
  setup,
  signal,
  sleep,
  startWorker,
  until,
} from "./_cli.ts";

const works = (e: ReturnType<typeof setup>) =>
  events(e).filter((x) => x.event === "work").map((x) => x.n as number).sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

test(
  "cli time limit: a Web Worker stuck before it reported ready is still replaced",
  e2e,
  async () => {
    const e = setup();
    try {
      // Queued before boot, and Web Workers that boot slowly: the messages reach them before
      // their Worker starts, so the spin starts before the Web Worker reports ready.
      await sendAll(e, [
        ["spin", []],
        ...range(0, 10).map((n) => ["work", [n]] as [string, unknown[]]),
      ]);
      e.env.SLOW_BOOT_MS = "1000";
      const w = startWorker(e, ["-t", "2", "-c", "4"]);
      await until("the spin started", () => events(e).some((x) => x.event === "spin-start"));
      await until(
        "the hard time limit",
        () => /without yielding: failing it with TimeLimitExceeded/.test(w.log()),
        20_000,
        w.log,
      );
      await until("every other message", () => works(e).length >= 10, 20_000, w.log);
      await sleep(300);
      assert.deepEqual(works(e), range(0, 10), "each other message exactly once");
      const dead = await runCli(e, ["dead-letters", "list", "default", e.tasks, "--json"]);
      assert.deepEqual(JSON.parse(dead.stdout).map((m: { actor_name: string }) => m.actor_name), [
        "spin",
      ]);
      signal(w, "SIGINT");
      assert.equal(await w.exited, 0, w.log());
    } finally {
      cleanup(e);
    }
  },
);

test(
  "cli time limit: replacing a stuck Web Worker runs none of its other messages twice",
  e2e,
  async () => {
    const e = setup();
    try {
      // The spin starts when the message before it completes, in the same macrotask: that
      // message's ack is not reported yet when the Web Worker is replaced.
      await sendAll(e, [
        ...range(0, 20).map((n) => ["work", [n, 20]] as [string, unknown[]]),
        ["spin", []],
        ...range(20, 40).map((n) => ["work", [n, 20]] as [string, unknown[]]),
      ]);
      const w = startWorker(e, ["-t", "1", "-c", "2"]);
      await until(
        "the hard time limit",
        () => /without yielding: failing it with TimeLimitExceeded/.test(w.log()),
        20_000,
        w.log,
      );
      await until("every other message", () => works(e).length >= 40, 30_000, w.log);
      await sleep(500);
      assert.deepEqual(works(e), range(0, 40), "each other message exactly once");
      signal(w, "SIGINT");
      assert.equal(await w.exited, 0, w.log());
    } finally {
      cleanup(e);
    }
  },
);

test(
  "cli time limit: an actor stuck during a graceful stop does not hold the stop",
  e2e,
  async () => {
    const e = setup();
    try {
      const w = startWorker(e, ["-t", "1"]); // the default shutdown timeout: 10 minutes
      await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
      await sendAll(e, [["spin", []]]);
      await until("the spin started", () => events(e).some((x) => x.event === "spin-start"));
      signal(w, "SIGINT");
      const t0 = Date.now();
      assert.equal(await w.exited, 0, w.log());
      assert.ok(Date.now() - t0 < 20_000, "the stop waited for the stuck actor");
      assert.match(w.log(), /without yielding: failing it with TimeLimitExceeded/);
      const dead = await runCli(e, ["dead-letters", "list", "default", e.tasks, "--json"]);
      assert.equal(JSON.parse(dead.stdout).length, 1, dead.out);
    } finally {
      cleanup(e);
    }
  },
);
