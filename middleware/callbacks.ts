/**
 * `Callbacks`: runs `onSuccess` / `onFailure` actors.
 *
 * @example
 * ```ts
 * import { Callbacks } from "@dramatis/dramatis";
 * const m = new Callbacks();
 * ```
 * @module
 */
import { Middleware, type ProcessOutcome } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import type { MessageProxy } from "../message.ts";
import { getOption } from "./_options.ts";
import { actorNameOf, describeError, resultToJson, sendTo } from "./_util.ts";

/**
 * Sends the `onSuccess` actor `(message, result)` after a success, and the `onFailure` actor
 * `(message, { type, message, traceback })` after a final failure (as in Dramatiq, `message`
 * is the wire form of the message that ran).
 *
 * @example
 * ```ts
 * import { actor, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * const done = actor((_msg: unknown, result: unknown) => console.log(result), {
 *   actorName: "done",
 *   broker,
 * });
 * const work = actor(() => 42, { actorName: "work", onSuccess: done, broker });
 * ```
 */
export class Callbacks extends Middleware {
  /** The actor options this middleware adds. */
  override get actorOptions(): readonly string[] {
    return ["onSuccess", "onFailure"];
  }
  /** Runs after the actor, with its result or error. */
  override async afterProcessMessage(
    broker: Broker,
    message: MessageProxy,
    { result, error }: ProcessOutcome,
  ): Promise<void> {
    const actor = broker.hasActor(message.actorName)
      ? broker.getActor(message.actorName)
      : undefined;
    if (error === undefined) {
      const target = actorNameOf(getOption(message, actor, "onSuccess", undefined));
      if (target) {
        await sendTo(broker, target, [
          message.asDict() as never,
          resultToJson(message.actorName, result),
        ]);
      }
    } else if (message.failed) {
      const target = actorNameOf(getOption(message, actor, "onFailure", undefined));
      if (target) await sendTo(broker, target, [message.asDict() as never, describeError(error)]);
    }
  }
}
