// Shared by the FileBroker test scripts (tests/_file_*.ts), which run in child processes and
// Web Workers: a consumer that reports what it processes.
import { FileBroker } from "../broker/file/broker.ts";
import { actor } from "../actor.ts";
import { Worker } from "../worker/worker.ts";
import { writeSync } from "node:fs";
import { setImmediate } from "node:timers";

/** Arguments after the script name, on Deno and Bun. */
export function scriptArgs(): string[] {
  return (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
}

/** Writes `text` to stdout now (a synchronous write, so nothing is lost on SIGKILL). */
export function emit(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let n = 0;
  while (n < bytes.length) n += writeSync(1, bytes, n, bytes.length - n);
}

/** Options of `startConsumer`. */
export interface ConsumerOptions {
  dir: string;
  /**
   * "work": report `id` and finish; "yield": the same after yielding to the event loop (so
   * timers such as compaction run meanwhile); "hang": report `start id` and never finish;
   * "spin": report `start id` and block the event loop for good (alive, but stuck).
   */
  mode: "work" | "yield" | "hang" | "spin";
  leaseTimeout: number;
  concurrency: number;
  /** Where lines go (stdout, or postMessage in a Web Worker). */
  out: (lines: string) => void;
  /** Segment size of the broker (small ones make compaction run often). */
  segmentSize?: number;
  /** Also run `broker.compact()` this often, in ms. */
  compactEvery?: number;
}

/** Starts a Worker on queue "q" whose actor `record(id)` reports each id. Returns a stop function. */
export async function startConsumer(o: ConsumerOptions): Promise<() => Promise<void>> {
  const broker = new FileBroker({
    dir: o.dir,
    leaseTimeout: o.leaseTimeout,
    segmentSize: o.segmentSize,
  });
  const compactor = o.compactEvery
    ? setInterval(
      () => broker.compact().catch((e) => o.out(`compact failed: ${e}\n`)),
      o.compactEvery,
    )
    : undefined;
  let pending = "";
  const flush = () => {
    if (pending) o.out(pending);
    pending = "";
  };
  const timer = setInterval(flush, 10);
  actor(async function record(id: string) {
    if (o.mode === "hang" || o.mode === "spin") {
      pending += `start ${id}\n`;
      flush();
      if (o.mode === "spin") { for (;;) { /* never yields: no heartbeat, no ack */ } }
      await new Promise(() => {});
    }
    if (o.mode === "yield") await new Promise((r) => setImmediate(r));
    pending += `${id}\n`;
  }, { actorName: "record", queueName: "q", broker, maxRetries: 0 });
  const worker = new Worker(broker, {
    queues: ["q"],
    concurrency: o.concurrency,
    workerTimeout: 100,
  });
  await worker.start();
  return async () => {
    await worker.stop({ timeout: 2_000 });
    clearInterval(timer);
    clearInterval(compactor);
    flush();
    await broker.close();
  };
}
