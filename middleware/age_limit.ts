/**
 * `AgeLimit`: skips and dead-letters messages older than their `maxAge`.
 *
 * @example
 * ```ts
 * import { AgeLimit } from "@dramatis/dramatis";
 * const m = new AgeLimit({ maxAge: 3_600_000 });
 * ```
 * @module
 */
import { Middleware } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import type { MessageProxy } from "../message.ts";
import { SkipMessage } from "../errors.ts";
import { getLogger } from "../util/log.ts";

const logger = getLogger("dramatis.middleware.age_limit.AgeLimit");

/**
 * Fails (dead-letters) a message whose age exceeds `maxAge` ms when a worker picks it up.
 * The actor option or the message option `maxAge` wins over the middleware's default.
 *
 * @example
 * ```ts
 * import { AgeLimit, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker({ middleware: [new AgeLimit({ maxAge: 60_000 })] });
 * ```
 */
export class AgeLimit extends Middleware {
  /** The default age limit in ms (undefined: none). */
  readonly maxAge: number | undefined;
  /** Creates the middleware. */
  constructor(options: { maxAge?: number } = {}) {
    super();
    this.maxAge = options.maxAge;
  }
  /** The actor options this middleware adds. */
  override get actorOptions(): readonly string[] {
    return ["maxAge"];
  }
  /** Runs before the actor. */
  override beforeProcessMessage(broker: Broker, message: MessageProxy): void {
    // Like Dramatiq: a falsy message option (0, null) falls back to the actor's.
    const maxAge = (message.options.max_age as number | null | undefined) ||
      (broker.getActor(message.actorName).options.maxAge as number | undefined) || this.maxAge;
    if (!maxAge) return;
    if (Date.now() - message.messageTimestamp >= maxAge) {
      logger.warning(`Message ${message.messageId} has exceeded its age limit.`);
      message.fail();
      throw new SkipMessage("Message age limit exceeded");
    }
  }
}
