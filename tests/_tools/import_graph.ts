// The library's import graph, read from the `import` / `export ... from` statements of every
// library file (everything but tests/, bench/, examples/ and tool folders). Used by
// tests/import_graph_test.ts; run it directly to print the cycles:
//
//   deno run -A tests/_tools/import_graph.ts          # value cycles
//   deno run -A tests/_tools/import_graph.ts --types  # cycles counting `import type` too
//
// Only static imports count: a dynamic `import()` is evaluated later, so it closes no cycle at
// module evaluation. `import type` and `export type ... from` are type edges; every other import
// is a value edge, `import { type A }` too (with verbatimModuleSyntax it stays as `import {}`).
import * as fs from "node:fs";
import * as path from "node:path";
import process from "node:process";

/** One import of one library file. */
export interface Edge {
  /** The importing file, relative to the root (`broker/broker.ts`). */
  from: string;
  /** The imported file, relative to the root. */
  to: string;
  /** True for `import type` / `export type`: erased at run time. */
  typeOnly: boolean;
}

const SKIP_DIRS = new Set(["tests", "bench", "examples", "node_modules", "dist", "docs"]);

/** The library's `.ts` files under `root`, relative to it, sorted. */
export function libraryFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!entry.name.startsWith(".") && !(dir === "" && SKIP_DIRS.has(entry.name))) walk(rel);
      } else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) {
        out.push(rel);
      }
    }
  };
  walk("");
  return out.sort();
}

// A top-level import or re-export: deno fmt puts it at the start of a line, which no JSDoc
// example (` * import ...`) does. The clause (`{ a, type B }`, `* as x`, `x`) holds only names,
// braces, commas, `*` and white space, so a match cannot run on into a later statement.
const STATEMENT =
  /^(import|export)\s+(type\s+)?([\w$\s,{}*]*?)\s*from\s*["']([^"']+)["']|^import\s*["']([^"']+)["']/gm;

/** The static imports of `source` (the text of `file`), as edges to files under the root. */
export function parseImports(file: string, source: string): Edge[] {
  const edges: Edge[] = [];
  for (const m of source.matchAll(STATEMENT)) {
    const spec = m[4] ?? m[5];
    if (!spec.startsWith(".")) continue; // node:fs and friends
    const to = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
    edges.push({ from: file, to, typeOnly: m[2] !== undefined });
  }
  return edges;
}

/** Every import edge among the library files under `root`. */
export function importGraph(root: string): Edge[] {
  const files = libraryFiles(root);
  const known = new Set(files);
  const edges: Edge[] = [];
  for (const f of files) {
    for (const e of parseImports(f, fs.readFileSync(path.join(root, f), "utf8"))) {
      if (known.has(e.to)) edges.push(e);
    }
  }
  return edges;
}

/**
 * The cycles of a graph: each strongly connected component with more than one file (or a file
 * importing itself), as a sorted list of files. Tarjan's algorithm.
 */
export function cycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, []);
    if (!next.has(e.to)) next.set(e.to, []);
    next.get(e.from)!.push(e.to);
  }
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || next.get(v)!.includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

if (import.meta.main) {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
  const withTypes = process.argv.includes("--types");
  const edges = importGraph(root).filter((e) => withTypes || !e.typeOnly);
  const found = cycles(edges);
  for (const scc of found) console.log(`cycle of ${scc.length}: ${scc.join(" ")}`);
  if (found.length === 0) console.log(`no ${withTypes ? "" : "value "}import cycle`);
}
