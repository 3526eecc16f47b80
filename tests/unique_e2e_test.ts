// The uniqueKey actor option end to end on the file broker: 8 processes send the same unique job
// (syncUser(7), key "sync:7") 1,000 times each at once, through actor.send(): one message is
// enqueued and every send gets its id; a real `cli.ts worker` runs it once; once it finished, the
// key is free and a new send enqueues (and runs) a second one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import {
  cleanup,
  e2e,
  events,
  fixtures,
  queueStats,
  setup,
  sleep,
  startWorker,
  until,
} from "./_cli.ts";
import { scriptArgs } from "./_runtime.ts";

function sender(env: Record<string, string>, count: number, at: number): Promise<string[]> {
  const file = join(fixtures, "unique_tasks.ts");
  const p = spawn(process.execPath, [...scriptArgs(file), String(count), String(at)], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  p.stdout!.on("data", (d) => out += d);
  return new Promise((resolve, reject) =>
    p.on(
      "exit",
      (code) => code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}`)),
    )
  );
}

test("uniqueKey option: 8 processes x 1,000 sends at once enqueue one job, run once", {
  ...e2e,
  timeout: 90_000,
}, async () => {
  const e = setup("unique_tasks.ts");
  try {
    const at = Date.now() + 2_000;
    const ids = await Promise.all(Array.from({ length: 8 }, () => sender(e.env, 1000, at)));
    assert.deepEqual(ids.map((l) => l.length), Array(8).fill(1), "each send got the holder's id");
    assert.equal(new Set(ids.flat()).size, 1, `several messages enqueued: ${ids.flat()}`);
    const stats = await queueStats(e, "unique-e2e");
    assert.equal(stats.ready, 1);

    const w = startWorker(e, ["-t", "1"]);
    await until("the job to run", () => events(e).length >= 1, 30_000, w.log);
    await sleep(500); // a second run would show by now
    assert.deepEqual(events(e), [{ user: 7, id: ids[0]![0], key: "sync:7" }]);

    // Finished: the key is released; the next send is a new job.
    const [again] = await sender(e.env, 1, 0);
    assert.notEqual(again, ids[0]![0]);
    await until("the second job to run", () => events(e).length >= 2, 30_000, w.log);
    assert.deepEqual(events(e).map((r) => r.id), [ids[0]![0], again]);
    process.kill(w.proc.pid!, "SIGTERM");
    await w.exited;
  } finally {
    cleanup(e);
  }
});
