/**
 * `RedisRateLimiterBackend`: rate limiters and barriers shared through Redis, with Python
 * Dramatiq's keys and semantics (keys used as given, integer values, TTLs in ms).
 *
 * @example
 * ```ts
 * import { RedisRateLimiterBackend } from "@dramatis/dramatis";
 * const backend = new RedisRateLimiterBackend({ url: "redis://127.0.0.1:6379/0" });
 * console.log(await backend.add("app:lock", 1, 10_000)); // true
 * await backend.close();
 * ```
 * @module
 */
import type { RateLimiterBackend } from "./backend.ts";
import type { Arg, RedisClient, Reply } from "../broker/redis/client.ts";
import { RedisBackendConnection, type RedisBackendOptions } from "../broker/redis/_backend.ts";

/**
 * Options of `new RedisRateLimiterBackend()`.
 *
 * @example
 * ```ts
 * import type { RedisRateLimiterBackendOptions } from "@dramatis/dramatis";
 * const o: RedisRateLimiterBackendOptions = { url: "redis://127.0.0.1:6379/0" };
 * ```
 */
export type RedisRateLimiterBackendOptions = RedisBackendOptions;

// KEYS[1]; ARGV: amount, limit, ttl, sign (1 = incr: fail above limit; -1 = decr: fail below).
const STEP_LUA = `
local v = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(ARGV[4]) * tonumber(ARGV[1])
if (ARGV[4] == '1' and v > tonumber(ARGV[2])) or (ARGV[4] ~= '1' and v < tonumber(ARGV[2])) then
  return 0
end
redis.call('SET', KEYS[1], string.format('%d', v), 'PX', ARGV[3])
return 1
`;

// KEYS[1] = key, KEYS[2..] = the keys to sum; ARGV: amount, maximum, ttl.
const INCR_AND_SUM_LUA = `
local amount, maximum = tonumber(ARGV[1]), tonumber(ARGV[2])
local own = tonumber(redis.call('GET', KEYS[1]) or '0') + amount
if own > maximum then return 0 end
local sum = amount
for i = 2, #KEYS, 1000 do
  local values = redis.call('MGET', unpack(KEYS, i, math.min(i + 999, #KEYS)))
  for j = 1, #values do sum = sum + (tonumber(values[j]) or 0) end
end
if sum > maximum then return 0 end
redis.call('SET', KEYS[1], string.format('%d', own), 'PX', ARGV[3])
return 1
`;

// RPUSH + PEXPIRE in one step, as Dramatiq's MULTI does.
const NOTIFY_LUA = `
redis.call('RPUSH', KEYS[1], 'x')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

function ms(ttl: number): number {
  return Math.max(1, Math.round(ttl));
}

function isX(reply: Reply): boolean {
  return reply === "x" || (reply instanceof Uint8Array && reply.length === 1 && reply[0] === 0x78);
}

/**
 * Rate-limiter primitives on Redis, each one atomic (a Lua script, where Dramatiq uses
 * WATCH/MULTI with retries: same result, one round trip). Keys are used exactly as given, with
 * no namespace, as in Dramatiq: add your own prefix. `wait` blocks on a connection of its own
 * (`BLMOVE key key RIGHT LEFT`, which leaves the list as it was) and honours timeouts to the
 * millisecond; a timeout of 0 checks once without waiting.
 *
 * @example
 * ```ts
 * import { ConcurrentRateLimiter, RedisRateLimiterBackend } from "@dramatis/dramatis";
 *
 * const backend = new RedisRateLimiterBackend({ url: "redis://127.0.0.1:6379/0" });
 * const mutex = new ConcurrentRateLimiter(backend, "app:mutex", { limit: 1 });
 * await mutex.acquire(() => console.log("one at a time, across every process"));
 * await backend.close();
 * ```
 */
export class RedisRateLimiterBackend implements RateLimiterBackend {
  readonly #redis: RedisBackendConnection;

  /** Creates the backend; it connects on first use. */
  constructor(options: RedisRateLimiterBackendOptions = {}) {
    this.#redis = new RedisBackendConnection(options);
  }

  /** The client used for every non-blocking command. */
  get client(): RedisClient {
    return this.#redis.client;
  }

  /** `SET key value PX ttl NX`: true if the key was set. */
  async add(key: string, value: number, ttl: number): Promise<boolean> {
    return await this.#redis.send(["SET", key, value, "PX", ms(ttl), "NX"]) !== null;
  }

  /** Adds `amount` unless the result would exceed `maximum`; refreshes the TTL. */
  async incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean> {
    return await this.#run(STEP_LUA, [key], [amount, maximum, ms(ttl), 1]) === 1;
  }

  /** Subtracts `amount` unless the result would go below `minimum`; refreshes the TTL. */
  async decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean> {
    return await this.#run(STEP_LUA, [key], [amount, minimum, ms(ttl), -1]) === 1;
  }

  /** Adds `amount` to `key` unless `key + amount` or `amount + sum(keys)` exceeds `maximum`. */
  async incrAndSum(
    key: string,
    keys: () => string[],
    amount: number,
    maximum: number,
    ttl: number,
  ): Promise<boolean> {
    return await this.#run(INCR_AND_SUM_LUA, [key, ...keys()], [amount, maximum, ms(ttl)]) === 1;
  }

  /** Waits up to `timeout` ms for `waitNotify(key)`; true if notified (now or before). */
  async wait(key: string, timeout: number): Promise<boolean> {
    if (!(timeout >= 1)) return isX(await this.#redis.send(["LMOVE", key, key, "RIGHT", "LEFT"]));
    return isX(await this.#redis.waitForLast(key, timeout));
  }

  /** Wakes every waiter on `key`, now and for `ttl` ms. */
  async waitNotify(key: string, ttl: number): Promise<void> {
    await this.#run(NOTIFY_LUA, [key], [ms(ttl)]);
  }

  #run(lua: string, keys: readonly Arg[], args: readonly Arg[]): Promise<Reply> {
    return this.#redis.run(lua, keys, args);
  }

  /** Closes the connections this backend opened. */
  close(): Promise<void> {
    return this.#redis.close();
  }
}
