// The age of a FileBroker queue's oldest ready message, for /metrics: the ready message created
// first (the lowest log id: ids are log offsets) is found in memory, then its JSON is read
// (one small read) for its `message_timestamp`. No scan of the log.
import type { Engine } from "./_engine.ts";

/** When the oldest ready message of canonical `queue` was enqueued (ms), null when none is. */
export function oldestReady(engine: Engine, queue: string): number | null {
  if (engine.stats(queue).ready === 0) return null; // also catches up with the log
  let first = Infinity;
  engine.forEachId(queue, "ready", (id) => {
    if (id < first) first = id;
  });
  const json = first === Infinity ? undefined : engine.readJson(first);
  if (!json) return null;
  try {
    const t = (JSON.parse(new TextDecoder().decode(json)) as { message_timestamp?: unknown })
      .message_timestamp;
    return typeof t === "number" ? t : null;
  } catch {
    return null; // undecodable: dead-lettered when delivered
  }
}
