/**
 * The `Middleware` base class. Everything beyond "run the actor" in dramatis (retries, time
 * limits, callbacks, results, ...) is a middleware hooking into the broker and the worker.
 *
 * @example
 * ```ts
 * import { type Broker, type MessageProxy, Middleware } from "@dramatis/dramatis";
 *
 * class Timing extends Middleware {
 *   override beforeProcessMessage(_broker: Broker, message: MessageProxy) {
 *     console.log("starting", message.messageId);
 *   }
 * }
 * ```
 * @module
 */
import type { Broker } from "../broker/broker.ts";
import type { DeclaredActor } from "../broker/declared_actor.ts";
import type { MessageProxy } from "../message.ts";
import type { Message } from "../message.ts";
import type { Worker } from "../worker/worker.ts";
import type { Awaitable } from "../util/async.ts";

export type { Awaitable };

/**
 * What `afterProcessMessage` receives: the result, or the error the actor threw.
 *
 * @example
 * ```ts
 * import type { ProcessOutcome } from "@dramatis/dramatis";
 * const ok: ProcessOutcome = { result: 42 };
 * ```
 */
export interface ProcessOutcome {
  /** The actor's return value, when it succeeded. */
  result?: unknown;
  /** The error the actor threw, when it failed. */
  error?: unknown;
}

/**
 * Base class for middleware. Override any hook; all may be async. Hooks named `before*` run in
 * the order the middleware was added and may throw to stop the operation; hooks named `after*`
 * run in reverse order and their errors are logged, never thrown.
 *
 * @example
 * ```ts
 * import { type Broker, type MessageProxy, Middleware, type ProcessOutcome } from "@dramatis/dramatis";
 *
 * class Audit extends Middleware {
 *   override get actorOptions() {
 *     return ["audit"];
 *   }
 *   override afterProcessMessage(_b: Broker, m: MessageProxy, { error }: ProcessOutcome) {
 *     if (error) console.log(`${m.actorName} failed`);
 *   }
 * }
 * ```
 */
export abstract class Middleware {
  /**
   * The actor options (camelCase) this middleware adds: actors declared on a broker that has
   * this middleware may use them (the broker collects them in `broker.actorOptions`).
   */
  get actorOptions(): readonly string[] {
    return [];
  }

  /** Before a message is acknowledged. */
  beforeAck?(broker: Broker, message: MessageProxy): Awaitable<void>;
  /** After a message is acknowledged. */
  afterAck?(broker: Broker, message: MessageProxy): Awaitable<void>;
  /** Before a message is rejected (sent to the dead-letter queue). */
  beforeNack?(broker: Broker, message: MessageProxy): Awaitable<void>;
  /** After a message is rejected (sent to the dead-letter queue). */
  afterNack?(broker: Broker, message: MessageProxy): Awaitable<void>;
  /** Before an actor is declared on the broker. */
  beforeDeclareActor?(broker: Broker, actor: DeclaredActor): Awaitable<void>;
  /** After an actor is declared on the broker. */
  afterDeclareActor?(broker: Broker, actor: DeclaredActor): Awaitable<void>;
  /** Before a queue is declared. */
  beforeDeclareQueue?(broker: Broker, queueName: string): Awaitable<void>;
  /** After a queue is declared. */
  afterDeclareQueue?(broker: Broker, queueName: string): Awaitable<void>;
  /** After a queue's delay queue (`q.DQ`) is declared. */
  afterDeclareDelayQueue?(broker: Broker, queueName: string): Awaitable<void>;
  /** Before a message is enqueued; `delay` in ms when it is delayed. */
  beforeEnqueue?(broker: Broker, message: Message, delay: number | undefined): Awaitable<void>;
  /** After a message is enqueued. */
  afterEnqueue?(broker: Broker, message: Message, delay: number | undefined): Awaitable<void>;
  /** Before a worker holds a delayed message until its eta. */
  beforeDelayMessage?(broker: Broker, message: MessageProxy): Awaitable<void>;
  /** Before a worker runs a message's actor; throw `SkipMessage` to skip it. */
  beforeProcessMessage?(broker: Broker, message: MessageProxy): Awaitable<void>;
  /** After the actor ran, with its result or its error. */
  afterProcessMessage?(
    broker: Broker,
    message: MessageProxy,
    outcome: ProcessOutcome,
  ): Awaitable<void>;
  /** After a message was skipped by `SkipMessage`. */
  afterSkipMessage?(broker: Broker, message: MessageProxy): Awaitable<void>;
  /** After a worker process (or Web Worker) has booted and imported the user's modules. */
  afterProcessBoot?(broker: Broker): Awaitable<void>;
  /** Before a worker starts consuming. */
  beforeWorkerBoot?(broker: Broker, worker: Worker): Awaitable<void>;
  /** After a worker started consuming. */
  afterWorkerBoot?(broker: Broker, worker: Worker): Awaitable<void>;
  /** Before a worker shuts down. */
  beforeWorkerShutdown?(broker: Broker, worker: Worker): Awaitable<void>;
  /** After a worker shut down. */
  afterWorkerShutdown?(broker: Broker, worker: Worker): Awaitable<void>;
}

/**
 * The names of every middleware hook.
 *
 * @example
 * ```ts
 * import { HOOKS } from "@dramatis/dramatis";
 * console.log(HOOKS.includes("beforeAck")); // true
 * ```
 */
export const HOOKS = [
  "beforeAck",
  "afterAck",
  "beforeNack",
  "afterNack",
  "beforeDeclareActor",
  "afterDeclareActor",
  "beforeDeclareQueue",
  "afterDeclareQueue",
  "afterDeclareDelayQueue",
  "beforeEnqueue",
  "afterEnqueue",
  "beforeDelayMessage",
  "beforeProcessMessage",
  "afterProcessMessage",
  "afterSkipMessage",
  "afterProcessBoot",
  "beforeWorkerBoot",
  "afterWorkerBoot",
  "beforeWorkerShutdown",
  "afterWorkerShutdown",
] as const;

/**
 * A hook's name.
 *
 * @example
 * ```ts
 * import type { HookName } from "@dramatis/dramatis";
 * const h: HookName = "afterAck";
 * ```
 */
export type HookName = typeof HOOKS[number];
