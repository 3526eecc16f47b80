// The POST routes: actions on messages (by id, or on a search after a count), on a queue (pause,
// resume, purge) and on a schedule; each logged at INFO with who asked.
import { getLogger } from "../util/log.ts";
import { CSRF_FIELD } from "./_auth.ts";
import { ACTION_LABEL, link, messageBox } from "./_render.ts";
import {
  ACTION_STATES,
  type ActionResult,
  type MessageAction,
  type MessageQuery,
  type MessageState,
  type QueueAction,
  type ScheduleAction,
} from "./source.ts";
import type { Dash, Req } from "./_handler_types.ts";
import { queryOf } from "./_pages.ts";
import { html, HttpError, send } from "./_respond.ts";

const logger = getLogger("dramatis.dashboard");

const DESTRUCTIVE: readonly MessageAction[] = ["delete", "cancel"];
const MAX_IDS = 10_000;

/** Answers a POST: an action on messages, a queue or a schedule (its token and CSRF checked). */
export function post(h: Dash, r: Req, fields: URLSearchParams): Promise<Response> {
  if (r.path === "/actions/messages") return messageAction(h, r, fields);
  if (r.path === "/actions/queues") return queueAction(h, r, fields);
  if (r.path === "/actions/schedules") return scheduleAction(h, r, fields);
  throw new HttpError(404, `No action at ${r.url.pathname}.`);
}

function outcome(r: Req, title: string, res: ActionResult, back: string): Response {
  const text = `${title}: ${res.done} done, ${res.skipped} skipped` +
    (res.pending ? `, ${res.pending} asked of their worker` : "") + ".";
  if (r.json) return send(r, 200, { step: "done", ...res, text });
  return html(r, 200, messageBox(r.ctx, title, text, undefined, back));
}

function confirmStep(
  r: Req,
  title: string,
  text: string,
  count: number,
  fields: URLSearchParams,
  back: string,
): Response {
  const asOf = r.ctx.now;
  if (r.json) return send(r, 200, { step: "confirm", count, asOf, text });
  const keep = [...fields].filter(([k]) => k !== CSRF_FIELD && k !== "confirm");
  keep.push(["asOf", String(asOf)], ["expected", String(count)]);
  return html(
    r,
    200,
    messageBox(r.ctx, title, text, { action: link(r.ctx, r.path), fields: keep }, back),
  );
}

function backUrl(h: Dash, r: Req, fields: URLSearchParams): string {
  const { base } = h;
  const ref = fields.get("back");
  return ref && ref.startsWith(base + "/") && !ref.startsWith("//") ? ref : link(r.ctx, "/");
}

async function messageAction(h: Dash, r: Req, fields: URLSearchParams): Promise<Response> {
  const { source, actions, states } = h;
  if (!source.act) {
    throw new HttpError(501, "This broker cannot act on messages (the source has no act()).");
  }
  const action = fields.get("action") as MessageAction;
  if (!actions.includes(action)) {
    throw new HttpError(
      400,
      `action: expected one of ${actions.join(", ")}, got ${JSON.stringify(fields.get("action"))}.`,
    );
  }
  const target = fields.get("target")?.trim() || undefined;
  if (action === "move" && !target) {
    throw new HttpError(400, "target: name the queue to move the messages to.");
  }
  const label = ACTION_LABEL[action];
  const confirmed = fields.get("confirm") === "1";
  const back = backUrl(h, r, fields);
  const scope = fields.get("scope") ?? (fields.has("ids") ? "ids" : "query");
  if (scope === "ids") {
    const ids = [
      ...new Set(
        fields.getAll("ids").flatMap((v) => v.split(",")).map((s) => s.trim()).filter(Boolean),
      ),
    ];
    if (!ids.length) throw new HttpError(400, "ids: select at least one message.");
    if (ids.length > MAX_IDS) {
      throw new HttpError(400, `ids: at most ${MAX_IDS} at once; act on the search instead.`);
    }
    if (!confirmed && (ids.length > 1 || DESTRUCTIVE.includes(action))) {
      const text = `${label}${target ? ` to ${target}` : ""}: ${ids.length} selected message${
        ids.length === 1 ? "" : "s"
      }?`;
      return confirmStep(r, label, text, ids.length, fields, back);
    }
    const res = await source.act({ action, ids, target });
    logger.info(
      `${r.who}: ${action}${target ? ` to ${target}` : ""} of ${
        ids.length === 1 ? `message ${ids[0]}` : `${ids.length} selected messages`
      }: ${res.done} done, ${res.skipped} skipped${res.pending ? `, ${res.pending} pending` : ""}.`,
    );
    return outcome(r, label, res, back);
  }
  if (scope !== "query") {
    throw new HttpError(400, `scope: expected ids or query, got ${JSON.stringify(scope)}.`);
  }
  if (!source.messages) {
    throw new HttpError(
      501,
      "A bulk action needs a count first, and this broker cannot search (no messages()).",
    );
  }
  const query = queryOf(h, r, fields);
  const applicable = ACTION_STATES[action].filter((s) =>
    states.includes(s) && (!query.states?.length || query.states.includes(s))
  );
  if (!applicable.length) {
    throw new HttpError(
      400,
      `${label} applies to ${
        ACTION_STATES[action].join(", ")
      } messages, and this search has none of those states.`,
    );
  }
  let to = query.to;
  if (confirmed) {
    const asOf = Number(fields.get("asOf"));
    if (!Number.isFinite(asOf) || asOf <= 0) {
      throw new HttpError(400, "asOf: missing; take the count again.");
    }
    to = to === undefined ? asOf : Math.min(to, asOf);
  }
  const scoped: MessageQuery = { ...query, states: applicable, to, limit: 0, cursor: undefined };
  const describe = describeQuery(scoped);
  if (!confirmed) {
    const { total } = await source.messages({ ...scoped, to: scoped.to ?? r.ctx.now });
    const text = `${label}${target ? ` to ${target}` : ""}: ${total} message${
      total === 1 ? "" : "s"
    } (${describe})?`;
    return confirmStep(r, label, text, total, fields, back);
  }
  const res = await source.act({ action, query: scoped, target });
  logger.info(
    `${r.who}: ${action}${target ? ` to ${target}` : ""} of the search ${describe} (${
      fields.get("expected") ?? "?"
    } counted): ${res.done} done, ${res.skipped} skipped${
      res.pending ? `, ${res.pending} pending` : ""
    }.`,
  );
  return outcome(r, label, res, back);
}

async function queueAction(h: Dash, r: Req, fields: URLSearchParams): Promise<Response> {
  const { source, queueActions } = h;
  if (!source.queueAction) {
    throw new HttpError(
      501,
      "This broker cannot pause or purge a queue (the source has no queueAction()).",
    );
  }
  const queue = fields.get("queue") ?? "";
  const action = fields.get("action") as QueueAction;
  if (!queueActions.includes(action)) {
    throw new HttpError(
      400,
      `action: expected one of ${queueActions.join(", ")}, got ${
        JSON.stringify(fields.get("action"))
      }.`,
    );
  }
  const queues = await source.queues();
  const q = queues.find((x) => x.queueName === queue);
  if (!q) throw new HttpError(404, `queue: no queue named ${JSON.stringify(queue)}.`);
  const back = link(r.ctx, `/queues/${encodeURIComponent(queue)}`);
  let purge: MessageState[] | undefined;
  if (action === "purge") {
    purge = (fields.get("states") || "ready,delayed").split(",").map((s) =>
      s.trim()
    ) as MessageState[];
    for (const s of purge) {
      if (s !== "ready" && s !== "delayed" && s !== "dead") {
        throw new HttpError(
          400,
          `states: purge drops ready, delayed or dead messages, got ${JSON.stringify(s)}.`,
        );
      }
    }
    if (fields.get("confirm") !== "1") {
      const n = purge.reduce(
        (n, s) => n + (s === "ready" ? q.ready : s === "delayed" ? q.delayed : q.dead),
        0,
      );
      return confirmStep(
        r,
        "Purge",
        `Purge ${queue}: delete ${n} ${purge.join(" and ")} message${n === 1 ? "" : "s"} for good?`,
        n,
        fields,
        back,
      );
    }
  }
  const res = await source.queueAction(queue, action, purge ? { states: purge } : undefined);
  logger.info(
    `${r.who}: ${action} queue ${queue}${purge ? ` (${purge.join(", ")})` : ""}: ${res.done} done.`,
  );
  return outcome(r, `${action[0]!.toUpperCase()}${action.slice(1)} ${queue}`, res, back);
}

async function scheduleAction(h: Dash, r: Req, fields: URLSearchParams): Promise<Response> {
  const { source } = h;
  if (!source.scheduleAction) {
    throw new HttpError(
      501,
      "This broker cannot act on schedules (the source has no scheduleAction()).",
    );
  }
  const name = fields.get("name") ?? "";
  const action = fields.get("action") as ScheduleAction;
  if (action !== "run-now" && action !== "pause" && action !== "resume") {
    throw new HttpError(
      400,
      `action: expected run-now, pause or resume, got ${JSON.stringify(fields.get("action"))}.`,
    );
  }
  const res = await source.scheduleAction(name, action);
  logger.info(`${r.who}: ${action} schedule ${name}: ${res.done} done.`);
  return outcome(r, `${action} ${name}`, res, link(r.ctx, "/schedules"));
}

function describeQuery(q: MessageQuery): string {
  const parts: string[] = [];
  if (q.queue) parts.push(`queue ${q.queue}`);
  if (q.states?.length) parts.push(q.states.join("/"));
  if (q.actor) parts.push(`actor ${q.actor}`);
  if (q.id) parts.push(`id ${q.id}`);
  if (q.text) {
    parts.push(`text ${JSON.stringify(q.text)}${q.textIn === "error" ? " in errors" : ""}`);
  }
  if (q.from !== undefined) parts.push(`from ${new Date(q.from).toISOString()}`);
  if (q.to !== undefined) parts.push(`to ${new Date(q.to).toISOString()}`);
  return parts.join(", ") || "every message";
}
