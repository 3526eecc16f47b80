/**
 * `brokerFromUrl()`: a broker from a URL (`file://`, `redis://`, `rediss://`, `memory:`).
 *
 * @example
 * ```ts
 * import { brokerFromUrl } from "./url.ts";
 * const broker = brokerFromUrl("memory:");
 * ```
 * @module
 */
import type { Broker } from "./broker.ts";
import { StubBroker } from "./stub.ts";
import { FileBroker, fileBrokerOptionsFromUrl } from "./file/broker.ts";
import { RedisBroker, redisBrokerOptionsFromUrl } from "./redis/broker.ts";
import { env } from "../_env.ts";

/**
 * Creates a broker from a URL: `memory:` (a `StubBroker`), `file:///path` or `file://./rel`
 * (a `FileBroker`), `redis://user:pass@host:6379/0` or `rediss://...` (a `RedisBroker`).
 *
 * @example
 * ```ts
 * import { brokerFromUrl } from "./url.ts";
 * const broker = brokerFromUrl("memory:");
 * console.log(broker.constructor.name); // StubBroker
 * ```
 */
export function brokerFromUrl(url: string): Broker {
  const scheme = url.slice(0, url.indexOf(":") + 1).toLowerCase();
  switch (scheme) {
    case "memory:":
    case "stub:":
      return new StubBroker();
    case "file:":
      return new FileBroker(fileBrokerOptionsFromUrl(url));
    case "redis:":
    case "rediss:":
      return new RedisBroker(redisBrokerOptionsFromUrl(url));
  }
  throw new TypeError(
    `Unsupported broker URL ${
      JSON.stringify(url)
    }: use memory:, file:///path or redis://host:port/db.`,
  );
}

/** The broker used when none is set: `DRAMATIS_BROKER`, else a FileBroker in `./.dramatis`. */
export function defaultBroker(): Broker {
  return brokerFromUrl(env("DRAMATIS_BROKER") || "file://./.dramatis");
}
