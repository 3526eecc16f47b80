// `cli.ts send`: the arguments are checked against the actor's parameters, the flags set the
// message's delay, queue, kwargs and priority; and `dead-letters list` shows what Dramatiq
// counts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  cleanup,
  cli,
  e2e,
  type Env,
  oneLine,
  queueStats,
  runCli,
  setup,
  signal,
  sleep,
  startWorker,
  until,
} from "./_cli.ts";
import { scriptArgs } from "./_runtime.ts";
import { FileBroker } from "../mod.ts";

const refused = (r: Parameters<typeof oneLine>[0], line: RegExp) => oneLine(r, 64, line);

const send = (e: Env, ...args: string[]) => runCli(e, ["send", e.tasks, ...args]);

test("cli send: the number of arguments is checked against the actor's parameters", async () => {
  const e = setup();
  try {
    refused(
      await send(e, "sendEmail", "[1,2,3]"),
      /sendEmail takes 2 argument\(s\) \(to, subject\), got 3\. See dramatis send --help$/m,
    );
    refused(await send(e, "sendEmail", '["a@b.c"]'), /sendEmail takes 2 argument\(s\).*got 1/);
    refused(await send(e, "sendEmail"), /sendEmail takes 2 argument\(s\).*got 0/);
    // A default: 1 or 2.
    refused(
      await send(e, "withDefault", '["a", "b", "c"]'),
      /withDefault takes 1 to 2 arguments \(to, greeting\), got 3/,
    );
    refused(await send(e, "withDefault", "[]"), /withDefault takes 1 to 2 arguments/);
    // A rest parameter: at least the ones before it.
    refused(
      await send(e, "withRest", "[]"),
      /withRest takes at least 1 argument\(s\) \(first, \.\.\.more\), got 0/,
    );
    // kwargs are one more argument.
    refused(
      await send(e, "sendEmail", '["a", "b"]', "--kwargs", '{"cc": "c"}'),
      /sendEmail takes 2 argument\(s\).*got 3 \(kwargs count as one\)/,
    );
    // What the actors take is sent.
    for (
      const [actor, args] of [
        ["sendEmail", '["a@b.c", "hi"]'],
        ["withDefault", '["a"]'],
        ["withDefault", '["a", "hello"]'],
        ["withRest", "[1]"],
        ["withRest", "[1, 2, 3, 4]"],
        ["destructured", '[{"a": 1}]'],
        ["destructured", '[{"a": 1}, [2]]'],
      ]
    ) {
      const r = await send(e, actor, args);
      assert.equal(r.code, 0, `${actor} ${args}: ${r.out}`);
      assert.match(r.stdout, new RegExp(`^Sent ${actor}\\(.*\\) as [0-9a-f-]{36} to default \\(`));
    }
    assert.equal((await queueStats(e)).ready, 7);
  } finally {
    cleanup(e);
  }
});

test("cli send: JSON_ARGS that is not JSON says what is expected", async () => {
  const e = setup();
  try {
    refused(
      await send(e, "sendEmail", "a@b.c"),
      /JSON_ARGS must be a JSON array of the actor's arguments, quoted for the shell \('\["Ada", 3\]'\); got a@b\.c/,
    );
    refused(await send(e, "sendEmail", "[1]", "[2]"), /send takes MODULE, ACTOR and one JSON_ARGS/);
    refused(await send(e, "nobody", "[]"), /no actor "nobody" in .*Declared: .*sendEmail/);
  } finally {
    cleanup(e);
  }
});

/** Runs a script that embeds the CLI as a compiled binary does (`bundled: true`). */
function runBundled(
  e: Env,
  args: string[],
): Promise<{ code: number | null; stderr: string; out: string }> {
  const script = join(e.dir, "binary.ts");
  writeFileSync(
    script,
    `import ${JSON.stringify(e.tasks)};\n` +
      `import { main } from ${JSON.stringify(cli)};\n` +
      `import process from "node:process";\n` +
      `process.exit(await main(${JSON.stringify(args)}, { bundled: true }));\n`,
  );
  return new Promise((resolve) => {
    const p = spawn(process.execPath, scriptArgs(script), {
      env: { ...process.env, ...e.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "", stderr = "";
    p.stdout!.on("data", (d) => out += d);
    p.stderr!.on("data", (d) => (out += d, stderr += d));
    p.on("close", (code) => resolve({ code, stderr, out }));
  });
}

test("cli send: in a compiled binary, a module given by mistake is named as the mistake", async () => {
  const e = setup();
  try {
    refused(
      await runBundled(e, ["send", "tasks.ts", "sendEmail", '["a", "b"]']),
      /this binary holds its modules: give the actor, not tasks\.ts: send sendEmail '\["a", "b"\]'/,
    );
    const ok = await runBundled(e, ["send", "sendEmail", '["a", "b"]']);
    assert.equal(ok.code, 0, ok.out);
    refused(await runBundled(e, ["send", "sendEmail", "a"]), /JSON_ARGS must be a JSON array/);
  } finally {
    cleanup(e);
  }
});

test("cli send: --delay, --queue, --kwargs and --priority set the message", async () => {
  const e = setup();
  try {
    const json = async (...args: string[]) => {
      const r = await send(e, ...args, "--json");
      assert.equal(r.code, 0, r.out);
      return JSON.parse(r.stdout);
    };
    const delayed = await json("sendEmail", '["a", "b"]', "--delay", "60000");
    assert.equal(delayed.queue_name, "default.DQ");
    assert.ok(delayed.options.eta > Date.now() + 50_000, JSON.stringify(delayed));
    const elsewhere = await json("sendEmail", '["a", "b"]', "--queue", "urgent");
    assert.equal(elsewhere.queue_name, "urgent");
    const kw = await json("withDefault", '["a"]', "--kwargs", '{"greeting": "hey"}');
    assert.deepEqual(kw.kwargs, { greeting: "hey" });
    const prio = await json("sendEmail", '["a", "b"]', "--priority", "5");
    assert.equal(prio.options.priority, 5);
    const q = await queueStats(e);
    assert.equal(q.delayed, 1);
    assert.equal(q.ready, 2);
    const broker = new FileBroker({ dir: join(e.dir, "broker") });
    try {
      assert.equal((await broker.stats("urgent")).ready, 1);
    } finally {
      await broker.close();
    }
    refused(
      await send(e, "sendEmail", '["a", "b"]', "--delay", "soon"),
      /--delay takes a whole number >= 0/,
    );
    refused(
      await send(e, "sendEmail", '["a", "b"]', "--kwargs", "[1]"),
      /--kwargs takes a JSON object/,
    );
    refused(
      await send(e, "sendEmail", '["a", "b"]', "--priority", "high"),
      /--priority takes a whole number/,
    );
  } finally {
    cleanup(e);
  }
});

test("cli dead-letters list: the retries Dramatiq counts, and the last error", e2e, async () => {
  const e = setup();
  try {
    const w = startWorker(e, ["-t", "1"]);
    await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
    assert.equal((await send(e, "failsOnce", "[]")).code, 0); // maxRetries: 0
    assert.equal((await send(e, "fails", "[]")).code, 0); // maxRetries: 2
    const deadline = Date.now() + 20_000;
    while ((await queueStats(e)).dead < 2) {
      assert.ok(Date.now() < deadline, `not dead-lettered:\n${w.log()}`);
      await sleep(100);
    }
    const r = await runCli(e, ["dead-letters", "list", "default", e.tasks]);
    assert.equal(r.code, 0, r.out);
    const [header, ...rows] = r.stdout.trimEnd().split("\n");
    assert.match(header, /^message id\s+actor\s+retries\s+enqueued\s+last error\s+args$/);
    const row = (actor: string) => rows.find((l) => l.includes(` ${actor} `)) ?? "";
    assert.match(
      row("failsOnce"),
      /failsOnce\s+0\s+\S+\s+TypeError: no retries for this one\s+\[\]$/,
    );
    assert.match(row("fails"), /fails\s+2\s+\S+\s+Error: this actor always fails\s+\[\]$/);
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0);
  } finally {
    cleanup(e);
  }
});

test("cli queues: a file broker's queues are listed without the modules", async () => {
  const e = setup();
  try {
    assert.equal((await send(e, "sendEmail", '["a", "b"]', "--queue", "urgent")).code, 0);
    assert.equal((await send(e, "sendEmail", '["a", "b"]', "--delay", "60000")).code, 0);
    const r = await runCli(e, ["queues"]); // no module
    assert.equal(r.code, 0, r.out);
    assert.match(
      r.stdout,
      new RegExp(`^Queues on the file broker at ${join(e.dir, "broker")}:$`, "m"),
    );
    assert.match(r.stdout, /^default\s+0\s+1\s+0\s+0$/m);
    assert.match(r.stdout, /^urgent\s+1\s+0\s+0\s+0$/m);
    const empty = await runCli({
      ...e,
      env: { ...e.env, DRAMATIS_BROKER: `file://${join(e.dir, "empty")}` },
    }, ["queues"]);
    assert.match(
      empty.stdout,
      /^No queues on the file broker at .*empty\. If your modules declare them/,
    );
  } finally {
    cleanup(e);
  }
});
