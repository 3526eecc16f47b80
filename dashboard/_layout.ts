// What every page of the dashboard shares: the request context, the layout, links, badges.
import type { WireMessage } from "../message.ts";
import { duration, h, type Part, type Safe } from "./_html.ts";
import { CSRF_FIELD } from "./_auth.ts";
import type { MessageAction, MessageState, QueueAction, QueueOverview } from "./source.ts";

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
  /** The source has events: the page follows /api/events (server-sent events), else it polls. */
  liveEvents?: boolean;
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
/** The actions that ask before acting even on one message. */
export const DESTRUCTIVE: readonly MessageAction[] = ["delete", "cancel"];

/** A note that the source cannot show something, and why. */
export function unsupported(what: string, reason: string): Safe {
  return h`<p class="unsupported">${what}: not supported by this broker. ${reason}</p>`;
}

/** The hidden fields of every form: the CSRF token and the page to go back to. */
export function csrf(ctx: Ctx): Safe {
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
    ["/finished", "Finished"],
    ["/workers", "Workers"],
    ["/schedules", "Schedules"],
  ];
  const liveAttrs = live
    ? h` data-live="${link(ctx, "/api/live")}" data-refresh="${ctx.refreshMs}"${
      ctx.liveEvents ? h` data-events="${link(ctx, "/api/events")}"` : ""
    }${live.id ? h` data-id="${live.id}"` : ""}`
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

/** A message state as a coloured badge. */
export function stateBadge(s: MessageState): Safe {
  return h`<span class="badge st-${s}">${s === "running" ? "running" : s}</span>`;
}

/** A message's arguments, shortened to `max` characters. */
export function preview(m: WireMessage, max = 120): string {
  const kw = Object.keys(m.kwargs ?? {}).length ? [JSON.stringify(m.kwargs)] : [];
  const s = [...m.args.map((a) => JSON.stringify(a)), ...kw].join(", ");
  return `${m.actor_name}(${s.length > max ? s.slice(0, max) + "…" : s})`;
}

/** A count the live updates replace (queue `q`, key `k`). */
export function qcount(q: string, k: string, v: Part): Safe {
  return h`<span data-q="${q}" data-k="${k}">${v}</span>`;
}

/** The age of the oldest ready message, as the live updates send it too. */
export function oldest(q: QueueOverview, now: number): string {
  if (!q.oldestReadyTimestamp) return "-";
  return `${q.oldestIsLowerBound ? "≥ " : ""}${
    duration(Math.max(0, now - q.oldestReadyTimestamp))
  }`;
}
