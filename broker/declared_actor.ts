/**
 * `DeclaredActor`: an actor as its broker, middleware and workers see it, whatever its
 * argument types; and `SendOptions`, what its `...WithOptions` methods take.
 *
 * @example
 * ```ts
 * import { actor, type DeclaredActor, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * actor(function ping() {}, { broker });
 * const a: DeclaredActor = broker.getActor("ping");
 * await a.sendWithOptions({ args: [], delay: 1_000 });
 * ```
 * @module
 */
import type { Message } from "../message.ts";

/**
 * Options of `sendWithOptions` / `messageWithOptions`: the arguments, a delay, and per-message
 * options that override the actor's.
 *
 * @example
 * ```ts
 * import type { SendOptions } from "@dramatis/dramatis";
 * const o: SendOptions<[string]> = { args: ["a@b.c"], delay: 10_000, maxRetries: 1 };
 * ```
 */
export interface SendOptions<A extends unknown[] = unknown[]> {
  /** Positional arguments. */
  args?: A;
  /** Keyword arguments (a TS actor gets them as one trailing object). */
  kwargs?: Record<string, unknown>;
  /** Deliver no sooner than this many ms from now. */
  delay?: number;
  /** Per-message options (camelCase, as in `ActorOptions`). */
  [option: string]: unknown;
}

/**
 * What a broker, its middleware and its workers know of a declared actor. Every `Actor` that
 * `actor()` returns is one; `broker.getActor()` returns it.
 *
 * @example
 * ```ts
 * import { actor, type DeclaredActor, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * actor(function ping() {}, { broker, priority: 5 });
 * const a: DeclaredActor = broker.getActor("ping");
 * console.log(a.queueName, a.priority); // default 5
 * ```
 */
export interface DeclaredActor {
  /** The actor's name on the wire. */
  readonly actorName: string;
  /** The queue its messages go to (canonical). */
  readonly queueName: string;
  /** Its priority: lower runs first. */
  readonly priority: number;
  /** The options it was declared with (camelCase, as in `ActorOptions`). */
  readonly options: Readonly<Record<string, unknown>>;
  /** Runs the actor's function with these arguments. */
  fn(...args: unknown[]): unknown;
  /** Builds a message with these arguments, without sending it. */
  message(...args: unknown[]): Message;
  /** Builds a message with arguments and per-message options, without sending it. */
  messageWithOptions(options: SendOptions): Message;
  /** Enqueues a message with these arguments. */
  send(...args: unknown[]): Promise<Message>;
  /** Enqueues a message with arguments, a delay and per-message options. */
  sendWithOptions(options: SendOptions): Promise<Message>;
}
