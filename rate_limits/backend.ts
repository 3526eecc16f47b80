/**
 * The rate-limiter backend interface (Dramatiq's primitives) and `MemoryRateLimiterBackend`.
 *
 * @example
 * ```ts
 * import { MemoryRateLimiterBackend } from "@dramatis/dramatis";
 * const backend = new MemoryRateLimiterBackend();
 * console.log(await backend.add("k", 1, 1000)); // true
 * ```
 * @module
 */

/**
 * What limiters and barriers need from storage. Every method is atomic. Keys are used as
 * given (no namespace), values are integers, TTLs are in ms.
 *
 * @example
 * ```ts
 * import type { RateLimiterBackend } from "@dramatis/dramatis";
 * async function tryOnce(b: RateLimiterBackend) {
 *   return await b.add("lock", 1, 10_000) || await b.incr("lock", 1, 2, 10_000);
 * }
 * ```
 */
export interface RateLimiterBackend {
  /** Sets `key` to `value` if it does not exist. True if it was set. */
  add(key: string, value: number, ttl: number): Promise<boolean>;
  /** Adds `amount` unless the result would exceed `maximum`; refreshes the TTL. */
  incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean>;
  /** Subtracts `amount` unless the result would go below `minimum`; refreshes the TTL. */
  decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean>;
  /**
   * Adds `amount` to `key` unless `key + amount` or `amount + sum(keys)` would exceed
   * `maximum` (`keys` includes `key`).
   */
  incrAndSum(
    key: string,
    keys: () => string[],
    amount: number,
    maximum: number,
    ttl: number,
  ): Promise<boolean>;
  /** Waits up to `timeout` ms for `waitNotify(key)`. True if notified (now or before). */
  wait(key: string, timeout: number): Promise<boolean>;
  /** Wakes every waiter on `key`, now and for `ttl` ms. */
  waitNotify(key: string, ttl: number): Promise<void>;
}

interface Entry {
  value: number;
  expires: number;
}

/**
 * Keeps counters in this isolate's memory. For tests and single-process apps.
 *
 * @example
 * ```ts
 * import { ConcurrentRateLimiter, MemoryRateLimiterBackend } from "@dramatis/dramatis";
 * const mutex = new ConcurrentRateLimiter(new MemoryRateLimiterBackend(), "mutex", { limit: 1 });
 * ```
 */
export class MemoryRateLimiterBackend implements RateLimiterBackend {
  #db = new Map<string, Entry>();
  #notified = new Map<string, number>();
  #waiters = new Map<string, Set<() => void>>();

  #get(key: string): number | undefined {
    const e = this.#db.get(key);
    if (!e) return undefined;
    if (e.expires <= Date.now()) {
      this.#db.delete(key);
      return undefined;
    }
    return e.value;
  }

  add(key: string, value: number, ttl: number): Promise<boolean> {
    if (this.#get(key) !== undefined) return Promise.resolve(false);
    this.#db.set(key, { value, expires: Date.now() + ttl });
    return Promise.resolve(true);
  }

  incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    const v = (this.#get(key) ?? 0) + amount;
    if (v > maximum) return Promise.resolve(false);
    this.#db.set(key, { value: v, expires: Date.now() + ttl });
    return Promise.resolve(true);
  }

  decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    const v = (this.#get(key) ?? 0) - amount;
    if (v < minimum) return Promise.resolve(false);
    this.#db.set(key, { value: v, expires: Date.now() + ttl });
    return Promise.resolve(true);
  }

  incrAndSum(
    key: string,
    keys: () => string[],
    amount: number,
    maximum: number,
    ttl: number,
  ): Promise<boolean> {
    const own = (this.#get(key) ?? 0) + amount;
    if (own > maximum) return Promise.resolve(false);
    let sum = amount;
    for (const k of keys()) sum += this.#get(k) ?? 0;
    if (sum > maximum) return Promise.resolve(false);
    this.#db.set(key, { value: own, expires: Date.now() + ttl });
    return Promise.resolve(true);
  }

  wait(key: string, timeout: number): Promise<boolean> {
    const until = this.#notified.get(key);
    if (until !== undefined && until > Date.now()) return Promise.resolve(true);
    return new Promise((resolve) => {
      let set = this.#waiters.get(key);
      if (!set) this.#waiters.set(key, set = new Set());
      const done = (ok: boolean) => {
        clearTimeout(timer);
        set!.delete(wake);
        resolve(ok);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(false), timeout);
      set.add(wake);
    });
  }

  waitNotify(key: string, ttl: number): Promise<void> {
    this.#notified.set(key, Date.now() + ttl);
    const set = this.#waiters.get(key);
    if (set) { for (const w of [...set]) w(); }
    return Promise.resolve();
  }
}
