// Shared test helpers.
import { type Broker, Worker, type WorkerOptions } from "../mod.ts";

/** Starts a worker, waits for `queue` to drain, stops the worker. */
export async function drainWith(
  broker: Broker,
  queue = "default",
  options: WorkerOptions & { timeout?: number; failFast?: boolean } = {},
): Promise<void> {
  const { timeout = 10_000, failFast = false, ...workerOptions } = options;
  const worker = new Worker(broker, { workerTimeout: 50, ...workerOptions });
  await worker.start();
  try {
    await broker.join(queue, { timeout, failFast });
    await worker.join();
  } finally {
    await worker.stop({ timeout: 1_000 });
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
