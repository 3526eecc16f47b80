/**
 * `FileRateLimiterBackend`: limiter and barrier counters in a file, shared by every process
 * (and Web Worker) on one machine.
 *
 * @example
 * ```ts
 * import { FileRateLimiterBackend } from "./file.ts";
 * import { ConcurrentRateLimiter } from "./limiters.ts";
 * const backend = new FileRateLimiterBackend({ dir: "./.dramatis/limits" });
 * const mutex = new ConcurrentRateLimiter(backend, "reports", { limit: 1, ttl: 60_000 });
 * ```
 * @module
 */
import {
  accessModes,
  type FileAccess,
  makeDir,
  openFile,
  type RawFile,
  watchDir,
  type Watcher,
} from "../runtime/fs.ts";
import type { RateLimiterBackend } from "./backend.ts";

interface Entry {
  /** The counter (or, for notification keys, 1). */
  v: number;
  /** Expiry, ms since the epoch. */
  e: number;
}

type Db = Record<string, Entry>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Keeps every counter in one small JSON file, `state.json`, in `dir`. Each operation takes an
 * exclusive `flock` (on `state.lock`), reads it, changes it and writes it back, so operations from any
 * number of processes are atomic. The kernel drops the lock of a process that dies, so a holder
 * killed with SIGKILL never blocks the others, and its slots free themselves after their TTL.
 * Expired keys are removed whenever the file is written, so it stays small.
 *
 * @example
 * ```ts
 * import { FileRateLimiterBackend } from "./file.ts";
 * const backend = new FileRateLimiterBackend({ dir: "./.dramatis/limits" });
 * console.log(await backend.add("k", 1, 1_000)); // true (false if another process got there first)
 * ```
 */
export class FileRateLimiterBackend implements RateLimiterBackend {
  /** The directory holding `state.json`. */
  readonly dir: string;
  #file: RawFile | undefined;
  #lock: RawFile | undefined;
  #buf = new Uint8Array(64 * 1024);
  readonly #fileMode: number;

  /**
   * Creates the backend; the directory is created if missing. `access`: `"owner"` (default;
   * directory 0700, files 0600), `"group"` (0770, 0660) or `"group-read"` (0750, 0640), as for
   * `FileBroker`.
   */
  constructor(options: { dir?: string; access?: FileAccess } = {}) {
    this.dir = options.dir ?? "./.dramatis/limits";
    const modes = accessModes(options.access);
    this.#fileMode = modes.file;
    makeDir(this.dir, modes.dir);
  }

  #transact<T>(fn: (db: Db, now: number) => { result: T; changed: boolean }): T {
    const mode = this.#fileMode;
    const file = this.#file ??= openFile(`${this.dir}/state.json`, { create: true, mode });
    // The lock lives in its own file: on Bun the lock holder writes its pid into the locked file.
    const lock = this.#lock ??= openFile(`${this.dir}/state.lock`, { create: true, mode });
    lock.lock();
    try {
      const size = file.size();
      if (size > this.#buf.length) this.#buf = new Uint8Array(size * 2);
      const n = file.read(this.#buf.subarray(0, size), 0);
      let db: Db = {};
      if (n > 0) {
        try {
          db = JSON.parse(decoder.decode(this.#buf.subarray(0, n)));
        } catch {
          db = {}; // a torn write from a crash: start over (counters are soft state)
        }
      }
      const now = Date.now();
      for (const k of Object.keys(db)) if (db[k]!.e <= now) delete db[k];
      const { result, changed } = fn(db, now);
      if (changed || n > 0) {
        const bytes = encoder.encode(JSON.stringify(db));
        file.write(bytes, 0);
        if (bytes.length !== n) file.truncate(bytes.length);
      }
      return result;
    } finally {
      lock.unlock();
    }
  }

  /** Sets `key` to `value` if it is not set. */
  add(key: string, value: number, ttl: number): Promise<boolean> {
    return Promise.resolve(this.#transact((db, now) => {
      if (db[key]) return { result: false, changed: false };
      db[key] = { v: value, e: now + ttl };
      return { result: true, changed: true };
    }));
  }

  /** Adds `amount` unless that would exceed `maximum`. */
  incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    return Promise.resolve(this.#transact((db, now) => {
      const v = (db[key]?.v ?? 0) + amount;
      if (v > maximum) return { result: false, changed: false };
      db[key] = { v, e: now + ttl };
      return { result: true, changed: true };
    }));
  }

  /** Subtracts `amount` unless that would go below `minimum`. */
  decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    return Promise.resolve(this.#transact((db, now) => {
      const v = (db[key]?.v ?? 0) - amount;
      if (v < minimum) return { result: false, changed: false };
      db[key] = { v, e: now + ttl };
      return { result: true, changed: true };
    }));
  }

  /** Adds `amount` to `key` unless it, or the sum over `keys`, would exceed `maximum`. */
  incrAndSum(
    key: string,
    keys: () => string[],
    amount: number,
    maximum: number,
    ttl: number,
  ): Promise<boolean> {
    return Promise.resolve(this.#transact((db, now) => {
      const own = (db[key]?.v ?? 0) + amount;
      if (own > maximum) return { result: false, changed: false };
      let sum = own;
      for (const k of keys()) if (k !== key) sum += db[k]?.v ?? 0;
      if (sum > maximum) return { result: false, changed: false };
      db[key] = { v: own, e: now + ttl };
      return { result: true, changed: true };
    }));
  }

  /** Waits for `waitNotify(key)`, watching the directory (with a slow poll as a fallback). */
  wait(key: string, timeout: number): Promise<boolean> {
    const notified = () =>
      this.#transact((db) => ({ result: !!db[`@notify:${key}`], changed: false }));
    if (notified()) return Promise.resolve(true);
    return new Promise((resolve) => {
      let watcher: Watcher | undefined;
      let poll: ReturnType<typeof setTimeout>;
      let delay = 10;
      const finish = (ok: boolean) => {
        clearTimeout(deadline);
        clearTimeout(poll);
        watcher?.close();
        resolve(ok);
      };
      const check = () => {
        if (notified()) finish(true);
      };
      try {
        watcher = watchDir(this.dir, check);
      } catch {
        watcher = undefined;
      }
      const tick = () => {
        check();
        delay = Math.min(delay * 2, 500);
        poll = setTimeout(tick, delay);
      };
      poll = setTimeout(tick, delay);
      const deadline = setTimeout(() => finish(notified()), timeout);
    });
  }

  /** Marks `key` notified for `ttl` ms, waking every waiter. */
  waitNotify(key: string, ttl: number): Promise<void> {
    this.#transact((db, now) => {
      db[`@notify:${key}`] = { v: 1, e: now + ttl };
      return { result: undefined, changed: true };
    });
    return Promise.resolve();
  }

  /** Closes the state file. */
  close(): void {
    this.#file?.close();
    this.#lock?.close();
    this.#file = this.#lock = undefined;
  }
}
