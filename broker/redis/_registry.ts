// The worker registry on Redis: each record is a key with a TTL (`ns:__dramatis__.worker.<id>`)
// listed in a sorted set by expiry (`ns:__dramatis__.workers`), so listing needs no KEYS. Python
// Dramatiq workers have no record; they show up from Dramatiq's heartbeat set
// (`ns:__heartbeats__`), as runtime "python dramatiq". dramatis brokers are in that set too: their
// ids end in a fixed suffix, which tells them apart.
import type { WorkerRecord } from "../ops.ts";
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

/** The live records, then the Python Dramatiq brokers of the heartbeat set. */
export async function workers(ctx: OpsContext): Promise<WorkerRecord[]> {
  const reply = await ctx.run("workers", [ctx.host.heartbeatTimeout]) as unknown[];
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
  for (i++; i + 1 < reply.length; i += 2) {
    const id = text(reply[i] as string);
    if (id.endsWith(DRAMATIS_ID_SUFFIX)) continue;
    const at = Number(text(reply[i + 1] as string));
    out.push({
      workerId: id,
      host: "",
      pid: 0,
      runtime: "python dramatiq",
      version: "",
      queues: [],
      concurrency: 0,
      startedAt: at,
      heartbeatAt: at,
      running: [],
    });
  }
  return out;
}
