// Every runtime difference of the library lives in runtime/ (issue 12): outside it, no code
// names `Deno.` or `Bun.` (comments may), nor tests `"Deno" in globalThis`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");
const OUTSIDE_LIBRARY = new Set([
  "node_modules",
  "tests",
  "bench",
  "examples",
  "deploy",
  "runtime",
  "dist",
  ".git",
  ".dramatis",
]);

function libraryFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (dir === ROOT && OUTSIDE_LIBRARY.has(e.name)) continue;
      if (e.name.startsWith(".")) continue;
      libraryFiles(join(dir, e.name), out);
    } else if (e.name.endsWith(".ts")) {
      out.push(join(dir, e.name));
    }
  }
  return out;
}

/** `source` with its comments blanked (line numbers kept). */
function withoutComments(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " "))
    .replace(/(^|[^:"'`\\])\/\/[^\n]*/g, "$1");
}

const RUNTIME_CODE = /\b(Deno|Bun)\??\.|["'](Deno|Bun)["'] in globalThis|\.(Deno|Bun)\b/;

test("runtime adapter: no Deno or Bun API named outside runtime/ (comments aside)", () => {
  const found: string[] = [];
  for (const file of libraryFiles(ROOT)) {
    withoutComments(readFileSync(file, "utf8")).split("\n").forEach((line, i) => {
      if (RUNTIME_CODE.test(line)) found.push(`${relative(ROOT, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, [], `move these into runtime/:\n${found.join("\n")}`);
});

test("runtime adapter: the scan sees code and skips comments", () => {
  const code = withoutComments(
    [
      "// Deno.serve in a comment",
      "/** Bun.serve in JSDoc */",
      'const url = "http://x"; const v = Deno.version;',
      "const g = globalThis as { Bun?: unknown }; g.Bun?.version;",
    ].join("\n"),
  ).split("\n");
  assert.deepEqual(code.map((l) => RUNTIME_CODE.test(l)), [false, false, true, true]);
});
