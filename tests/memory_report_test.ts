// DRAMATIS_MEMORY_REPORT (worker/_memory_report.ts, read by bench/worker_memory.ts): every role of
// `cli.ts worker -t 2` reports its own memory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, e2e, setup, signal, startWorker, until } from "./_cli.ts";
import type { MemoryReport } from "../worker/_memory_report.ts";

function reports(file: string): MemoryReport[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as MemoryReport);
}

test(
  "cli worker with DRAMATIS_MEMORY_REPORT: supervisor, main thread and each Web Worker report",
  e2e,
  async () => {
    const e = setup();
    const file = join(e.dir, "memory.jsonl");
    e.env.DRAMATIS_MEMORY_REPORT = file;
    try {
      const w = startWorker(e, ["-t", "2"]);
      // Four roles: two processes, the second with two Web Workers (names differ).
      const roles = () => new Set(reports(file).map((r) => r.role));
      await until("four roles", () => roles().size === 4, 20_000, w.log);
      const rs = reports(file);
      assert.ok(roles().has("supervisor") && roles().has("process-0"), [...roles()].join());
      const pids = new Set(rs.map((r) => r.pid));
      assert.equal(pids.size, 2, "the Web Workers report from the worker process");
      for (const r of rs) {
        assert.ok(
          r.rss > 0 && r.heapUsed > 0 && r.heapTotal > 0 && r.external >= 0,
          JSON.stringify(r),
        );
      }
      signal(w, "SIGINT");
      assert.equal(await w.exited, 0, w.log());
    } finally {
      cleanup(e);
    }
  },
);
