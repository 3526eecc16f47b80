// Results across processes: a pipeline of three actors, a group of 100 with a completion
// callback, a failing actor and an unconsumed one, run by `cli.ts worker -p 2` (two worker
// processes) and read back from another process (tests/_results_scenario.ts), on the file
// backends. The same scenario runs on Redis in redis_results_e2e_test.ts.
import { test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { checkScenario, resultsScenario } from "./_results_scenario.ts";

test("results across 2 worker processes on the file backends", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-results-e2e-"));
  try {
    checkScenario(
      await resultsScenario({
        DRAMATIS_BROKER: `file://${join(dir, "broker")}`,
        RESULTS_BACKEND: "file",
        RESULTS_DIR: dir,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
