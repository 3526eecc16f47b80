// A Lua script bound to a RedisClient: EVALSHA, and EVAL when the server lost it.
import { type Arg, RedisError, type Reply } from "./_resp.ts";
import type { RedisClient } from "./client.ts";
import type { SendOptions } from "./_client_options.ts";

/** Sends a command with callbacks instead of a promise (needs the error before rejecting). */
type SendWith = (
  client: RedisClient,
  args: readonly Arg[],
  options: SendOptions | undefined,
  resolve: (reply: Reply) => void,
  reject: (error: Error) => void,
) => void;

/**
 * Sends a command on `client` with callbacks instead of a promise (used by
 * {@linkcode RedisScript.run}, which needs the error before deciding to reject). Set by a
 * static block of `RedisClient`, which can reach its private members.
 */
let sendWith: SendWith;

/** Called once by `RedisClient`'s static block. */
export function setSendWith(fn: SendWith): void {
  sendWith = fn;
}

/**
 * A Lua script bound to a client: {@linkcode RedisScript.run} calls `EVALSHA`, and if the
 * server does not have the script (`NOSCRIPT`, e.g. after a restart or `SCRIPT FLUSH`) runs it
 * with `EVAL`, which also caches it on the server. Get one from {@linkcode RedisClient.script}.
 *
 * @example
 * ```ts
 * import { RedisClient } from "./client.ts";
 * const redis = await RedisClient.connect("redis://127.0.0.1:6379");
 * const getset = redis.script("local v = redis.call('GET', KEYS[1]); " +
 *   "redis.call('SET', KEYS[1], ARGV[1]); return v");
 * const previous = await getset.run(["key"], ["new value"]);
 * await redis.close();
 * ```
 */
export class RedisScript {
  /** The Lua source. */
  readonly lua: string;
  readonly #client: RedisClient;
  #sha: string | undefined;

  /** Creates a script for `client`; prefer {@linkcode RedisClient.script}, which caches. */
  constructor(client: RedisClient, lua: string) {
    this.#client = client;
    this.lua = lua;
  }

  /** The script's SHA-1 (hex), as Redis computes it. */
  async sha1(): Promise<string> {
    if (this.#sha === undefined) {
      const digest = await crypto.subtle.digest("SHA-1", new TextEncoder().encode(this.lua));
      this.#sha = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0"))
        .join("");
    }
    return this.#sha;
  }

  /**
   * Runs the script with `KEYS` = `keys` and `ARGV` = `args`; resolves with its reply. Errors
   * raised by the script reject with {@linkcode RedisError}.
   */
  run<T extends Reply = Reply>(
    keys: readonly Arg[],
    args: readonly Arg[] = [],
    options?: SendOptions,
  ): Promise<T> {
    const sha = this.#sha;
    if (sha === undefined) return this.sha1().then(() => this.run<T>(keys, args, options));
    const client = this.#client;
    const command: Arg[] = ["EVALSHA", sha, keys.length];
    for (let i = 0; i < keys.length; i++) command.push(keys[i]!);
    for (let i = 0; i < args.length; i++) command.push(args[i]!);
    return new Promise<T>((resolve, reject) => {
      sendWith(client, command, options, resolve as (reply: Reply) => void, (error) => {
        if (error instanceof RedisError && error.code === "NOSCRIPT") {
          const evalCommand = command.slice();
          evalCommand[0] = "EVAL";
          evalCommand[1] = this.lua;
          sendWith(client, evalCommand, options, resolve as (reply: Reply) => void, reject);
        } else {
          reject(error);
        }
      });
    });
  }
}
