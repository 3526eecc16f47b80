// The page of the recently finished messages (`/finished`), from the broker's events.
import { duration, h, iso, when } from "./_html.ts";
import { type Ctx, type Got, layout, link, unsupported } from "./_layout.ts";
import type { FinishedList } from "./finished.ts";

/** The finished list, newest first, saying how far back the events go. */
export function finishedPage(ctx: Ctx, got: Got<FinishedList>, queue: string | undefined): string {
  if ("unsupported" in got) {
    return layout(
      ctx,
      "Recently finished",
      "/finished",
      h`<h1>Recently finished</h1>${unsupported("The finished list", got.unsupported)}`,
    );
  }
  const l = got.ok;
  const rows = l.messages.map((f) =>
    h`<tr data-outcome="${f.outcome}"><td><a href="${
      link(ctx, `/messages/${encodeURIComponent(f.messageId)}`)
    }"><code>${f.messageId.slice(0, 8)}</code></a></td><td>${f.actor}</td><td><a href="${
      link(ctx, `/queues/${encodeURIComponent(f.queue)}`)
    }">${f.queue}</a></td><td>${f.outcome}</td><td title="${iso(f.at)}">${
      when(f.at, ctx.now)
    }</td><td class="n">${
      f.durationMs === undefined ? "" : duration(f.durationMs)
    }</td><td class="n">${String(f.attempts)}</td><td>${f.workerId ?? ""}</td><td class="wrap">${
      f.error ?? ""
    }</td></tr>`
  );
  const table = rows.length
    ? h`<div class="scroll"><table><thead><tr><th>Message</th><th>Actor</th><th>Queue</th><th>Outcome</th><th>Finished</th><th class="n">Last run</th><th class="n">Attempts</th><th>Worker</th><th>Error</th></tr></thead><tbody>${rows}</tbody></table></div>`
    : h`<p class="dim">No message finished within the events held.</p>`;
  const body = h`<h1>Recently finished${queue ? h` in <code>${queue}</code>` : ""}</h1>
<p class="dim">Completed and dead-lettered messages, newest first, from the broker's events: bounded by what the broker keeps and by the last ${
    l.kept.toLocaleString("en-US")
  } events the dashboard holds (${l.events.toLocaleString("en-US")} now${
    l.since ? `, since ${iso(l.since)}` : ""
  }). Older ones are not listed.</p>${table}`;
  return layout(ctx, "Recently finished", "/finished", body);
}
