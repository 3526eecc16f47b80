// The cross-process results scenario shared by results_e2e_test.ts (file backends) and
// redis_results_e2e_test.ts (Redis): `cli.ts worker -p 2` (two worker processes) runs the actors
// of tests/fixtures/results_tasks.ts while tests/fixtures/results_producer.ts, another process,
// sends a pipeline, a group of 100 with a completion callback, a failing actor and an unconsumed
// one, and reads every result back. The backends are chosen by the environment.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { scriptArgs } from "./_runtime.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** What a scenario run produced. */
export interface ScenarioRun {
  /** The producer's exit code. */
  code: number | null;
  /** The producer's output (stdout and stderr). */
  out: string;
  /** The worker processes' output. */
  log: string;
}

/** Runs the scenario with these environment variables (no assertion: see `checkScenario`). */
export async function resultsScenario(env: Record<string, string>): Promise<ScenarioRun> {
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
  let out = "";
  try {
    const producer = spawn(
      process.execPath,
      scriptArgs(join(root, "tests", "fixtures", "results_producer.ts")),
      { env: fullEnv, stdio: ["ignore", "pipe", "pipe"] },
    );
    producer.stdout!.on("data", (d) => out += d);
    producer.stderr!.on("data", (d) => out += d);
    const code = await new Promise<number | null>((r) => producer.on("exit", r));
    return { code, out, log };
  } finally {
    process.kill(worker.pid!, "SIGINT");
    await exited;
  }
}

/** Asserts that the producer succeeded and ran every check, each result error included. */
export function checkScenario(run: ScenarioRun): void {
  assert.equal(run.code, 0, `producer failed:\n${run.out}\nworker log:\n${run.log}`);
  for (
    const check of [
      "pipeline",
      "group and its completion callback",
      "ResultFailure",
      "ResultMissing",
      "ResultTimeout",
    ]
  ) {
    assert.ok(run.out.includes(`checked ${check}\n`), `the producer did not check ${check}`);
  }
  assert.match(run.out, /^OK \d/m);
}
