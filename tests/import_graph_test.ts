// The library has no value import cycle: a module never imports (at run time, directly or
// through others) a module that imports it. Type-only imports (`import type`) are erased, so they
// close no cycle at run time; a few type-level loops may stay (see TYPE_LOOPS).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { cycles, type Edge, importGraph, parseImports } from "./_tools/import_graph.ts";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

// Known value cycles, each given as the one import that closes it. Removed by the
// runtime-adapter refactor (issue 12): delete an entry when its import is gone.
const KNOWN_VALUE_CYCLES: Edge[] = [];

// The type-level loop that may stay (Dramatiq has it too): the broker runs middleware hooks whose
// signatures name the broker and the worker, and the worker runs the broker's hooks. The base
// Broker still picks the default stack (middleware/_default.ts and the six middleware in it):
// those leave the loop once every concrete broker passes its default stack itself.
const BROKER_LOOP = new Set([
  "broker/broker.ts",
  // The middleware plumbing split out of the base Broker (issue 12): it names Middleware in its
  // types (BrokerOptions, the hooks).
  "broker/_hooks.ts",
  "worker/worker.ts",
  "worker/_run.ts",
  "worker/_delays.ts",
  // The Worker's held messages (split out of worker.ts, issue 12): it takes the Broker type.
  "worker/_intake.ts",
  "middleware/middleware.ts",
  "middleware/_util.ts",
  "middleware/_default.ts",
  "middleware/age_limit.ts",
  "middleware/callbacks.ts",
  "middleware/pipelines.ts",
  "middleware/retries.ts",
  "middleware/shutdown.ts",
  "middleware/time_limit.ts",
]);

// The AMQP channel, its types split out into a file of their own, and its held publishes: a
// type-only loop inside broker/amqp.
const AMQP_LOOP = new Set([
  "broker/amqp/channel.ts",
  "broker/amqp/_channel_types.ts",
  "broker/amqp/_held.ts",
  // The channel's consumers (split out, issue 12): a delivery names its channel.
  "broker/amqp/_channel_consumers.ts",
]);

// The Redis broker and client split into files per concern (issue 12): the parts name the class
// they serve (`RedisBroker`, `RedisClient`) in their types, and the class re-exports them; type-only
// loops inside broker/redis.
const REDIS_BROKER_LOOP = new Set([
  "broker/redis/broker.ts",
  "broker/redis/_core.ts",
  "broker/redis/_consumer.ts",
  "broker/redis/_dead.ts",
]);
const REDIS_CLIENT_LOOP = new Set(["broker/redis/client.ts", "broker/redis/_script.ts"]);

const TYPE_LOOPS = [BROKER_LOOP, AMQP_LOOP, REDIS_BROKER_LOOP, REDIS_CLIENT_LOOP];

const key = (e: Edge) => `${e.from} -> ${e.to}`;

test("the library has no value import cycle (beyond the known ones, which still exist)", () => {
  const edges = importGraph(ROOT).filter((e) => !e.typeOnly);
  assert.ok(edges.length > 50, `only ${edges.length} imports found: is the parser broken?`);
  const known = new Set(KNOWN_VALUE_CYCLES.map(key));
  const rest = edges.filter((e) => !known.has(key(e)));
  const found = cycles(rest);
  assert.deepEqual(
    found,
    [],
    `value import cycles:\n${found.map((c) => `  ${c.join(" <-> ")}`).join("\n")}`,
  );
  for (const k of KNOWN_VALUE_CYCLES) {
    const all = cycles(edges);
    assert.ok(
      edges.some((e) => key(e) === key(k)) &&
        all.some((c) => c.includes(k.from) && c.includes(k.to)),
      `${key(k)} no longer closes a cycle: delete it from KNOWN_VALUE_CYCLES`,
    );
  }
});

test("counting type imports too, the only cycles are the known type-level loops", () => {
  const known = new Set(KNOWN_VALUE_CYCLES.map(key));
  const edges = importGraph(ROOT).filter((e) => !known.has(key(e)));
  const found = cycles(edges);
  const outside = found.filter((c) => !TYPE_LOOPS.some((loop) => c.every((f) => loop.has(f))));
  assert.deepEqual(
    outside,
    [],
    `import cycles beyond the known type-level loops:\n${
      outside.map((c) => `  ${c.join(" <-> ")}`).join("\n")
    }`,
  );
});

test("the import parser reads multi-line, type-only and re-export statements", () => {
  const src = [
    'import { a, type B } from "./a.ts";',
    "import type {",
    "  C,",
    "  D,",
    '} from "../c.ts";',
    'export { e } from "./e.ts";',
    'export type { F } from "./f.ts";',
    'export * from "./g.ts";',
    'import "./h.ts";',
    'import * as fs from "node:fs";',
    "/**",
    ' * import { x } from "./jsdoc.ts";',
    " */",
    'export class K {} // from "./not_an_import.ts"',
    'const s = `from "./in_a_string.ts"`;',
  ].join("\n");
  assert.deepEqual(parseImports("lib/x.ts", src), [
    { from: "lib/x.ts", to: "lib/a.ts", typeOnly: false },
    { from: "lib/x.ts", to: "c.ts", typeOnly: true },
    { from: "lib/x.ts", to: "lib/e.ts", typeOnly: false },
    { from: "lib/x.ts", to: "lib/f.ts", typeOnly: true },
    { from: "lib/x.ts", to: "lib/g.ts", typeOnly: false },
    { from: "lib/x.ts", to: "lib/h.ts", typeOnly: false },
  ]);
  assert.deepEqual(
    cycles([
      { from: "a", to: "b", typeOnly: false },
      { from: "b", to: "c", typeOnly: false },
      { from: "c", to: "a", typeOnly: false },
      { from: "c", to: "d", typeOnly: false },
      { from: "e", to: "e", typeOnly: false },
    ]),
    [["a", "b", "c"], ["e"]],
  );
});
