// Helpers shared by the built-in middleware.
import type { Broker } from "../broker/broker.ts";
import type { Middleware } from "./middleware.ts";
import type { JsonValue } from "../message.ts";
import { findNonJson, Message } from "../message.ts";
import { getOption, type OptionSource } from "./_options.ts";

/** An actor option naming another actor: an actor (function with `actorName`) or a name. */
export function actorNameOf(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (
    typeof value === "function" && typeof (value as { actorName?: unknown }).actorName === "string"
  ) {
    return (value as unknown as { actorName: string }).actorName;
  }
  return undefined;
}

/** A value an actor returned, made JSON: `undefined` becomes `null`. Throws on non-JSON. */
export function resultToJson(actorName: string, value: unknown): JsonValue {
  if (value === undefined) return null;
  const bad = findNonJson(value, "result");
  if (bad) {
    throw new TypeError(
      `Actor ${actorName} returned ${bad.problem} at ${bad.path}: results must be JSON values.`,
    );
  }
  return value as JsonValue;
}

/** Enqueues a message to the actor named `actorName` on `broker`, with these arguments. */
export function sendTo(broker: Broker, actorName: string, args: JsonValue[]): Promise<Message> {
  const target = broker.getActor(actorName);
  return broker.enqueue(new Message({ queueName: target.queueName, actorName, args }));
}

/** The `{type, message, traceback}` description of an error that on-failure callbacks get. */
export function describeError(
  error: unknown,
): { type: string; message: string; traceback: string } {
  if (error instanceof Error) {
    return { type: error.name, message: error.message, traceback: error.stack ?? "" };
  }
  return { type: typeof error, message: String(error), traceback: "" };
}

// The Results class, registered by middleware/results.ts when it loads, so that the worker can
// look for it without importing the result backends.
let resultsClass: (abstract new (...args: never[]) => Middleware) | undefined;

/** Registers the `Results` middleware class (called once, by middleware/results.ts). */
export function _registerResultsClass(cls: abstract new (...args: never[]) => Middleware): void {
  resultsClass = cls;
}

/** True when `broker` has a `Results` middleware, which may store what actors return. */
export function hasResultsMiddleware(broker: Broker): boolean {
  const cls = resultsClass;
  return cls !== undefined && broker.middleware.some((m) => m instanceof cls);
}

/**
 * True when what the actor returned goes somewhere without the `Results` middleware: to the next
 * step of a pipeline, or to an `onSuccess` actor.
 */
export function resultPassedOn(message: Message, actor: OptionSource | undefined): boolean {
  const target = message.options.pipe_target;
  return (target !== undefined && target !== null) ||
    getOption(message, actor, "onSuccess", undefined) !== undefined;
}
