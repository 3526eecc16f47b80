// What every CLI command does with a broker that is down or misconfigured, and with bad
// arguments: one line on stderr (`dramatis: ...`, no stack) and the exit code the README gives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./_redis_server.ts";
import { cleanup, e2e, type Env, oneLine, root, runCli, setup } from "./_cli.ts";

/** The operations commands, on `e.tasks`. */
const operations = (e: Env): string[][] => [
  ["queues", e.tasks],
  ["send", e.tasks, "work", "[1]"],
  ["dead-letters", "list", "default", e.tasks],
];

test("cli errors: queues, send and dead-letters with Redis down: one line, exit 3", async () => {
  const e = setup();
  try {
    const port = await freePort();
    e.env.DRAMATIS_BROKER = `redis://127.0.0.1:${port}/0`;
    for (const args of operations(e)) {
      const r = await runCli(e, args);
      oneLine(
        r,
        3,
        new RegExp(
          `could not connect to the broker: Cannot connect to Redis at 127\\.0\\.0\\.1:${port}`,
        ),
      );
    }
  } finally {
    cleanup(e);
  }
});

const badUrls: [string, RegExp][] = [
  ["bogus://x", /misconfigured: Unsupported broker URL "bogus:\/\/x"/],
  ["redis://127.0.0.1:6379/0?frob=1", /misconfigured: Unknown RedisBroker URL parameter "frob"/],
  ["redis://127.0.0.1:6379/abc", /misconfigured: .*the path must be a database number/],
  ["file:///tmp/dramatis-nowhere?frob=1", /misconfigured: Unknown FileBroker URL parameter "frob"/],
];

test("cli errors: a bad broker URL or option: one line and exit 3 from every command", async () => {
  const e = setup();
  try {
    for (const [url, line] of badUrls) {
      e.env.DRAMATIS_BROKER = url;
      for (const args of operations(e)) oneLine(await runCli(e, args), 3, line);
    }
  } finally {
    cleanup(e);
  }
});

test("cli errors: a password in a bad broker URL is not printed", async () => {
  const e = setup();
  try {
    e.env.DRAMATIS_BROKER = "redis://user:s3cret@127.0.0.1:6379/abc";
    const r = await runCli(e, ["queues", e.tasks]);
    oneLine(r, 3, /misconfigured: .*redis:\/\/user:\*\*\*@127\.0\.0\.1:6379\/abc/);
    assert.doesNotMatch(r.out, /s3cret/);
  } finally {
    cleanup(e);
  }
});

test("cli errors: worker with a bad broker URL exits 3 at once, not restarted", e2e, async () => {
  const e = setup();
  try {
    for (const [url, line] of badUrls) {
      e.env.DRAMATIS_BROKER = url;
      const t0 = Date.now();
      const r = await runCli(e, ["worker", e.tasks, "-t", "2"]);
      assert.equal(r.code, 3, r.out);
      assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
      assert.doesNotMatch(r.out, /restarting it|exited unexpectedly/);
      const errors = r.out.split("\n").filter((l) => /\[CRITICAL\].*misconfigured/.test(l));
      assert.equal(errors.length, 1, r.out);
      assert.match(errors[0], line);
    }
  } finally {
    cleanup(e);
  }
});

test("cli errors: bad queue names are bad arguments (exit 64)", async () => {
  const e = setup();
  try {
    const invalid = /Invalid queue name "no spaces please"/;
    oneLine(await runCli(e, ["dead-letters", "list", "no spaces please", e.tasks]), 64, invalid);
    oneLine(
      await runCli(e, ["send", e.tasks, "work", "[1]", "--queue", "no spaces please"]),
      64,
      /--queue: Invalid queue name/,
    );
    oneLine(
      await runCli(e, ["worker", e.tasks, "-Q", "default,no spaces please"]),
      64,
      /--queues: Invalid queue name/,
    );
  } finally {
    cleanup(e);
  }
});

test("cli errors: an unknown command or flag, and a flag of another command: exit 64", async () => {
  const e = setup();
  try {
    oneLine(await runCli(e, ["frobnicate"]), 64, /unknown command "frobnicate": use worker,/);
    oneLine(
      await runCli(e, ["send", e.tasks, "work", "[1]", "-t", "2"]),
      64,
      /-t is a flag of dramatis worker, not of dramatis send\. See dramatis send --help$/,
    );
    oneLine(
      await runCli(e, ["queues", "--limit", "3"]),
      64,
      /--limit is a flag of dramatis dead-letters, not of dramatis queues/,
    );
    oneLine(
      await runCli(e, ["worker", e.tasks, "--delay", "5"]),
      64,
      /--delay is a flag of dramatis send, not of dramatis worker/,
    );
    oneLine(await runCli(e, ["queues", "--frob"]), 64, /unknown flag --frob/);
    oneLine(await runCli(e, ["worker", e.tasks, "--threads"]), 64, /--threads needs a value/);
    oneLine(
      await runCli(e, ["dead-letters", "purge", "default", "--limit", "2"]),
      64,
      /--limit is for dead-letters list/,
    );
  } finally {
    cleanup(e);
  }
});

test("cli errors: a module that does not exist: one line, exit 2", async () => {
  const e = setup();
  try {
    for (const args of [["worker", "nope.ts"], ["queues", "nope.ts"], ["send", "nope.ts", "x"]]) {
      oneLine(
        await runCli(e, args),
        2,
        /Could not import file:\/\/\/.*\/nope\.ts: there is no such file/,
      );
    }
  } finally {
    cleanup(e);
  }
});

test("cli errors: an unexpected error is exit 70 with its stack, not 1", async () => {
  const e = setup();
  try {
    // A module whose broker throws a plain Error from stats(): a bug, not a broker failure.
    const mod = join(e.dir, "broken.ts");
    writeFileSync(
      mod,
      `import { setBroker, StubBroker } from ${JSON.stringify(join(root, "mod.ts"))};\n` +
        `class Broken extends StubBroker { override stats(): never { throw new Error("a bug"); } }\n` +
        `setBroker(new Broken()).declareQueue("default");\n`,
    );
    const r = await runCli(e, ["queues", mod]);
    assert.equal(r.code, 70, r.out);
    assert.match(r.stderr, /internal error .*Error: a bug\n\s+at /s);
  } finally {
    cleanup(e);
  }
});

test("cli help: each command prints its own usage and flags, in 80 columns", async () => {
  const e = setup();
  try {
    for (
      const args of [
        ["--help"],
        ["help"],
        ...["worker", "queues", "dead-letters", "send", "compile"].map((c) => [c, "--help"]),
      ]
    ) {
      const r = await runCli(e, args);
      assert.equal(r.code, 0, r.out);
      const wide = r.stdout.split("\n").filter((l) => l.length > 80);
      assert.deepEqual(wide, [], `${args.join(" ")}: lines wider than 80 columns`);
    }
    // Each command's own usage and flags, not the global help.
    const own: Record<string, RegExp[]> = {
      worker: [/--watch-use-polling/, /--shutdown-timeout MS/, /MODULE:NAME/],
      queues: [/--json/],
      "dead-letters": [/--limit N/, /list\|requeue\|purge QUEUE/],
      send: [/--delay MS/, /--queue NAME/, /--kwargs JSON/, /--priority N/, /rest parameter/],
      compile: [/-o, --output FILE/],
    };
    for (const [command, lines] of Object.entries(own)) {
      for (const help of [[command, "--help"], [command, "-h"], ["help", command]]) {
        const r = await runCli(e, help);
        assert.equal(r.code, 0, r.out);
        assert.match(r.stdout, new RegExp(`^Usage: dramatis ${command} `));
        for (const line of lines) assert.match(r.stdout, line, `${help.join(" ")}`);
        const others = Object.keys(own).filter((c) => c !== command);
        assert.ok(!others.some((c) => r.stdout.includes(`Usage: dramatis ${c}`)));
      }
    }
    const global = await runCli(e, ["--help"]);
    assert.doesNotMatch(global.stdout, /--watch-use-polling/, "the global help lists flags");
  } finally {
    cleanup(e);
  }
});
