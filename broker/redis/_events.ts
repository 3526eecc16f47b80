// Events on Redis: a capped stream (`ns:__dramatis__.events`, about the last 10,000), read with
// XREAD BLOCK on a connection of each reader's own, so every process sees every event, in order.
import type { BrokerEvent } from "../ops.ts";
import { type OpsContext, text } from "./_ops_context.ts";
import type { RedisClient, Reply } from "./client.ts";

/** About how many events the stream keeps. */
const KEPT = 10_000;

function streamKey(ctx: OpsContext): string {
  return `${ctx.prefix}events`;
}

/** Appends `events` to the stream, in one round trip. */
export async function publishEvents(
  ctx: OpsContext,
  events: readonly BrokerEvent[],
): Promise<void> {
  if (events.length === 0) return;
  const key = streamKey(ctx);
  const replies = await ctx.pipeline(
    events.map((e) => ["XADD", key, "MAXLEN", "~", KEPT, "*", "e", JSON.stringify(e)]),
  );
  for (const r of replies) if (r instanceof Error) throw r;
}

/** The events appended from now on (with `past`: from the oldest kept), until `signal` aborts. */
export function events(
  ctx: OpsContext,
  signal: AbortSignal | undefined,
  past = false,
): AsyncIterable<BrokerEvent> {
  const key = streamKey(ctx);
  // Where "now" is in the stream, asked at once (events published after the call are seen).
  const start = past
    ? Promise.resolve("0-0")
    : ctx.send(["XREVRANGE", key, "+", "-", "COUNT", 1]).then(
      (r) => {
        const first = (r as Reply[])[0] as Reply[] | undefined;
        return first ? text(first[0]) : "0-0";
      },
    );
  start.catch(() => {});
  async function* iterate(): AsyncGenerator<BrokerEvent> {
    if (signal?.aborted) return;
    let last = await start;
    let client: RedisClient | undefined;
    const onAbort = () => void client?.close();
    signal?.addEventListener("abort", onAbort);
    try {
      client = await ctx.host.newBlockingClient();
      if (signal?.aborted) return;
      while (!signal?.aborted) {
        let reply: Reply;
        try {
          reply = await client.send(
            ["XREAD", "COUNT", 100, "BLOCK", 1_000, "STREAMS", key, last],
            { timeout: 0 },
          );
        } catch (e) {
          if (signal?.aborted) return;
          throw e;
        }
        if (reply === null) continue;
        const streams = reply instanceof Map
          ? [...reply.values()]
          : (reply as Reply[]).map((s) => (s as Reply[])[1]);
        for (const items of streams) {
          for (const [id, fields] of items as [Reply, Reply[]][]) {
            last = text(id);
            const f = fields as Reply[];
            for (let i = 0; i + 1 < f.length; i += 2) {
              if (text(f[i]) !== "e") continue;
              try {
                yield JSON.parse(text(f[i + 1])) as BrokerEvent;
              } catch {
                // not an event: skipped
              }
              if (signal?.aborted) return;
            }
          }
        }
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      await client?.close();
    }
  }
  return iterate();
}
