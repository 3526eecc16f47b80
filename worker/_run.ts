// Running one message in a worker: calling its actor between the processMessage hooks, logging
// what happened, and settling it with the broker (ack, nack or requeue, between the middleware hooks).
import type { Broker } from "../broker/broker.ts";
import type { DeclaredActor } from "../broker/declared_actor.ts";
import type { Consumer } from "../broker/consumer.ts";
import type { MessageProxy } from "../message.ts";
import { Cancelled, RateLimitExceeded, Retry, Shutdown, SkipMessage } from "../errors.ts";
import { isExpectedError } from "../middleware/_options.ts";
import { hasResultsMiddleware, resultPassedOn } from "../middleware/_util.ts";
import { formatError, getLogger, LEVELS } from "../util/log.ts";
import { runWithMessage } from "./context.ts";
import type { WorkerMonitor } from "./_worker_options.ts";

const logger = getLogger("dramatis.worker.Worker");
const actorLogger = getLogger("dramatis.actor");

/**
 * Runs the actor of `m` with its arguments (kwargs as one trailing object) as the current
 * message. Rejects with the abort reason as soon as `m` is aborted, even if the actor goes on.
 */
export function invoke(actor: DeclaredActor, m: MessageProxy): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (m.aborted) return reject(m.signal.reason);
    m.onAbort(reject);
    const args = Object.keys(m.kwargs).length === 0 ? m.args : [...m.args, m.kwargs];
    let r: unknown;
    try {
      r = runWithMessage(m, actor.fn, args);
    } catch (e) {
      return reject(e);
    }
    if (
      r !== null && typeof r === "object" && typeof (r as Promise<unknown>).then === "function"
    ) {
      (r as Promise<unknown>).then(resolve, reject);
    } else {
      resolve(r);
    }
  });
}

function describeArgs(m: MessageProxy): string {
  const args = JSON.stringify(m.args);
  return `args=${args.length > 200 ? args.slice(0, 200) + "..." : args} kwargs=${
    JSON.stringify(m.kwargs)
  }`;
}

/** Logs (at debug level) that `m` starts; returns the start time then, else undefined. */
export function logReceived(m: MessageProxy): number | undefined {
  if (!actorLogger.isEnabledFor(LEVELS.DEBUG)) return undefined;
  getLogger(`dramatis.actor.${m.actorName}`).debug(`Received ${describeArgs(m)}.`);
  return performance.now();
}

/** Logs (at debug level) that `m`, started at `t0`, completed. */
export function logCompleted(m: MessageProxy, t0: number): void {
  getLogger(`dramatis.actor.${m.actorName}`).debug(
    `Completed after ${(performance.now() - t0).toFixed(2)} ms.`,
  );
}

/**
 * Logs the error the actor of `m` threw, at the level it deserves: debug for a rate limit or a
 * requested retry, info for an expected error (in `throws`), a warning with the stack otherwise.
 */
export function logFailure(actor: DeclaredActor, m: MessageProxy, e: unknown): void {
  if (e instanceof RateLimitExceeded) {
    logger.debug(`Rate limit exceeded in message ${m} (${m.messageId}): ${e.message}`);
  } else if (isExpectedError(actor, e)) {
    logger.info(
      `Failed to process message ${m} (${m.messageId}) with expected exception ${
        e instanceof Error ? e.name : typeof e
      }.`,
    );
  } else if (e instanceof Retry) {
    logger.debug(`Message ${m} asked for a retry.`);
  } else {
    logger.warning(
      `Failed to process message ${m} (${m.messageId}) with unhandled exception.\n${
        formatError(e)
      }`,
    );
  }
}

/**
 * Warns, once per actor (`checked` holds those done), that a returned value is discarded because no `Results` middleware
 * would store it (as Dramatiq does). The `Results` middleware warns when it is there but the
 * actor does not store results.
 */
export function warnIfDiscarded(
  m: MessageProxy,
  { broker, actor, checked }: { broker: Broker; actor: DeclaredActor; checked: Set<string> },
): void {
  if (checked.has(actor.actorName) || resultPassedOn(m, actor)) return;
  // Middleware is only ever added: once a Results middleware is there, it stays.
  checked.add(actor.actorName);
  if (hasResultsMiddleware(broker)) return;
  logger.warning(
    `Actor ${JSON.stringify(actor.actorName)} returned a value, but the broker has no ` +
      `Results middleware, so the value has been discarded. Add one ` +
      `(broker.addMiddleware(new Results({ backend }))) and set storeResults: true on the ` +
      `actor, or pipe the result into another actor. (Logged once per actor.)`,
  );
}

/** What `runActor` needs of its worker. */
export interface RunContext {
  broker: Broker;
  monitor: WorkerMonitor | undefined;
  /** Actors whose returned value was checked for a Results middleware (`warnIfDiscarded`). */
  discardChecked: Set<string>;
  /** Whether the worker is stopping: a `Shutdown` then hands the message back, not failing it. */
  stopping: () => boolean;
  /** Told when the actor returned or threw (before the hooks: a retry's enqueue, the settle). */
  ended?: (at: number) => void;
}

/**
 * Runs `actor` for `m` between the `processMessage` hooks and sorts out how it ended (done,
 * skipped, cancelled, failed); resolves true when `m` goes back to the broker (a shutdown).
 */
export async function runActor(
  m: MessageProxy,
  actor: DeclaredActor,
  ctx: RunContext,
): Promise<boolean> {
  const broker = ctx.broker;
  try {
    // Cancelled before it started (held prefetched or delayed): it does not run.
    if (m.aborted) throw m.signal.reason;
    const before = broker.emitBefore("processMessage", m);
    if (before) await before;
    const t0 = logReceived(m);
    ctx.monitor?.started(m);
    let result: unknown;
    try {
      result = await invoke(actor, m);
    } finally {
      ctx.ended?.(Date.now());
    }
    if (t0 !== undefined) logCompleted(m, t0);
    if (result !== undefined) {
      warnIfDiscarded(m, { broker, actor, checked: ctx.discardChecked });
    }
    const after = broker.emitAfter("processMessage", m, { result });
    if (after) await after;
  } catch (e) {
    if (e instanceof SkipMessage) {
      // As in Dramatiq: a skipped message that failed carries the reason, which the
      // Results middleware stores ("actor raised SkipMessage: Message age limit exceeded").
      if (m.failed) m.error = e;
      const after = broker.emitAfter("skipMessage", m);
      if (after) await after;
    } else if (ctx.stopping() && e instanceof Shutdown) {
      return true;
    } else if (e instanceof Cancelled) {
      // Not a failure: acked, not retried (Retries), stored as Cancelled (Results).
      m.error = e;
      logger.info(`Message ${m.messageId} (${m.actorName}) was cancelled.`);
      const after = broker.emitAfter("processMessage", m, { error: e });
      if (after) await after;
    } else {
      m.error = e;
      logFailure(actor, m, e);
      const after = broker.emitAfter("processMessage", m, { error: e });
      if (after) await after;
    }
  }
  return false;
}

/** How `settle` settles a message. */
export interface SettleOptions {
  /** The broker whose ack / nack hooks run. */
  broker: Broker;
  /** The consumer the message came from (none: it is left in flight, and logged). */
  consumer: Consumer | undefined;
  /** Hand it back unprocessed (on shutdown), with no hook. */
  requeue: boolean;
}

/**
 * Settles `m` with its consumer: requeues it, or nacks it when it failed (between the
 * `beforeNack` and `afterNack` hooks), else acks it (between `beforeAck` and `afterAck`). An
 * error is logged: the broker delivers the message again.
 */
export async function settle(
  m: MessageProxy,
  { broker, consumer, requeue }: SettleOptions,
): Promise<void> {
  if (!consumer) {
    logger.error(`No consumer for queue ${m.queueName}: message ${m.messageId} left in flight.`);
    return;
  }
  try {
    if (requeue) {
      await consumer.requeue([m]);
    } else if (m.failed) {
      const b = broker.emitBefore("nack", m);
      if (b) await b;
      await consumer.nack(m);
      const a = broker.emitAfter("nack", m);
      if (a) await a;
    } else {
      const b = broker.emitBefore("ack", m);
      if (b) await b;
      await consumer.ack(m);
      const a = broker.emitAfter("ack", m);
      if (a) await a;
    }
  } catch (e) {
    logger.error(
      `Failed to ${requeue ? "requeue" : m.failed ? "nack" : "ack"} message ${m.messageId}; ` +
        `the broker will deliver it again: ${formatError(e)}`,
    );
  }
}
