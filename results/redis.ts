/**
 * `RedisResultBackend`: results in Redis, with Python Dramatiq's keys and encoding, so either
 * side can read what the other stored.
 *
 * @example
 * ```ts
 * import { RedisResultBackend } from "./redis.ts";
 * const backend = new RedisResultBackend({ url: "redis://127.0.0.1:6379/0" });
 * await backend.close();
 * ```
 * @module
 */
import { ResultBackend } from "./backend.ts";
import { RedisClient, type RedisClientOptions, type Reply } from "../broker/redis/client.ts";
import { BlockingPool } from "../broker/redis/_blocking.ts";

/**
 * Options of `new RedisResultBackend()`.
 *
 * @example
 * ```ts
 * import type { RedisResultBackendOptions } from "./redis.ts";
 * const o: RedisResultBackendOptions = { url: "redis://127.0.0.1:6379/0" };
 * ```
 */
export interface RedisResultBackendOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://...`. Default `redis://127.0.0.1:6379/0`. */
  url?: string;
  /** Use this client instead of opening one (it is not closed by `close()`). */
  client?: RedisClient;
  /** More client settings (TLS, reconnection, ...), merged over `url`. */
  clientOptions?: Omit<RedisClientOptions, "url">;
  /** Key namespace. Default `"dramatiq-results"`, as in Dramatiq. */
  namespace?: string;
  /**
   * Keys `namespace:queue:actor:message_id` instead of their MD5 (Dramatiq's
   * `use_namespace_prefix_keys`). Default false.
   */
  useNamespacePrefixKeys?: boolean;
  /** Limit for one (non-blocking) command, in ms. Default 10_000. */
  commandTimeout?: number;
  /** Most blocking reads in flight at once, each on its own connection. Default 16. */
  maxBlockingConnections?: number;
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
 * import { RedisResultBackend } from "./redis.ts";
 * import { Results } from "../middleware/results.ts";
 * import { RedisBroker } from "../broker/redis/broker.ts";
 *
 * const broker = new RedisBroker({ url: "redis://127.0.0.1:6379/0" });
 * const backend = new RedisResultBackend({ client: broker.client });
 * broker.addMiddleware(new Results({ backend }));
 * await backend.close();
 * await broker.close();
 * ```
 */
export class RedisResultBackend extends ResultBackend {
  /** The client used for stores and non-blocking reads. */
  readonly client: RedisClient;
  readonly #ownsClient: boolean;
  readonly #timeout: number;
  readonly #pool: BlockingPool;

  /** Creates the backend; it connects on first use. */
  constructor(options: RedisResultBackendOptions = {}) {
    super({
      namespace: options.namespace,
      useNamespacePrefixKeys: options.useNamespacePrefixKeys,
    });
    this.#timeout = options.commandTimeout ?? 10_000;
    const base: RedisClientOptions = {
      ...options.clientOptions,
      url: options.url ?? "redis://127.0.0.1:6379/0",
    };
    this.#ownsClient = options.client === undefined;
    const client = options.client ?? new RedisClient(base);
    this.client = client;
    this.#pool = new BlockingPool(
      () => options.client ? client.duplicate() : Promise.resolve(new RedisClient(base)),
      options.maxBlockingConnections ?? 16,
    );
  }

  /** Replaces the value under `key` and sets its TTL, in one step. */
  protected async _store(key: string, value: string, ttl: number): Promise<void> {
    await this.client.script(STORE_LUA).run([key], [value, Math.max(1, Math.round(ttl))], {
      timeout: this.#timeout,
    });
  }

  /** `LINDEX key 0`: the stored value, or undefined. */
  protected async _get(key: string): Promise<string | undefined> {
    return text(await this.client.send(["LINDEX", key, 0], { timeout: this.#timeout }));
  }

  /** Waits up to `timeout` ms for `key` without removing it (and without polling). */
  protected override async _wait(key: string, timeout: number): Promise<string | undefined> {
    if (!(timeout >= 1)) return await this._get(key);
    const seconds = (Math.round(timeout) / 1000).toFixed(3);
    return text(await this.#pool.send(["BLMOVE", key, key, "RIGHT", "LEFT", seconds], timeout));
  }

  /** Closes the connections this backend opened. */
  async close(): Promise<void> {
    await this.#pool.close();
    if (this.#ownsClient) await this.client.close();
  }
}
