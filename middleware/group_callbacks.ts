/**
 * `GroupCallbacks`: runs a group's completion callbacks when all its members succeeded.
 *
 * @example
 * ```ts
 * import { GroupCallbacks, MemoryRateLimiterBackend } from "@dramatis/dramatis";
 * const m = new GroupCallbacks({ backend: new MemoryRateLimiterBackend() });
 * ```
 * @module
 */
import { Middleware, type ProcessOutcome } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import type { MessageProxy } from "../message.ts";
import type { RateLimiterBackend } from "../rate_limits/backend.ts";
import { Barrier } from "../rate_limits/limiters.ts";
import { Message } from "../message.ts";

/**
 * Needed by `group(...).addCompletionCallback()`. Each member of the group counts down a
 * `Barrier` in the rate-limiter backend when it succeeds; the last one enqueues the callbacks.
 * A group nested in another counts as one member of it: the message that completes the inner
 * group also counts down the outer one (the barriers of enclosing groups travel in the
 * `group_completion_parents` option, innermost first).
 * Use a backend shared by all workers (file or Redis) when workers run in several processes.
 *
 * @example
 * ```ts
 * import { GroupCallbacks, MemoryRateLimiterBackend, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * broker.addMiddleware(new GroupCallbacks({ backend: new MemoryRateLimiterBackend() }));
 * ```
 */
export class GroupCallbacks extends Middleware {
  /** The backend holding the groups' barriers. */
  readonly backend: RateLimiterBackend;
  /** How long a group's barrier lives, in ms. Default 24 hours. */
  readonly barrierTtl: number;

  /** Creates the middleware. */
  constructor(options: { backend: RateLimiterBackend; barrierTtl?: number }) {
    super();
    if (!options?.backend) {
      throw new TypeError(
        "GroupCallbacks needs a rate-limiter backend: new GroupCallbacks({ backend }).",
      );
    }
    this.backend = options.backend;
    this.barrierTtl = options.barrierTtl ?? 86_400_000;
  }

  /** Runs after the actor, with its result or error. */
  override async afterProcessMessage(
    broker: Broker,
    message: MessageProxy,
    { error }: ProcessOutcome,
  ): Promise<void> {
    if (error !== undefined || message.failed) return;
    const uuid = message.options.group_completion_uuid;
    const callbacks = message.options.group_completion_callbacks;
    if (typeof uuid !== "string" || !Array.isArray(callbacks)) return;
    const parents = message.options.group_completion_parents;
    const chain = [{ uuid, callbacks }, ...(Array.isArray(parents) ? parents : [])];
    // The message completes its group when it is the last to arrive at the barrier; that group
    // then completes its enclosing group (for nested groups) in the same way, and so on.
    for (const level of chain) {
      const { uuid, callbacks } = level as { uuid?: unknown; callbacks?: unknown };
      if (typeof uuid !== "string" || !Array.isArray(callbacks)) return;
      const barrier = new Barrier(this.backend, uuid, { ttl: this.barrierTtl });
      if (!(await barrier.wait({ block: false }))) return;
      for (const cb of callbacks) await broker.enqueue(Message.fromDict(cb));
    }
  }
}
