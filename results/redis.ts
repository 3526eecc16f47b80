/**
 * `RedisResultBackend`: results in Redis, with Python Dramatiq's keys and encoding, so either
 * side can read what the other stored.
 *
 * @example
 * ```ts
 * import { RedisResultBackend } from "@dramatis/dramatis";
 * const backend = new RedisResultBackend({ url: "redis://127.0.0.1:6379/0" });
 * await backend.close();
 * ```
 * @module
 */
import { ResultBackend } from "./backend.ts";
import type { RedisClient, Reply } from "../broker/redis/client.ts";
import { RedisBackendConnection, type RedisBackendOptions } from "../broker/redis/_backend.ts";

/**
 * Options of `new RedisResultBackend()`.
 *
 * @example
 * ```ts
 * import type { RedisResultBackendOptions } from "@dramatis/dramatis";
 * const o: RedisResultBackendOptions = { url: "redis://127.0.0.1:6379/0" };
 * ```
 */
export interface RedisResultBackendOptions extends RedisBackendOptions {
  /** Key namespace. Default `"dramatiq-results"`, as in Dramatiq. */
  namespace?: string;
  /**
   * Keys `namespace:queue:actor:message_id` instead of their MD5 (Dramatiq's
   * `use_namespace_prefix_keys`). Default false.
   */
  useNamespacePrefixKeys?: boolean;
}

// DEL + LPUSH + PEXPIRE in one step, as Dramatiq's MULTI/EXEC does.
const STORE_LUA = `
redis.call('DEL', KEYS[1])
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

function text(reply: Reply): string | undefined {
  if (reply === null) return undefined;
  return reply instanceof Uint8Array ? new TextDecoder().decode(reply) : String(reply);
}

/**
 * Stores each result as a one-element Redis list under Dramatiq's key (MD5 of
 * `namespace:queue:actor:message_id`, or that text itself with `useNamespacePrefixKeys`), with a
 * TTL. A blocking `getResult` waits with
 * `BLMOVE key key RIGHT LEFT` on a connection of its own: it wakes as soon as the result is
 * stored, and never removes it (other readers still see it). Timeouts are honoured to the
 * millisecond (Dramatiq rounds them down to whole seconds, so a timeout under one second does
 * not wait at all there).
 *
 * @example
 * ```ts
 * import { RedisBroker, RedisResultBackend, Results } from "@dramatis/dramatis";
 *
 * const broker = new RedisBroker({ url: "redis://127.0.0.1:6379/0" });
 * const backend = new RedisResultBackend({ client: broker.client });
 * broker.addMiddleware(new Results({ backend }));
 * await backend.close();
 * await broker.close();
 * ```
 */
export class RedisResultBackend extends ResultBackend {
  readonly #redis: RedisBackendConnection;

  /** Creates the backend; it connects on first use. */
  constructor(options: RedisResultBackendOptions = {}) {
    super({
      namespace: options.namespace,
      useNamespacePrefixKeys: options.useNamespacePrefixKeys,
    });
    this.#redis = new RedisBackendConnection(options);
  }

  /** The client used for stores and non-blocking reads. */
  get client(): RedisClient {
    return this.#redis.client;
  }

  /** Replaces the value under `key` and sets its TTL, in one step. */
  protected async _store(key: string, value: string, ttl: number): Promise<void> {
    await this.#redis.run(STORE_LUA, [key], [value, Math.max(1, Math.round(ttl))]);
  }

  /** `LINDEX key 0`: the stored value, or undefined. */
  protected async _get(key: string): Promise<string | undefined> {
    return text(await this.#redis.send(["LINDEX", key, 0]));
  }

  /** Waits up to `timeout` ms for `key` without removing it (and without polling). */
  protected override async _wait(key: string, timeout: number): Promise<string | undefined> {
    if (!(timeout >= 1)) return await this._get(key);
    return text(await this.#redis.waitForLast(key, timeout));
  }

  /** Closes the connections this backend opened. */
  close(): Promise<void> {
    return this.#redis.close();
  }
}
