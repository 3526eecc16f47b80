// The broker's middleware: its options (the stack, a middleware class to insert next to), which
// middleware has `before<Name>` / `after<Name>` (cached per event name), and running those hooks in
// order, synchronously until one returns a promise; where `addMiddleware` inserts one. Types
// re-exported by broker/broker.ts.
import type { HookName, Middleware } from "../middleware/middleware.ts";
import type { Awaitable } from "../util/async.ts";
import { getLogger } from "../util/log.ts";

/**
 * Options every broker accepts.
 *
 * @example
 * ```ts
 * import { type BrokerOptions, Retries } from "@dramatis/dramatis";
 * const o: BrokerOptions = { middleware: [new Retries()] };
 * ```
 */
export interface BrokerOptions {
  /** The middleware stack. Default: `defaultMiddleware()`. */
  middleware?: Middleware[];
}

/**
 * A middleware class, as `addMiddleware`'s `before` / `after` options take it.
 *
 * @example
 * ```ts
 * import { type MiddlewareClass, Retries } from "@dramatis/dramatis";
 * const c: MiddlewareClass = Retries;
 * ```
 */
export type MiddlewareClass = abstract new (...args: never[]) => Middleware;

type HookFn = (this: Middleware, ...args: unknown[]) => Awaitable<void>;
type HookEntry = { hook: HookName; list: Middleware[] };

/** Per event name ("enqueue"): its before / after hook name and the middleware having it. */
export class Hooks {
  readonly #middleware: readonly Middleware[];
  #cache = { before: new Map<string, HookEntry>(), after: new Map<string, HookEntry>() };

  /** Hooks of `middleware` (the broker's own stack, read again after `clear()`). */
  constructor(middleware: readonly Middleware[]) {
    this.#middleware = middleware;
  }

  /** Forgets who has which hook (the stack changed). */
  clear(): void {
    this.#cache.before.clear();
    this.#cache.after.clear();
  }

  /** The hook `when` + `name` ("before" + "enqueue": beforeEnqueue) and who has it, cached. */
  #hookList(when: "before" | "after", name: string): HookEntry {
    const cache = this.#cache[when];
    let entry = cache.get(name);
    if (!entry) {
      const hook = `${when}${name[0]!.toUpperCase()}${name.slice(1)}` as HookName;
      const list = this.#middleware.filter((m) =>
        typeof (m as unknown as Record<string, unknown>)[hook] === "function"
      );
      if (when === "after") list.reverse();
      cache.set(name, entry = { hook, list });
    }
    return entry;
  }

  /** `Broker.emitBefore`: each hook gets `broker` first; errors propagate. */
  emitBefore(broker: unknown, name: string, args: unknown[]): void | Promise<void> {
    const { hook, list } = this.#hookList("before", name);
    for (let i = 0; i < list.length; i++) {
      const r = (list[i] as unknown as Record<string, HookFn>)[hook]!.call(
        list[i]!,
        broker,
        ...args,
      );
      if (r) return continueBefore(broker, list, i + 1, hook, r, args);
    }
  }

  /** `Broker.emitAfter`: in reverse order; errors are logged and swallowed. */
  emitAfter(broker: unknown, name: string, args: unknown[]): void | Promise<void> {
    const { hook, list } = this.#hookList("after", name);
    for (let i = 0; i < list.length; i++) {
      let r: Awaitable<void>;
      try {
        r = (list[i] as unknown as Record<string, HookFn>)[hook]!.call(list[i]!, broker, ...args);
      } catch (e) {
        logAfterError(list[i]!, hook, e);
        continue;
      }
      if (r) return continueAfter(broker, list, i, hook, r, args);
    }
  }
}

async function continueBefore(
  broker: unknown,
  list: Middleware[],
  from: number,
  hook: HookName,
  pending: Promise<void>,
  args: unknown[],
): Promise<void> {
  await pending;
  for (let i = from; i < list.length; i++) {
    await (list[i] as unknown as Record<string, HookFn>)[hook]!.call(list[i]!, broker, ...args);
  }
}

async function continueAfter(
  broker: unknown,
  list: Middleware[],
  at: number,
  hook: HookName,
  pending: Promise<void>,
  args: unknown[],
): Promise<void> {
  try {
    await pending;
  } catch (e) {
    logAfterError(list[at]!, hook, e);
  }
  for (let i = at + 1; i < list.length; i++) {
    try {
      await (list[i] as unknown as Record<string, HookFn>)[hook]!.call(list[i]!, broker, ...args);
    } catch (e) {
      logAfterError(list[i]!, hook, e);
    }
  }
}

function logAfterError(m: Middleware, hook: string, e: unknown): void {
  getLogger(`dramatis.middleware.${m.constructor.name}`).error(
    `Unhandled error in ${hook}: ${e instanceof Error ? e.stack : String(e)}`,
  );
}

const brokerLogger = getLogger("dramatis.broker.Broker");

/**
 * Where `Broker.addMiddleware` inserts `middleware` into `stack`: the end, or just before / after
 * the first middleware of the class `options` name. Warns when `stack` has one of its class.
 */
export function insertionPoint(
  stack: readonly Middleware[],
  middleware: Middleware,
  options: { before?: MiddlewareClass; after?: MiddlewareClass },
): number {
  if (options.before && options.after) {
    throw new TypeError("broker.addMiddleware(): pass either `before` or `after`, not both.");
  }
  const ref = options.before ?? options.after;
  let at = stack.length;
  if (ref) {
    const i = stack.findIndex((m) => m instanceof ref);
    if (i < 0) {
      throw new TypeError(
        `broker.addMiddleware(): no middleware of class ${ref.name} in the stack to insert next to.`,
      );
    }
    at = options.before ? i : i + 1;
  }
  if (stack.some((m) => m instanceof middleware.constructor)) {
    brokerLogger.warning(
      `You're adding a middleware of the same type twice: ${middleware.constructor.name}. ` +
        `It may have unexpected results.`,
    );
  }
  return at;
}

/** Logs the failure of an async declare hook that a sync broker method cannot await. */
export function runSync(r: void | Promise<void>, hook: string): void {
  if (r) {
    r.catch((e) => brokerLogger.error(`Unhandled error in async ${hook} hook: ${e}`));
  }
}
