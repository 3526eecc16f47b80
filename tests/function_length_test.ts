// No function of the library is over ~120 lines (issue 12), outside the RESP parser
// (broker/redis/_resp.ts) and the file engine (broker/file/), which may keep theirs. The scan
// reads the code as `deno fmt` lays it out (checked by `deno fmt --check`): a function starts on
// a line that declares it (`function f(`, a method `name(`, or a line ending in `=> {`) and ends
// at the first later line that closes a brace at the same indentation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { libraryFiles } from "./_tools/import_graph.ts";

const ROOT = resolve(new URL(".", import.meta.url).pathname, "..");
const MAX_LINES = 120;
const EXEMPT = ["broker/redis/_resp.ts", "broker/file/"];
/** Functions over the limit that earn it, as "file:name" with the reason. */
const EXCEPTIONS: Record<string, string> = {
  // Left to their owners (issue 12 found them; they were being changed by others that session).
  "telemetry/prometheus.ts:renderPrometheus":
    "the telemetry part's; one pass over the metric families, to split by family",
  "worker/supervisor.ts:runSupervisor":
    "the worker process part's; its start-up, signals and restart loop, to split like _process.ts",
};

const KEYWORDS = new Set(["if", "for", "while", "switch", "catch", "with", "return", "await"]);
const FUNCTION = /^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*([\w$]+)?\s*[<(]/;
const METHOD =
  /^\s+(?:(?:static|private|protected|public|override|readonly|async|get|set)\s+)*\*?(#?[\w$]+)\s*(?:<[^>]*>)?\(/;
const ARROW = /(?:^|[\s(,=:])(?:async\s+)?(?:\([^)]*\)|[\w$]+)(?:\s*:\s*[^=]+)?\s*=>\s*\{$/;

/** The functions of `source` and their lengths in lines. */
export function functionLengths(source: string): { name: string; line: number; lines: number }[] {
  const lines = source.split("\n");
  const found: { name: string; line: number; lines: number }[] = [];
  let inComment = false, inTemplate = false;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!;
    const trimmed = text.trim();
    // Multi-line template literals (the Lua scripts, SQL, HTML) hold no TypeScript functions.
    const wasTemplate = inTemplate;
    const code = text.replace(/\\./g, "").replace(/'[^']*'|"[^"]*"/g, "");
    if ((code.match(/`/g)?.length ?? 0) % 2 === 1) inTemplate = !inTemplate;
    if (wasTemplate) continue;
    if (inComment) {
      if (trimmed.includes("*/")) inComment = false;
      continue;
    }
    if (trimmed.startsWith("/*") && !trimmed.includes("*/")) {
      inComment = true;
      continue;
    }
    if (trimmed.startsWith("//") || trimmed.startsWith("*")) continue;
    let name: string | undefined;
    const f = FUNCTION.exec(text);
    const m = f ? undefined : METHOD.exec(text);
    if (f) name = f[1] ?? "(anonymous)";
    else if (m && !KEYWORDS.has(m[1]!) && !/[;,]$/.test(trimmed)) name = m[1];
    else if (ARROW.test(text)) name = `(arrow at line ${i + 1})`;
    if (name === undefined) continue;
    const indent = text.length - text.trimStart().length;
    // The header may span lines (long parameter lists): the body opens on the first line, at or
    // after this one, that ends in "{".
    let open = i;
    while (open < lines.length && !lines[open]!.trimEnd().endsWith("{")) {
      if (/[;]$/.test(lines[open]!.trim())) break; // a declaration without a body (overload)
      open++;
    }
    if (open >= lines.length || !lines[open]!.trimEnd().endsWith("{")) continue;
    let end = open + 1;
    for (; end < lines.length; end++) {
      const l = lines[end]!;
      if (l.length - l.trimStart().length === indent && l.trimStart().startsWith("}")) break;
    }
    if (end < lines.length) found.push({ name, line: i + 1, lines: end - i + 1 });
  }
  return found;
}

test("no function of the library is over ~120 lines (outside the RESP parser and file engine)", () => {
  const long: string[] = [];
  for (const rel of libraryFiles(ROOT)) {
    if (EXEMPT.some((e) => e.endsWith("/") ? rel.startsWith(e) : rel === e)) continue;
    for (const f of functionLengths(readFileSync(join(ROOT, rel), "utf8"))) {
      if (f.lines > MAX_LINES && !(`${rel}:${f.name}` in EXCEPTIONS)) {
        long.push(`${rel}:${f.line}: ${f.name} (${f.lines} lines)`);
      }
    }
  }
  assert.deepEqual(
    long,
    [],
    `split these functions (or list them in EXCEPTIONS, with why):\n${long.join("\n")}`,
  );
});

test("the function scan finds functions, methods and arrows, and their ends", () => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `    x${i}();`).join("\n");
  const source = [
    "export async function f(",
    "  a: number,",
    "): Promise<void> {",
    body(3),
    "}",
    "class C {",
    "  async #m(): Promise<{ a: number }> {",
    "    if (x) {",
    "      y();",
    "    }",
    "  }",
    "  get g(): number {",
    "    return 1;",
    "  }",
    "}",
    "const h = (x: number) => {",
    body(2),
    "};",
    "const lua = `",
    "function notTypeScript(",
    "`;",
  ].join("\n");
  assert.deepEqual(
    functionLengths(source).map((f) => [f.name, f.line, f.lines]),
    [["f", 1, 7], ["#m", 9, 5], ["g", 14, 3], ["(arrow at line 18)", 18, 4]],
  );
});
