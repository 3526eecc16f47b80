// A worker process and its parent, the supervisor (see worker/_process.ts): noticing that it is
// gone, and the stop signals.
import type { Logger } from "../util/log.ts";
import { exit, onSignal, ppid } from "../runtime/process.ts";
import { EXIT } from "./_exit.ts";

/** How often the parent is checked, in ms. */
const EVERY = 1000;

/**
 * Watches the parent of this process, calling `stop(EXIT.OK)` when it is gone or a stop signal
 * arrives; returns the function that stops checking the parent.
 *
 * A supervisor killed with SIGKILL cannot stop its worker processes: each notices that it was
 * orphaned (its parent changed) and stops gracefully, handing back what it has not finished.
 *
 * Stop signals. A terminal's Ctrl-C, `kill -- -PGID`, `timeout`, systemd and Docker signal the
 * whole process group (or cgroup), and the supervisor forwards the stop as well: this process
 * sees one user's stop two or three times. So the first INT/TERM stops gracefully and later ones
 * are ignored while the supervisor lives: it alone decides an immediate stop, by sending SIGKILL
 * (messages in flight then come back through the broker, as after a crash). HUP is the
 * supervisor's (a reload, which stops this process with TERM): here it must not kill.
 */
export function watchParent(
  options: { logger: Logger; stopping: () => boolean; stop: (code: number) => unknown },
): () => void {
  const { logger, stopping, stop } = options;
  const parent = ppid();
  const timer = setInterval(() => {
    if (ppid() === parent || stopping()) return;
    logger.warning(`The supervisor (pid ${parent}) is gone: stopping this worker process.`);
    void stop(EXIT.OK);
  }, EVERY);
  let stopSignals = 0;
  onSignal(["SIGINT", "SIGTERM"], (sig) => {
    if (++stopSignals === 1) {
      logger.info("Stopping: finishing in-flight messages, handing the rest back.");
      void stop(EXIT.OK);
    } else if (ppid() !== parent) {
      logger.warning(`${sig} again, and no supervisor: exiting now.`);
      exit(EXIT.KILLED);
    } else {
      logger.debug(`${sig} again: ignored (the supervisor decides an immediate stop).`);
    }
  });
  onSignal(["SIGHUP"], () => logger.debug("SIGHUP: ignored (the supervisor reloads)."));
  return () => clearInterval(timer);
}
