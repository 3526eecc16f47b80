/**
 * `ResultBackend`: where the `Results` middleware stores actors' return values, and
 * `MemoryResultBackend`, the in-process one.
 *
 * @example
 * ```ts
 * import { MemoryResultBackend } from "@dramatis/dramatis";
 * const backend = new MemoryResultBackend();
 * ```
 * @module
 */
import type { Message } from "../message.ts";
import type { JsonValue } from "../message.ts";
import { qName } from "../broker/queue_name.ts";
import { ResultFailure, ResultMissing, ResultTimeout } from "../errors.ts";
import { md5Hex } from "../util/md5.ts";
import { sleep } from "../util/async.ts";

/**
 * How a failure is stored: Dramatiq's wrapper object.
 *
 * @example
 * ```ts
 * import type { StoredFailure } from "@dramatis/dramatis";
 * const f: StoredFailure = { __t: "dramatiq.results.Result", exn: { type: "Error", msg: "boom" } };
 * ```
 */
export interface StoredFailure {
  /** Marks the wrapper. */
  __t: "dramatiq.results.Result";
  /** The error's class name and message. */
  exn: { type: string; msg: string };
}

/**
 * Options of `getResult`.
 *
 * @example
 * ```ts
 * import type { ResultGetOptions } from "@dramatis/dramatis";
 * const o: ResultGetOptions = { block: true, timeout: 1000 };
 * ```
 */
export interface ResultGetOptions {
  /** Wait for the result. Default false. */
  block?: boolean;
  /** How long to wait, in ms. Default 10_000. */
  timeout?: number | undefined;
}

/**
 * Options every result backend takes.
 *
 * @example
 * ```ts
 * import type { ResultBackendOptions } from "@dramatis/dramatis";
 * const o: ResultBackendOptions = { namespace: "billing-results", useNamespacePrefixKeys: true };
 * ```
 */
export interface ResultBackendOptions {
  /** The key namespace. Default `"dramatiq-results"`, as in Dramatiq. */
  namespace?: string | undefined;
  /**
   * Store each result under the readable key `namespace:queue:actor:message_id` instead of its
   * MD5 (Dramatiq's `use_namespace_prefix_keys`), so keys can be listed or expired by namespace.
   * Python Dramatiq reads them when it is configured the same way. Default false: MD5 keys, as
   * Dramatiq's default.
   */
  useNamespacePrefixKeys?: boolean | undefined;
}

/**
 * Base class of result backends. Subclasses store and fetch encoded JSON text by key; this
 * class builds Dramatiq's keys (MD5 of `namespace:queue:actor:message_id`, or that text itself
 * with `useNamespacePrefixKeys`) and encodings.
 *
 * @example
 * ```ts
 * import { ResultBackend } from "@dramatis/dramatis";
 * class MyBackend extends ResultBackend {
 *   #m = new Map<string, string>();
 *   protected _store(key: string, value: string) { this.#m.set(key, value); return Promise.resolve(); }
 *   protected _get(key: string) { return Promise.resolve(this.#m.get(key)); }
 * }
 * ```
 */
export abstract class ResultBackend {
  /** The key namespace. Default `"dramatiq-results"`, as in Dramatiq. */
  readonly namespace: string;
  /** Keys are `namespace:queue:actor:message_id` as is, not their MD5. */
  readonly useNamespacePrefixKeys: boolean;

  /** Creates the backend. */
  constructor(options: ResultBackendOptions = {}) {
    this.namespace = options.namespace ?? "dramatiq-results";
    this.useNamespacePrefixKeys = options.useNamespacePrefixKeys ?? false;
  }

  /** The storage key of a message's result (the same key Python Dramatiq uses). */
  buildMessageKey(message: Message): string {
    const key = `${this.namespace}:${
      qName(message.queueName)
    }:${message.actorName}:${message.messageId}`;
    return this.useNamespacePrefixKeys ? key : md5Hex(key);
  }

  /** Stores a successful result for `ttl` ms. */
  storeResult(message: Message, result: JsonValue, ttl: number): Promise<void> {
    return this._store(this.buildMessageKey(message), JSON.stringify(result), ttl);
  }

  /** Stores a final failure for `ttl` ms. */
  storeFailure(message: Message, error: unknown, ttl: number): Promise<void> {
    const exn = error instanceof Error
      ? { type: error.name, msg: error.message }
      : { type: "Error", msg: String(error) };
    const wrapped: StoredFailure = { __t: "dramatiq.results.Result", exn };
    return this._store(this.buildMessageKey(message), JSON.stringify(wrapped), ttl);
  }

  /**
   * The result of `message`. Throws `ResultMissing` (non-blocking, not there), `ResultTimeout`
   * (blocking, not there in time) or `ResultFailure` (the actor failed for good).
   */
  async getResult(message: Message, options: ResultGetOptions = {}): Promise<unknown> {
    const key = this.buildMessageKey(message);
    const timeout = options.timeout ?? 10_000;
    const text = options.block ? await this._wait(key, timeout) : await this._get(key);
    if (text === undefined) {
      if (options.block) {
        throw new ResultTimeout(
          `No result for message ${message.messageId} after ${timeout} ms. Is a worker running ` +
            `with the Results middleware, and does the actor have storeResults: true?`,
        );
      }
      throw new ResultMissing(`No result (yet) for message ${message.messageId}.`);
    }
    return unwrap(JSON.parse(text));
  }

  /** Stores `value` (JSON text) under `key` for `ttl` ms, replacing what was there. */
  protected abstract _store(key: string, value: string, ttl: number): Promise<void>;

  /** The JSON text stored under `key`, or undefined. */
  protected abstract _get(key: string): Promise<string | undefined>;

  /**
   * Waits up to `timeout` ms for `key`. The default polls `_get` with backoff (100 ms x 2^n,
   * capped at 2 s, as Dramatiq does); backends that can wait without polling override it.
   */
  protected async _wait(key: string, timeout: number): Promise<string | undefined> {
    const deadline = Date.now() + timeout;
    for (let attempt = 0;; attempt++) {
      const v = await this._get(key);
      if (v !== undefined) return v;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      const backoff = Math.min(2000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
      await sleep(Math.min(left, backoff));
    }
  }
}

/**
 * Turns a stored value back into the result, or throws `ResultFailure` for a stored failure.
 *
 * @example
 * ```ts
 * import { unwrap } from "@dramatis/dramatis";
 * console.log(unwrap(42)); // 42
 * ```
 */
export function unwrap(value: unknown): unknown {
  if (
    value !== null && typeof value === "object" &&
    (value as StoredFailure).__t === "dramatiq.results.Result"
  ) {
    const exn = (value as StoredFailure).exn ?? { type: "Error", msg: "" };
    throw new ResultFailure(`actor raised ${exn.type}: ${exn.msg}`, {
      errorName: exn.type,
      errorMessage: exn.msg,
    });
  }
  return value;
}

/**
 * Keeps results in this isolate's memory, with TTLs. Blocking reads wake as soon as the result
 * is stored (no polling). For tests and single-process apps.
 *
 * @example
 * ```ts
 * import { MemoryResultBackend, Results, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
 * ```
 */
export class MemoryResultBackend extends ResultBackend {
  #values = new Map<string, { value: string; expires: number }>();
  #waiters = new Map<string, Set<(v: string) => void>>();

  /** Stores `value` under `key` for `ttl` ms. */
  protected _store(key: string, value: string, ttl: number): Promise<void> {
    this.#values.set(key, { value, expires: Date.now() + ttl });
    const waiters = this.#waiters.get(key);
    if (waiters) {
      this.#waiters.delete(key);
      for (const w of waiters) w(value);
    }
    if (this.#values.size % 1024 === 0) this.#sweep();
    return Promise.resolve();
  }

  /** The value under `key`, or undefined. */
  protected _get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.#lookup(key));
  }

  #lookup(key: string): string | undefined {
    const e = this.#values.get(key);
    if (e && e.expires <= Date.now()) this.#values.delete(key);
    return e && e.expires > Date.now() ? e.value : undefined;
  }

  /** Waits for `key` without polling. */
  protected override _wait(key: string, timeout: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      // Look and register in the same tick, so a result stored in between is not missed.
      const now = this.#lookup(key);
      if (now !== undefined) return resolve(now);
      let set = this.#waiters.get(key);
      if (!set) this.#waiters.set(key, set = new Set());
      const done = (v: string | undefined) => {
        clearTimeout(timer);
        set!.delete(done);
        resolve(v);
      };
      const timer = setTimeout(() => done(undefined), timeout);
      set.add(done);
    });
  }

  #sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.#values) if (e.expires <= now) this.#values.delete(k);
  }
}
