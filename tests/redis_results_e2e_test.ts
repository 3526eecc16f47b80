// Results across processes on Redis: the scenario of tests/_results_scenario.ts (a pipeline, a
// group of 100 with a completion callback, ResultFailure, ResultMissing and ResultTimeout, two
// worker processes from `cli.ts worker -p 2`, results read from another process) on RedisBroker,
// RedisResultBackend and RedisRateLimiterBackend (the GroupCallbacks barrier), against the
// shared server. Every key is deleted afterwards: the broker's namespace, and the result and
// barrier keys the producer names. Runs on both `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RedisClient } from "../broker/redis/client.ts";
import { checkScenario, resultsScenario, type ScenarioRun } from "./_results_scenario.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

test("results across 2 worker processes on Redis", { timeout: 120_000 }, async () => {
  const ns = randomNamespace("results-e2e-");
  let run: ScenarioRun | undefined;
  const redis = await RedisClient.connect(SHARED_URL);
  try {
    run = await resultsScenario({
      DRAMATIS_BROKER: `${SHARED_URL}?namespace=${ns}`,
      RESULTS_BACKEND: "redis",
      REDIS_URL: SHARED_URL,
      RESULTS_NS: `${ns}-results`,
    });
    checkScenario(run);
    // It really ran on Redis: the unconsumed message waits in the broker's list, and the result
    // and barrier keys the producer named are there.
    assert.equal(await redis.send(["LLEN", `${ns}:unconsumed`]), 1);
    const keys = cleanupKeys(run);
    assert.ok(keys.length >= 107, `the producer named ${keys.length} keys`);
    const existing = await redis.send<number>(["EXISTS", ...keys]);
    assert.ok(existing >= 105, `only ${existing} of the ${keys.length} result/barrier keys exist`);
  } finally {
    const keys = run ? cleanupKeys(run) : [];
    for (let i = 0; i < keys.length; i += 500) await redis.send(["DEL", ...keys.slice(i, i + 500)]);
    await redis.close();
    await deleteKeys(`${ns}:`);
  }
});

/** The keys the producer printed as `CLEANUP <key>`. */
function cleanupKeys(run: ScenarioRun): string[] {
  return [...run.out.matchAll(/^CLEANUP (\S+)$/gm)].map((m) => m[1]);
}
