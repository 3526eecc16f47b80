/**
 * `ShutdownNotifications`: tells actors with `notifyShutdown` that the worker is stopping.
 *
 * @example
 * ```ts
 * import { ShutdownNotifications } from "@dramatis/dramatis";
 * const m = new ShutdownNotifications();
 * ```
 * @module
 */
import { Middleware } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import type { Worker } from "../worker/worker.ts";
import { Shutdown } from "../errors.ts";

/**
 * When a worker starts shutting down, aborts `currentSignal()` (with a `Shutdown` reason) of
 * every running message whose actor (or message) has `notifyShutdown: true`, so long tasks can
 * stop early. Such a message is handed back to the broker, not retried. Others get until the
 * shutdown timeout to finish.
 *
 * @example
 * ```ts
 * import { ShutdownNotifications, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker({ middleware: [new ShutdownNotifications({ notifyShutdown: true })] });
 * ```
 */
export class ShutdownNotifications extends Middleware {
  /** The default for actors that do not set `notifyShutdown`. */
  readonly notifyShutdown: boolean;
  /** Creates the middleware. */
  constructor(options: { notifyShutdown?: boolean } = {}) {
    super();
    this.notifyShutdown = options.notifyShutdown ?? false;
  }
  /** The actor options this middleware adds. */
  override get actorOptions(): readonly string[] {
    return ["notifyShutdown"];
  }
  /** Runs when a worker starts shutting down. */
  override beforeWorkerShutdown(broker: Broker, worker: Worker): void {
    for (const message of worker.inFlight) {
      const own = message.options.notify_shutdown;
      const actorOpt = broker.hasActor(message.actorName)
        ? broker.getActor(message.actorName).options.notifyShutdown
        : undefined;
      const notify = own ?? actorOpt ?? this.notifyShutdown;
      if (notify) message.abort(new Shutdown("The worker is shutting down."));
    }
  }
}
