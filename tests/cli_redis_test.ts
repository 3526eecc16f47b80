// `cli.ts worker` on a Redis server that stops answering: the stop is bounded by the shutdown
// timeout and the log says what it waits for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TestRedis } from "./_redis_server.ts";
import {
  cleanup,
  e2e,
  events,
  oneLine,
  runCli,
  sendMany,
  setup,
  signal,
  sleep,
  startWorker,
  until,
} from "./_cli.ts";

test(
  "cli on Redis: a graceful stop with Redis not answering ends by the shutdown timeout",
  e2e,
  async () => {
    const server = await TestRedis.start();
    const e = setup();
    try {
      e.env.DRAMATIS_BROKER = server.url;
      const w = startWorker(e, ["-t", "1", "--shutdown-timeout", "3000"]);
      await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
      await sendMany(e, "work", [[1], [2]]);
      await until("work", () => events(e).length === 2, 20_000, w.log);
      server.signal("SIGSTOP"); // connections stay open; nothing answers
      await sleep(300);
      const t0 = Date.now();
      signal(w, "SIGINT");
      const code = await w.exited;
      const took = Date.now() - t0;
      assert.ok(took < 3_000 + 4_000, `the stop took ${took} ms:\n${w.log()}`);
      assert.equal(code, 0, w.log());
      // It says what it waits for, and where.
      const where = `redis at 127\\.0\\.0\\.1:${server.port}/0`;
      assert.match(w.log(), new RegExp(`\\[INFO\\] Waiting for .*\\(${where}\\)`));
      assert.match(w.log(), new RegExp(`\\[WARNING\\] Gave up waiting for .*\\(${where}\\)`));
    } finally {
      server.signal("SIGCONT");
      cleanup(e);
      await server.kill();
    }
  },
);

test("cli on Redis: the ready line names the server, never its password", e2e, async () => {
  const server = await TestRedis.start(["--requirepass", "s3cret-pw"]);
  const e = setup();
  try {
    e.env.DRAMATIS_BROKER = `redis://:s3cret-pw@127.0.0.1:${server.port}/3?namespace=clitest`;
    const w = startWorker(e, ["-t", "1"]);
    await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
    assert.match(
      w.log(),
      new RegExp(
        `Worker process is ready for action: redis at 127\\.0\\.0\\.1:${server.port}/3 ` +
          `\\(namespace clitest\\), queues default\\.`,
      ),
    );
    const sent = await runCli(e, ["send", e.tasks, "work", "[1]"]);
    assert.match(sent.stdout, new RegExp(`\\(redis at 127\\.0\\.0\\.1:${server.port}/3 `));
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0, w.log());
    assert.doesNotMatch(w.log() + sent.out, /s3cret/);
    // A wrong password: one line, exit 3, no password either.
    e.env.DRAMATIS_BROKER = `redis://:wrong-pw@127.0.0.1:${server.port}/3`;
    const bad = await runCli(e, ["queues", e.tasks]);
    oneLine(bad, 3, /could not connect to the broker: .*127\.0\.0\.1/);
    assert.doesNotMatch(bad.out, /wrong-pw/);
  } finally {
    cleanup(e);
    await server.kill();
  }
});
