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
import { env } from "../runtime/env.ts";
import { cwd as workingDir } from "../runtime/process.ts";

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

/**
 * @internal One line naming `broker` and where it is, for log lines and the CLI:
 * `file broker at /abs/dir`, `redis at host:port/db` (never a password), `memory broker`.
 */
export function describeBroker(broker: Broker, cwd: string = workingDir()): string {
  if (broker instanceof FileBroker) {
    const dir = broker.dir.startsWith("/")
      ? broker.dir
      : `${cwd.replace(/\/+$/, "")}/${broker.dir}`;
    return `file broker at ${normalize(dir)}`;
  }
  if (broker instanceof RedisBroker) {
    const c = broker.client;
    const ns = broker.namespace === "dramatiq" ? "" : ` (namespace ${broker.namespace})`;
    return `${c.tls ? "rediss" : "redis"} at ${c.address}/${c.db}${ns}`;
  }
  if (broker instanceof StubBroker) return "memory broker (this process only)";
  return broker.constructor.name;
}

/** @internal `text` with the password of every URL in it replaced by `***`. */
export function redactUrls(text: string): string {
  return text.replace(/(\/\/[^\s/@:]*:)[^\s/@]*@/g, "$1***@");
}

/** `/a/./b/../c` as `/a/c`. */
function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return `/${out.join("/")}`;
}

/** The broker used when none is set: `DRAMATIS_BROKER`, else a FileBroker in `./.dramatis`. */
export function defaultBroker(): Broker {
  return brokerFromUrl(env("DRAMATIS_BROKER") || "file://./.dramatis");
}
