// The README's CLI section shows what the commands it shows print: its sample log lines, its
// `send` output and its refused send are checked against a real run of those commands.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, e2e, root, runCli, setup, signal, startCli, until } from "./_cli.ts";

const readme = readFileSync(join(root, "README.md"), "utf8");
const section = readme.slice(
  readme.indexOf("## Running workers: the CLI"),
  readme.indexOf("## Workers in code"),
);
const blocks = [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({
  lang: m[1],
  lines: m[2].trimEnd().split("\n"),
}));

/** `dramatis ARGS...` of a README line, as arguments (no shell: single quotes only). */
function commandArgs(line: string): string[] {
  const command = line.replace(/^\$ /, "").replace(/\s+#.*$/, "").trim();
  assert.match(command, /^dramatis /, command);
  const args = [...command.slice("dramatis ".length).matchAll(/'([^']*)'|(\S+)/g)]
    .map((m) => m[1] ?? m[2]);
  return args.map((a) => a === "examples/tasks.ts" ? join(root, "examples", "tasks.ts") : a);
}

/** A regex for a sample line: its timestamps, pids, ids, timings and paths may differ. */
function shape(sample: string, brokerDir: string): RegExp {
  const escaped = sample.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}/g, "[\\d-]+ [\\d:]+,\\d{3}")
    .replace(/PID \d+/g, "PID \\d+")
    .replace(/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/g, "[0-9a-f-]{36}")
    .replace(/after \d+\\\.\d+ ms/g, "after [\\d.]+ ms")
    .replace(/\\\(deno\\\)/g, "\\((deno|bun)\\)")
    .replaceAll("/srv/app/\\.dramatis", brokerDir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${escaped}$`, "m");
}

test("README CLI: the commands shown print the sample lines shown", e2e, async () => {
  const e = setup();
  try {
    // As in the README: no DRAMATIS_BROKER, so the file broker in ./.dramatis of the cwd.
    delete e.env.DRAMATIS_BROKER;
    const cwd = join(e.dir, "app");
    mkdirSync(cwd);
    const [commands, logSample, sendSample] = blocks;
    assert.equal(commands.lang, "sh");
    const [workerLine, sendLine, helpLine] = commands.lines;
    const w = startCli(e, commandArgs(workerLine), { cwd });
    await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
    const sent = await runCli(e, commandArgs(sendLine), { cwd });
    assert.equal(sent.code, 0, sent.out);
    await until("the greeting", () => /Completed after/.test(w.log()), 20_000, w.log);
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0, w.log());
    const brokerDir = join(cwd, ".dramatis");
    for (const line of logSample.lines) {
      assert.match(
        w.log(),
        shape(line, brokerDir),
        `README line not printed:\n${line}\n${w.log()}`,
      );
    }
    for (const line of sendSample.lines) assert.match(sent.stdout, shape(line, brokerDir));
    const help = await runCli(e, commandArgs(helpLine), { cwd });
    assert.equal(help.code, 0, help.out);
    assert.match(help.stdout, /^Usage: dramatis worker /);
  } finally {
    cleanup(e);
  }
});

test("README CLI: the refused send shown is what dramatis prints", async () => {
  const e = setup();
  try {
    const block = blocks.find((b) => b.lines[0]?.startsWith("$ dramatis send"));
    assert.ok(block, "no refused send in the README's CLI section");
    const r = await runCli(e, commandArgs(block.lines[0]));
    assert.equal(r.code, 64, r.out);
    assert.equal(r.stderr.trimEnd(), block.lines.slice(1).join("\n"));
  } finally {
    cleanup(e);
  }
});

test("README CLI: every command of its sh blocks exists and takes those flags", async () => {
  const e = setup();
  try {
    for (const block of blocks.filter((b) => b.lang === "sh")) {
      for (const line of block.lines) {
        const args = commandArgs(line);
        // --help after the command and its flags: parsed (refused if a flag were wrong), not run.
        const r = await runCli(e, [...args, "--help"]);
        assert.equal(r.code, 0, `${line}: ${r.out}`);
      }
    }
  } finally {
    cleanup(e);
  }
});
