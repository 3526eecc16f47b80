/**
 * `brokerFromUrl()`: a broker from a URL (`file://`, `redis://`, `rediss://`, `amqp://`,
 * `amqps://`, `memory:`).
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
import { RabbitmqBroker, rabbitmqBrokerOptionsFromUrl } from "./rabbitmq/broker.ts";
import { env } from "../_env.ts";

/**
 * Creates a broker from a URL: `memory:` (a `StubBroker`), `file:///path` or `file://./rel`
 * (a `FileBroker`), `redis://user:pass@host:6379/0` or `rediss://...` (a `RedisBroker`),
 * `amqp://user:pass@host:5672/vhost` or `amqps://...` (a `RabbitmqBroker`).
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
    case "amqp:":
    case "amqps:":
      return new RabbitmqBroker(rabbitmqBrokerOptionsFromUrl(url));
  }
  throw new TypeError(
    `Unsupported broker URL ${
      JSON.stringify(url)
    }: use memory:, file:///path, redis://host:port/db or amqp://host:port/vhost.`,
  );
}

/** The broker used when none is set: `DRAMATIS_BROKER`, else a FileBroker in `./.dramatis`. */
export function defaultBroker(): Broker {
  return brokerFromUrl(env("DRAMATIS_BROKER") || "file://./.dramatis");
}
