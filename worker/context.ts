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
import type { JsonValue, MessageProxy } from "../message.ts";
import { reportFor } from "./_progress.ts";

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
 * limit passes, with `Cancelled` when the message is cancelled (`broker.cancel(id)`), and with
 * `Shutdown` when the worker stops. Pass it to `fetch` and friends.
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

/**
 * Reports the progress of the running message: any JSON value (a fraction, `{ done, of }`, a
 * stage name). Readers see the last value with `message.getProgress()` (and workers list it in
 * their heartbeat). Cheap to call in a loop: the worker writes at most one value per 250 ms per
 * message, and always the last one when the message finishes. Outside a worker, or on a broker
 * without the `progress` capability, the value goes nowhere.
 *
 * @example
 * ```ts
 * import { actor, reportProgress, StubBroker } from "@dramatis/dramatis";
 * const resize = actor(async (paths: string[]) => {
 *   for (let i = 0; i < paths.length; i++) {
 *     // ... resize paths[i] ...
 *     reportProgress({ done: i + 1, of: paths.length });
 *   }
 * }, { actorName: "resize", broker: new StubBroker() });
 * ```
 */
export function reportProgress(value: JsonValue): void {
  const m = storage.getStore();
  if (m) reportFor(m, value);
}

/** @internal Runs `fn(...args)` with `message` as the current message. */
export function runWithMessage<A extends unknown[], R>(
  message: MessageProxy,
  fn: (...args: A) => R,
  args: A,
): R {
  return storage.run(message, fn, ...args);
}
