/**
 * Rate limiters and barriers: `ConcurrentRateLimiter`, `WindowRateLimiter`,
 * `BucketRateLimiter`, `Barrier`. They hold across processes when their backend does.
 *
 * @example
 * ```ts
 * import { ConcurrentRateLimiter, MemoryRateLimiterBackend } from "@dramatis/dramatis";
 * const mutex = new ConcurrentRateLimiter(new MemoryRateLimiterBackend(), "mutex", { limit: 1 });
 * await mutex.acquire(async () => console.log("one at a time"));
 * ```
 * @module
 */
import type { RateLimiterBackend } from "./backend.ts";
import { RateLimitExceeded } from "../errors.ts";

/**
 * A held slot of a rate limiter. Release it with `release()` or `await using`.
 *
 * @example
 * ```ts
 * import { ConcurrentRateLimiter, MemoryRateLimiterBackend } from "@dramatis/dramatis";
 * const limiter = new ConcurrentRateLimiter(new MemoryRateLimiterBackend(), "k", { limit: 2 });
 * await using lease = await limiter.lease();
 * console.log(lease.acquired); // true
 * ```
 */
export interface Lease extends AsyncDisposable {
  /** False only when acquiring failed and `raiseOnFailure` was false. */
  readonly acquired: boolean;
  /** Gives the slot back (once; later calls do nothing). */
  release(): Promise<void>;
}

/**
 * Options of `acquire` and `lease`.
 *
 * @example
 * ```ts
 * import type { AcquireOptions } from "@dramatis/dramatis";
 * const o: AcquireOptions = { raiseOnFailure: false };
 * ```
 */
export interface AcquireOptions {
  /** Throw `RateLimitExceeded` when the limit is reached. Default true. */
  raiseOnFailure?: boolean;
}

/**
 * The base class of rate limiters.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "@dramatis/dramatis";
 * class Always extends RateLimiter {
 *   protected _acquire() { return Promise.resolve(true); }
 *   protected _release() { return Promise.resolve(); }
 * }
 * ```
 */
export abstract class RateLimiter {
  /** Creates a limiter over `backend` for `key`. */
  constructor(readonly backend: RateLimiterBackend, readonly key: string) {
    if (typeof key !== "string" || key === "") {
      throw new TypeError(
        `new ${new.target.name}(): the key must be a non-empty string, got ${JSON.stringify(key)}.`,
      );
    }
  }

  /** Tries to take a slot. */
  protected abstract _acquire(): Promise<boolean>;
  /** Gives a slot back. */
  protected abstract _release(): Promise<void>;

  /**
   * Runs `fn` if a slot is free and returns its result; releases the slot afterwards. When the
   * limit is reached: throws `RateLimitExceeded`, or with `raiseOnFailure: false` returns
   * undefined without running `fn`.
   */
  async acquire<T>(fn: () => T | Promise<T>, options: AcquireOptions = {}): Promise<T | undefined> {
    const lease = await this.lease(options);
    if (!lease.acquired) return undefined;
    try {
      return await fn();
    } finally {
      await lease.release();
    }
  }

  /** Takes a slot and returns a `Lease` (for `await using`). */
  async lease(options: AcquireOptions = {}): Promise<Lease> {
    const acquired = await this._acquire();
    if (!acquired && (options.raiseOnFailure ?? true)) {
      throw new RateLimitExceeded(`Rate limit exceeded for key ${JSON.stringify(this.key)}.`);
    }
    let released = !acquired;
    const release = async () => {
      if (released) return;
      released = true;
      await this._release();
    };
    return { acquired, release, [Symbol.asyncDispose]: release };
  }
}

function positive(cls: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new TypeError(`new ${cls}(): ${name} must be a positive integer, got ${v}.`);
  }
  return v;
}

/**
 * At most `limit` holders at once (a distributed mutex when `limit` is 1). A holder that dies
 * without releasing frees its slot after `ttl` ms (default 15 minutes).
 *
 * @example
 * ```ts
 * import { ConcurrentRateLimiter, MemoryRateLimiterBackend } from "@dramatis/dramatis";
 * const limiter = new ConcurrentRateLimiter(new MemoryRateLimiterBackend(), "api", { limit: 2 });
 * await limiter.acquire(() => fetch("http://127.0.0.1:1").catch(() => {}));
 * ```
 */
export class ConcurrentRateLimiter extends RateLimiter {
  /** The number of concurrent holders allowed. */
  readonly limit: number;
  /** How long a slot stays taken without a release, in ms. */
  readonly ttl: number;
  /** Creates the limiter. */
  constructor(backend: RateLimiterBackend, key: string, options: { limit: number; ttl?: number }) {
    super(backend, key);
    this.limit = positive("ConcurrentRateLimiter", "limit", options?.limit);
    this.ttl = options.ttl ?? 900_000;
  }
  /** Tries to take a slot. */
  protected async _acquire(): Promise<boolean> {
    return await this.backend.add(this.key, 1, this.ttl) ||
      await this.backend.incr(this.key, 1, this.limit, this.ttl);
  }
  /** Gives a slot back. */
  protected async _release(): Promise<void> {
    await this.backend.decr(this.key, 1, 0, this.ttl);
  }
}

/**
 * At most `limit` acquisitions in any sliding `window` (ms, a multiple of 1000: Dramatiq keys
 * the window by whole seconds). Nothing is released.
 *
 * @example
 * ```ts
 * import { MemoryRateLimiterBackend, WindowRateLimiter } from "@dramatis/dramatis";
 * const limiter = new WindowRateLimiter(new MemoryRateLimiterBackend(), "sms", { limit: 10, window: 1000 });
 * ```
 */
export class WindowRateLimiter extends RateLimiter {
  /** Acquisitions allowed per window. */
  readonly limit: number;
  /** The window in ms. */
  readonly window: number;
  #seconds: number;
  /** Creates the limiter. */
  constructor(
    backend: RateLimiterBackend,
    key: string,
    options: { limit: number; window: number },
  ) {
    super(backend, key);
    this.limit = positive("WindowRateLimiter", "limit", options?.limit);
    this.window = positive("WindowRateLimiter", "window", options.window);
    if (this.window % 1000 !== 0) {
      throw new TypeError(
        `new WindowRateLimiter(): window must be a multiple of 1000 ms, got ${this.window}.`,
      );
    }
    this.#seconds = this.window / 1000;
  }
  /** Tries to take a slot. */
  protected _acquire(): Promise<boolean> {
    const now = Math.floor(Date.now() / 1000);
    const keys = () => {
      const out: string[] = [];
      for (let i = 1; i < this.#seconds; i++) out.push(`${this.key}@${now - i}`);
      return out;
    };
    return this.backend.incrAndSum(`${this.key}@${now}`, keys, 1, this.limit, this.window);
  }
  /** Gives a slot back. */
  protected _release(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * At most `limit` acquisitions per fixed `bucket` of time (ms, default 1000). Nothing is
 * released.
 *
 * @example
 * ```ts
 * import { BucketRateLimiter, MemoryRateLimiterBackend } from "@dramatis/dramatis";
 * const limiter = new BucketRateLimiter(new MemoryRateLimiterBackend(), "calls", { limit: 100, bucket: 60_000 });
 * ```
 */
export class BucketRateLimiter extends RateLimiter {
  /** Acquisitions allowed per bucket. */
  readonly limit: number;
  /** The bucket length in ms. */
  readonly bucket: number;
  /** Creates the limiter. */
  constructor(
    backend: RateLimiterBackend,
    key: string,
    options: { limit: number; bucket?: number },
  ) {
    super(backend, key);
    this.limit = positive("BucketRateLimiter", "limit", options?.limit);
    this.bucket = positive("BucketRateLimiter", "bucket", options.bucket ?? 1000);
  }
  /** Tries to take a slot. */
  protected async _acquire(): Promise<boolean> {
    const start = Math.floor(Date.now() / this.bucket) * this.bucket;
    const k = `${this.key}@${start}`;
    return await this.backend.add(k, 1, this.bucket) ||
      await this.backend.incr(k, 1, this.limit, this.bucket);
  }
  /** Gives a slot back. */
  protected _release(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A barrier for `parties` participants: each `wait()` counts one arrival; the last one clears
 * it and wakes every blocked waiter.
 *
 * @example
 * ```ts
 * import { Barrier, MemoryRateLimiterBackend } from "@dramatis/dramatis";
 * const barrier = new Barrier(new MemoryRateLimiterBackend(), "batch-1", { ttl: 60_000 });
 * await barrier.create(2);
 * const first = barrier.wait({ timeout: 1000 });
 * await barrier.wait({ timeout: 1000 });
 * console.log(await first); // true
 * ```
 */
export class Barrier {
  /** How long the barrier lives, in ms. */
  readonly ttl: number;
  /** Creates a barrier handle (call `create` once, from one place). */
  constructor(
    readonly backend: RateLimiterBackend,
    readonly key: string,
    options: { ttl?: number } = {},
  ) {
    this.ttl = options.ttl ?? 900_000;
  }
  /** Creates the barrier for `parties` participants. False if it already exists. */
  create(parties: number): Promise<boolean> {
    positive("Barrier", "parties", parties);
    return this.backend.add(this.key, parties, this.ttl);
  }
  /**
   * Arrives at the barrier. Resolves true once it is cleared (now, or within `timeout` ms when
   * `block` is true, the default); false otherwise.
   */
  async wait(options: { block?: boolean; timeout?: number } = {}): Promise<boolean> {
    const released = await this.backend.decr(this.key, 1, 1, this.ttl);
    if (!released) {
      await this.backend.waitNotify(`${this.key}@events`, this.ttl);
      return true;
    }
    if (options.block === false) return false;
    return await this.backend.wait(`${this.key}@events`, options.timeout ?? this.ttl);
  }
}
