// The RedisBroker's options, its receipts, and the options a `redis://` URL stands for.
import { MessageProxy, type RawDelivery } from "../broker.ts";
import type { BrokerOptions } from "../broker.ts";
import type { RedisClient, RedisClientOptions } from "./client.ts";

/**
 * Options of `new RedisBroker()`.
 *
 * @example
 * ```ts
 * import type { RedisBrokerOptions } from "./broker.ts";
 * const o: RedisBrokerOptions = { url: "redis://:secret@127.0.0.1:6379/0", namespace: "app" };
 * ```
 */
export interface RedisBrokerOptions extends BrokerOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://...`. Default `redis://127.0.0.1:6379/0`. */
  url?: string;
  /**
   * Use this client instead of opening one from `url` (the broker does not close it). Blocking
   * waits run on connections from its `duplicate()`.
   */
  client?: RedisClient;
  /** More client settings (TLS, reconnection, ...), merged over `url`. */
  clientOptions?: Omit<RedisClientOptions, "url">;
  /** Key prefix. Default `"dramatiq"`, as in Dramatiq: use the same value on every client. */
  namespace?: string;
  /**
   * A worker whose last heartbeat is older than this, in ms, is dead: its unacked messages go
   * back to their queues. Default 60_000, as in Dramatiq; use one value for the whole fleet.
   */
  heartbeatTimeout?: number;
  /** How long dead letters are kept, in ms. Default 7 days, as in Dramatiq. */
  deadMessageTtl?: number;
  /** How often a broker that consumes sends a heartbeat, in ms. Default: heartbeatTimeout / 12, at most 5_000. */
  heartbeatInterval?: number;
  /**
   * How often a broker that consumes runs maintenance (recovery of dead workers' messages,
   * dead-letter expiry), in ms. Default: heartbeatTimeout / 12, at most 5_000.
   */
  maintenanceInterval?: number;
  /** How many delayed messages one delay-queue consumer may hold until due. Default 8000. */
  delayPrefetch?: number;
  /** Limit for one Redis command, in ms. Default 10_000. */
  commandTimeout?: number;
}

/**
 * What identifies one delivery of a RedisBroker message (`MessageProxy.receipt`). A plain,
 * structured-cloneable object: any RedisBroker on the same Redis and namespace can ack, nack
 * or requeue with it, for example the CLI's worker process on behalf of a Web Worker.
 *
 * @example
 * ```ts
 * import type { RedisReceipt } from "./broker.ts";
 * const r: RedisReceipt = { rid: "0f6c…", owner: "7c1e…", queue: "default" };
 * ```
 */
export interface RedisReceipt {
  /** The `redis_message_id` of the stored copy (the list element and hash field). */
  rid: string;
  /** The id of the broker that fetched it (its ack set is `ns:__acks__.<owner>.<queue>`). */
  owner: string;
  /** The queue it was fetched from (`q` or `q.DQ`). */
  queue: string;
}

export function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`RedisBroker: ${name} must be a positive number of ms, got ${value}.`);
  }
  return value;
}

export function isReceipt(r: unknown): r is RedisReceipt {
  return r !== null && typeof r === "object" && typeof (r as RedisReceipt).rid === "string" &&
    typeof (r as RedisReceipt).owner === "string" && typeof (r as RedisReceipt).queue === "string";
}

/** The receipt of a delivery, checked (a TypeError for one this broker did not deliver). */
export function receiptOf(m: MessageProxy | RawDelivery): RedisReceipt {
  const r = m.receipt;
  if (!isReceipt(r)) {
    const id = m instanceof MessageProxy ? `Message ${m.messageId}` : "A message";
    throw new TypeError(
      `${id} was not delivered by a RedisBroker consumer (its receipt is ${
        JSON.stringify(r)
      }): ack, nack and requeue need the MessageProxy that receive() returned.`,
    );
  }
  return r;
}

/**
 * The options a `redis://` or `rediss://` URL stands for. Query parameters set broker options:
 * `namespace`, `heartbeatTimeout`, `deadMessageTtl`, `heartbeatInterval`,
 * `maintenanceInterval`, `delayPrefetch`, `commandTimeout` (for example
 * `redis://localhost:6379/0?namespace=app`).
 *
 * @example
 * ```ts
 * import { redisBrokerOptionsFromUrl } from "./broker.ts";
 * console.log(redisBrokerOptionsFromUrl("redis://localhost/1?namespace=app"));
 * // { url: "redis://localhost/1", namespace: "app" }
 * ```
 */
export function redisBrokerOptionsFromUrl(url: string): RedisBrokerOptions {
  const at = url.indexOf("?");
  const options: RedisBrokerOptions = { url: at < 0 ? url : url.slice(0, at) };
  if (at < 0) return options;
  for (const [key, value] of new URLSearchParams(url.slice(at + 1))) {
    switch (key) {
      case "namespace":
        options.namespace = value;
        break;
      case "heartbeatTimeout":
      case "deadMessageTtl":
      case "heartbeatInterval":
      case "maintenanceInterval":
      case "delayPrefetch":
      case "commandTimeout":
        options[key] = Number(value);
        break;
      default:
        throw new TypeError(
          `Unknown RedisBroker URL parameter ${JSON.stringify(key)}: use namespace, ` +
            `heartbeatTimeout, deadMessageTtl, heartbeatInterval, maintenanceInterval, ` +
            `delayPrefetch or commandTimeout.`,
        );
    }
  }
  return options;
}
