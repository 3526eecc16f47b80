// `cli.ts worker` options from Dramatiq: MODULE:NAME names the broker a module exports,
// --watch-use-polling, and a --pid-file that is never overwritten unless it is stale.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  cleanup,
  e2e,
  type Env,
  events,
  oneLine,
  runCli,
  setup,
  signal,
  sleep,
  startWorker,
  until,
} from "./_cli.ts";

/** A private copy of tests/fixtures/app.ts, whose broker is in `<dir>/app`. */
function appSetup(): Env & { app: string } {
  const e = setup("app.ts");
  e.env.APP_BROKER_DIR = join(e.dir, "app");
  return { ...e, app: e.tasks };
}

test("cli MODULE:NAME: the broker is the module's export NAME", e2e, async () => {
  const e = appSetup();
  try {
    // DRAMATIS_BROKER names another broker: MODULE:NAME wins.
    const sent = await runCli(e, ["send", `${e.app}:broker`, "hello", '["Ada"]']);
    assert.equal(sent.code, 0, sent.out);
    assert.match(sent.stdout, new RegExp(`\\(file broker at ${join(e.dir, "app")}\\)\\.$`, "m"));
    const w2 = startWorker({ ...e, tasks: `${e.app}:broker` }, ["-t", "1"]);
    await until("ready", () => /ready for action/.test(w2.log()), 20_000, w2.log);
    assert.match(w2.log(), new RegExp(`ready for action: file broker at ${join(e.dir, "app")},`));
    await until("hello", () => events(e).some((x) => x.name === "Ada"), 20_000, w2.log);
    const q = await runCli(e, ["queues", `${e.app}:broker`, "--json"]);
    assert.equal(q.code, 0, q.out);
    assert.deepEqual(JSON.parse(q.stdout).map((s: { queueName: string }) => s.queueName), [
      "default",
    ]);
    signal(w2, "SIGINT");
    assert.equal(await w2.exited, 0, w2.log());
  } finally {
    cleanup(e);
  }
});

test("cli MODULE:NAME: a missing module, export or a non-broker is one line, exit 2", async () => {
  const e = appSetup();
  try {
    oneLine(
      await runCli(e, ["queues", `${e.app}:nope`]),
      2,
      /^dramatis: file:\/\/\/.*\.ts has no export named "nope" \(its exports: broker, hello, notABroker\)\. In MODULE:NAME, NAME is the export that holds the broker\.$/,
    );
    const wrong = await runCli(e, ["send", `${e.app}:notABroker`, "hello", '["x"]']);
    assert.equal(wrong.code, 2, wrong.out);
    assert.match(wrong.stderr, /export "notABroker" is not a broker \(it is Object\)/);
    const noFile = await runCli(e, ["worker", join(e.dir, "missing.ts:broker")]);
    assert.equal(noFile.code, 2, noFile.out);
    assert.match(
      noFile.stderr,
      /^dramatis: Could not import file:\/\/\/.*missing\.ts: there is no such file/m,
    );
    // The worker imports the module in its worker process: the same error, exit code 2.
    const worker = await runCli(e, ["worker", `${e.app}:nope`, "-t", "1"]);
    assert.equal(worker.code, 2, worker.out);
    assert.equal(
      worker.out.match(/\[CRITICAL\] .*has no export named "nope"/g)?.length,
      1,
      worker.out,
    );
  } finally {
    cleanup(e);
  }
});

/** How many inotify instances process `pid` holds. */
function inotifyCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === "anon_inode:inotify") n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

for (const polling of [false, true]) {
  test(
    `cli --watch${polling ? " --watch-use-polling" : ""}: a changed file reloads the code`,
    e2e,
    async () => {
      const e = setup();
      try {
        const dir = join(e.dir, "src");
        mkdirSync(join(dir, "lib"), { recursive: true });
        writeFileSync(join(dir, "lib", "util.ts"), "export const v = 1;\n");
        const w = startWorker(e, [
          "-t",
          "1",
          "--watch",
          dir,
          ...(polling ? ["--watch-use-polling"] : []),
        ]);
        await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
        assert.match(
          w.log(),
          new RegExp(
            `Watching ${dir} for changes to \\.ts/\\.js files${
              polling ? " \\(polling every second\\)" : "\\."
            }`,
          ),
        );
        // Polling uses no file system events: no inotify instance in the supervisor.
        assert.equal(inotifyCount(w.proc.pid!) > 0, !polling);
        await sleep(polling ? 1_200 : 200);
        writeFileSync(join(dir, "lib", "util.ts"), "export const v = 2;\n");
        await until("reload", () => /Reloading \(file change\)/.test(w.log()), 10_000, w.log);
        await until(
          "ready again",
          () => (w.log().match(/ready for action/g) ?? []).length >= 2,
          20_000,
          w.log,
        );
        signal(w, "SIGINT");
        assert.equal(await w.exited, 0, w.log());
      } finally {
        cleanup(e);
      }
    },
  );
}

test("cli --pid-file: a file that is not a pid is left as it is (exit 4)", async () => {
  const e = setup();
  try {
    for (const content of ["hello, this is my notes file\n", "", "123abc\n"]) {
      const file = join(e.dir, "notes.txt");
      writeFileSync(file, content);
      const r = await runCli(e, ["worker", e.tasks, "--pid-file", file]);
      assert.equal(r.code, 4, r.out);
      assert.match(
        r.out,
        /\[CRITICAL\] Pid file .*notes\.txt does not hold a pid \(it holds ".*"\): it may be another file/,
      );
      assert.equal(readFileSync(file, "utf8"), content, "the file was changed");
    }
  } finally {
    cleanup(e);
  }
});

test("cli --pid-file: a live pid refuses (exit 4), a dead one is stale", e2e, async () => {
  const e = setup();
  try {
    const file = join(e.dir, "worker.pid");
    writeFileSync(file, `${process.pid}\n`);
    const live = await runCli(e, ["worker", e.tasks, "--pid-file", file]);
    assert.equal(live.code, 4, live.out);
    assert.match(live.out, new RegExp(`names a running process \\(${process.pid}\\)`));
    assert.equal(readFileSync(file, "utf8"), `${process.pid}\n`);
    const dead = spawnSync("true").pid; // exited: its pid names no process now
    writeFileSync(file, `${dead}\n`);
    const w = startWorker(e, ["-t", "1", "--pid-file", file]);
    await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
    assert.equal(readFileSync(file, "utf8"), `${w.proc.pid}\n`);
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0, w.log());
    assert.equal(existsSync(file), false, "the pid file was not removed");
  } finally {
    cleanup(e);
  }
});
