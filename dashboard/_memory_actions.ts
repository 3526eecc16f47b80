// The message actions of the MemoryDashboardSource (memory.ts), on its store: what each does to
// one message, as `MessageAction` describes it (a cancel of a running one ends its attempt and
// dead-letters it as "Cancelled"), and the check of a move's target.
import { qName, validateQueueName } from "../broker/broker.ts";
import type { MetricsRegistry } from "../telemetry/registry.ts";
import type { MessageActionRequest } from "./source.ts";
import type { MemoryStore, Rec } from "./_memory_store.ts";

/** The error of a message cancelled from the dashboard. */
export const CANCELLED = "Cancelled from the dashboard";

/** Applies `req.action` to `r` (in a state it applies to). */
export function applyAction(
  store: MemoryStore,
  registry: MetricsRegistry,
  r: Rec,
  req: MessageActionRequest,
): void {
  const options = { ...r.msg.options };
  switch (req.action) {
    case "retry":
      options.retries = 0;
      delete options.eta;
      r.msg = { ...r.msg, options };
      store.setState(r, "ready");
      break;
    case "requeue":
      store.setState(r, "ready");
      break;
    case "run-now":
      delete options.eta;
      r.msg = { ...r.msg, options };
      store.setState(r, "ready");
      break;
    case "delete":
      store.remove(r);
      break;
    case "cancel": {
      if (r.state === "running") {
        const attempt = r.attempts?.[r.attempts.length - 1];
        if (attempt) {
          attempt.outcome = "cancelled";
          attempt.durationMs = Date.now() - (attempt.startedAt ?? Date.now());
        }
        const s = registry.series(r.queue, r.msg.actor_name);
        s.inProgress--;
        s.processed++;
        s.rejects++;
      }
      r.error = CANCELLED;
      r.result = { status: "error", error: CANCELLED };
      store.setState(r, "dead");
      break;
    }
    case "move": {
      const target = req.target!;
      const delayed = r.state === "delayed";
      store.count(r.queue, r.state, -1);
      r.queue = target;
      r.state = delayed ? "delayed" : "ready";
      store.count(target, r.state, 1);
      r.since = Date.now();
      r.msg = { ...r.msg, queue_name: delayed ? `${target}.DQ` : target };
      break;
    }
  }
}

/** Throws unless `target` is a valid canonical queue name. */
export function validateTarget(target: string | undefined): void {
  validateQueueName(target ?? "");
  if (qName(target!) !== target) {
    throw new TypeError(
      `move: target must be a canonical queue name (no .DQ or .XQ), got ${target}.`,
    );
  }
}
