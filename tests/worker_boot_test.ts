// What a worker process loads before it starts its Web Workers (worker/_process.ts): nothing of
// the brokers, so that the Web Workers boot while its main thread loads the library.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { importGraph } from "./_tools/import_graph.ts";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

/** The files `from` loads at its evaluation: its static value imports, transitively. */
function loadedBy(from: string): Set<string> {
  const edges = importGraph(ROOT).filter((e) => !e.typeOnly);
  const seen = new Set<string>([from]);
  const todo = [from];
  while (todo.length > 0) {
    const f = todo.pop()!;
    for (const e of edges) {
      if (e.from === f && !seen.has(e.to)) {
        seen.add(e.to);
        todo.push(e.to);
      }
    }
  }
  return seen;
}

test("boot: a worker process loads no broker before its Web Workers are started", () => {
  const loaded = loadedBy("worker/_process.ts");
  assert.ok(loaded.has("worker/_feeder.ts"), "the graph was read (the test would prove nothing)");
  const brokers = [...loaded].filter((f) =>
    f === "broker/url.ts" || f === "broker/global.ts" || f === "broker/broker.ts" ||
    /^broker\/(file|redis|rabbitmq|amqp)\//.test(f) || f.startsWith("telemetry/")
  );
  assert.deepEqual(
    brokers,
    [],
    "worker/_process.ts imports these statically: import them in run(), after the Web Workers " +
      "were started (see its header)",
  );
});

test("boot: the supervisor loads neither the brokers nor the worker process's modules", () => {
  const loaded = loadedBy("worker/supervisor.ts");
  assert.ok(loaded.has("runtime/process.ts"), "the graph was read (the test would prove nothing)");
  const heavy = [...loaded].filter((f) =>
    f.startsWith("broker/") || f.startsWith("telemetry/") || f === "worker/worker.ts" ||
    f === "worker/_feeder.ts"
  );
  assert.deepEqual(heavy, [], "the supervisor process stays small: import these where they run");
});
