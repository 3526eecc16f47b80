// The worker registry on Redis: each record is a key with a TTL (`ns:__dramatis__.worker.<id>`)
// listed in a sorted set by expiry (`ns:__dramatis__.workers`), so listing needs no KEYS. Python
// Dramatiq workers have no record; they show up from Dramatiq's heartbeat set
// (`ns:__heartbeats__`), as runtime "python dramatiq". dramatis brokers are in that set too: their
// ids end in a fixed suffix, which tells them apart.
import type { RunningMessage, WorkerRecord } from "../ops.ts";
import { type OpsContext, text } from "./_ops_context.ts";

/** The end of every RedisBroker's id (still a UUID4), so the heartbeat set shows which are not. */
export const DRAMATIS_ID_SUFFIX = "da7a115e";

/** A new broker id: a random UUID4 ending in `DRAMATIS_ID_SUFFIX`. */
export function dramatisBrokerId(): string {
  const id = crypto.randomUUID();
  return id.slice(0, id.length - DRAMATIS_ID_SUFFIX.length) + DRAMATIS_ID_SUFFIX;
}

/** Publishes `record`, kept `ttl` ms after its `heartbeatAt`. */
export async function publishWorker(
  ctx: OpsContext,
  record: WorkerRecord,
  ttl: number,
): Promise<void> {
  const expires = Math.round(record.heartbeatAt + ttl);
  const key = `${ctx.prefix}worker.${record.workerId}`;
  const left = expires - Date.now();
  if (left <= 0) {
    await removeWorker(ctx, record.workerId);
    return;
  }
  await ctx.pipeline([
    ["SET", key, JSON.stringify(record), "PX", left],
    ["ZADD", `${ctx.prefix}workers`, expires, record.workerId],
  ]);
}

/** Removes a worker's record. */
export async function removeWorker(ctx: OpsContext, workerId: string): Promise<void> {
  await ctx.pipeline([
    ["DEL", `${ctx.prefix}worker.${workerId}`],
    ["ZREM", `${ctx.prefix}workers`, workerId],
  ]);
}

/**
 * The live records, then the Python Dramatiq brokers of the heartbeat set, with what they hold
 * of the declared queues (at most 100 messages per queue) as running and those queues.
 */
export async function workers(ctx: OpsContext): Promise<WorkerRecord[]> {
  const reply = await ctx.run("workers", [
    ctx.host.heartbeatTimeout,
    DRAMATIS_ID_SUFFIX,
    ...ctx.host.declaredQueues(),
  ]) as unknown[];
  const out: WorkerRecord[] = [];
  let i = 0;
  for (; i < reply.length; i++) {
    const r = text(reply[i] as string);
    if (r === "") break;
    try {
      out.push(JSON.parse(r) as WorkerRecord);
    } catch {
      // not a record: skipped
    }
  }
  for (i++; i + 2 < reply.length;) {
    const id = text(reply[i] as string);
    const at = Number(text(reply[i + 1] as string));
    const count = Number(reply[i + 2]);
    i += 3;
    const running: RunningMessage[] = [];
    const queues = new Set<string>();
    for (let k = 0; k < count; k++, i += 2) {
      const queueName = text(reply[i] as string);
      queues.add(queueName);
      try {
        const m = JSON.parse(text(reply[i + 1] as string)) as Record<string, unknown>;
        running.push({
          messageId: String(m.message_id),
          actorName: String(m.actor_name),
          queueName,
          since: at,
        });
      } catch {
        // not a message: skipped
      }
    }
    out.push({
      workerId: id,
      host: "",
      pid: 0,
      runtime: "python dramatiq",
      version: "",
      queues: [...queues].sort(),
      concurrency: 0,
      startedAt: at,
      heartbeatAt: at,
      running,
    });
  }
  return out;
}
