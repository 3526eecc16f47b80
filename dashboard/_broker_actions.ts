// What the broker source's actions do on the broker once it knows the messages: by id straight to
// the broker, on browsed entries grouped by queue, and a queue's purge by state.
import { type Broker, qName } from "../broker/broker.ts";
import type { BrowseEntry, BrowseState } from "../broker/ops.ts";
import {
  type ActionResult,
  DashboardUnsupported,
  type MessageAction,
  type MessageState,
} from "./source.ts";

/** Why a broker without `browse()` cannot do an action (the end of a sentence). */
export const UNSUPPORTED_BROWSE =
  "this broker cannot list its messages without taking them off the " +
  "queue (it has no browse(): AMQP has no way to look at a queue). Its dead letters can be " +
  "listed, requeued and purged; use the file or Redis broker for the rest";

/** Delete, run now or cancel by id, straight to the broker. */
export async function direct(
  b: Broker,
  action: MessageAction,
  ids: string[],
): Promise<ActionResult> {
  let done = 0, pending = 0;
  if (action === "delete") done = await b.deleteMessages(ids);
  else if (action === "run-now") done = await b.runNow(ids);
  else {
    for (const id of ids) {
      const outcome = await b.cancel(id);
      if (outcome === "cancelled") done++;
      else if (outcome === "running") pending++;
    }
  }
  return { done, skipped: ids.length - done - pending, pending };
}

/** Applies `action` to the browsed `todo` (each in a state it applies to). */
export async function applyTo(
  b: Broker,
  action: MessageAction,
  todo: readonly BrowseEntry[],
  target: string | undefined,
): Promise<{ done: number; pending: number }> {
  const ids = todo.map((e) => e.message.messageId);
  let done = 0, pending = 0;
  switch (action) {
    case "requeue":
      for (const [queue, list] of byQueue(todo)) done += await b.requeueDeadLetters(queue, list);
      break;
    case "retry": {
      const dead = todo.filter((e) => e.state === "dead");
      for (const [queue, list] of byQueue(dead)) done += await b.requeueDeadLetters(queue, list);
      const delayed = todo.filter((e) => e.state === "delayed").map((e) => e.message.messageId);
      if (delayed.length) done += await b.runNow(delayed);
      break;
    }
    case "run-now":
      if (ids.length) done = await b.runNow(ids);
      break;
    case "delete":
      if (ids.length) done = await b.deleteMessages(ids);
      break;
    case "move":
      if (ids.length) done = await b.moveMessages(ids, target!);
      break;
    case "cancel": {
      const r = await direct(b, "cancel", ids);
      [done, pending] = [r.done, r.pending ?? 0];
      break;
    }
  }
  return { done, pending };
}

/** Drops a queue's messages in `states` (ready and delayed by flush, dead letters). */
export async function purge(
  b: Broker,
  queue: string,
  states: ReadonlySet<MessageState>,
  name: string,
): Promise<ActionResult> {
  const before = await b.stats(queue);
  let done = 0;
  if (states.has("ready") && states.has("delayed")) {
    await b.flush(queue);
    done += before.ready + before.delayed;
  } else if (states.has("ready") || states.has("delayed")) {
    if (!b.capabilities.browse) {
      throw new DashboardUnsupported(
        `${name} purges ready and delayed messages together only: ${UNSUPPORTED_BROWSE}.`,
      );
    }
    const state: BrowseState = states.has("ready") ? "ready" : "delayed";
    for (;;) {
      const page = await b.browse(queue, state, { limit: 500 });
      if (page.entries.length === 0) break;
      const n = await b.deleteMessages(page.entries.map((e) => e.message.messageId));
      done += n;
      if (n === 0) break;
    }
  }
  if (states.has("dead")) done += await b.purgeDeadLetters(queue);
  return { done, skipped: 0 };
}

export function byQueue(entries: readonly BrowseEntry[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of entries) {
    const q = qName(e.message.queueName);
    let list = out.get(q);
    if (!list) out.set(q, list = []);
    list.push(e.message.messageId);
  }
  return out;
}

export function checkTarget(target: string | undefined): string {
  if (!target || qName(target) !== target) {
    throw new TypeError(
      `move: target must be a canonical queue name (no .DQ or .XQ), got ${JSON.stringify(target)}.`,
    );
  }
  return target;
}
