/**
 * `Pipelines`: enqueues the next step of a pipeline with the previous step's result.
 *
 * @example
 * ```ts
 * import { Pipelines } from "@dramatis/dramatis";
 * const m = new Pipelines();
 * ```
 * @module
 */
import { Middleware, type ProcessOutcome } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import type { MessageProxy } from "../message.ts";
import { Message } from "../message.ts";
import { resultToJson } from "./_util.ts";

/**
 * After a message that carries a `pipe_target` succeeds (its actor returned, and no middleware
 * marked it failed), enqueues that next message with the result appended to its arguments
 * (unless the next step, or its actor, has `pipeIgnore`). Used by `pipeline()`.
 *
 * @example
 * ```ts
 * import { Pipelines, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker({ middleware: [new Pipelines()] });
 * ```
 */
export class Pipelines extends Middleware {
  /** The actor options this middleware adds. */
  override get actorOptions(): readonly string[] {
    return ["pipeIgnore"];
  }
  /** Runs after the actor, with its result or error. */
  override async afterProcessMessage(
    broker: Broker,
    message: MessageProxy,
    { result, error }: ProcessOutcome,
  ): Promise<void> {
    // A step fails when its actor throws, or when a middleware marks it failed (as in Dramatiq).
    if (error !== undefined || message.failed) return;
    const target = message.options.pipe_target;
    if (!target) return;
    let next = Message.fromDict(target);
    const nextActor = broker.hasActor(next.actorName) ? broker.getActor(next.actorName) : undefined;
    const ignore = next.options.pipe_ignore ?? nextActor?.options.pipeIgnore ?? false;
    if (!ignore) {
      next = next.copy({ args: [...next.args, resultToJson(message.actorName, result)] });
    }
    const delay = typeof next.options.delay === "number" ? next.options.delay : undefined;
    await broker.enqueue(next, { delay });
  }
}
