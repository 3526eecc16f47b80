// The explicit garbage collections of a worker process's isolates (worker/_gc.ts): the
// threshold's parsing, and a worker tree that collects at every check still runs each message
// exactly once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_GC_MB, gcThreshold } from "../worker/_gc.ts";
import { cleanup, e2e, events, sendMany, setup, signal, startWorker, until } from "./_cli.ts";

const MB = 1024 * 1024;

test("gc: DRAMATIS_GC_MB sets the threshold; 0 turns it off; a bad value says what to give", () => {
  assert.equal(gcThreshold({}), DEFAULT_GC_MB * MB);
  assert.equal(gcThreshold({ DRAMATIS_GC_MB: "" }), DEFAULT_GC_MB * MB);
  assert.equal(gcThreshold({ DRAMATIS_GC_MB: "2.5" }), 2.5 * MB);
  assert.equal(gcThreshold({ DRAMATIS_GC_MB: "0" }), 0);
  for (const bad of ["-1", "lots"]) {
    assert.throws(
      () => gcThreshold({ DRAMATIS_GC_MB: bad }),
      (e: Error) =>
        e instanceof RangeError && /DRAMATIS_GC_MB must be a number of MB >= 0/.test(e.message),
    );
  }
});

test(
  "gc: a worker tree that collects garbage at every check runs each message exactly once",
  e2e,
  async () => {
    const e = setup();
    // A threshold of ~100 bytes: every isolate collects at (nearly) every check.
    e.env.DRAMATIS_GC_MB = "0.0001";
    try {
      const w = startWorker(e, ["-t", "2", "-c", "4", "-v"]);
      await sendMany(e, "work", Array.from({ length: 300 }, (_, i) => [i]));
      await until("300 messages", () => events(e).length >= 300, 30_000, w.log);
      await new Promise((r) => setTimeout(r, 300));
      const ns = events(e).map((x) => x.n as number).sort((a, b) => a - b);
      assert.deepEqual(ns, Array.from({ length: 300 }, (_, i) => i), "each message exactly once");
      const log = w.log();
      assert.match(
        log,
        /\[MainThread\] \[dramatis\.gc\] \[DEBUG\] Collected garbage: heap /,
      );
      // (A Web Worker's heap may not grow by the threshold between two checks of a short run.)
      signal(w, "SIGINT");
      assert.equal(await w.exited, 0, w.log());
    } finally {
      cleanup(e);
    }
  },
);
