// The GET routes: the overview, a queue, the search, a message, the workers, the schedules (each
// as HTML, and as JSON under /api/), /api/live, the counts the open page polls for, and
// /api/events, the same pushed as server-sent events (_sse.ts).
import type { WireMessage } from "../message.ts";
import type { MetricsSampler } from "./_live.ts";
import {
  errorPage,
  type Got,
  listPage,
  messagePage,
  oldest,
  overviewPage,
  schedulesPage,
  workersPage,
} from "./_render.ts";
import { parseQuery } from "./_params.ts";
import { finishedPage } from "./_render_finished.ts";
import {
  DashboardUnsupported,
  type MessageDetail,
  type MessagePage,
  type MessageQuery,
  type QueueOverview,
  type WorkerInfo,
} from "./source.ts";
import type { Dash, Req } from "./_handler_types.ts";
import { html, HttpError, send, unwrap } from "./_respond.ts";

export async function call<T>(fn: (() => Promise<T>) | undefined, what: string): Promise<Got<T>> {
  if (!fn) return { unsupported: `(The source has no ${what}.)` };
  try {
    return { ok: await fn() };
  } catch (e) {
    if (e instanceof DashboardUnsupported) return { unsupported: e.message };
    throw e;
  }
}

function redactSummary<T extends { message: WireMessage }>(h: Dash, s: T): T {
  const { options } = h;
  if (!options.redact) return s;
  return { ...s, message: options.redact(structuredClone(s.message)) };
}

function redactDetail(h: Dash, d: MessageDetail): MessageDetail {
  if (!h.options.redact) return d;
  const out = redactSummary(h, d);
  if (out.result?.status === "ok") out.result = { status: "ok" };
  return out;
}

async function sample(h: Dash, now: number): Promise<Got<ReturnType<MetricsSampler["points"]>>> {
  const { source, sampler } = h;
  if (!source.metrics) return { unsupported: "(The source has no metrics().)" };
  if (sampler.due(now)) {
    const got = await call(() => source.metrics!(), "metrics()");
    if ("unsupported" in got) return got;
    sampler.add(got.ok);
  }
  return { ok: [] };
}

async function overview(h: Dash, now: number): Promise<{
  queues: QueueOverview[];
  workers: Got<readonly WorkerInfo[]>;
}> {
  const { source, heartbeatMs } = h;
  const [queues, workers] = await Promise.all([
    source.queues(),
    call(source.workers && (() => source.workers!()), "workers()"),
  ]);
  const live = "ok" in workers
    ? workers.ok.filter((w) => now - w.lastSeen <= heartbeatMs)
    : undefined;
  return {
    queues: queues.map((q) =>
      q.consumers !== undefined || !live
        ? q
        : { ...q, consumers: live.filter((w) => w.queues?.includes(q.queueName)).length }
    ),
    workers,
  };
}

export function queryOf(h: Dash, r: Req, params: URLSearchParams): MessageQuery {
  const q = parseQuery(params, h.states, r.ctx.now);
  if (q.text && h.options.redact && !h.options.searchRedactedArgs) q.textIn = "error";
  return q;
}

async function page(h: Dash, query: MessageQuery): Promise<Got<MessagePage>> {
  const { source } = h;
  const got = await call(source.messages && (() => source.messages!(query)), "messages()");
  if ("ok" in got) {
    got.ok = {
      ...got.ok,
      messages: got.ok.messages.map((m) => redactSummary(h, m)),
    };
  }
  return got;
}

/** Answers a GET: a page, or its JSON twin under /api/. */
export async function get(h: Dash, r: Req): Promise<Response> {
  const { source, options, sampler } = h;
  const { path, ctx } = r;
  const api = path.startsWith("/api/");
  const p = api ? path.slice(4) : path;
  const json = api || r.json;
  if (p === "/live" && api) return live(h, r);
  if (p === "/events" && api) return h.hub.open(r);
  if (p === "/" || p === "/overview") {
    const [{ queues, workers }, got] = await Promise.all([
      overview(h, ctx.now),
      sample(h, ctx.now),
    ]);
    const points = "ok" in got ? { ok: sampler.points() } : got;
    if (json) return send(r, 200, { queues, workers: unwrap(workers), points: unwrap(points) });
    return html(r, 200, overviewPage(ctx, queues, points, workers));
  }
  if (p === "/search" || p.startsWith("/queues/")) {
    const params = new URLSearchParams(r.url.searchParams);
    const { queues } = await overview(h, ctx.now);
    let queue: QueueOverview | undefined;
    if (p.startsWith("/queues/")) {
      const name = decodeURIComponent(p.slice(8));
      queue = queues.find((q) => q.queueName === name);
      if (!queue) throw new HttpError(404, `No queue named ${JSON.stringify(name)}.`);
      params.set("queue", name);
    }
    const query = queryOf(h, r, params);
    const got = await page(h, query);
    if (json) return send(r, 200, unwrap(got));
    return html(
      r,
      200,
      listPage(ctx, {
        title: queue ? `Queue ${queue.queueName}` : "Search",
        active: queue ? "" : "/search",
        query,
        page: got,
        queue,
        queues,
      }),
    );
  }
  if (p.startsWith("/messages/")) {
    const id = decodeURIComponent(p.slice(10));
    const got = await call(source.message && (() => source.message!(id)), "message()");
    if ("unsupported" in got) {
      if (json) return send(r, 501, { error: got.unsupported });
      return html(r, 501, errorPage(ctx, "Not supported", got.unsupported));
    }
    if (!got.ok) {
      throw new HttpError(
        404,
        `No message with id ${id} (it may have finished and not be kept).`,
      );
    }
    const d = redactDetail(h, got.ok);
    if (json) return send(r, 200, d);
    return html(r, 200, messagePage(ctx, d, !!options.redact));
  }
  if (p === "/finished") {
    const queue = r.url.searchParams.get("queue") || undefined;
    const limit = Math.min(500, Math.max(1, Number(r.url.searchParams.get("limit")) || 100));
    const got = await call(
      source.finished && (() => source.finished!({ limit, ...(queue ? { queue } : {}) })),
      "finished()",
    );
    if (json) return send(r, 200, unwrap(got));
    return html(r, 200, finishedPage(ctx, got, queue));
  }
  if (p === "/workers") {
    const got = await call(source.workers && (() => source.workers!()), "workers()");
    if (json) return send(r, 200, unwrap(got));
    return html(r, 200, workersPage(ctx, got));
  }
  if (p === "/schedules") {
    const got = await call(source.schedules && (() => source.schedules!()), "schedules()");
    if (json) return send(r, 200, unwrap(got));
    return html(r, 200, schedulesPage(ctx, got));
  }
  throw new HttpError(404, `No page at ${r.url.pathname}.`);
}

/** The counts of every queue and their totals, as the live updates carry them. */
export interface LiveBase {
  t: number;
  queues: {
    queueName: string;
    ready: number;
    delayed: number;
    inFlight: number;
    dead: number;
    oldest: string;
    consumers: number | "?";
  }[];
  totals: { queueName: "*"; ready: number; delayed: number; inFlight: number; dead: number };
  /** False when the source has no metrics (no chart points). */
  charts: boolean;
}

/** What every open page is sent: the counts now (the metrics sampled when a sample is due). */
export async function liveBase(h: Dash, now: number): Promise<LiveBase> {
  const [{ queues }, got] = await Promise.all([overview(h, now), sample(h, now)]);
  const totals = { queueName: "*" as const, ready: 0, delayed: 0, inFlight: 0, dead: 0 };
  const out = queues.map((q) => {
    totals.ready += q.ready;
    totals.delayed += q.delayed;
    totals.inFlight += q.inFlight;
    totals.dead += q.dead;
    return {
      queueName: q.queueName,
      ready: q.ready,
      delayed: q.delayed,
      inFlight: q.inFlight,
      dead: q.dead,
      oldest: oldest(q, now),
      consumers: q.consumers ?? "?" as const,
    };
  });
  return { t: now, queues: out, totals, charts: "ok" in got };
}

/** One page's live update: `base`, the chart points after `since`, the state of message `id`. */
export async function liveFor(
  h: Dash,
  base: LiveBase,
  since: number,
  id: string | null | undefined,
): Promise<Record<string, unknown>> {
  const { source, sampler } = h;
  const msg = id && source.message ? await source.message(id).catch(() => null) : null;
  return {
    t: base.t,
    queues: base.queues,
    totals: base.totals,
    points: base.charts ? sampler.points(since) : [],
    message: id ? (msg ? { state: msg.state } : { state: "gone" }) : undefined,
  };
}

async function live(h: Dash, r: Req): Promise<Response> {
  const since = Number(r.url.searchParams.get("since") ?? 0) || 0;
  const base = await liveBase(h, r.ctx.now);
  return send(r, 200, await liveFor(h, base, since, r.url.searchParams.get("id")));
}
