// The single binary: `cli.ts compile` builds one executable (with `bun build --compile`) holding
// the CLI and examples/tasks.ts; it runs workers (supervisor, worker process and Web Workers all
// from the one file) and sends messages; stack traces point at the user's source file and line;
// compile's errors are one line with the README's exit code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { isBun, scriptArgs } from "./_runtime.ts";
import {
  killIfRunning,
  root,
  serveFiles,
  start,
  type Started,
  toolchainBin,
  toolchainPath,
  until,
} from "./_package.ts";

const cli = join(root, "cli.ts");

/** The task module compiled below: examples/tasks.ts plus an actor that throws. */
function writeTasks(dir: string): { file: string; throwLine: number } {
  const lines = [
    `export * from ${JSON.stringify(join(root, "examples", "tasks.ts"))};`,
    `import { actor } from ${JSON.stringify(join(root, "mod.ts"))};`,
    "",
    "export const explode = actor(function explode(what: string) {",
    "  const why = `${what} went wrong`;",
    "  throw new Error(why);",
    "}, { maxRetries: 0 });",
    "",
  ];
  const file = join(dir, "app_tasks.ts");
  writeFileSync(file, lines.join("\n"));
  return { file, throwLine: lines.indexOf("  throw new Error(why);") + 1 };
}

test(
  "compiled binary: builds, runs a worker, processes a message sent by the binary, " +
    "and its stack traces name the user's file and line",
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-bin-"));
    let worker: Started | undefined;
    try {
      const { throwLine } = writeTasks(dir);
      const bin = join(dir, "dist", "app"); // dist/ does not exist yet: compile creates it
      const build = spawnSync(
        process.execPath,
        [...scriptArgs(cli), "compile", "app_tasks.ts", "-o", "dist/app"],
        // On Deno, compile runs the `bun` on PATH: the toolchain's.
        { cwd: dir, encoding: "utf8", env: { ...process.env, PATH: toolchainPath } },
      );
      assert.equal(build.status, 0, build.stdout + build.stderr);
      assert.match(build.stdout, /^Built dist\/app \(\d+ MiB\)/);
      assert.ok(existsSync(bin));
      // The embedded source maps leave nothing next to the binary.
      assert.deepEqual(readdirSync(join(dir, "dist")), ["app"]);

      const env = {
        ...process.env,
        DRAMATIS_BROKER: `file://${join(dir, "broker")}`,
        GREET_LOG: join(dir, "greetings.log"),
      };
      worker = start(bin, ["worker", "-t", "1"], { env, cwd: dir });
      const log = worker.log;
      await until("the binary never became ready", () => /ready for action/.test(log()), worker);
      const send = spawnSync(bin, ["send", "greet", '["binary"]'], { env, encoding: "utf8" });
      assert.equal(send.status, 0, send.stdout + send.stderr);
      await until(
        "the message was not processed",
        () => existsSync(env.GREET_LOG) && readFileSync(env.GREET_LOG, "utf8").includes("binary"),
        worker,
      );
      const boom = spawnSync(bin, ["send", "explode", '["the binary"]'], { env, encoding: "utf8" });
      assert.equal(boom.status, 0, boom.stdout + boom.stderr);
      await until("no stack trace logged", () => /the binary went wrong/.test(log()), worker);
      await until("the stack trace ended early", () => /Retries exceeded/.test(log()), worker);
      // `at explode (app_tasks.ts:6:11)`: the source file, relative to where compile ran.
      const frame = /Error: the binary went wrong\n\s+at explode \(([^)]*)\)/.exec(log())?.[1];
      assert.equal(frame?.replace(/:\d+$/, ""), `app_tasks.ts:${throwLine}`, log());
      assert.doesNotMatch(log(), /\$bunfs/);

      // A compiled binary does not compile.
      const again = spawnSync(bin, ["compile", "x.ts", "-o", "y"], { encoding: "utf8" });
      assert.equal(again.status, 64, again.stderr);
      assert.match(again.stderr, /^dramatis: compile runs from the dramatis package/);

      process.kill(worker.pid, "SIGINT");
      assert.equal(await worker.exited, 0, log());
    } finally {
      if (worker) killIfRunning(worker);
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("compile without bun on PATH (on Deno): one line saying how to get Bun, exit 3", () => {
  // On Bun, compile runs the Bun that runs it; on Deno it looks for `bun` on PATH.
  const deno = isBun ? join(toolchainBin, "deno") : process.execPath;
  const dir = mkdtempSync(join(tmpdir(), "dramatis-nobun-"));
  try {
    const r = spawnSync(
      deno,
      ["run", "-A", cli, "compile", join(root, "examples", "tasks.ts"), "-o", "app"],
      {
        cwd: dir,
        env: { ...process.env, PATH: join(dir, "empty"), NO_COLOR: "1" },
        encoding: "utf8",
      },
    );
    assert.equal(r.status, 3, r.stdout + r.stderr);
    assert.equal(
      r.stderr,
      'dramatis: compile needs Bun (bun build --compile), and there is no "bun" on PATH: ' +
        "install it (npm i -D bun, then run this with npx; or see https://bun.sh) " +
        "or put it on PATH.\n",
    );
    assert.equal(r.stdout, "");
    assert.ok(!existsSync(join(dir, "app")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("compile refuses a module that is not a local file (exit 64) and a broken one (exit 2)", () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-compile-bad-"));
  try {
    const remote = spawnSync(
      process.execPath,
      [...scriptArgs(cli), "compile", "https://example.com/tasks.ts", "-o", "app"],
      { cwd: dir, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
    );
    assert.equal(remote.status, 64, remote.stderr);
    assert.equal(
      remote.stderr,
      "dramatis: compile bundles local module files; got https://example.com/tasks.ts.\n",
    );
    writeFileSync(join(dir, "broken.ts"), "export const x = ;\n");
    const broken = spawnSync(
      process.execPath,
      [...scriptArgs(cli), "compile", "broken.ts", "-o", "app"],
      { cwd: dir, encoding: "utf8", env: { ...process.env, NO_COLOR: "1", PATH: toolchainPath } },
    );
    assert.equal(broken.status, 2, broken.stderr);
    assert.match(broken.stderr, /broken\.ts:1/); // bun's own error names the file
    assert.match(
      broken.stderr,
      /\ndramatis: bun build --compile failed \(exit 1\); its errors are above\.\n$/,
    );
    assert.ok(!existsSync(join(dir, "app")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("compile from a copy of dramatis loaded over the network (JSR): one line, exit 3", {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-compile-remote-"));
  const server = await serveFiles(root);
  try {
    writeFileSync(join(dir, "tasks.ts"), "export {};\n");
    const deno = isBun ? join(toolchainBin, "deno") : process.execPath;
    const p = start(
      deno,
      ["run", "-A", `${server.url}cli.ts`, "compile", "tasks.ts", "-o", "app"],
      {
        cwd: dir,
        env: { PATH: toolchainPath, DENO_DIR: join(dir, "deno"), NO_COLOR: "1" },
      },
    );
    assert.equal(await p.exited, 3, p.log());
    assert.match(
      p.log(),
      /\ndramatis: compile bundles dramatis from files on disk, and this copy was loaded from http:\/\/127\.0\.0\.1:\d+: in a Bun project, bun add @dramatis\/dramatis, then bunx dramatis compile MODULE\.\.\. -o FILE\n$/,
    );
    assert.ok(!existsSync(join(dir, "app")));
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
