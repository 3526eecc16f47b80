// The events a broker dashboard keeps: from its first need (a message page, the finished list) it
// follows `broker.events({ past: true })` (the events the broker still keeps, then new ones, from
// every process) and holds the last EVENTS_KEPT in memory. They give each attempt of a message
// (when it ended, its duration, worker and error) and the recently finished messages. Bounded
// twice: by what the broker keeps and by EVENTS_KEPT; the pages say so.
import type { Broker } from "../broker/broker.ts";
import type { BrokerEvent } from "../broker/ops.ts";
import type { JsonValue } from "../message.ts";
import type { FinishedList, FinishedMessage } from "./finished.ts";
import type { Attempt, MessageState } from "./source.ts";

/** Events the dashboard holds (the newest). */
export const EVENTS_KEPT = 10_000;
/** Under a message's attempts: where they come from. */
export const EVENTS_NOTE = `From the broker's events the dashboard holds (the last ${
  EVENTS_KEPT.toLocaleString("en-US")
}): durations and workers where an event has them; older attempts counted from the message's retries.`;

/** The first read of the kept events is over once none came for this long (ms)... */
const QUIET_MS = 150;
/** ...or after this long at most (ms). */
const FIRST_READ_MS = 2_000;

const OUTCOME: Record<BrokerEvent["type"], Attempt["outcome"]> = {
  completed: "success",
  failed: "failed",
  retried: "retry",
  "dead-lettered": "dead",
  cancelled: "cancelled",
};

/** The events of one broker, as far as they go back. */
export class EventHistory {
  #events: BrokerEvent[] = [];
  #started: Promise<void> | undefined;
  #last = 0;
  #caughtUp = false;
  #stop = new AbortController();
  /** Why there are none (the broker has no events()), once known. */
  unsupported: string | undefined;

  constructor(private readonly broker: Broker) {}

  /** Starts following the events (once); resolves when the kept ones have been read. */
  ready(): Promise<void> {
    return this.#started ??= this.#start();
  }

  async #start(): Promise<void> {
    if (!this.broker.capabilities.events) {
      this.unsupported = `${this.broker.constructor.name} keeps no events (it has no events()).`;
      return;
    }
    const from = Date.now();
    this.#last = from;
    (async () => {
      for await (const e of this.broker.events({ signal: this.#stop.signal, past: true })) {
        this.#events.push(e);
        if (this.#events.length > 2 * EVENTS_KEPT) this.#events = this.#events.slice(-EVENTS_KEPT);
        this.#last = Date.now();
        if (e.at >= from) this.#caughtUp = true; // published after the start: the past is read
      }
    })().catch((e) => {
      this.unsupported = `Reading the broker's events failed: ${(e as Error).message}`;
      this.#caughtUp = true;
    });
    while (!this.#caughtUp && !this.#stop.signal.aborted) {
      const now = Date.now();
      if (now - this.#last >= QUIET_MS || now - from >= FIRST_READ_MS) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The events held, oldest first (at most EVENTS_KEPT). */
  #held(): BrokerEvent[] {
    const n = this.#events.length;
    return n > EVENTS_KEPT ? this.#events.slice(n - EVENTS_KEPT) : this.#events;
  }

  /**
   * The events of `messageId`, oldest first (by `at`: they are published in batches, so the order
   * they arrive in is not always the order of the attempts).
   */
  of(messageId: string): BrokerEvent[] {
    return this.#held().filter((e) => e.messageId === messageId).sort((a, b) => a.at - b.at);
  }

  /** The messages whose last event says they finished, newest first. */
  finished(options: { limit: number; queue?: string | undefined }): FinishedList {
    const held = this.#held();
    const tries = new Map<string, number>();
    const last = new Map<string, BrokerEvent>(); // its latest event (by `at`) decides
    for (const e of held) {
      tries.set(e.messageId, (tries.get(e.messageId) ?? 0) + 1);
      const l = last.get(e.messageId);
      if (!l || e.at >= l.at) last.set(e.messageId, e);
    }
    const done = [...last.values()].filter((e) =>
      (e.type === "completed" || e.type === "dead-lettered") &&
      (options.queue === undefined || e.queueName === options.queue)
    ).sort((a, b) => b.at - a.at);
    const out: FinishedMessage[] = [];
    for (const e of done.slice(0, options.limit)) {
      if (e.type !== "completed" && e.type !== "dead-lettered") continue;
      const f: FinishedMessage = {
        messageId: e.messageId,
        actor: e.actorName,
        queue: e.queueName,
        outcome: e.type,
        at: e.at,
        attempts: tries.get(e.messageId)!,
      };
      if (e.durationMs !== undefined) f.durationMs = e.durationMs;
      if (e.workerId !== undefined) f.workerId = e.workerId;
      if (e.error !== undefined) f.error = e.error;
      out.push(f);
    }
    const list: FinishedList = { messages: out, kept: EVENTS_KEPT, events: held.length };
    if (held.length > 0) list.since = held[0]!.at;
    return list;
  }

  /** Stops following the events. */
  close(): void {
    this.#stop.abort();
  }
}

/**
 * The attempts of a message: one per event of it (oldest first), after as many unknown ones as
 * its `retries` option counts beyond the events' retries (older events dropped, or a broker
 * without events), then a dead letter's end if no event said so, and the running one. The last
 * failure gets the message's whole `traceback` when it has one.
 */
export function attemptsFrom(
  events: readonly BrokerEvent[],
  retries: JsonValue | undefined,
  state: MessageState,
  traceback: string | undefined,
  run?: { workerId: string; since: number },
): Attempt[] {
  const out: Attempt[] = [];
  const n = typeof retries === "number" && retries > 0 ? retries : 0;
  const retried = events.filter((e) => e.type === "retried").length;
  for (let i = retried; i < n; i++) out.push({ outcome: "retry" });
  for (const e of events) {
    const a: Attempt = { outcome: OUTCOME[e.type] };
    if (e.durationMs !== undefined) {
      a.durationMs = e.durationMs;
      a.startedAt = e.at - e.durationMs;
    }
    if (e.workerId !== undefined) a.workerId = e.workerId;
    if (e.error !== undefined) a.error = e.error;
    out.push(a);
  }
  if (state === "dead" && out.at(-1)?.outcome !== "dead") out.push({ outcome: "dead" });
  if (traceback) {
    const last = out.findLast((a) => a.outcome !== "success" && a.outcome !== "cancelled");
    if (last && (state === "dead" || state === "delayed" || state === "ready")) {
      last.error = traceback;
    }
  }
  if (state === "running") {
    out.push({
      outcome: "running",
      ...(run ? { workerId: run.workerId, startedAt: run.since } : {}),
    });
  }
  return out;
}
