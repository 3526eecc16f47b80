/**
 * Error classes raised by dramatis. They mirror Python Dramatiq's exception hierarchy.
 *
 * @example
 * ```ts
 * import { DramatisError, QueueJoinTimeout } from "@dramatis/dramatis";
 * const e = new QueueJoinTimeout("default");
 * console.log(e instanceof DramatisError); // true
 * ```
 * @module
 */

/**
 * Base class of every error dramatis raises.
 *
 * @example
 * ```ts
 * import { DramatisError } from "@dramatis/dramatis";
 * try { throw new DramatisError("boom"); } catch (e) { console.log(e instanceof DramatisError); }
 * ```
 */
export class DramatisError extends Error {
  /** Creates the error; `name` is set to the subclass's name. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Raised by a broker when it cannot do what was asked (I/O failure, protocol error).
 *
 * @example
 * ```ts
 * import { BrokerError } from "@dramatis/dramatis";
 * const e = new BrokerError("disk full");
 * ```
 */
export class BrokerError extends DramatisError {}

/**
 * Raised when a broker cannot reach its server, or loses the connection.
 *
 * @example
 * ```ts
 * import { ConnectionError } from "@dramatis/dramatis";
 * const e = new ConnectionError("connection refused to 127.0.0.1:6379");
 * ```
 */
export class ConnectionError extends BrokerError {}

/**
 * Raised when a message names an actor that the broker does not know.
 *
 * @example
 * ```ts
 * import { ActorNotFound } from "@dramatis/dramatis";
 * const e = new ActorNotFound("sendEmail");
 * ```
 */
export class ActorNotFound extends DramatisError {
  /** Creates the error for the actor `actorName`. */
  constructor(readonly actorName: string) {
    super(
      `Actor ${JSON.stringify(actorName)} is not declared on this broker. ` +
        `Import the module that defines it in the worker, or check the message's actor_name.`,
    );
  }
}

/**
 * Raised when enqueueing to, or consuming from, a queue that was never declared.
 *
 * @example
 * ```ts
 * import { QueueNotFound } from "@dramatis/dramatis";
 * const e = new QueueNotFound("emails");
 * ```
 */
export class QueueNotFound extends DramatisError {
  /** Creates the error for the queue `queueName`. */
  constructor(readonly queueName: string) {
    super(
      `Queue ${JSON.stringify(queueName)} is not declared. ` +
        `Declare an actor on it, or call broker.declareQueue(${JSON.stringify(queueName)}).`,
    );
  }
}

/**
 * Raised by `broker.join()` when the queue did not drain before the timeout.
 *
 * @example
 * ```ts
 * import { QueueJoinTimeout } from "@dramatis/dramatis";
 * const e = new QueueJoinTimeout("default");
 * ```
 */
export class QueueJoinTimeout extends DramatisError {
  /** Creates the error for the queue `queueName`. */
  constructor(readonly queueName: string) {
    super(`Timed out while waiting for queue ${JSON.stringify(queueName)} to drain.`);
  }
}

/**
 * Raised when bytes cannot be decoded into a message.
 *
 * @example
 * ```ts
 * import { DecodeError } from "@dramatis/dramatis";
 * const e = new DecodeError("not JSON");
 * ```
 */
export class DecodeError extends DramatisError {}

/**
 * Thrown from `beforeProcessMessage` to skip a message: the actor is not run and the
 * message is acked (or nacked, if a middleware marked it failed).
 *
 * @example
 * ```ts
 * import { type Broker, type MessageProxy, Middleware, SkipMessage } from "@dramatis/dramatis";
 * class SkipTests extends Middleware {
 *   override beforeProcessMessage(_broker: Broker, message: MessageProxy) {
 *     if (message.kwargs.test) throw new SkipMessage("a test message");
 *   }
 * }
 * ```
 */
export class SkipMessage extends DramatisError {}

/**
 * An actor throws `Retry` to ask for a retry, optionally after a fixed `delay` (ms)
 * instead of the exponential backoff.
 *
 * @example
 * ```ts
 * import { actor, Retry, StubBroker } from "@dramatis/dramatis";
 * const poll = actor(function poll(ready: boolean) {
 *   if (!ready) throw new Retry({ delay: 5_000 }); // again in 5 s, whatever the backoff
 * }, { broker: new StubBroker() });
 * ```
 */
export class Retry extends DramatisError {
  /** The delay before the retry, in milliseconds; backoff is used when undefined. */
  readonly delay?: number | undefined;
  /** Creates a retry request. */
  constructor(options: { delay?: number; message?: string } = {}) {
    super(options.message ?? "Retry requested by the actor.");
    this.delay = options.delay;
  }
}

/**
 * The reason `currentSignal()` aborts with when an actor runs past its time limit; the
 * message fails with it and is retried per its options.
 *
 * @example
 * ```ts
 * import { TimeLimitExceeded } from "@dramatis/dramatis";
 * const e = new TimeLimitExceeded("took longer than 1000 ms");
 * ```
 */
export class TimeLimitExceeded extends DramatisError {}

/**
 * The reason `currentSignal()` aborts with when the worker shuts down.
 *
 * @example
 * ```ts
 * import { Shutdown } from "@dramatis/dramatis";
 * const e = new Shutdown("worker is shutting down");
 * ```
 */
export class Shutdown extends DramatisError {}

/**
 * Raised by a rate limiter when the limit is reached and `raiseOnFailure` is true.
 *
 * @example
 * ```ts
 * import { RateLimitExceeded } from "@dramatis/dramatis";
 * const e = new RateLimitExceeded("limit of 2 reached for key api");
 * ```
 */
export class RateLimitExceeded extends DramatisError {}

/**
 * Base class of the result errors.
 *
 * @example
 * ```ts
 * import { ResultError, ResultMissing } from "@dramatis/dramatis";
 * console.log(new ResultMissing("x") instanceof ResultError); // true
 * ```
 */
export class ResultError extends DramatisError {}

/**
 * Raised by a non-blocking `getResult` when the result is not there (yet).
 *
 * @example
 * ```ts
 * import { ResultMissing } from "@dramatis/dramatis";
 * const e = new ResultMissing("no result for message 1234");
 * ```
 */
export class ResultMissing extends ResultError {}

/**
 * Raised by a blocking `getResult` when no result arrived before the timeout.
 *
 * @example
 * ```ts
 * import { ResultTimeout } from "@dramatis/dramatis";
 * const e = new ResultTimeout("waited 10000 ms");
 * ```
 */
export class ResultTimeout extends ResultError {}

/**
 * Raised by `getResult` when the actor failed for good. Carries the error's name and message.
 *
 * @example
 * ```ts
 * import { ResultFailure } from "@dramatis/dramatis";
 * const e = new ResultFailure("actor failed: boom", { errorName: "Error", errorMessage: "boom" });
 * console.log(e.errorName); // "Error"
 * ```
 */
export class ResultFailure extends ResultError {
  /** The name of the error the actor threw (for example `TypeError`). */
  readonly errorName: string;
  /** The message of the error the actor threw. */
  readonly errorMessage: string;
  /** Creates the error. */
  constructor(message: string, info: { errorName: string; errorMessage: string }) {
    super(message);
    this.errorName = info.errorName;
    this.errorMessage = info.errorMessage;
  }
}

/**
 * An error class, as the actor option `throws` takes it.
 *
 * @example
 * ```ts
 * import type { ErrorClass } from "@dramatis/dramatis";
 * const c: ErrorClass = TypeError;
 * ```
 */
// deno-lint-ignore no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/**
 * Raised when a broker does not have an operation (`broker.capabilities` says which it has):
 * for example `cancel()` on a broker that cannot cancel.
 *
 * @example
 * ```ts
 * import { Unsupported } from "@dramatis/dramatis";
 * const e = new Unsupported("RabbitMQBroker cannot cancel a message: use the file or Redis broker.");
 * console.log(e.name); // Unsupported
 * ```
 */
export class Unsupported extends DramatisError {}

/**
 * The reason a cancelled message's signal aborts with, and the error its stored result holds:
 * `broker.cancel(id)` was called. A cancelled message is not retried.
 *
 * @example
 * ```ts
 * import { Cancelled } from "@dramatis/dramatis";
 * const e = new Cancelled("Message m1 was cancelled.");
 * console.log(e.name); // Cancelled
 * ```
 */
export class Cancelled extends DramatisError {}
