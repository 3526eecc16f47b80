// A small pool of connections for blocking commands (BLMOVE ...), which hold up everything
// behind them on a connection. Used by the Redis result and rate-limiter backends.
import { ConnectionError } from "../../errors.ts";
import type { Arg, RedisClient, Reply } from "./client.ts";

interface Waiter {
  resolve: (c: RedisClient) => void;
  reject: (e: unknown) => void;
}

/** Connections for blocking commands, opened on demand and reused; at most `max` at once. */
export class BlockingPool {
  #idle: RedisClient[] = [];
  #all = new Set<RedisClient>();
  #queue: Waiter[] = [];
  #closed = false;

  constructor(
    private readonly make: () => Promise<RedisClient>,
    private readonly max = 16,
  ) {}

  /**
   * Sends a blocking command whose server-side timeout is `blockMs`; the client-side limit is
   * that plus `slackMs`, so a dead connection cannot hang the caller.
   */
  async send(args: readonly Arg[], blockMs: number, slackMs = 5_000): Promise<Reply> {
    const client = await this.#acquire();
    let healthy = true;
    try {
      return await client.send(args, { timeout: blockMs + slackMs });
    } catch (e) {
      if (e instanceof ConnectionError) healthy = false;
      throw e;
    } finally {
      this.#release(client, healthy);
    }
  }

  #closedError(): ConnectionError {
    return new ConnectionError("The Redis backend was closed: create a new one.");
  }

  async #open(): Promise<RedisClient> {
    const client = await this.make();
    if (this.#closed) {
      await client.close();
      throw this.#closedError();
    }
    this.#all.add(client);
    return client;
  }

  #acquire(): Promise<RedisClient> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const idle = this.#idle.pop();
    if (idle) return Promise.resolve(idle);
    if (this.#all.size + this.#opening < this.max) return this.#counted();
    return new Promise((resolve, reject) => this.#queue.push({ resolve, reject }));
  }

  #opening = 0;
  async #counted(): Promise<RedisClient> {
    this.#opening++;
    try {
      return await this.#open();
    } finally {
      this.#opening--;
    }
  }

  #release(client: RedisClient, healthy: boolean): void {
    if (!healthy || this.#closed) {
      this.#all.delete(client);
      client.close().catch(() => {});
      const waiter = this.#queue.shift();
      if (waiter) this.#counted().then(waiter.resolve, waiter.reject);
      return;
    }
    const waiter = this.#queue.shift();
    if (waiter) waiter.resolve(client);
    else this.#idle.push(client);
  }

  /** Closes every connection; pending sends reject. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#queue.splice(0)) w.reject(this.#closedError());
    this.#idle = [];
    const all = [...this.#all];
    this.#all.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
