// The age of a RedisBroker queue's oldest ready message, for /metrics: the head of the queue's
// list (the next to be fetched: messages are RPUSHed, handed back ones LPUSHed) and its
// payload's `message_timestamp`. Two commands; no scan of the queue.
import type { RedisClient } from "./client.ts";

/** When the oldest ready message of canonical `queue` was enqueued (ms), null when none is. */
export async function oldestReady(
  client: RedisClient,
  namespace: string,
  queue: string,
): Promise<number | null> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const [id] = await client.send<string[]>(["LRANGE", `${namespace}:${queue}`, 0, 0]);
    if (id === undefined) return null;
    const payload = await client.send<string | null>(["HGET", `${namespace}:${queue}.msgs`, id]);
    if (payload === null) continue; // fetched and acked meanwhile: look at the new head
    try {
      const t = (JSON.parse(payload) as { message_timestamp?: unknown }).message_timestamp;
      return typeof t === "number" ? t : null;
    } catch {
      return null; // undecodable: dead-lettered when fetched
    }
  }
  return null;
}
