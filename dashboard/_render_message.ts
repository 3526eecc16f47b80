// The page of one message: its state, attempts, result, progress, links and actions.
import type { JsonValue, WireMessage } from "../message.ts";
import { duration, h, iso, type Safe, when } from "./_html.ts";
import { ACTION_STATES, type MessageDetail } from "./source.ts";
import { ACTION_LABEL, csrf, type Ctx, DESTRUCTIVE, layout, link, stateBadge } from "./_layout.ts";

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
  const attemptsNote = d.attemptsNote ? h`<p class="dim">${d.attemptsNote}</p>` : "";
  const envelope = d.fromEvents
    ? h`<h2>Envelope</h2><p class="dim">Not kept: this message finished, and what this page shows comes from the broker's events (its arguments and options are gone). <a href="${
      link(ctx, "/finished")
    }">Recently finished</a></p>`
    : h`<h2>Envelope${redacted ? h` <span class="badge">redacted</span>` : ""}</h2><pre>${
      JSON.stringify(m, null, 2)
    }</pre>`;
  const tb = typeof o.traceback === "string"
    ? h`<h2>Last traceback</h2><pre>${o.traceback}</pre>`
    : "";
  const r = d.result;
  const result = d.fromEvents
    ? h`<p class="dim">Not looked up (the message is not kept).</p>`
    : !r
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
<dt>${d.fromEvents ? "First started" : "Enqueued"}</dt><dd>${iso(m.message_timestamp)} (${
    when(m.message_timestamp, ctx.now)
  })</dd>${
    typeof o.eta === "number" ? h`<dt>Eta</dt><dd>${iso(o.eta)} (${when(o.eta, ctx.now)})</dd>` : ""
  }<dt>Retries</dt><dd>${retries}${
    typeof o.max_retries === "number" ? ` of ${o.max_retries}` : ""
  }</dd>${d.error ? h`<dt>Error</dt><dd class="err">${d.error}</dd>` : ""}</dl>${actionForm}${pr}${
    links(ctx, m)
  }
<h2>Attempts</h2>${attempts}${attemptsNote}${tb}<h2>Result</h2>${result}
${envelope}`;
  return layout(ctx, `Message ${m.message_id.slice(0, 8)}`, "", body, { id: m.message_id });
}
