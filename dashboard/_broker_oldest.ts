// The age of a queue's oldest ready message for the broker source's overview: exact from the
// broker when it knows it (file, Redis), else from the first OLDEST_EXACT ready messages.
import type { Broker } from "../broker/broker.ts";

/** Ready messages read to find the oldest exactly; beyond, the age shown is a lower bound. */
export const OLDEST_EXACT = 200;

/** How long the oldest ready message found is reused while the queue's ready count is the same (ms). */
const OLDEST_TTL = 5_000;

/** The oldest ready message found, and when (reused for OLDEST_TTL while `ready` holds). */
export interface Oldest {
  at: number;
  lowerBound: boolean;
  ready: number;
  readAt: number;
}

/** The oldest ready message's timestamp: read again when the count changed or after 5 s. */
export async function oldestReady(
  broker: Broker,
  cache: Map<string, Oldest>,
  queue: string,
  ready: number,
): Promise<Oldest | undefined> {
  const now = Date.now();
  const cached = cache.get(queue);
  if (cached && cached.ready === ready && now - cached.readAt < OLDEST_TTL) return cached;
  // The file and Redis brokers know it exactly and cheaply (the head of the queue).
  const exact = (broker as {
    oldestReadyTimestamp?: (queue: string) => Promise<number | null>;
  }).oldestReadyTimestamp;
  if (typeof exact === "function") {
    const at = await exact.call(broker, queue);
    if (at === null) return undefined;
    const o: Oldest = { at, lowerBound: false, ready, readAt: now };
    cache.set(queue, o);
    return o;
  }
  const page = await broker.browse(queue, "ready", {
    limit: Math.min(ready, OLDEST_EXACT),
  });
  let at = Infinity;
  for (const e of page.entries) at = Math.min(at, e.message.messageTimestamp);
  if (at === Infinity) return undefined;
  const o: Oldest = { at, lowerBound: page.next !== undefined, ready, readAt: now };
  cache.set(queue, o);
  return o;
}
