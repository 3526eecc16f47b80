/**
 * `CurrentMessage`: Dramatiq's middleware that exposes the running message. In dramatis
 * `currentMessage()` always works inside an actor; this middleware exists so that code
 * ported from Dramatiq (`CurrentMessage.get_current_message()`) reads the same.
 *
 * @example
 * ```ts
 * import { CurrentMessage } from "@dramatis/dramatis";
 * const m = CurrentMessage.getCurrentMessage(); // undefined outside an actor
 * ```
 * @module
 */
import { Middleware } from "./middleware.ts";
import type { MessageProxy } from "../message.ts";
import { currentMessage } from "../worker/context.ts";

/**
 * Gives access to the message being processed, from any async code the actor calls.
 *
 * @example
 * ```ts
 * import { CurrentMessage, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * broker.addMiddleware(new CurrentMessage());
 * ```
 */
export class CurrentMessage extends Middleware {
  /** The message being processed by the calling actor, or undefined outside one. */
  static getCurrentMessage(): MessageProxy | undefined {
    return currentMessage();
  }
}
