// The last steps of a worker process's stop (see worker/_process.ts), each given until a
// deadline.
import type { Logger } from "../util/log.ts";

/** After this long, a step of a stop says what it is waiting for, in ms. */
const NOTICE_MS = 1_000;

/**
 * Runs `steps` in order until `deadline` (ms since the epoch): a step that takes longer than
 * NOTICE_MS is logged with what it waits for; at the deadline the rest is given up, with a
 * warning (messages not settled come back when the broker's lease or heartbeat expires).
 */
export async function withDeadline(
  logger: Logger,
  deadline: number,
  steps: [what: string, run: () => Promise<unknown>][],
): Promise<void> {
  for (const [what, run] of steps) {
    let notice: ReturnType<typeof setTimeout> | undefined, limit!: ReturnType<typeof setTimeout>;
    const done = await Promise.race([
      run().then(() => true, () => true),
      new Promise<boolean>((resolve) => {
        const left = Math.max(0, deadline - Date.now());
        limit = setTimeout(() => resolve(false), left);
        if (left > NOTICE_MS) {
          notice = setTimeout(
            () => {
              const more = Math.ceil((deadline - Date.now()) / 1000);
              logger.info(`Waiting for ${what} (giving up in ${more} s: the shutdown timeout).`);
            },
            NOTICE_MS,
          );
        }
      }),
    ]);
    clearTimeout(limit);
    clearTimeout(notice);
    if (!done) {
      logger.warning(
        `Gave up waiting for ${what}: the shutdown timeout passed. Messages not settled come ` +
          `back when the broker's lease or heartbeat timeout expires.`,
      );
      return;
    }
  }
}
