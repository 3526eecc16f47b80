// The broker's records as the dashboard shows them: a worker, the tries of a message, its result
// and its progress.
import type { BrokerEvent, WorkerRecord } from "../broker/ops.ts";
import { ResultFailure, ResultMissing } from "../errors.ts";
import type { JsonValue, Message } from "../message.ts";
import type { ResultBackend } from "../results/backend.ts";
import type { MessageDetail, ProgressInfo, ResultInfo, WorkerInfo } from "./source.ts";
import { attemptsFrom } from "./_broker_events.ts";

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

/**
 * A message no queue holds, as its events tell it (null without any, or when its last event
 * does not say it finished: completed, dead-lettered or cancelled): its envelope is not kept, only its id, actor and queue.
 */
export function finishedDetail(
  id: string,
  events: readonly BrokerEvent[],
  unsupported: string | undefined,
): MessageDetail | null {
  const last = events.at(-1);
  if (!last || last.type === "retried" || last.type === "failed") return null;
  const first = events[0]!;
  const d: MessageDetail = {
    message: {
      queue_name: last.queueName,
      actor_name: last.actorName,
      args: [],
      kwargs: {},
      options: {},
      message_id: id,
      message_timestamp: first.at - (first.durationMs ?? 0),
    },
    state: "done",
    since: last.at,
    attempts: attemptsFrom(events, undefined, "done", undefined),
    fromEvents: true,
  };
  if (last.error) d.error = last.error;
  d.attemptsNote = unsupported ?? "From the broker's events the dashboard holds.";
  return d;
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
