// The default middleware stack, in Dramatiq's order.
import type { Middleware } from "./middleware.ts";
import { AgeLimit } from "./age_limit.ts";
import { TimeLimit } from "./time_limit.ts";
import { ShutdownNotifications } from "./shutdown.ts";
import { Callbacks } from "./callbacks.ts";
import { Pipelines } from "./pipelines.ts";
import { Retries } from "./retries.ts";

/**
 * A fresh default stack: AgeLimit, TimeLimit, ShutdownNotifications, Callbacks, Pipelines,
 * Retries.
 */
export function defaultMiddleware(): Middleware[] {
  return [
    new AgeLimit(),
    new TimeLimit(),
    new ShutdownNotifications(),
    new Callbacks(),
    new Pipelines(),
    new Retries(),
  ];
}
