// End-to-end tests of `cli.ts worker`: the real CLI as a child process of this runtime, on the
// file broker in a temp directory, with messages sent from other processes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isBun, scriptArgs } from "./_runtime.ts";
import { freePort } from "./_redis_server.ts";
import { isAlive } from "../runtime/process.ts";
import {
  cleanup,
  descendants,
  e2e,
  events,
  fixtures,
  root,
  runCli,
  send,
  sendMany,
  setup,
  signal,
  startWorker,
  until,
} from "./_cli.ts";

test("cli: --help fits a terminal, --version prints the version", async () => {
  const e = setup();
  try {
    const help = await runCli(e, ["--help"]);
    assert.equal(help.code, 0);
    const lines = help.out.trimEnd().split("\n");
    assert.ok(lines.length <= 40, `${lines.length} lines`);
    assert.ok(lines.every((l) => l.length <= 80), "a help line is wider than 80 columns");
    const v = await runCli(e, ["--version"]);
    assert.match(v.out, /^dramatis \d+\.\d+\.\d+/);
    const bad = await runCli(e, ["worker", e.tasks, "-t", "zero"]);
    assert.equal(bad.code, 64);
    assert.match(bad.out, /--threads takes a whole number/);
  } finally {
    cleanup(e);
  }
});

test("cli: a broker that cannot be reached is one clear error and exit code 3", async () => {
  const e = setup();
  try {
    const port = await freePort();
    e.env.DRAMATIS_BROKER = `redis://127.0.0.1:${port}/0`;
    const t0 = Date.now();
    const r = await runCli(e, ["worker", e.tasks]);
    assert.equal(r.code, 3, r.out);
    assert.ok(Date.now() - t0 < 15_000, "took too long to give up");
    const errors = r.out.match(/Could not connect to the broker: .*/g) ?? [];
    assert.equal(errors.length, 1, r.out);
    assert.match(errors[0], new RegExp(`127\\.0\\.0\\.1:${port}`));
  } finally {
    cleanup(e);
  }
});

test("cli: a module that fails to import is a clear error and exit code 2", async () => {
  const e = setup();
  try {
    const r = await runCli(e, ["worker", join(fixtures, "bad_module.ts")]);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /Could not import .*bad_module\.ts.*DATABASE_URL is not set/s);
  } finally {
    cleanup(e);
  }
});

test(
  "cli: boots, processes with -t 2 -c 8, logs per message with -v, INT exits 0",
  e2e,
  async () => {
    const e = setup();
    try {
      const w = startWorker(e, ["-t", "2", "-c", "8", "-v"]);
      await until("boot", () => /Worker process is ready for action/.test(w.log()));
      assert.match(
        w.log(),
        /\[PID \d+\] \[MainThread\] \[dramatis\.MainProcess\] \[INFO\] Dramatis '.*' is booting up/,
      );
      await sendMany(e, "work", Array.from({ length: 200 }, (_, i) => [i]));
      await until("200 messages", () => events(e).length >= 200);
      await new Promise((r) => setTimeout(r, 200));
      const ns = events(e).map((x) => x.n as number).sort((a, b) => a - b);
      assert.deepEqual(ns, Array.from({ length: 200 }, (_, i) => i), "each message exactly once");
      assert.match(
        w.log(),
        /\[Worker-[12]\] \[dramatis\.actor\.work\] \[DEBUG\] Received args=\[\d+\] kwargs=\{\}/,
      );
      assert.match(w.log(), /\[DEBUG\] Completed after [\d.]+ ms/);
      assert.ok(
        /\[Worker-1\]/.test(w.log()) && /\[Worker-2\]/.test(w.log()),
        "both Web Workers ran",
      );
      signal(w, "SIGINT");
      assert.equal(await w.exited, 0);
    } finally {
      cleanup(e);
    }
  },
);

test("cli: INT finishes in-flight work and hands the rest back: nothing is lost", e2e, async () => {
  const e = setup();
  try {
    await sendMany(e, "work", Array.from({ length: 40 }, (_, i) => [i, 100]));
    const w = startWorker(e, ["-t", "1", "-c", "4"]);
    await until("some work", () => events(e).length >= 4);
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0, w.log());
    const done = events(e).length;
    assert.ok(done < 40, "the worker did everything before the signal; the test proves nothing");
    const stats = await runCli(e, ["queues", e.tasks, "--json"]);
    const q = JSON.parse(stats.out).find((s: { queueName: string }) => s.queueName === "default");
    assert.equal(q.inFlight, 0);
    assert.equal(q.ready, 40 - done, "every message not done is back in the queue");
    const w2 = startWorker(e, ["-t", "1", "-c", "8"]);
    await until("the rest", () => events(e).length >= 40);
    signal(w2, "SIGINT");
    await w2.exited;
    const ns = new Set(events(e).map((x) => x.n));
    assert.equal(ns.size, 40);
    assert.equal(events(e).length, 40, "no message ran twice");
  } finally {
    cleanup(e);
  }
});

test("cli: a second INT stops at once with exit code 1", e2e, async () => {
  const e = setup();
  try {
    await sendMany(e, "work", [[1, 60_000]]);
    const w = startWorker(e, ["-t", "1"]);
    await until("boot", () => /ready for action/.test(w.log()));
    await new Promise((r) => setTimeout(r, 300));
    signal(w, "SIGINT");
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    signal(w, "SIGINT");
    assert.equal(await w.exited, 1);
    assert.ok(Date.now() - t0 < 5_000);
  } finally {
    cleanup(e);
  }
});

test(
  "cli: slow actors are shared between worker processes, not fetched by the first",
  e2e,
  async () => {
    const e = setup();
    try {
      // Queued before the workers start: the first worker process to claim could take them all.
      await sendMany(e, "work", Array.from({ length: 12 }, (_, i) => [i, 400]));
      const w = startWorker(e, ["-p", "2", "-t", "1", "-c", "2"]);
      await until("12 messages", () => events(e).length >= 12, 20_000, w.log);
      const byPid = new Map<number, number>();
      for (const x of events(e)) byPid.set(x.pid as number, (byPid.get(x.pid as number) ?? 0) + 1);
      assert.equal(byPid.size, 2, `one process ran everything: ${JSON.stringify([...byPid])}`);
      for (const n of byPid.values()) {
        assert.ok(n >= 3, `unbalanced: ${JSON.stringify([...byPid])}`);
      }
      signal(w, "SIGINT");
      assert.equal(await w.exited, 0);
    } finally {
      cleanup(e);
    }
  },
);

test(
  "cli: worker processes of a supervisor killed with SIGKILL stop and hand work back",
  e2e,
  async () => {
    const e = setup();
    try {
      await sendMany(e, "work", Array.from({ length: 40 }, (_, i) => [i, 300]));
      const w = startWorker(e, ["-t", "1", "-c", "4"]);
      await until("some work", () => events(e).length >= 4);
      const children = descendants(w.proc.pid!);
      assert.ok(children.length > 0, "no worker process found");
      process.kill(w.proc.pid!, "SIGKILL");
      await until(
        "the orphaned worker process exits",
        () => !children.some(isAlive),
        15_000,
        w.log,
      );
      assert.match(w.log(), /The supervisor \(pid \d+\) is gone: stopping this worker process/);
      const done = events(e).length;
      assert.ok(done < 40, "everything ran before the kill; the test proves nothing");
      const stats = await runCli(e, ["queues", e.tasks, "--json"]);
      const q = JSON.parse(stats.out).find((s: { queueName: string }) => s.queueName === "default");
      assert.equal(q.inFlight, 0, "messages left in flight (they would wait for their lease)");
      assert.equal(q.ready, 40 - done, "every message not done is back in the queue");
    } finally {
      cleanup(e);
    }
  },
);

test("cli: HUP reloads changed code without losing or repeating a message", e2e, async () => {
  const e = setup();
  try {
    const w = startWorker(e, ["-t", "1"]);
    await until("boot", () => /ready for action/.test(w.log()));
    await send(e, "work", [1]);
    await until("v1", () => events(e).length === 1);
    writeFileSync(e.tasks, readFileSync(e.tasks, "utf8").replace('"v1"', '"v2"'));
    signal(w, "SIGHUP");
    await until("reload", () => (w.log().match(/ready for action/g) ?? []).length >= 2);
    await send(e, "work", [2]);
    await until("v2", () => events(e).length === 2);
    assert.deepEqual(events(e).map((x) => [x.n, x.version]), [[1, "v1"], [2, "v2"]]);
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0);
  } finally {
    cleanup(e);
  }
});

test("cli: --watch reloads when a .ts file changes", e2e, async () => {
  const e = setup();
  try {
    const w = startWorker(e, ["-t", "1", "--watch", fixtures]);
    await until("boot", () => /ready for action/.test(w.log()));
    writeFileSync(e.tasks, readFileSync(e.tasks, "utf8").replace('"v1"', '"v3"'));
    await until("reload", () => (w.log().match(/ready for action/g) ?? []).length >= 2);
    await send(e, "work", [7]);
    await until("v3", () => events(e).length === 1);
    assert.equal(events(e)[0].version, "v3");
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0);
  } finally {
    cleanup(e);
  }
});

function cpuTicks(pid: number): number {
  // utime + stime of every thread of the process, in clock ticks.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

test(
  "cli: an actor stuck in while(true) is failed, its Web Worker replaced, the CPU freed",
  e2e,
  async () => {
    const e = setup();
    try {
      const w = startWorker(e, ["-t", "1", "-c", "4"]);
      await until("boot", () => /ready for action/.test(w.log()));
      await sendMany(e, "work", [[1, 800], [2, 800], [3, 800]]);
      await send(e, "spin", []);
      await until("the spin started", () => events(e).some((x) => x.event === "spin-start"));
      await until(
        "the stuck Web Worker to be replaced",
        () => /without yielding: failing it with TimeLimitExceeded/.test(w.log()),
        10_000,
      );
      await until(
        "other messages completed",
        () => events(e).filter((x) => x.event === "work").length === 3,
      );
      await until(
        "recovery",
        () => (w.log().match(/ready for action/g) ?? []).length >= (isBun ? 1 : 2),
      );
      await new Promise((r) => setTimeout(r, 500));
      // The CPU is free again: the worker's processes use (almost) no CPU for a second.
      const pids = [w.proc.pid!, ...descendants(w.proc.pid!)];
      const before = pids.map(cpuTicks).reduce((a, b) => a + b, 0);
      await new Promise((r) => setTimeout(r, 1_000));
      const after = pids.map((p) => existsSync(`/proc/${p}/stat`) ? cpuTicks(p) : 0)
        .reduce((a, b) => a + b, 0);
      assert.ok(
        after - before < 30,
        `the worker used ${after - before} ticks in 1 s: still spinning`,
      );
      const dead = await runCli(e, ["dead-letters", "list", "default", e.tasks, "--json"]);
      const letters = JSON.parse(dead.out);
      assert.equal(letters.length, 1);
      assert.equal(letters[0].actor_name, "spin");
      assert.deepEqual(events(e).filter((x) => x.event === "spin-start").length, 1);
      signal(w, "SIGINT");
      assert.equal(await w.exited, 0);
    } finally {
      cleanup(e);
    }
  },
);

test(
  "cli: a failing actor logs its retries, then is dead-lettered; unknown actors too",
  e2e,
  async () => {
    const e = setup();
    try {
      const w = startWorker(e, ["-t", "1"]);
      await until("boot", () => /ready for action/.test(w.log()));
      await send(e, "fails", []);
      // A message for an actor this worker does not know, written by another program.
      const script = join(e.dir, "ghost.ts");
      writeFileSync(
        script,
        `import { getBroker, Message } from ${JSON.stringify(join(root, "mod.ts"))};\n` +
          `const b = getBroker(); b.declareQueue("default");\n` +
          `await b.enqueue(new Message({ queueName: "default", actorName: "ghost", args: [] }));\n` +
          `await b.close();\n`,
      );
      await new Promise((r) =>
        spawn(process.execPath, scriptArgs(script), { env: { ...process.env, ...e.env } }).on(
          "exit",
          r,
        )
      );
      await send(e, "work", [5]);
      await until(
        "dead letters",
        () => /Retries exceeded/.test(w.log()) && /undefined actor "ghost"/.test(w.log()),
      );
      await until("work", () => events(e).some((x) => x.event === "work"));
      assert.match(
        w.log(),
        /Failed to process message fails\(\).*\n.*Error: this actor always fails/,
      );
      assert.match(w.log(), /Retrying message .* in \d+ milliseconds/);
      assert.equal(events(e).filter((x) => x.event === "fails").length, 3);
      const dead = await runCli(e, ["dead-letters", "list", "default", e.tasks, "--json"]);
      assert.deepEqual(
        JSON.parse(dead.out).map((m: { actor_name: string }) => m.actor_name).sort(),
        [
          "fails",
          "ghost",
        ],
      );
      const table = await runCli(e, ["queues", e.tasks]);
      assert.match(
        table.out,
        /queue\s+ready\s+delayed\s+in flight\s+dead\ndefault\s+0\s+0\s+0\s+2/,
      );
      const requeued = await runCli(e, ["dead-letters", "purge", "default", e.tasks]);
      assert.match(requeued.out, /Purged 2 dead letter/);
      signal(w, "SIGINT");
      assert.equal(await w.exited, 0);
    } finally {
      cleanup(e);
    }
  },
);

test("cli on Redis: an undecodable message is dead-lettered, the rest run", e2e, async () => {
  const e = setup();
  const ns = `clibad${crypto.randomUUID().slice(0, 8)}`;
  const { SHARED_URL } = await import("./_redis_server.ts");
  e.env.DRAMATIS_BROKER = `${SHARED_URL}?namespace=${ns}`;
  const { RedisClient } = await import("../broker/redis/client.ts");
  const redis = await RedisClient.connect(SHARED_URL);
  try {
    // What a Python producer with a pickle encoder would leave: not JSON at all.
    await redis.send(["HSET", `${ns}:default.msgs`, "pickled", new Uint8Array([0x80, 0x04, 0x95])]);
    await redis.send(["RPUSH", `${ns}:default`, "pickled"]);
    await sendMany(e, "work", [[1], [2], [3]]);
    const w = startWorker(e, ["-t", "1"]);
    await until("the good messages", () => events(e).length >= 3, 20_000, w.log);
    const deadline = Date.now() + 10_000;
    let dead = 0;
    while (Date.now() < deadline && dead === 0) {
      dead = await redis.send<number>(["ZCARD", `${ns}:default.XQ`]);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(dead, 1, w.log());
    assert.match(w.log(), /cannot be decoded .*moving it to the dead-letter queue default\.XQ/);
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0);
  } finally {
    cleanup(e);
    const keys = await redis.send<string[]>(["KEYS", `${ns}:*`]);
    if (keys.length) await redis.send(["DEL", ...keys]);
    await redis.close();
  }
});

test("cli: a Web Worker that crashes is replaced; the supervisor keeps running", e2e, async () => {
  const e = setup();
  try {
    const w = startWorker(e, ["-t", "1"]);
    await until("boot", () => /ready for action/.test(w.log()));
    await send(e, "crash", []);
    await until(
      "the crash to be logged",
      () =>
        /Web Worker 1 crashed \(.*uncaught error in a Web Worker.*\); replacing it/.test(w.log()),
      10_000,
    );
    await send(e, "work", [9]);
    await until(
      "work after the crash",
      () => events(e).some((x) => x.event === "work"),
      20_000,
      w.log,
    );
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0);
  } finally {
    cleanup(e);
  }
});
