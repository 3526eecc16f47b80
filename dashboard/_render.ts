// The dashboard's pages, rendered on the server. Every value goes through h`` (escaped).
import type { JsonValue, WireMessage } from "../message.ts";
import type { ChartPoint } from "./_live.ts";
import { duration, h, iso, num, type Part, Safe, when } from "./_html.ts";
import { CSRF_FIELD } from "./_auth.ts";
import { queryParams } from "./_params.ts";
import {
  ACTION_STATES,
  type MessageAction,
  type MessageDetail,
  type MessagePage,
  type MessageQuery,
  type MessageState,
  type MessageSummary,
  type QueueAction,
  type QueueOverview,
  type ScheduleInfo,
  type WorkerInfo,
} from "./source.ts";

/** What every page needs to know about the request and the source. */
export interface Ctx {
  base: string;
  url: URL;
  now: number;
  csrf: string;
  readOnly: boolean;
  loggedIn: boolean;
  title: string;
  sourceName?: string | undefined;
  refreshMs: number;
  states: readonly MessageState[];
  actions: readonly MessageAction[];
  queueActions: readonly QueueAction[];
  canAct: boolean;
  canQueueAct: boolean;
  canScheduleAct: boolean;
  searchArgs: boolean;
  heartbeatMs: number;
}

/** The result of a source call: its value, or why the broker cannot (`DashboardUnsupported`). */
export type Got<T> = { ok: T } | { unsupported: string };

export const ACTION_LABEL: Record<MessageAction, string> = {
  retry: "Retry now",
  requeue: "Requeue",
  "run-now": "Run now",
  delete: "Delete",
  cancel: "Cancel",
  move: "Move to queue",
};
const DESTRUCTIVE: readonly MessageAction[] = ["delete", "cancel"];

function unsupported(what: string, reason: string): Safe {
  return h`<p class="unsupported">${what}: not supported by this broker. ${reason}</p>`;
}

/** The hidden fields of every form: the CSRF token and the page to go back to. */
function csrf(ctx: Ctx): Safe {
  return h`<input type="hidden" name="${CSRF_FIELD}" value="${ctx.csrf}"><input type="hidden" name="back" value="${
    ctx.url.pathname + ctx.url.search
  }">`;
}

/** A link inside the dashboard. */
export function link(ctx: Ctx, path: string, params?: URLSearchParams): string {
  const qs = params && [...params.keys()].length ? `?${params}` : "";
  return `${ctx.base}${path}${qs}`;
}

/** The page around `body`. `live` adds the live-update attributes. */
export function layout(
  ctx: Ctx,
  title: string,
  active: string,
  body: Safe,
  live: { id?: string } | false = {},
): string {
  const nav: [string, string][] = [
    ["/", "Overview"],
    ["/search", "Search"],
    ["/workers", "Workers"],
    ["/schedules", "Schedules"],
  ];
  const liveAttrs = live
    ? h` data-live="${link(ctx, "/api/live")}" data-refresh="${ctx.refreshMs}"${
      live.id ? h` data-id="${live.id}"` : ""
    }`
    : "";
  return "<!doctype html>" + h`<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title} · ${ctx.title}</title>
<meta name="dramatis-csrf" content="${ctx.csrf}"><link rel="icon" href="data:,"><link rel="stylesheet" href="${
    link(ctx, "/assets/app.css")
  }">
<script src="${link(ctx, "/assets/app.js")}" defer></script></head>
<body${liveAttrs}><header><b><a href="${link(ctx, "/")}">${ctx.title}</a></b>${
    ctx.sourceName ? h`<span class="dim">${ctx.sourceName}</span>` : ""
  }${ctx.readOnly ? h`<span class="badge">read-only</span>` : ""}
<nav>${
    nav.map(([p, t]) => h`<a href="${link(ctx, p)}"${active === p ? h` class="on"` : ""}>${t}</a>`)
  }</nav>
<form action="${
    link(ctx, "/search")
  }" method="get" role="search"><input type="search" name="q" placeholder="Search id, args, error" aria-label="Search" value="${
    active === "/search" ? ctx.url.searchParams.get("q") ?? "" : ""
  }"><button>Go</button></form>${
    ctx.loggedIn
      ? h`<form method="post" action="${link(ctx, "/logout")}">${
        csrf(ctx)
      }<button>Log out</button></form>`
      : ""
  }</header>
<main>${body}</main>
<div id="confirm" hidden><span></span><button class="primary" value="yes">Confirm</button><button value="no">Cancel</button></div>
<div id="notice" role="status" hidden></div>
</body></html>`;
}

function stateBadge(s: MessageState): Safe {
  return h`<span class="badge st-${s}">${s === "running" ? "running" : s}</span>`;
}

function preview(m: WireMessage, max = 120): string {
  const kw = Object.keys(m.kwargs ?? {}).length ? [JSON.stringify(m.kwargs)] : [];
  const s = [...m.args.map((a) => JSON.stringify(a)), ...kw].join(", ");
  return `${m.actor_name}(${s.length > max ? s.slice(0, max) + "…" : s})`;
}

function qcount(q: string, k: string, v: Part): Safe {
  return h`<span data-q="${q}" data-k="${k}">${v}</span>`;
}

/** The overview: queues, charts, a line about workers. */
export function overviewPage(
  ctx: Ctx,
  queues: readonly QueueOverview[],
  points: Got<ChartPoint[]>,
  workers: Got<readonly WorkerInfo[]>,
): string {
  const total = { ready: 0, delayed: 0, inFlight: 0, dead: 0 };
  for (const q of queues) {
    total.ready += q.ready;
    total.delayed += q.delayed;
    total.inFlight += q.inFlight;
    total.dead += q.dead;
  }
  const qlink = (q: string, state: MessageState, n: number, k: string) =>
    h`<td class="n"><a href="${
      link(ctx, `/queues/${encodeURIComponent(q)}`, new URLSearchParams({ state }))
    }">${qcount(q, k, num(n))}</a></td>`;
  const rows = queues.map((q) => {
    const noConsumer = q.consumers === 0 && q.ready > 0 && !q.paused;
    return h`<tr><td><a href="${
      link(ctx, `/queues/${encodeURIComponent(q.queueName)}`)
    }">${q.queueName}</a>${q.paused ? h` <span class="badge warn">paused</span>` : ""}${
      noConsumer ? h` <span class="badge bad">no consumer</span>` : ""
    }</td>${qlink(q.queueName, "ready", q.ready, "ready")}${
      qlink(q.queueName, "delayed", q.delayed, "delayed")
    }${qlink(q.queueName, "running", q.inFlight, "inFlight")}${
      qlink(q.queueName, "dead", q.dead, "dead")
    }<td class="n">${qcount(q.queueName, "oldest", oldest(q, ctx.now))}</td><td class="n">${
      qcount(q.queueName, "consumers", q.consumers ?? "?")
    }</td></tr>`;
  });
  const charts = "ok" in points
    ? h`<div class="charts">${
      chart("rates", "Messages per second", ["enqueued", "processed", "failed"])
    }${chart("wait", "Wait time (enqueue or eta to start)", ["p50", "p95", "p99"])}${
      chart("run", "Run time", ["p50", "p95", "p99"])
    }</div>
<script type="application/json" id="points">${new Safe(jsonForScript(points.ok))}</script>`
    : unsupported("Charts", points.unsupported);
  const w = "ok" in workers
    ? h`<p><a href="${link(ctx, "/workers")}">${num(workers.ok.length)} worker${
      workers.ok.length === 1 ? "" : "s"
    }</a>, ${num(workers.ok.reduce((n, x) => n + x.busy, 0))} of ${
      num(workers.ok.reduce((n, x) => n + x.slots, 0))
    } slots busy.</p>`
    : "";
  const body = h`<h1>Overview</h1>
<div class="scroll"><table><thead><tr><th>Queue</th><th class="n">Ready</th><th class="n">Delayed</th><th class="n">Running</th><th class="n">Dead</th><th class="n">Oldest ready</th><th class="n">Consumers</th></tr></thead>
<tbody>${rows.length ? rows : h`<tr><td colspan="7" class="dim">No queue yet.</td></tr>`}</tbody>
<tfoot><tr><th>All</th><th class="n">${qcount("*", "ready", num(total.ready))}</th><th class="n">${
    qcount("*", "delayed", num(total.delayed))
  }</th><th class="n">${qcount("*", "inFlight", num(total.inFlight))}</th><th class="n">${
    qcount("*", "dead", num(total.dead))
  }</th><th></th><th></th></tr></tfoot></table></div>
${w}<h2>Throughput and latency</h2>${charts}`;
  return layout(ctx, "Overview", "/", body);
}

/** The age of the oldest ready message, as the live updates send it too. */
export function oldest(q: QueueOverview, now: number): string {
  if (!q.oldestReadyTimestamp) return "-";
  return `${q.oldestIsLowerBound ? "≥ " : ""}${
    duration(Math.max(0, now - q.oldestReadyTimestamp))
  }`;
}

function chart(kind: string, title: string, names: string[]): Safe {
  return h`<figure class="chart" data-chart="${kind}"><figcaption>${title} <span class="dim">max <span data-max>-</span></span></figcaption>
<svg viewBox="0 0 300 90" preserveAspectRatio="none" role="img" aria-label="${title}"></svg>
<ul class="legend">${
    names.map((n, i) => h`<li class="s${i}">● ${n} <b data-last>-</b></li>`)
  }</ul></figure>`;
}

/** JSON safe inside a <script> element. */
export function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c");
}

/** The list of a queue or of a search, with filters, bulk actions and paging. */
export function listPage(
  ctx: Ctx,
  opts: {
    title: string;
    active: string;
    query: MessageQuery;
    page: Got<MessagePage>;
    queue?: QueueOverview | undefined;
    queues: readonly QueueOverview[];
  },
): string {
  const p = ctx.url.searchParams;
  const { query, queue } = opts;
  const parts: Safe[] = [];
  if (queue) parts.push(queueHeader(ctx, queue, query));
  else parts.push(h`<h1>Search</h1>`, filters(ctx, opts.queues));
  if (!ctx.searchArgs && query.text) {
    parts.push(
      h`<p class="note">Arguments are redacted here, so the text is looked for in errors only.</p>`,
    );
  }
  if ("unsupported" in opts.page) {
    parts.push(unsupported("Listing messages", opts.page.unsupported));
    return layout(ctx, opts.title, opts.active, h`${parts}`);
  }
  const page = opts.page.ok;
  const base = queue ? `/queues/${encodeURIComponent(queue.queueName)}` : "/search";
  const pageLink = (cursor: string) =>
    link(
      ctx,
      base,
      queryParams(p, { cursor, queue: queue ? undefined : p.get("queue") ?? undefined }),
    );
  const acts = ctx.canAct && !ctx.readOnly ? bulkBar(ctx, query, page.total) : "";
  const rows = page.messages.map((s) => messageRow(ctx, s, !queue, !!acts));
  const totalText = `${page.totalIsLowerBound ? "at least " : ""}${num(page.total)}`;
  const table = h`<p class="dim">${
    page.messages.length ? "Newest first. " : ""
  }<b data-total>${totalText}</b> matching.</p>${
    page.note ? h`<p class="note" data-scan>${page.note}</p>` : ""
  }
${acts}<div class="scroll"><table><thead><tr>${
    acts ? h`<th><input type="checkbox" data-all aria-label="Select all"></th>` : ""
  }<th>Id</th><th>Message</th>${
    !queue ? h`<th>Queue</th>` : ""
  }<th>State</th><th>Enqueued</th><th class="n hide-s">Retries</th><th>Error</th></tr></thead>
<tbody>${
    rows.length ? rows : h`<tr><td colspan="8" class="dim">No message matches.</td></tr>`
  }</tbody></table></div>`;
  parts.push(
    acts
      ? h`<form method="post" action="${link(ctx, "/actions/messages")}" data-js>${csrf(ctx)}${
        hiddenQuery(p, queue?.queueName)
      }${table}</form>`
      : table,
    h`<div class="pager">${
      page.prev
        ? h`<a href="${
          link(ctx, base, queryParams(p, { cursor: undefined }))
        }">« Newest</a> <a rel="prev" href="${pageLink(page.prev)}">‹ Newer</a>`
        : ""
    }${page.next ? h`<a rel="next" href="${pageLink(page.next)}">Older ›</a>` : ""}</div>`,
  );
  return layout(ctx, opts.title, opts.active, h`${parts}`);
}

function hiddenQuery(p: URLSearchParams, queue?: string): Safe[] {
  const out: Safe[] = [];
  const extra: Record<string, string | undefined> = { limit: undefined };
  if (queue) extra.queue = queue;
  for (const [k, v] of queryParams(p, extra)) {
    out.push(h`<input type="hidden" name="${k}" value="${v}">`);
  }
  return out;
}

function messageRow(ctx: Ctx, s: MessageSummary, showQueue: boolean, selectable: boolean): Safe {
  const m = s.message;
  const q = m.queue_name.replace(/\.(DQ|XQ)$/, "");
  const retries = typeof m.options.retries === "number" ? m.options.retries : 0;
  const eta = typeof m.options.eta === "number" ? m.options.eta : undefined;
  return h`<tr>${
    selectable
      ? h`<td><input type="checkbox" name="ids" value="${m.message_id}" aria-label="Select"></td>`
      : ""
  }<td><a href="${link(ctx, `/messages/${encodeURIComponent(m.message_id)}`)}"><code>${
    m.message_id.slice(0, 8)
  }</code></a></td><td class="wrap"><code>${preview(m)}</code></td>${
    showQueue ? h`<td>${q}</td>` : ""
  }<td>${stateBadge(s.state)}${
    s.state === "delayed" && eta ? h` <span class="dim">${when(eta, ctx.now)}</span>` : ""
  }</td><td>${
    when(m.message_timestamp, ctx.now)
  }</td><td class="n hide-s">${retries}</td><td class="wrap err">${s.error ?? ""}</td></tr>`;
}

function bulkBar(ctx: Ctx, query: MessageQuery, total: number): Safe | "" {
  const acts = ctx.actions.filter((a) =>
    !query.states?.length || ACTION_STATES[a].some((s) => query.states!.includes(s))
  );
  if (!acts.length) return "";
  return h`<div class="bar"><label>Action <select name="action">${
    acts.map((a) => h`<option value="${a}">${ACTION_LABEL[a]}</option>`)
  }</select></label><input name="target" placeholder="target queue (move)" aria-label="Target queue" size="14">
<button name="scope" value="ids">Apply to selected</button><button class="primary" name="scope" value="query">Apply to all ${
    num(total)
  } matching…</button></div>`;
}

function queueHeader(ctx: Ctx, q: QueueOverview, query: MessageQuery): Safe {
  const state = query.states?.[0];
  const tab = (s: MessageState, k: string, n: number | undefined) =>
    h`<a href="${
      link(ctx, `/queues/${encodeURIComponent(q.queueName)}`, new URLSearchParams({ state: s }))
    }"${state === s ? h` class="on"` : ""}>${s} ${
      n === undefined ? "" : h`<b>${qcount(q.queueName, k, num(n))}</b>`
    }</a>`;
  const counts: Record<MessageState, [string, number | undefined]> = {
    ready: ["ready", q.ready],
    delayed: ["delayed", q.delayed],
    running: ["inFlight", q.inFlight],
    dead: ["dead", q.dead],
    done: ["done", undefined],
  };
  const qa = ctx.canQueueAct && !ctx.readOnly
    ? h`<form method="post" action="${link(ctx, "/actions/queues")}" data-js class="bar">${
      csrf(ctx)
    }<input type="hidden" name="queue" value="${q.queueName}">${
      ctx.queueActions.includes(q.paused ? "resume" : "pause")
        ? h`<button name="action" value="${q.paused ? "resume" : "pause"}">${
          q.paused ? "Resume" : "Pause"
        }</button>`
        : ""
    }${
      ctx.queueActions.includes("purge")
        ? h`<label>Purge <select name="states"><option value="ready,delayed">ready and delayed</option><option value="dead">dead letters</option><option value="ready,delayed,dead">all</option></select></label><button class="danger" name="action" value="purge">Purge…</button>`
        : ""
    }</form>`
    : "";
  return h`<h1>Queue ${q.queueName}${
    q.paused ? h` <span class="badge warn">paused</span>` : ""
  }</h1>
<p class="dim">Oldest ready: ${qcount(q.queueName, "oldest", oldest(q, ctx.now))} · consumers: ${
    qcount(q.queueName, "consumers", q.consumers ?? "?")
  }</p>${qa}
<nav class="tabs"><a href="${link(ctx, `/queues/${encodeURIComponent(q.queueName)}`)}"${
    !state ? h` class="on"` : ""
  }>all</a>${ctx.states.map((s) => tab(s, counts[s][0], counts[s][1]))}</nav>`;
}

function filters(ctx: Ctx, queues: readonly QueueOverview[]): Safe {
  const p = ctx.url.searchParams;
  const v = (k: string) => p.get(k) ?? "";
  const sel = new Set(p.getAll("state").flatMap((s) => s.split(",")));
  return h`<form class="filters" method="get" action="${link(ctx, "/search")}">
<label>Text or id<input type="search" name="q" value="${
    v("q")
  }" placeholder="text in args or error, or an id"></label>
<label>Actor<input name="actor" value="${v("actor")}" size="12"></label>
<label>Queue<select name="queue"><option value="">any</option>${
    queues.map((q) =>
      h`<option${v("queue") === q.queueName ? h` selected` : ""}>${q.queueName}</option>`
    )
  }</select></label>
<label>State<select name="state"><option value="">any</option>${
    ctx.states.map((s) =>
      h`<option${sel.has(s) && sel.size === 1 ? h` selected` : ""}>${s}</option>`
    )
  }</select></label>
<label>From<input name="from" value="${
    v("from")
  }" placeholder="2h or 2026-12-02T10:00Z" size="14"></label>
<label>To<input name="to" value="${v("to")}" placeholder="now" size="14"></label>
<label>Text in<select name="in"><option value="">args and error</option><option value="error"${
    v("in") === "error" ? h` selected` : ""
  }>error only</option></select></label><button class="primary">Search</button></form>`;
}

/** Dramatiq's and dramatis' options that link a message to others. */
function links(ctx: Ctx, m: WireMessage): Safe {
  const out: Safe[] = [];
  let next = m.options.pipe_target as JsonValue | undefined;
  let step = 1;
  while (next && typeof next === "object" && !Array.isArray(next) && step < 50) {
    const n = next as unknown as WireMessage;
    out.push(
      h`<li>pipeline step +${step}: <a href="${
        link(ctx, `/messages/${encodeURIComponent(String(n.message_id))}`)
      }"><code>${String(n.actor_name)}</code> ${String(n.message_id).slice(0, 8)}</a></li>`,
    );
    next = n.options?.pipe_target as JsonValue | undefined;
    step++;
  }
  const sched = m.options.schedule_name;
  if (typeof sched === "string") {
    const tick = m.options.schedule_tick;
    out.push(
      h`<li>sent by the schedule <a href="${link(ctx, "/schedules")}">${sched}</a>${
        typeof tick === "number" ? ` for its tick at ${iso(tick)}` : ""
      }</li>`,
    );
  }
  const g = m.options.group_completion_uuid;
  if (typeof g === "string") {
    const cbs = Array.isArray(m.options.group_completion_callbacks)
      ? m.options.group_completion_callbacks.length
      : 0;
    out.push(
      h`<li>member of group <code>${g}</code>${cbs ? `, ${cbs} completion callback(s)` : ""}</li>`,
    );
  }
  if (Array.isArray(m.options.group_completion_parents)) {
    out.push(h`<li>inside ${m.options.group_completion_parents.length} enclosing group(s)</li>`);
  }
  return out.length ? h`<h2>Links</h2><ul>${out}</ul>` : h``;
}

/** One message: summary, actions, links, attempts, result, progress, envelope. */
export function messagePage(ctx: Ctx, d: MessageDetail, redacted: boolean): string {
  const m = d.message;
  const q = m.queue_name.replace(/\.(DQ|XQ)$/, "");
  const o = m.options;
  const retries = typeof o.retries === "number" ? o.retries : 0;
  const acts = ctx.canAct && !ctx.readOnly
    ? ctx.actions.filter((a) => ACTION_STATES[a].includes(d.state))
    : [];
  const actionForm = acts.length
    ? h`<form method="post" action="${link(ctx, "/actions/messages")}" data-js class="bar">${
      csrf(ctx)
    }<input type="hidden" name="ids" value="${m.message_id}"><input type="hidden" name="scope" value="ids">${
      acts.filter((a) => a !== "move").map((a) =>
        h`<button name="action" value="${a}"${DESTRUCTIVE.includes(a) ? h` class="danger"` : ""}>${
          ACTION_LABEL[a]
        }${DESTRUCTIVE.includes(a) ? "…" : ""}</button>`
      )
    }${
      acts.includes("move")
        ? h`<input name="target" placeholder="queue" aria-label="Target queue" size="10"><button name="action" value="move">Move</button>`
        : ""
    }</form>`
    : "";
  const attempts = d.attempts?.length
    ? h`<div class="scroll"><table><thead><tr><th>#</th><th>Started</th><th class="n">Duration</th><th>Worker</th><th>Outcome</th><th>Error</th></tr></thead><tbody>${
      d.attempts.map((a, i) =>
        h`<tr><td>${i + 1}</td><td>${
          a.startedAt ? when(a.startedAt, ctx.now) : "?"
        }</td><td class="n">${a.durationMs === undefined ? "" : duration(a.durationMs)}</td><td>${
          a.workerId ?? ""
        }</td><td>${a.outcome}</td><td class="wrap">${
          a.error ? h`<pre>${a.error}</pre>` : ""
        }</td></tr>`
      )
    }</tbody></table></div>`
    : h`<p class="dim">${
      d.attempts ? "No attempt yet." : "This broker does not keep the attempts of a message."
    }${retries ? ` ${retries} retr${retries === 1 ? "y" : "ies"} so far.` : ""}</p>`;
  const tb = typeof o.traceback === "string"
    ? h`<h2>Last traceback</h2><pre>${o.traceback}</pre>`
    : "";
  const r = d.result;
  const result = !r
    ? h`<p class="dim">No result backend.</p>`
    : redacted && r.status === "ok"
    ? h`<p class="dim">Stored (hidden: arguments and results are redacted).</p>`
    : h`<p>${r.status}</p>${
      r.status === "ok" ? h`<pre>${JSON.stringify(r.value, null, 2)}</pre>` : ""
    }${r.status === "error" ? h`<pre class="err">${r.error ?? ""}</pre>` : ""}`;
  const pr = d.progress
    ? h`<h2>Progress</h2><p>${
      d.progress.fraction !== undefined
        ? h`<progress max="1" value="${d.progress.fraction}"></progress> ${
          Math.round(d.progress.fraction * 100)
        }% `
        : ""
    }${d.progress.text ?? ""} <span class="dim">${when(d.progress.updatedAt, ctx.now)}</span></p>`
    : "";
  const body = h`<h1>Message <code>${m.message_id}</code></h1>
<dl><dt>State</dt><dd data-state="${d.state}">${stateBadge(d.state)}${
    d.since ? h` since ${when(d.since, ctx.now)}` : ""
  }${d.workerId ? h` on ${d.workerId}` : ""}</dd>
<dt>Queue</dt><dd><a href="${link(ctx, `/queues/${encodeURIComponent(q)}`)}">${q}</a>${
    q !== m.queue_name ? h` <span class="dim">(${m.queue_name})</span>` : ""
  }</dd>
<dt>Actor</dt><dd><a href="${
    link(ctx, "/search", new URLSearchParams({ actor: m.actor_name }))
  }">${m.actor_name}</a></dd>
<dt>Enqueued</dt><dd>${iso(m.message_timestamp)} (${when(m.message_timestamp, ctx.now)})</dd>${
    typeof o.eta === "number" ? h`<dt>Eta</dt><dd>${iso(o.eta)} (${when(o.eta, ctx.now)})</dd>` : ""
  }<dt>Retries</dt><dd>${retries}${
    typeof o.max_retries === "number" ? ` of ${o.max_retries}` : ""
  }</dd>${d.error ? h`<dt>Error</dt><dd class="err">${d.error}</dd>` : ""}</dl>${actionForm}${pr}${
    links(ctx, m)
  }
<h2>Attempts</h2>${attempts}${tb}<h2>Result</h2>${result}
<h2>Envelope${redacted ? h` <span class="badge">redacted</span>` : ""}</h2><pre>${
    JSON.stringify(m, null, 2)
  }</pre>`;
  return layout(ctx, `Message ${m.message_id.slice(0, 8)}`, "", body, { id: m.message_id });
}

/** The workers. */
export function workersPage(ctx: Ctx, workers: Got<readonly WorkerInfo[]>): string {
  if ("unsupported" in workers) {
    return layout(
      ctx,
      "Workers",
      "/workers",
      h`<h1>Workers</h1>${unsupported("Listing workers", workers.unsupported)}`,
    );
  }
  const rows = workers.ok.map((w) => {
    const stale = ctx.now - w.lastSeen > ctx.heartbeatMs;
    const counters = Object.entries(w.counters ?? {}).map(([k, v]) => `${k} ${num(v)}`).join(", ");
    return h`<tr><td><code>${w.workerId}</code>${
      stale ? h` <span class="badge bad">no heartbeat</span>` : ""
    }</td><td>${w.host ?? ""}</td><td class="n">${w.pid ?? ""}</td><td>${
      w.runtime ?? ""
    }</td><td class="wrap">${(w.queues ?? []).join(", ")}</td><td class="n">${num(w.busy)} / ${
      num(w.slots)
    }</td><td class="wrap">${
      (w.running ?? []).map((r) =>
        h`<a href="${
          link(ctx, `/messages/${encodeURIComponent(r.messageId)}`)
        }"><code>${r.actor}</code> ${r.messageId.slice(0, 8)}</a> <span class="dim">${
          when(r.startedAt, ctx.now)
        }</span><br>`
      )
    }</td><td class="wrap dim">${counters}</td><td>${when(w.lastSeen, ctx.now)}</td></tr>`;
  });
  return layout(
    ctx,
    "Workers",
    "/workers",
    h`<h1>Workers</h1><div class="scroll"><table><thead><tr><th>Worker</th><th>Host</th><th class="n">Pid</th><th>Runtime</th><th>Queues</th><th class="n">Busy</th><th>Running now</th><th>Counters</th><th>Heartbeat</th></tr></thead><tbody>${
      rows.length ? rows : h`<tr><td colspan="9" class="dim">No worker is running.</td></tr>`
    }</tbody></table></div>`,
  );
}

/** The schedules. */
export function schedulesPage(ctx: Ctx, schedules: Got<readonly ScheduleInfo[]>): string {
  if ("unsupported" in schedules) {
    return layout(
      ctx,
      "Schedules",
      "/schedules",
      h`<h1>Schedules</h1>${unsupported("Schedules", schedules.unsupported)}`,
    );
  }
  const can = ctx.canScheduleAct && !ctx.readOnly;
  const rows = schedules.ok.map((s) =>
    h`<tr><td>${s.name}${
      s.paused ? h` <span class="badge warn">paused</span>` : ""
    }</td><td><code>${s.actor}</code></td><td>${s.queue}</td><td><code>${s.spec}</code>${
      s.timezone ? h` <span class="dim">${s.timezone}</span>` : ""
    }</td><td>${when(s.nextAt, ctx.now)}</td><td>${when(s.lastAt, ctx.now)}${
      s.lastMessageId
        ? h` <a href="${link(ctx, `/messages/${encodeURIComponent(s.lastMessageId)}`)}">message</a>`
        : ""
    }</td>${
      can
        ? h`<td><form method="post" action="${link(ctx, "/actions/schedules")}" data-js>${
          csrf(ctx)
        }<input type="hidden" name="name" value="${s.name}"><button name="action" value="run-now">Run now</button> <button name="action" value="${
          s.paused ? "resume" : "pause"
        }">${s.paused ? "Resume" : "Pause"}</button></form></td>`
        : ""
    }</tr>`
  );
  return layout(
    ctx,
    "Schedules",
    "/schedules",
    h`<h1>Schedules</h1><div class="scroll"><table><thead><tr><th>Name</th><th>Actor</th><th>Queue</th><th>When</th><th>Next</th><th>Last</th>${
      can ? h`<th></th>` : ""
    }</tr></thead><tbody>${
      rows.length ? rows : h`<tr><td colspan="7" class="dim">No schedule.</td></tr>`
    }</tbody></table></div>`,
  );
}

/** A confirmation (no script) or an outcome page. */
export function messageBox(
  ctx: Ctx,
  title: string,
  text: string,
  form?: { action: string; fields: [string, string][] },
  back?: string,
): string {
  const f = form
    ? h`<form method="post" action="${form.action}" class="bar">${csrf(ctx)}${
      form.fields.map(([k, v]) => h`<input type="hidden" name="${k}" value="${v}">`)
    }<button class="primary" name="confirm" value="1">Confirm</button> <a href="${
      back ?? link(ctx, "/")
    }">Cancel</a></form>`
    : h`<p><a href="${back ?? link(ctx, "/")}">Back</a></p>`;
  return layout(ctx, title, "", h`<h1>${title}</h1><p>${text}</p>${f}`, false);
}

/** The login form. */
export function loginPage(ctx: Ctx, next: string, error?: string): string {
  return layout(
    ctx,
    "Log in",
    "",
    h`<form class="login" method="post" action="${link(ctx, "/login")}"><h1>Log in</h1>${
      error ? h`<p class="err">${error}</p>` : ""
    }${
      csrf(ctx)
    }<input type="hidden" name="next" value="${next}"><label>Token<input type="password" name="token" autocomplete="current-password" required autofocus></label><button class="primary">Log in</button></form>`,
    false,
  );
}

/** An error page (400, 404, 500 ...). */
export function errorPage(ctx: Ctx, title: string, text: string): string {
  return layout(
    ctx,
    title,
    "",
    h`<h1>${title}</h1><p>${text}</p><p><a href="${link(ctx, "/")}">Overview</a></p>`,
    false,
  );
}
