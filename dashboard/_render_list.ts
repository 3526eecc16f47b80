// The list of a queue or of a search: filters, bulk actions, rows and paging.
import { h, num, type Safe, when } from "./_html.ts";
import { queryParams } from "./_params.ts";
import {
  ACTION_STATES,
  type MessagePage,
  type MessageQuery,
  type MessageState,
  type MessageSummary,
  type QueueOverview,
} from "./source.ts";
import {
  ACTION_LABEL,
  csrf,
  type Ctx,
  type Got,
  layout,
  link,
  oldest,
  preview,
  qcount,
  stateBadge,
  unsupported,
} from "./_layout.ts";

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
