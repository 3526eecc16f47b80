/**
 * `currentMessage()` and `currentSignal()`: what an actor is processing, from any async code
 * it calls.
 *
 * @example
 * ```ts
 * import { currentMessage, currentSignal } from "@dramatis/dramatis";
 * console.log(currentMessage()); // undefined outside an actor
 * console.log(currentSignal().aborted); // false
 * ```
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { MessageProxy } from "../message.ts";

const storage = new AsyncLocalStorage<MessageProxy>();
const NEVER = new AbortController().signal;

/**
 * The message the calling actor is processing, or `undefined` outside a worker (for example
 * when the actor is called directly).
 *
 * @example
 * ```ts
 * import { actor, currentMessage, StubBroker } from "@dramatis/dramatis";
 * const whoAmI = actor(() => currentMessage()?.messageId, { actorName: "whoAmI", broker: new StubBroker() });
 * ```
 */
export function currentMessage(): MessageProxy | undefined {
  return storage.getStore();
}

/**
 * The `AbortSignal` of the running message: it aborts with `TimeLimitExceeded` when the time
 * limit passes, and with `Shutdown` when the worker stops. Pass it to `fetch` and friends.
 * Outside a worker it is a signal that never aborts.
 *
 * @example
 * ```ts
 * import { currentSignal } from "@dramatis/dramatis";
 * async function download(url: string) {
 *   const res = await fetch(url, { signal: currentSignal() });
 *   return await res.text();
 * }
 * ```
 */
export function currentSignal(): AbortSignal {
  return storage.getStore()?.signal ?? NEVER;
}

/** @internal Runs `fn(...args)` with `message` as the current message. */
export function runWithMessage<A extends unknown[], R>(
  message: MessageProxy,
  fn: (...args: A) => R,
  args: A,
): R {
  return storage.run(message, fn, ...args);
}
