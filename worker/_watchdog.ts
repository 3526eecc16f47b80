// The watchdog of a worker process's Web Workers (see worker/_process.ts): a Web Worker whose
// actor runs `grace` ms past its hard time limit, or past a cancel it has not handled, is stuck
// in code that never yields.
import { MessageState } from "./_protocol.ts";
import { cellOf, type Held, type Slot, WATCHED } from "./_slot.ts";

/** How often the Web Workers are checked, in ms. */
const EVERY = 50;

/**
 * Checks the Web Workers of `slots` every EVERY ms, calling `stuck` with a Web Worker and the
 * message it is stuck in; returns the function that stops the checks.
 */
export function startWatchdog(
  slots: readonly (Slot | undefined)[],
  options: { grace: number; stuck: (slot: Slot, h: Held) => void },
): () => void {
  const { grace, stuck } = options;
  const timer = setInterval(() => {
    const now = Date.now();
    for (const slot of slots) {
      if (!slot || !WATCHED.has(slot.state)) continue;
      const current = slot.held.get(slot.current[0]!);
      if (current && current.deadline === Infinity) current.deadline = slot.current[1]!;
      for (const [tag, h] of slot.held) {
        if (now > h.deadline + grace || stuckCancelled(slot, tag, h, now - grace)) {
          stuck(slot, h);
          break;
        }
      }
    }
  }, EVERY);
  return () => clearInterval(timer);
}

/**
 * A cancelled message whose actor runs in a Web Worker that did not handle the cancel it was
 * told before `before`.
 */
function stuckCancelled(slot: Slot, tag: number, h: Held, before: number): boolean {
  return h.cancelSeq !== undefined && before > h.cancelledAt! &&
    slot.current[2]! < h.cancelSeq &&
    Atomics.load(slot.states, cellOf(slot, tag)) === MessageState.STARTED;
}
