// Results across processes: a pipeline of three actors and a group of 100 run by
// `cli.ts worker -p 2` (two worker processes), read back from another process, on the file
// backends (and on Redis in redis_results_e2e_test.ts when that broker is present).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { scriptArgs } from "./_runtime.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Runs the scenario with these environment variables; returns the producer's output. */
export async function resultsScenario(env: Record<string, string>): Promise<string> {
  const tasks = join(root, "tests", "fixtures", "results_tasks.ts");
  const fullEnv = { ...process.env, ...env };
  const worker = spawn(
    process.execPath,
    [...scriptArgs(join(root, "cli.ts")), "worker", tasks, "-p", "2", "-t", "1", "-Q", "default"],
    { env: fullEnv, stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  worker.stdout!.on("data", (d) => log += d);
  worker.stderr!.on("data", (d) => log += d);
  const exited = new Promise((r) => worker.on("exit", r));
  try {
    const producer = spawn(
      process.execPath,
      scriptArgs(join(root, "tests", "fixtures", "results_producer.ts")),
      { env: fullEnv, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    producer.stdout!.on("data", (d) => out += d);
    producer.stderr!.on("data", (d) => out += d);
    const code = await new Promise((r) => producer.on("exit", r));
    assert.equal(code, 0, `producer failed:\n${out}\nworker log:\n${log}`);
    return out;
  } finally {
    process.kill(worker.pid!, "SIGINT");
    await exited;
  }
}

test("results across 2 worker processes on the file backends", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-results-e2e-"));
  try {
    const out = await resultsScenario({
      DRAMATIS_BROKER: `file://${join(dir, "broker")}`,
      RESULTS_BACKEND: "file",
      RESULTS_DIR: dir,
    });
    assert.match(out, /^OK \d/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
