// A debug aid for bench/worker_memory.ts: when DRAMATIS_MEMORY_REPORT names a file, each role of
// the worker tree (supervisor, worker process main thread, each Web Worker) appends one JSON line
// of its own memory figures there every REPORT_MS. Off (and free) otherwise.
import { environment, memoryUsage, pid, unrefTimer } from "../runtime/process.ts";
import { writeText } from "../runtime/fs.ts";

/** How often a role reports, in ms. */
const REPORT_MS = 50;

/** What one role reports (bytes; `heap*` and `external` are its own isolate's). */
export interface MemoryReport {
  role: string;
  pid: number;
  at: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** Starts reporting as `role` when DRAMATIS_MEMORY_REPORT is set; a no-op otherwise. */
export function reportMemory(role: string): void {
  const file = environment().DRAMATIS_MEMORY_REPORT;
  if (!file) return;
  const write = () => {
    const u = memoryUsage();
    const r: MemoryReport = {
      role,
      pid: pid(),
      at: Date.now(),
      rss: u.rss,
      heapUsed: u.heapUsed,
      heapTotal: u.heapTotal,
      external: u.external,
    };
    writeText(file, JSON.stringify(r) + "\n", { append: true });
  };
  write();
  unrefTimer(setInterval(write, REPORT_MS));
}
