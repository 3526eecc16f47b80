// The single binary: `cli.ts compile` builds one executable (with `bun build --compile`) holding
// the CLI and examples/tasks.ts; it runs workers (supervisor, worker process and Web Workers all
// from the one file) and sends messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { isBun, scriptArgs } from "./_runtime.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

test(
  "compiled binary: builds, runs a worker, processes a message sent by the binary",
  { skip: isBun ? false : "runs under Bun (bun build --compile)", timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-bin-"));
    try {
      const bin = join(dir, "app");
      const build = spawnSync(
        process.execPath,
        [
          ...scriptArgs(join(root, "cli.ts")),
          "compile",
          join(root, "examples", "tasks.ts"),
          "-o",
          bin,
        ],
        { encoding: "utf8" },
      );
      assert.equal(build.status, 0, build.stdout + build.stderr);
      assert.ok(existsSync(bin));
      const env = {
        ...process.env,
        DRAMATIS_BROKER: `file://${join(dir, "broker")}`,
        GREET_LOG: join(dir, "greetings.log"),
      };
      const worker = spawn(bin, ["worker", "-t", "1"], { env, stdio: ["ignore", "pipe", "pipe"] });
      let log = "";
      worker.stdout!.on("data", (d) => log += d);
      worker.stderr!.on("data", (d) => log += d);
      const exited = new Promise<number | null>((r) => worker.on("exit", (c) => r(c)));
      const deadline = Date.now() + 30_000;
      while (!/ready for action/.test(log)) {
        assert.ok(Date.now() < deadline, `the binary never became ready:\n${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const send = spawnSync(bin, ["send", "greet", '["binary"]'], { env, encoding: "utf8" });
      assert.equal(send.status, 0, send.stdout + send.stderr);
      while (
        !existsSync(env.GREET_LOG) || !readFileSync(env.GREET_LOG, "utf8").includes("binary")
      ) {
        assert.ok(Date.now() < deadline, `the message was not processed:\n${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      process.kill(worker.pid!, "SIGINT");
      assert.equal(await exited, 0, log);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
