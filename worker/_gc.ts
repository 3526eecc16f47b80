// Explicit garbage collection for the isolates of a worker process (its main thread and each Web
// Worker). Left to itself, V8 (and JSC) let a draining isolate's heap grow to several times what
// is live before a major collection: the worker tree's memory peak during a drain is mostly that
// garbage. Every CHECK_MS this looks at the isolate's heap; when it grew by more than the
// threshold since the last collection, it collects now. The threshold is DRAMATIS_GC_MB
// (default DEFAULT_MB; 0 turns this off). On Deno it needs `--v8-flags=--expose-gc`, which
// worker/supervisor.ts passes to worker processes; without it this does nothing.
import {
  environment,
  memoryUsage,
  requestGarbageCollection,
  unrefTimer,
} from "../runtime/process.ts";
import { getLogger } from "../util/log.ts";

/** How often the heap is looked at, in ms. */
const CHECK_MS = 50;
/** Default growth of the heap, in MB, that triggers a collection. */
export const DEFAULT_GC_MB = 16;

/** The threshold in bytes from DRAMATIS_GC_MB (0: off). */
export function gcThreshold(env: Record<string, string> = environment()): number {
  const raw = env.DRAMATIS_GC_MB;
  const mb = raw === undefined || raw === "" ? DEFAULT_GC_MB : Number(raw);
  if (!Number.isFinite(mb) || mb < 0) {
    throw new RangeError(
      `DRAMATIS_GC_MB must be a number of MB >= 0 (0 turns explicit collections off), not ${
        JSON.stringify(raw)
      }.`,
    );
  }
  return mb * 1024 * 1024;
}

/**
 * Collects garbage whenever the heap grew by `threshold` bytes since the last collection (looked
 * at every CHECK_MS). Returns a function that stops it, and counts collections in `stats`.
 */
export function startGcTrigger(
  threshold: number = gcThreshold(),
  stats: { collections: number } = { collections: 0 },
): () => void {
  if (threshold <= 0) return () => {};
  const logger = getLogger("dramatis.gc");
  let base = used();
  const timer = setInterval(() => {
    const now = used();
    if (now < base) base = now; // the runtime collected by itself
    else if (now - base > threshold) {
      const t0 = performance.now();
      if (!requestGarbageCollection()) return clearInterval(timer); // not exposed: nothing to do
      const ms = performance.now() - t0;
      stats.collections++;
      base = used();
      logger.debug(
        `Collected garbage: heap ${mb(now)} -> ${mb(base)} MB in ${ms.toFixed(1)} ms.`,
      );
    }
  }, CHECK_MS);
  unrefTimer(timer);
  return () => clearInterval(timer);
}

/**
 * What the trigger watches: the heap. (Counting the ArrayBuffers too collected more often and
 * cost a third of Deno's drain rate; see docs/benchmarks.md, "Worker process memory".)
 */
function used(): number {
  return memoryUsage().heapUsed;
}

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
