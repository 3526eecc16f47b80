// The dashboard's pages, rendered on the server. Every value goes through h`` (escaped).
import type { ChartPoint } from "./_live.ts";
import { h, num, Safe, when } from "./_html.ts";
import type { MessageState, QueueOverview, ScheduleInfo, WorkerInfo } from "./source.ts";
import { csrf, type Ctx, type Got, layout, link, oldest, qcount, unsupported } from "./_layout.ts";

export { ACTION_LABEL, type Ctx, type Got, layout, link, oldest } from "./_layout.ts";
export { listPage } from "./_render_list.ts";
export { messagePage } from "./_render_message.ts";

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
