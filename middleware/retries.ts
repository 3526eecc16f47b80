/**
 * `Retries`: retries failed messages with exponential backoff, then dead-letters them.
 *
 * @example
 * ```ts
 * import { Retries } from "@dramatis/dramatis";
 * const m = new Retries({ maxRetries: 5 });
 * ```
 * @module
 */
import { Middleware, type ProcessOutcome } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import type { MessageProxy } from "../message.ts";
import { Cancelled, RateLimitExceeded, Retry } from "../errors.ts";
import { getOption, isExpectedError } from "./_options.ts";
import { formatError, getLogger } from "../util/log.ts";
import { actorNameOf, sendTo } from "./_util.ts";

const logger = getLogger("dramatis.middleware.retries.Retries");
const SEVEN_DAYS = 7 * 24 * 3600 * 1000;

/**
 * The retry delay after `retriesSoFar` failures, as Dramatiq computes it:
 * `minBackoff * 2^retriesSoFar * U[1, 2)`, or `maxBackoff * U[0.5, 1)` when that is larger
 * than `maxBackoff` (itself capped at 7 days).
 *
 * @example
 * ```ts
 * import { computeBackoff } from "@dramatis/dramatis";
 * const ms = computeBackoff(0, { minBackoff: 1000, maxBackoff: 60_000 }); // 1000..1999
 * ```
 */
export function computeBackoff(
  retriesSoFar: number,
  options: { minBackoff: number; maxBackoff: number; random?: () => number },
): number {
  const random = options.random ?? Math.random;
  const maxBackoff = Math.min(options.maxBackoff, SEVEN_DAYS);
  const backoff = Math.floor(options.minBackoff * 2 ** Math.min(retriesSoFar, 32) * (1 + random()));
  if (backoff > maxBackoff) return Math.floor(maxBackoff * (0.5 + random() / 2));
  return backoff;
}

/**
 * Options of `Retries` (the defaults for actors that set none).
 *
 * @example
 * ```ts
 * import type { RetriesOptions } from "@dramatis/dramatis";
 * const o: RetriesOptions = { maxRetries: 3, minBackoff: 1000 };
 * ```
 */
export interface RetriesOptions {
  /** Default 20; `null` retries forever. */
  maxRetries?: number | null;
  /** Default 15_000 ms. */
  minBackoff?: number;
  /** Default 7 days. */
  maxBackoff?: number;
  /** Default retry predicate, used instead of `maxRetries` when set. */
  retryWhen?: (retriesSoFar: number, error: unknown) => boolean;
}

/**
 * Retries a failed message with exponential backoff and jitter (`minBackoff` .. `maxBackoff`)
 * until `maxRetries` (or `retryWhen` says no); then the message fails for good and goes to its
 * dead-letter queue, and `onRetryExhausted` (if set) is sent `(message, {retries, max_retries})`.
 * Errors listed in the actor's `throws` are never retried. An actor may throw `Retry` to ask
 * for a retry after a fixed delay. With the actor option `rateLimitDelay` (ms), an actor that
 * throws `RateLimitExceeded` runs again about that much later (0.5x to 1.5x), and that does not
 * count as a retry. A message cancelled (`broker.cancel(id)`, error `Cancelled`) is not retried.
 *
 * @example
 * ```ts
 * import { Retries, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker({ middleware: [new Retries({ maxRetries: 3, minBackoff: 100 })] });
 * ```
 */
export class Retries extends Middleware {
  /** Default `maxRetries`. */
  readonly maxRetries: number | null;
  /** Default `minBackoff` (ms). */
  readonly minBackoff: number;
  /** Default `maxBackoff` (ms). */
  readonly maxBackoff: number;
  /** Default retry predicate. */
  readonly retryWhen?: ((retriesSoFar: number, error: unknown) => boolean) | undefined;

  /** Creates the middleware. */
  constructor(options: RetriesOptions = {}) {
    super();
    this.maxRetries = options.maxRetries === undefined ? 20 : options.maxRetries;
    this.minBackoff = options.minBackoff ?? 15_000;
    this.maxBackoff = options.maxBackoff ?? SEVEN_DAYS;
    this.retryWhen = options.retryWhen;
  }

  /** The actor options this middleware adds. */
  override get actorOptions(): readonly string[] {
    return [
      "maxRetries",
      "minBackoff",
      "maxBackoff",
      "retryWhen",
      "throws",
      "onRetryExhausted",
      "rateLimitDelay",
    ];
  }

  /** Runs after the actor, with its result or error. */
  override async afterProcessMessage(
    broker: Broker,
    message: MessageProxy,
    { error }: ProcessOutcome,
  ): Promise<void> {
    // A cancelled message is never retried (nor dead-lettered): the worker acks it.
    if (error === undefined || message.failed || error instanceof Cancelled) return;
    const actor = broker.getActor(message.actorName);
    if (isExpectedError(actor, error)) {
      logger.info(`Aborting message ${message.messageId}: ${describe(error)} is in \`throws\`.`);
      message.fail();
      return;
    }
    const rateLimitDelay = getOption<number | undefined>(
      message,
      actor,
      "rateLimitDelay",
      undefined,
    );
    if (error instanceof RateLimitExceeded && typeof rateLimitDelay === "number") {
      // Not a failure: try again later, without counting a retry.
      const delay = Math.floor(rateLimitDelay * (0.5 + Math.random()));
      logger.debug(`Rate limited: message ${message.messageId} runs again in ${delay} ms.`);
      await broker.enqueue(message, { delay });
      return;
    }
    const r = typeof message.options.retries === "number" ? message.options.retries : 0;
    message.options.retries = r + 1;
    message.options.traceback = formatError(error).slice(0, 8000);
    message.options.requeue_timestamp = Date.now();
    const maxRetries = getOption<number | null>(message, actor, "maxRetries", this.maxRetries);
    const retryWhen = (actor.options.retryWhen as RetriesOptions["retryWhen"]) ?? this.retryWhen;
    const giveUp = retryWhen ? !retryWhen(r, error) : maxRetries !== null && r >= maxRetries;
    if (giveUp) {
      logger.warning(`Retries exceeded for message ${message.messageId}.`);
      message.fail();
      const target = actorNameOf(getOption(message, actor, "onRetryExhausted", undefined));
      if (target) {
        await sendTo(broker, target, [message.asDict() as never, {
          retries: r,
          max_retries: maxRetries,
        }]);
      }
      // The dead letter counts the retries done, as Dramatiq's Redis and RabbitMQ brokers store
      // it (the body as last enqueued), so a dead letter reads the same whichever worker made it.
      message.options.retries = r;
      return;
    }
    let delay: number;
    if (error instanceof Retry && error.delay !== undefined) {
      delay = error.delay;
    } else {
      delay = computeBackoff(r, {
        minBackoff: getOption(message, actor, "minBackoff", this.minBackoff),
        maxBackoff: getOption(message, actor, "maxBackoff", this.maxBackoff),
      });
    }
    logger.info(`Retrying message ${message.messageId} in ${delay} milliseconds.`);
    await broker.enqueue(message, { delay });
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.name : typeof e;
}
