// Promise helpers.

/**
 * A value or a promise of it: every hook may be sync or async.
 *
 * @example
 * ```ts
 * import type { Awaitable } from "@dramatis/dramatis";
 * const f = (): Awaitable<void> => Promise.resolve();
 * ```
 */
export type Awaitable<T> = T | Promise<T>;

/**
 * Resolves after `ms` ms, or as soon as `signal` aborts (at once when it already has). It never
 * rejects: callers check the signal themselves.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * How long a consumer loop waits after its `failures`-th failed receive in a row: 200 ms,
 * doubling, at most 30 s.
 */
export function receiveBackoff(failures: number): number {
  return Math.min(30_000, 100 * 2 ** Math.min(failures, 9));
}
