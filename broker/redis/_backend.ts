// What the Redis result backend and the Redis rate-limiter backend share: a client (their own or
// the caller's), the limit of one command, and a pool of connections for blocking reads.
import { type Arg, RedisClient, type RedisClientOptions, type Reply } from "./client.ts";
import { BlockingPool } from "./_blocking.ts";

/**
 * The connection settings every Redis backend takes (`RedisResultBackend`,
 * `RedisRateLimiterBackend`).
 *
 * @example
 * ```ts
 * import type { RedisBackendOptions } from "@dramatis/dramatis";
 * const o: RedisBackendOptions = { url: "redis://127.0.0.1:6379/0", commandTimeout: 5_000 };
 * ```
 */
export interface RedisBackendOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://...`. Default `redis://127.0.0.1:6379/0`. */
  url?: string;
  /** Use this client instead of opening one (it is not closed by `close()`). */
  client?: RedisClient;
  /** More client settings (TLS, reconnection, ...), merged over `url`. */
  clientOptions?: Omit<RedisClientOptions, "url">;
  /** Limit for one (non-blocking) command, in ms. Default 10_000. */
  commandTimeout?: number;
  /** Most blocking reads in flight at once, each on its own connection. Default 16. */
  maxBlockingConnections?: number;
}

/** A backend's connections to Redis: it connects on first use. */
export class RedisBackendConnection {
  /** The client used for every non-blocking command. */
  readonly client: RedisClient;
  readonly #ownsClient: boolean;
  readonly #timeout: number;
  readonly #pool: BlockingPool;

  constructor(options: RedisBackendOptions) {
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

  /** Sends one command, within the command limit. */
  send(command: readonly Arg[]): Promise<Reply> {
    return this.client.send(command, { timeout: this.#timeout });
  }

  /** Runs a Lua script, within the command limit. */
  run(lua: string, keys: readonly Arg[], args: readonly Arg[]): Promise<Reply> {
    return this.client.script(lua).run(keys, args, { timeout: this.#timeout });
  }

  /**
   * The last element of the list at `key`, waiting up to `timeout` ms (at least 1) for one to
   * be pushed: `BLMOVE key key RIGHT LEFT`, which leaves the list as it was, on a pooled
   * connection of its own. `null` when none came.
   */
  waitForLast(key: string, timeout: number): Promise<Reply> {
    const seconds = (Math.round(timeout) / 1000).toFixed(3);
    return this.#pool.send(["BLMOVE", key, key, "RIGHT", "LEFT", seconds], timeout);
  }

  /** Closes the connections it opened (the caller's client stays open). */
  async close(): Promise<void> {
    await this.#pool.close();
    if (this.#ownsClient) await this.client.close();
  }
}
