// A worker process whose broker fails every receive backs off (200 ms, doubling, up to 30 s);
// a stop must end that wait at once, not when the backoff is over (issue 12: the Feeder's
// backoff ignored the stop signal). The stop is sent while the backoff is 6.4 s, longer than
// the 2 s the stop gives the consumers' last receive: a wait that ignores the stop makes the
// worker process give up on it ("Gave up waiting for the consumers' last receive").
import { test } from "node:test";
import assert from "node:assert/strict";
import { cleanup, e2e, setup, signal, startWorker, until } from "./_cli.ts";

test("worker process: a stop ends a long receive backoff at once", e2e, async () => {
  const e = setup("failing_broker.ts");
  try {
    const w = startWorker(e, ["-p", "1", "-t", "1", "--shutdown-timeout", "100"]);
    await until("a long backoff", () => /retrying in 6400 ms/.test(w.log()), 30_000, w.log);
    signal(w, "SIGTERM");
    assert.equal(await w.exited, 0, w.log());
    assert.match(w.log(), /Worker process stopped\./);
    assert.doesNotMatch(w.log(), /Gave up waiting for the consumers' last receive/, w.log());
  } finally {
    cleanup(e);
  }
});
