// The schedules of a worker process: every `dramatis worker` process runs the schedules its
// modules declared for its broker (schedule/run.ts); the broker enqueues each tick once, however
// many processes run them. A broker without the `schedules` capability is logged, not fatal: the
// process still consumes its queues. Ticks are on time from when the supervisor started (`since`,
// at most `grace` back): a worker process it restarts after a crash, or starts again at a reload,
// enqueues the ticks that fell in between instead of counting them as missed.
import { formatError, getLogger } from "../util/log.ts";
import type { Broker } from "../broker/broker.ts";

/** Runs the declared schedules until `signal` aborts; never rejects. */
export async function runProcessSchedules(
  broker: Broker,
  signal: AbortSignal,
  since?: number,
): Promise<void> {
  const { getSchedules } = await import("../schedule/schedule.ts");
  const schedules = getSchedules(broker);
  if (schedules.length === 0) return;
  const logger = getLogger("dramatis.Scheduler");
  if (!broker.capabilities.schedules) {
    logger.error(
      `The broker (${broker.constructor.name}) cannot run schedules: ${
        schedules.map((s) => s.name).join(", ")
      } will not fire. Use the file or the Redis broker.`,
    );
    return;
  }
  const { runSchedules } = await import("../schedule/run.ts");
  try {
    await runSchedules({ broker, schedules, signal, ...(since === undefined ? {} : { since }) });
  } catch (e) {
    logger.error(`The schedules stopped: ${formatError(e)}`);
  }
}
