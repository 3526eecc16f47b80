// The broker's records as the dashboard shows them: a worker, the tries of a message, its result
// and its progress.
import type { WorkerRecord } from "../broker/ops.ts";
import { ResultFailure, ResultMissing } from "../errors.ts";
import type { JsonValue, Message } from "../message.ts";
import type { ResultBackend } from "../results/backend.ts";
import type { Attempt, MessageState, ProgressInfo, ResultInfo, WorkerInfo } from "./source.ts";

export function workerInfo(r: WorkerRecord): WorkerInfo {
  const w: WorkerInfo = {
    workerId: r.workerId,
    slots: r.concurrency,
    busy: r.running.length,
    lastSeen: r.heartbeatAt,
    host: r.host,
    pid: r.pid,
    runtime: r.runtime,
    queues: r.queues,
    startedAt: r.startedAt,
    running: r.running.map((m) => ({
      messageId: m.messageId,
      actor: m.actorName,
      queue: m.queueName,
      startedAt: m.since,
    })),
  };
  if (r.metrics) {
    const counters: Record<string, number> = {};
    for (const s of r.metrics.series) {
      for (const k of ["processed", "succeeded", "errors", "retries", "rejects"] as const) {
        counters[k] = (counters[k] ?? 0) + s[k];
      }
    }
    w.counters = counters;
  }
  return w;
}

/** The tries a message had, as far as its options tell (`retries`, the last `traceback`). */
export function attemptsOf(
  retries: JsonValue | undefined,
  state: MessageState,
  error: string | undefined,
  run?: { workerId: string; since: number },
): Attempt[] {
  const n = typeof retries === "number" && retries > 0 ? retries : 0;
  const out: Attempt[] = [];
  for (let i = 0; i < n; i++) out.push({ outcome: "retry" });
  if (state === "dead") out.push({ outcome: "dead" });
  if (error && out.length) out[out.length - 1]!.error = error;
  if (state === "running") {
    out.push({
      outcome: "running",
      ...(run ? { workerId: run.workerId, startedAt: run.since } : {}),
    });
  }
  return out;
}

export async function resultOf(backend: ResultBackend, message: Message): Promise<ResultInfo> {
  try {
    return { status: "ok", value: await backend.getResult(message) as JsonValue };
  } catch (e) {
    if (e instanceof ResultMissing) return { status: "pending" };
    if (e instanceof ResultFailure) return { status: "error", error: e.message };
    throw e;
  }
}

export function progressInfo(value: JsonValue, updatedAt: number): ProgressInfo {
  const p: ProgressInfo = { updatedAt };
  if (typeof value === "number" && value >= 0 && value <= 1) p.fraction = value;
  else if (value && typeof value === "object" && !Array.isArray(value)) {
    const o = value as Record<string, JsonValue>;
    const done = o.done ?? o.current, of = o.of ?? o.total;
    if (typeof done === "number" && typeof of === "number" && of > 0) p.fraction = done / of;
    p.text = typeof o.text === "string" ? o.text : JSON.stringify(value);
  } else p.text = typeof value === "string" ? value : JSON.stringify(value);
  return p;
}
