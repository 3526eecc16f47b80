// The dashboard over HTTP, without a browser: pages, search parameters, paging, actions (single
// and bulk, with a count and a confirmation), read-only, token, CSRF, authorize and redact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  dashboardHandler,
  type DashboardSource,
  DashboardUnsupported,
  MemoryDashboardSource,
  type MessagePage,
} from "../dashboard/mod.ts";
import { MetricsSampler, quantile } from "../dashboard/_live.ts";
import { MetricsRegistry, RUN_TIME_BUCKETS_MS } from "../telemetry/registry.ts";
import { Client, client, fixture, serve, T0 } from "./_dashboard.ts";
import { matching, withLogs } from "./_logs.ts";
import { runScript } from "./_runtime.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

test("every page renders, with its JSON twin", async () => {
  const { source, ids } = fixture();
  const c = await client(source);
  const pages: [string, RegExp][] = [
    ["/", /<td><a href="\/queues\/emails">emails<\/a>/],
    ["/queues/emails", /Queue emails/],
    ["/queues/emails?state=dead", /erin@example\.com/],
    ["/search?q=alice", /alice@example\.com/],
    [`/messages/${ids.dead1}`, /TimeoutError: SMTP server did not answer/],
    ["/workers", /box-1/],
    ["/schedules", /nightly/],
  ];
  for (const [path, re] of pages) {
    const { status, html, res } = await c.page(path);
    assert.equal(status, 200, path);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(html, re, path);
    assert.match(res.headers.get("content-security-policy")!, /script-src 'self'/);
    assert.equal(res.headers.get("x-frame-options"), "DENY");
  }
  const overview = await c.json<{ queues: { queueName: string }[] }>("/api/overview");
  assert.deepEqual(overview.body.queues.map((q) => q.queueName), ["emails", "reports"]);
  const msg = await c.json<{ state: string; message: { message_id: string } }>(
    `/api/messages/${ids.run1}`,
  );
  assert.equal(msg.body.state, "running");
  // A scheduled tick links to its schedule; a pipeline step to the next one.
  const next = source.add({ queue: "emails", actor: "send_email" });
  const tick = source.add({
    queue: "reports",
    actor: "build_report",
    options: {
      schedule_name: "nightly",
      schedule_tick: T0,
      pipe_target: (await source.message(next))!.message as never,
    },
  });
  const links = (await c.page(`/messages/${tick}`)).html;
  assert.match(links, /sent by the schedule <a href="\/schedules">nightly<\/a> for its tick/);
  assert.match(links, new RegExp(`pipeline step \\+1: <a href="/messages/${next}">`));
  const missing = await c.page("/messages/nope");
  assert.equal(missing.status, 404);
  assert.equal((await c.page("/no/such/page")).status, 404);
  assert.equal((await c.page("/queues/nope")).status, 404);
  const js = await c.request("/assets/app.js");
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type")!, /javascript/);
  const etag = js.headers.get("etag")!;
  await js.body?.cancel();
  const again = await c.request("/assets/app.js", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
});

test("the overview keeps ready, delayed, running and dead apart, with consumers and ages", async () => {
  const { source } = fixture();
  const c = await client(source);
  const { body } = await c.json<{
    queues: {
      queueName: string;
      ready: number;
      delayed: number;
      inFlight: number;
      dead: number;
      consumers: number;
      oldestReadyTimestamp: number | null;
    }[];
  }>("/api/overview");
  const emails = body.queues.find((q) => q.queueName === "emails")!;
  assert.deepEqual(
    [emails.ready, emails.delayed, emails.inFlight, emails.dead],
    [2, 1, 1, 2],
  );
  assert.equal(emails.consumers, 1); // w1 is live
  const reports = body.queues.find((q) => q.queueName === "reports")!;
  assert.equal(reports.consumers, 0); // w2's heartbeat is 2 minutes old
  assert.equal(emails.oldestReadyTimestamp, T0 + 1000);
  const html = (await c.page("/")).html;
  assert.match(html, /no consumer/);
  const workers = (await c.page("/workers")).html;
  assert.match(workers, /no heartbeat/);
});

test("search parameters: text, id, actor, queue, state, time range, text in errors", async () => {
  const { source, ids } = fixture();
  const c = await client(source);
  const search = async (qs: string) => {
    const r = await c.json<MessagePage>(`/api/search?${qs}`);
    assert.equal(r.status, 200, `${qs}: ${JSON.stringify(r.body)}`);
    return r.body.messages.map((m) => m.message.message_id);
  };
  assert.deepEqual(await search("q=ALICE"), [ids.ready1]);
  assert.deepEqual(await search(`q=${ids.dead2}`), [ids.dead2]); // a UUID is an id
  assert.deepEqual(await search(`id=${ids.done1}`), [ids.done1]);
  assert.deepEqual(await search("q=timeout"), [ids.dead2, ids.dead1]); // newest first
  assert.deepEqual(await search("q=timeout&in=error&queue=reports"), []);
  assert.deepEqual(await search("q=2026-1&in=error"), []);
  assert.deepEqual(await search("actor=build_report&state=dead"), [ids.dead3]);
  assert.deepEqual(await search("queue=reports&state=ready,delayed"), [ids.delayed1, ids.ready3]);
  assert.deepEqual(await search("queue=reports&state=ready&state=delayed"), [
    ids.delayed1,
    ids.ready3,
  ]);
  assert.deepEqual(await search("state=running"), [ids.run2, ids.run1]);
  const from = new Date(T0 + 2500).toISOString();
  const to = new Date(T0 + 4500).toISOString();
  assert.deepEqual(await search(`from=${from}&to=${to}`), [ids.delayed1, ids.ready3]);
  assert.deepEqual(await search(`from=${T0 + 10_500}`), [ids.done2, ids.done1]);
  assert.equal((await search("from=1h")).length, 0); // the fixture is in the past
  // A wrong parameter is a 400 naming it.
  for (
    const [qs, re] of [
      ["state=lost", /^state: expected one of ready, delayed, running, dead, done/],
      ["from=yesterday", /^from: expected ms since the epoch/],
      ["limit=0", /^limit: expected a whole number from 1 to 500/],
      ["in=body", /^in: expected all or error/],
      ["cursor=zzz", /cursor/],
    ]
  ) {
    const r = await c.json<{ error: string }>(`/api/search?${qs}`);
    assert.equal(r.status, 400, qs as string);
    assert.match(r.body.error, re as RegExp);
  }
  // The HTML page keeps the search in its URL, fields and links.
  const page = await c.page("/search?q=timeout&state=dead");
  assert.match(page.html, /name="q" value="timeout"/);
  assert.match(page.html, /<b data-total>2<\/b> matching/);
});

test("paging: newest first, cursors both ways, totals on every page", async () => {
  const source = new MemoryDashboardSource();
  const ids: string[] = [];
  for (let i = 0; i < 120; i++) {
    ids.push(source.add({ queue: "q", actor: "a", args: [i], timestamp: T0 + i }, {
      state: i % 2 ? "dead" : "ready",
    }));
  }
  // Same timestamps too: the order of storage breaks the tie.
  for (let i = 0; i < 5; i++) ids.push(source.add({ queue: "q", actor: "a", timestamp: T0 + 200 }));
  const c = await client(source);
  const newestFirst = [...ids].reverse();
  const seen: string[] = [];
  const cursors: (string | undefined)[] = [];
  let cursor: string | undefined;
  do {
    const r: { body: MessagePage } = await c.json<MessagePage>(
      `/api/queues/q?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    assert.equal(r.body.total, 125);
    cursors.push(cursor);
    seen.push(...r.body.messages.map((m) => m.message.message_id));
    assert.equal(r.body.prev !== undefined, cursor !== undefined);
    cursor = r.body.next;
  } while (cursor);
  assert.deepEqual(seen, newestFirst);
  // Back from the last page: the previous page is page 2 again.
  const last = await c.json<MessagePage>(`/api/queues/q?limit=50&cursor=${cursors[2]}`);
  const back = await c.json<MessagePage>(`/api/queues/q?limit=50&cursor=${last.body.prev}`);
  assert.deepEqual(back.body.messages.map((m) => m.message.message_id), newestFirst.slice(50, 100));
  // Filtered paging: the totals count the filter.
  const dead = await c.json<MessagePage>("/api/queues/q?state=dead&limit=25");
  assert.equal(dead.body.total, 60);
  assert.equal(dead.body.messages.length, 25);
  assert.ok(dead.body.messages.every((m) => m.state === "dead"));
  const html = await c.page("/queues/q?state=dead&limit=25");
  assert.match(html.html, /rel="next" href="\/queues\/q\?state=dead&amp;limit=25&amp;cursor=o%3A/);
});

test("bulk requeue of a search: a count and a confirmation first, then only what was counted", async () => {
  const { source, ids } = fixture();
  const c = await client(source);
  await withLogs(async (lines) => {
    const fields = { action: "requeue", scope: "query", q: "timeout" };
    const first = await c.post("/actions/messages", fields);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.step, "confirm");
    assert.equal(first.body.count, 2);
    assert.match(String(first.body.text), /Requeue: 2 messages \(dead, text "timeout"\)\?/);
    assert.equal(source.stateOf(ids.dead1), "dead"); // nothing done yet
    // A dead letter that arrives after the count is not part of the action.
    const late = source.add({
      queue: "emails",
      actor: "send_email",
      args: ["x@example.com"],
      timestamp: Number(first.body.asOf) + 5000,
    }, { state: "dead", error: "TimeoutError: again" });
    const done = await c.post("/actions/messages", {
      ...fields,
      confirm: "1",
      asOf: String(first.body.asOf),
      expected: "2",
    });
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.step, "done");
    assert.equal(done.body.done, 2);
    assert.equal(source.stateOf(ids.dead1), "ready");
    assert.equal(source.stateOf(ids.dead2), "ready");
    assert.equal(source.stateOf(ids.dead3), "dead");
    assert.equal(source.stateOf(late), "dead");
    const log = matching(lines, /\[dramatis\.dashboard\] \[INFO\]/);
    assert.equal(log.length, 1, lines.join("\n"));
    assert.match(
      log[0],
      /requeue of the search dead, text "timeout".*\(2 counted\): 2 done, 0 skipped/,
    );
  });
  // Confirming without the count's time is refused.
  const bad = await c.post("/actions/messages", {
    action: "requeue",
    scope: "query",
    confirm: "1",
  });
  assert.equal(bad.status, 400);
  assert.match(String(bad.body.error), /asOf/);
});

test("bulk without scripts: the confirmation is a page with the same fields", async () => {
  const { source, ids } = fixture();
  const c = await client(source);
  const first = await c.post("/actions/messages", {
    action: "delete",
    scope: "query",
    state: "dead",
    queue: "reports",
  }, { html: true });
  assert.equal(first.status, 200);
  assert.match(first.text, /Delete: 1 message \(queue reports, dead\)\?/);
  const hidden = [...first.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)]
    .map((m) => [m[1], m[2].replace(/&amp;/g, "&")] as [string, string])
    .filter(([k]) => k !== "_csrf");
  const done = await c.post("/actions/messages", [...hidden, ["confirm", "1"]], { html: true });
  assert.equal(done.status, 200);
  assert.match(done.text, /Delete: 1 done, 0 skipped/);
  assert.equal(source.stateOf(ids.dead3), undefined);
});

test("single actions: retry, run now, cancel (queued and running), move, delete", async () => {
  const { source, ids } = fixture();
  const c = await client(source);
  const act = (action: string, id: string | string[], extra: Record<string, string> = {}) =>
    c.post("/actions/messages", [
      ["action", action],
      ["scope", "ids"],
      ...[id].flat().map((x) => ["ids", x] as [string, string]),
      ...Object.entries(extra),
    ]);
  let r = await act("retry", ids.dead3);
  assert.equal(r.body.done, 1);
  assert.equal(source.stateOf(ids.dead3), "ready");
  const retried = await source.message(ids.dead3);
  assert.equal(retried!.message.options.retries, 0);
  r = await act("run-now", ids.delayed1);
  assert.equal(r.body.done, 1);
  assert.equal(source.stateOf(ids.delayed1), "ready");
  // Cancel is destructive: a confirmation even for one message.
  r = await act("cancel", ids.run1);
  assert.equal(r.body.step, "confirm");
  assert.equal(source.stateOf(ids.run1), "running");
  r = await act("cancel", ids.run1, { confirm: "1" });
  assert.equal(r.body.done, 1);
  assert.equal(source.stateOf(ids.run1), "dead");
  assert.equal((await source.message(ids.run1))!.error, "Cancelled from the dashboard");
  r = await act("cancel", ids.ready2, { confirm: "1" });
  assert.equal(source.stateOf(ids.ready2), "dead");
  // Move needs a target; it keeps the message's state.
  r = await act("move", ids.ready1);
  assert.equal(r.status, 400);
  assert.match(String(r.body.error), /^target: name the queue/);
  r = await act("move", ids.retrying, { target: "slow-emails" });
  assert.equal(r.body.done, 1);
  const moved = await source.message(ids.retrying);
  assert.equal(moved!.message.queue_name, "slow-emails.DQ");
  assert.equal(moved!.state, "delayed");
  // Several selected: a confirmation with their number; a state that does not fit is skipped.
  r = await act("delete", [ids.done1, ids.run2]);
  assert.equal(r.body.count, 2);
  r = await act("delete", [ids.done1, ids.run2], { confirm: "1" });
  assert.deepEqual([r.body.done, r.body.skipped], [1, 1]);
  assert.equal(source.stateOf(ids.done1), undefined);
  assert.equal(source.stateOf(ids.run2), "running");
  // An action no state of the search fits is refused before counting.
  r = await c.post("/actions/messages", { action: "run-now", scope: "query", state: "dead" });
  assert.equal(r.status, 400);
  assert.match(String(r.body.error), /Run now applies to delayed messages/);
  r = await c.post("/actions/messages", { action: "explode", scope: "query" });
  assert.equal(r.status, 400);
  assert.match(String(r.body.error), /^action: expected one of retry, requeue, run-now/);
});

test("queue actions: pause and resume at once, purge after a count", async () => {
  const { source } = fixture();
  const c = await client(source);
  let r = await c.post("/actions/queues", { queue: "emails", action: "pause" });
  assert.equal(r.body.step, "done");
  let q = (await source.queues()).find((x) => x.queueName === "emails")!;
  assert.equal(q.paused, true);
  assert.equal(source.claim("emails", "w1"), undefined); // a paused queue gives nothing
  assert.match((await c.page("/queues/emails")).html, /value="resume">Resume</);
  await c.post("/actions/queues", { queue: "emails", action: "resume" });
  r = await c.post("/actions/queues", { queue: "emails", action: "purge", states: "dead" });
  assert.equal(r.body.step, "confirm");
  assert.equal(r.body.count, 2);
  r = await c.post("/actions/queues", {
    queue: "emails",
    action: "purge",
    states: "dead",
    confirm: "1",
  });
  assert.equal(r.body.done, 2);
  q = (await source.queues()).find((x) => x.queueName === "emails")!;
  assert.deepEqual([q.ready, q.dead, q.paused], [2, 0, false]);
  r = await c.post("/actions/queues", { queue: "nope", action: "pause" });
  assert.equal(r.status, 404);
});

test("schedule actions: run now and pause", async () => {
  const { source } = fixture();
  const c = await client(source);
  const before = source.size;
  let r = await c.post("/actions/schedules", { name: "nightly", action: "run-now" });
  assert.equal(r.body.done, 1);
  assert.equal(source.size, before + 1);
  const s = (await source.schedules()).find((x) => x.name === "nightly")!;
  assert.ok(s.lastAt && s.lastMessageId);
  r = await c.post("/actions/schedules", { name: "nightly", action: "pause" });
  assert.equal((await source.schedules()).find((x) => x.name === "nightly")!.paused, true);
  r = await c.post("/actions/schedules", { name: "nope", action: "pause" });
  assert.equal(r.status, 400);
  assert.match(String(r.body.error), /No schedule named "nope"/);
});

test("read-only: pages work, every write is refused with 403 and no button is shown", async () => {
  const { source, ids } = fixture();
  await withLogs(async (lines) => {
    const c = await client(source, { readOnly: true });
    for (const path of ["/", "/queues/emails?state=dead", `/messages/${ids.dead1}`, "/schedules"]) {
      const { status, html } = await c.page(path);
      assert.equal(status, 200);
      assert.doesNotMatch(html, /action="\/actions\//, path);
      assert.match(html, /read-only/);
    }
    for (
      const [path, fields] of [
        ["/actions/messages", { action: "delete", scope: "ids", ids: ids.dead1, confirm: "1" }],
        ["/actions/queues", { queue: "emails", action: "purge", confirm: "1" }],
        ["/actions/schedules", { name: "nightly", action: "run-now" }],
      ] as const
    ) {
      const r = await c.post(path, fields);
      assert.equal(r.status, 403, path);
      assert.match(String(r.body.error), /read-only/);
    }
    assert.equal(source.stateOf(ids.dead1), "dead");
    assert.equal(matching(lines, /refused: the dashboard is read-only/).length, 3);
  });
});

test("token: 401 without it; a bearer header or the login form's cookie let in", async () => {
  const { source } = fixture();
  const token = "tok-0123456789abcdef";
  const handler = dashboardHandler(source, { token });
  const c = new Client(handler);
  let page = await c.page("/queues/emails");
  assert.equal(page.status, 401);
  assert.match(page.res.headers.get("www-authenticate")!, /^Bearer/);
  assert.match(page.html, /name="token"/);
  assert.match(page.html, /name="next" value="\/queues\/emails"/);
  assert.doesNotMatch(page.html, /alice/);
  let api = await c.json("/api/overview");
  assert.equal(api.status, 401);
  api = await c.json("/api/overview", { authorization: "Bearer wrong" });
  assert.equal(api.status, 401);
  api = await c.json("/api/overview", { authorization: `Bearer ${token}` });
  assert.equal(api.status, 200);
  let post = await c.post("/actions/queues", { queue: "emails", action: "pause" });
  assert.equal(post.status, 401);
  // The login form: a wrong token is refused, the right one sets a session cookie (not the token).
  post = await c.post("/login", { token: "nope", next: "/queues/emails" }, { html: true });
  assert.equal(post.status, 401);
  const res = await c.request("/login", {
    method: "POST",
    body: new URLSearchParams({ token, next: "/queues/emails", _csrf: c.csrf }),
    headers: { "content-type": "application/x-www-form-urlencoded", origin: c.origin },
  });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/queues/emails");
  const cookie = res.headers.getSetCookie().find((x) => x.startsWith("dramatis_session="))!;
  assert.match(cookie, /HttpOnly; SameSite=Strict/);
  assert.ok(!cookie.includes(token));
  page = await c.page("/queues/emails");
  assert.equal(page.status, 200);
  assert.match(page.html, /Log out/);
  post = await c.post("/actions/queues", { queue: "emails", action: "pause" });
  assert.equal(post.status, 200);
  // A bearer client needs no CSRF token (a browser never adds the header by itself).
  post = await new Client(handler).post("/actions/queues", { queue: "emails", action: "resume" }, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(post.status, 200, post.text);
  // Log out drops the cookie.
  await c.post("/logout", {}, { html: true });
  assert.equal((await c.page("/")).status, 401);
  assert.throws(() => dashboardHandler(source, { token: "" }), /token is empty/);
});

test("CSRF: a write without the token, with a forged one, or from another site is refused", async () => {
  const { source, ids } = fixture();
  const c = await client(source);
  const fields = { action: "delete", scope: "ids", ids: ids.dead1, confirm: "1" };
  let r = await c.post("/actions/messages", fields, { csrf: false });
  assert.equal(r.status, 403);
  assert.match(String(r.body.error), /CSRF token is missing or does not match/);
  // Another browser's valid token does not match this browser's cookie.
  const other = await client(source);
  r = await c.post("/actions/messages", { ...fields, _csrf: other.csrf }, { csrf: false });
  assert.equal(r.status, 403);
  // A cookie and field that match but were not signed by this dashboard (cookie tossing).
  c.jar.set("dramatis_csrf", "forged.token");
  r = await c.post("/actions/messages", { ...fields, _csrf: "forged.token" }, { csrf: false });
  assert.equal(r.status, 403);
  await c.page("/"); // a fresh, valid token
  r = await c.post("/actions/messages", fields, { headers: { origin: "https://evil.example" } });
  assert.equal(r.status, 403);
  assert.match(String(r.body.error), /Origin https:\/\/evil\.example is not this dashboard's/);
  r = await c.post("/actions/messages", fields, { headers: { "sec-fetch-site": "cross-site" } });
  assert.equal(r.status, 403);
  assert.equal(source.stateOf(ids.dead1), "dead");
  r = await c.post("/actions/messages", fields);
  assert.equal(r.status, 200, r.text);
  assert.equal(source.stateOf(ids.dead1), undefined);
  // The header works as well as the field.
  r = await c.post("/actions/queues", { queue: "emails", action: "pause" }, {
    csrf: false,
    headers: { "x-dramatis-csrf": c.csrf },
  });
  assert.equal(r.status, 200);
});

test("authorize: false is 403, read-only access hides and refuses writes, the user is logged", async () => {
  const { source } = fixture();
  const handler = dashboardHandler(source, {
    authorize: (req) => {
      const user = req.headers.get("x-user");
      if (!user) return false;
      return { user, readOnly: user === "viewer" };
    },
  });
  const anon = new Client(handler);
  assert.equal((await anon.page("/")).status, 403);
  const viewer = new Client(handler);
  const page = await viewer.page("/queues/emails?state=dead", { "x-user": "viewer" });
  assert.equal(page.status, 200);
  assert.doesNotMatch(page.html, /Apply to all/);
  const r = await viewer.post("/actions/queues", { queue: "emails", action: "pause" }, {
    headers: { "x-user": "viewer" },
  });
  assert.equal(r.status, 403);
  await withLogs(async (lines) => {
    const admin = new Client(handler);
    await admin.page("/", { "x-user": "root" });
    const ok = await admin.post("/actions/queues", { queue: "emails", action: "pause" }, {
      headers: { "x-user": "root" },
    });
    assert.equal(ok.status, 200, ok.text);
    assert.match(matching(lines, /pause queue emails/)[0], /root \(unknown address\): pause/);
  });
});

test("redact: arguments never leave the dashboard, results are hidden, search looks in errors", async () => {
  const { source, ids } = fixture();
  const c = await client(source, {
    redact: (m) => ({ ...m, args: m.args.map(() => "[redacted]"), kwargs: {} }),
  });
  for (
    const path of [
      "/queues/emails",
      "/search?q=example",
      `/messages/${ids.ready1}`,
      `/messages/${ids.done1}`,
      "/api/search?queue=emails",
      `/api/messages/${ids.done1}`,
    ]
  ) {
    const res = await c.request(path);
    const text = await res.text();
    assert.equal(res.status, 200, path);
    assert.doesNotMatch(text, /@example\.(com|org|net)/, path);
    assert.doesNotMatch(text, /"sent"/, path);
  }
  assert.match((await c.page(`/messages/${ids.done1}`)).html, /redacted/);
  // Text search on arguments would reveal them: it looks in errors only.
  const byArg = await c.json<MessagePage>("/api/search?q=alice");
  assert.equal(byArg.body.total, 0);
  const byError = await c.json<MessagePage>("/api/search?q=timeout");
  assert.equal(byError.body.total, 2);
  assert.match((await c.page("/search?q=alice")).html, /looked for in errors only/);
  // The source's data is untouched.
  assert.equal((await source.message(ids.ready1))!.message.args[0], "alice@example.com");
});

test("values are escaped everywhere", async () => {
  const source = new MemoryDashboardSource({ name: "<b>name</b>" });
  const id = source.add({ queue: "q", actor: "x<script>", args: ['"><script>alert(1)</script>'] }, {
    state: "dead",
    error: "<img src=x onerror=alert(1)>",
  });
  const c = await client(source);
  for (const path of ["/", "/queues/q?state=dead", `/messages/${id}`, "/search?q=%3Cscript%3E"]) {
    const { html } = await c.page(path);
    assert.doesNotMatch(html, /<script>alert|<img src=x|<b>name<\/b>|x<script>/, path);
  }
});

test("live: counts and chart points (rates, p50/p95/p99) for the page's poll", async () => {
  const { source, ids } = fixture();
  const c = await client(source, { refreshMs: 100 });
  let live = await c.json<
    { t: number; queues: { queueName: string; dead: number }[]; points: unknown[] }
  >(
    "/api/live",
  );
  assert.equal(live.body.queues.find((q) => q.queueName === "emails")!.dead, 2);
  for (let i = 0; i < 20; i++) {
    source.add({ queue: "late", actor: "send_email" });
    source.finish(source.claim("late", "w1")!, "success", { durationMs: 40 });
  }
  await new Promise((r) => setTimeout(r, 150));
  live = await c.json(`/api/live?since=0&id=${ids.dead1}`);
  const points = live.body.points as { processed: number; run: (number | null)[] }[];
  assert.ok(points.length >= 1, JSON.stringify(live.body));
  const p = points[points.length - 1];
  assert.ok(p.processed > 0);
  assert.ok(p.run[0]! > 25 && p.run[0]! <= 50, `p50 ${p.run[0]}`); // 40 ms is in (25, 50]
  assert.deepEqual((live.body as { message?: unknown }).message, { state: "dead" });
});

test("sampler: rates per second and quantiles interpolated in the bucket, resets read as restarts", () => {
  assert.equal(quantile(0.5, [10, 20], [0, 0, 0]), null);
  assert.equal(quantile(0.5, [10, 20], [0, 10, 0]), 15);
  assert.equal(quantile(0.99, [10, 20], [0, 0, 5]), 20); // +Inf answers the last bound
  const reg = new MetricsRegistry();
  const sampler = new MetricsSampler(1000);
  const snap = (t: number) => ({ ...reg.snapshot(), takenAt: t });
  sampler.add(snap(10_000));
  const s = reg.series("q", "a");
  s.processed += 30;
  s.enqueued += 10;
  for (let i = 0; i < 10; i++) s.runMs.observe(7);
  sampler.add(snap(12_000));
  const [p] = sampler.points();
  assert.deepEqual([p.processed, p.enqueued, p.failed], [15, 5, 0]);
  assert.ok(p.run[0]! > 5 && p.run[0]! <= 10);
  assert.equal(p.wait[0], null);
  assert.equal(RUN_TIME_BUCKETS_MS[0], 5);
  // A counter that went down is a restart from zero, never a negative rate.
  s.processed = 4;
  sampler.add(snap(14_000));
  assert.equal(sampler.points()[1].processed, 2);
  assert.equal(sampler.points(12_000).length, 1);
});

test("a source with only queues(): every other page says what is not supported", async () => {
  const minimal: DashboardSource = {
    name: "rabbitmq",
    queues: () => Promise.resolve([{ queueName: "q", ready: 3, delayed: 0, inFlight: 0, dead: 1 }]),
  };
  const c = await client(minimal);
  assert.match((await c.page("/")).html, /Charts: not supported by this broker/);
  assert.match((await c.page("/queues/q")).html, /Listing messages: not supported by this broker/);
  assert.doesNotMatch((await c.page("/queues/q")).html, /action="\/actions\/queues"/);
  assert.match((await c.page("/workers")).html, /Listing workers: not supported/);
  assert.match((await c.page("/schedules")).html, /Schedules: not supported/);
  assert.equal((await c.page("/messages/x")).status, 501);
  const r = await c.post("/actions/messages", { action: "requeue", scope: "query" });
  assert.equal(r.status, 501);
  // A source may refuse at run time, with its reason.
  const browsing: DashboardSource = {
    ...minimal,
    messages: () =>
      Promise.reject(
        new DashboardUnsupported("Browsing needs the management API: pass managementUrl."),
      ),
  };
  const c2 = await client(browsing);
  assert.match((await c2.page("/search?q=x")).html, /pass managementUrl/);
});

test("prefix: mounted under /dashboard, links and cookies stay under it", async () => {
  const { source } = fixture();
  const c = new Client(dashboardHandler(source, { prefix: "/dashboard/" }));
  const { status, html, res } = await c.page("/dashboard/");
  assert.equal(status, 200);
  assert.match(html, /href="\/dashboard\/queues\/emails"/);
  assert.match(html, /src="\/dashboard\/assets\/app\.js"/);
  assert.match(res.headers.getSetCookie()[0], /Path=\/dashboard;/);
  assert.equal((await c.page("/other")).status, 404);
  assert.throws(() => dashboardHandler(source, { prefix: "dashboard" }), /must start with "\/"/);
});

test("served by the runtime's own server, HEAD and a wrong method included", async () => {
  const { source } = fixture();
  const server = await serve(dashboardHandler(source));
  try {
    let res = await fetch(`${server.url}/search?q=alice`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /alice@example\.com/);
    res = await fetch(`${server.url}/`, { method: "HEAD" });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "");
    res = await fetch(`${server.url}/`, { method: "DELETE" });
    assert.equal(res.status, 405);
    await res.body?.cancel();
  } finally {
    await server.stop();
  }
});

test("examples/dashboard_demo.ts --smoke serves every page", async () => {
  const r = await runScript(join(root, "examples", "dashboard_demo.ts"), {
    args: ["--smoke"],
    timeout: 60_000,
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const page of ["/", "/queues/emails", "/search", "/workers", "/schedules", "/messages/"]) {
    assert.ok(r.stdout.includes(`GET ${page}`), page);
  }
  assert.doesNotMatch(r.stdout, / [45]\d\d$/m);
});
