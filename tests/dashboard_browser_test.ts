// The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
// the overview with messages in every state, a text search, a bulk requeue of its dead letters,
// cancelling a running message, counts changing without a reload, read-only mode and the token.
// Each test saves a screenshot of its page to docs/screenshots/ (shown in docs/dashboard.md).
// Skips, saying why, when chromium or playwright-core is missing (.ci/run installs both).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dashboardHandler, type DashboardOptions } from "../dashboard/mod.ts";
import { fixture, serve } from "./_dashboard.ts";
import { populate } from "./_dashboard_broker.ts";
import { FileBroker } from "../broker/file/broker.ts";
import { actor } from "../actor.ts";
import { currentSignal } from "../worker/context.ts";
import { Worker } from "../worker/worker.ts";
import { Message } from "../message.ts";
import { serveHttp } from "../runtime/process.ts";

const CHROMIUM = "/usr/bin/chromium";
const shots = fileURLToPath(new URL("../docs/screenshots/", import.meta.url));

// The few parts of playwright-core's API used here (it is a dev dependency, typed loosely).
interface Locator {
  click(): Promise<void>;
  check(): Promise<void>;
  fill(v: string): Promise<void>;
  selectOption(v: string): Promise<unknown>;
  textContent(): Promise<string | null>;
  count(): Promise<number>;
  first(): Locator;
  waitFor(o?: { state?: string; timeout?: number }): Promise<void>;
}
interface Page {
  goto(url: string): Promise<{ status(): number } | null>;
  locator(sel: string): Locator;
  screenshot(o: { path: string; fullPage?: boolean }): Promise<Uint8Array>;
  evaluate<T>(fn: string | (() => T)): Promise<T>;
  setViewportSize(s: { width: number; height: number }): Promise<void>;
  url(): string;
  on(
    event: string,
    fn: (e: { message?: string; text?(): string; type?(): string; url?(): string }) => void,
  ): void;
}
interface Context {
  newPage(): Promise<Page>;
  close(): Promise<void>;
}
interface Chromium {
  launchPersistentContext(dir: string, o: Record<string, unknown>): Promise<Context>;
}

let chromium: Chromium | undefined;
let why = "";
if (!existsSync(CHROMIUM)) {
  why = `${CHROMIUM} is missing: apt-get install -y chromium`;
} else {
  try {
    chromium = (await import("playwright-core" as string)).chromium as Chromium;
  } catch (e) {
    why = `playwright-core is missing (npm ci installs it): ${(e as Error).message.split("\n")[0]}`;
  }
}
const opts = { skip: chromium ? false : `no browser test: ${why}`, timeout: 120_000 };
if (!chromium) console.warn(`dashboard_browser_test skipped: ${why}`);

/** A fresh Chromium (its own user-data-dir) on a served dashboard over the fixture. */
async function withBrowser(
  options: DashboardOptions,
  fn: (page: Page, url: string, f: ReturnType<typeof fixture>) => Promise<void>,
): Promise<void> {
  const f = fixture();
  const server = await serve(dashboardHandler(f.source, { refreshMs: 250, ...options }));
  const dir = mkdtempSync(join(tmpdir(), "dramatis-chromium-"));
  const context = await chromium!.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-quic",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 800 },
  });
  const errors: string[] = [];
  try {
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(String(e.message)));
    await fn(page, server.url, f);
    assert.deepEqual(errors, [], "no script error on the page");
  } finally {
    await context.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(shots, { recursive: true });
  const png = await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  assert.ok(png.length > 5000, `${name}.png has ${png.length} bytes`);
}

/** Marks the page's window: the mark is gone after a reload. */
function mark(page: Page): Promise<unknown> {
  return page.evaluate("window.__noReload = 1");
}
async function notReloaded(page: Page): Promise<void> {
  assert.equal(await page.evaluate("window.__noReload"), 1, "the page was reloaded");
}

/**
 * Waits until `expr` (evaluated in the page) is true. Polled from here: the page's CSP forbids the
 * string evaluation that playwright's waitForFunction does inside the page.
 */
async function until(page: Page, expr: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await page.evaluate<boolean>(expr))) {
    if (Date.now() > deadline) {
      const notice = await page.evaluate<string>(`document.querySelector("#notice")?.textContent`);
      throw new Error(`timed out waiting for: ${expr} (at ${page.url()}, notice: ${notice})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Selects message `id` on a list page, picks `action` and confirms it. */
async function actOnSelected(page: Page, id: string, action: string): Promise<void> {
  await page.locator(`input[name="ids"][value="${id}"]`).check();
  await page.locator('select[name="action"]').selectOption(action);
  await page.locator('button[name="scope"][value="ids"]').click();
  await page.locator("#confirm").waitFor({ state: "visible" });
  await page.locator("#confirm button.primary").click();
}

/** A delete of `id` posted by the page's own script (its CSRF token): the HTTP status. */
async function deleteFromPage(page: Page, id: string): Promise<number> {
  return await page.evaluate<number>(`(async () => {
    const csrf = document.querySelector('meta[name="dramatis-csrf"]').content;
    const body = new URLSearchParams({ _csrf: csrf, action: "delete", scope: "ids", ids: "${id}", confirm: "1" });
    return (await fetch("/actions/messages", { method: "POST", body, headers: { accept: "application/json" } })).status;
  })()`);
}

function cell(queue: string, key: string): string {
  return `[data-q="${queue}"][data-k="${key}"]`;
}

test(
  "overview: every state kept apart; counts and charts change without a reload",
  opts,
  async () => {
    await withBrowser({}, async (page, url, { source }) => {
      assert.equal((await page.goto(`${url}/`))!.status(), 200);
      const text = async (sel: string) => (await page.locator(sel).first().textContent())?.trim();
      assert.equal(await text(cell("emails", "ready")), "2");
      assert.equal(await text(cell("emails", "delayed")), "1");
      assert.equal(await text(cell("emails", "inFlight")), "1");
      assert.equal(await text(cell("emails", "dead")), "2");
      assert.equal(await text(cell("*", "dead")), "3");
      await mark(page);
      // Work happens: messages are processed and dead-lettered while the page stays open.
      for (let i = 0; i < 30; i++) {
        source.add({ queue: "emails", actor: "send_email", args: [`user${i}@example.com`] });
        const id = source.claim("emails", "w1")!;
        source.finish(id, i % 10 === 0 ? "dead" : "success", {
          durationMs: 20 + i * 10,
          error: i % 10 === 0 ? "SMTPError: 550" : undefined,
        });
        await new Promise((r) => setTimeout(r, 20));
      }
      await until(page, `document.querySelector('${cell("emails", "dead")}').textContent === "5"`);
      await until(page, `document.querySelectorAll('[data-chart="rates"] path').length >= 2`);
      await notReloaded(page);
      // This source has no events: the page polled /api/live (no event stream).
      assert.equal(await page.evaluate("document.body.dataset.events ?? null"), null);
      assert.equal(await page.evaluate("document.body.dataset.sse ?? null"), null);
      assert.ok(await page.locator(".badge.bad").count() >= 1, "no consumer badge on reports");
      await shot(page, "overview");
      // On a phone: nothing wider than the screen but the tables' own scroll boxes.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${url}/`);
      const overflow = await page.evaluate<number>(
        "document.documentElement.scrollWidth - window.innerWidth",
      );
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
      await shot(page, "overview-phone");
    });
  },
);

test("search by text, then bulk-requeue the dead letters of the search", opts, async () => {
  await withBrowser({}, async (page, url, { source, ids }) => {
    await page.goto(`${url}/`);
    await page.locator('header input[name="q"]').fill("timeout");
    await page.locator("header button").first().click();
    await page.locator("tbody tr").first().waitFor();
    assert.match(page.url(), /\/search\?q=timeout$/);
    assert.equal(await page.locator("tbody tr").count(), 2);
    await shot(page, "search");
    await mark(page);
    await page.locator('select[name="action"]').selectOption("requeue");
    await page.locator('button[name="scope"][value="query"]').click();
    const confirm = page.locator("#confirm");
    await confirm.waitFor({ state: "visible" });
    assert.match((await confirm.textContent())!, /Requeue: 2 messages \(dead, text "timeout"\)\?/);
    assert.equal(source.stateOf(ids.dead1), "dead"); // nothing before the confirmation
    await page.locator("#confirm button.primary").click();
    await until(page, `document.querySelector("#notice").textContent.includes("2 done")`);
    assert.equal(source.stateOf(ids.dead1), "ready");
    assert.equal(source.stateOf(ids.dead2), "ready");
    assert.equal(source.stateOf(ids.dead3), "dead");
    // The list was refreshed in place: the two now show as ready.
    await until(page, `document.querySelectorAll("tbody .st-ready").length === 2`);
    await notReloaded(page);
  });
});

test("cancel a running message: the queue's counts change without a reload", opts, async () => {
  await withBrowser({}, async (page, url, { source, ids }) => {
    await page.goto(`${url}/queues/emails?state=running`);
    const running = page.locator(`.tabs ${cell("emails", "inFlight")}`);
    assert.equal((await running.textContent())?.trim(), "1");
    await mark(page);
    await actOnSelected(page, ids.run1!, "cancel");
    await until(
      page,
      `document.querySelector('.tabs ${cell("emails", "inFlight")}').textContent === "0" &&
       document.querySelector('.tabs ${cell("emails", "dead")}').textContent === "3"`,
    );
    await notReloaded(page);
    assert.equal(source.stateOf(ids.run1), "dead");
    await page.goto(`${url}/queues/emails?state=dead`);
    await shot(page, "queue");
    // The message page shows it cancelled, with its attempt.
    await page.goto(`${url}/messages/${ids.run1}`);
    assert.match((await page.locator("dd.err").textContent())!, /Cancelled from the dashboard/);
    assert.match((await page.locator("table").textContent())!, /cancelled/);
    await page.goto(`${url}/messages/${ids.retrying}`);
    await shot(page, "message");
  });
});

test("workers and schedules; a schedule runs now from its page", opts, async () => {
  await withBrowser({}, async (page, url, { source }) => {
    await page.goto(`${url}/workers`);
    assert.match((await page.locator("table").textContent())!, /box-1[\s\S]*python dramatiq 2\.2/);
    await shot(page, "workers");
    await page.goto(`${url}/schedules`);
    const before = source.size;
    await page.locator('button[value="run-now"]').first().click();
    await until(page, `document.querySelector("#notice").textContent.includes("1 done")`);
    assert.equal(source.size, before + 1);
    await shot(page, "schedules");
  });
});

test("read-only: no action anywhere, and a write from the page is refused", opts, async () => {
  await withBrowser({ readOnly: true }, async (page, url, { source, ids }) => {
    for (const path of ["/", "/queues/emails?state=dead", `/messages/${ids.dead1}`, "/schedules"]) {
      await page.goto(url + path);
      assert.equal(await page.locator('form[action*="/actions/"]').count(), 0, path);
    }
    const status = await deleteFromPage(page, ids.dead1!);
    assert.equal(status, 403);
    assert.equal(source.stateOf(ids.dead1), "dead");
    await shot(page, "read-only");
  });
});

test(
  "token: refused without it; the login form refuses a wrong one and lets the right one in",
  opts,
  async () => {
    const token = "browser-token-0123456789";
    await withBrowser({ token }, async (page, url) => {
      const res = await page.goto(`${url}/queues/emails`);
      assert.equal(res!.status(), 401);
      assert.equal(await page.locator("tbody").count(), 0);
      await page.locator('input[name="token"]').fill("wrong-token");
      await page.locator("form.login button").click();
      await page.locator("form.login .err").waitFor();
      assert.match((await page.locator("form.login .err").textContent())!, /Wrong token/);
      await shot(page, "login");
      await page.locator('input[name="token"]').fill(token);
      await page.locator("form.login button").click();
      await page.locator("h1").first().waitFor();
      await until(page, `location.pathname === "/queues/emails"`);
      assert.match((await page.locator("h1").first().textContent())!, /Queue emails/);
      // The page's own polls carry the session cookie.
      const live = await page.evaluate<Promise<number>>(
        `fetch("/api/live").then((r) => r.status)`,
      );
      assert.equal(live, 200);
    });
  },
);

// ---- the same on a real FileBroker, with a real Worker running a message ----

/** A fresh Chromium on a served dashboard over a FileBroker holding messages in every state. */
async function withFileBroker(
  options: DashboardOptions,
  fn: (
    page: Page,
    url: string,
    f: { broker: FileBroker; ids: Record<string, string> },
  ) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-dash-browser-"));
  const broker = new FileBroker({ dir: join(dir, "broker") });
  const { ids, consumer } = await populate(broker, "emails", "reports");
  const server = await serveHttp(
    "127.0.0.1",
    0,
    dashboardHandler(broker, { refreshMs: 250, ...options }),
  );
  const context = await chromium!.launchPersistentContext(join(dir, "chromium"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
    viewport: { width: 1280, height: 800 },
  });
  const errors: string[] = [];
  try {
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(String(e.message)));
    await fn(page, `http://127.0.0.1:${server.port}`, { broker, ids });
    assert.deepEqual(errors, [], "no script error on the page");
  } finally {
    await context.close();
    await server.close();
    await consumer.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test(
  "FileBroker: the overview keeps every state apart; search by text; bulk requeue of its dead letters",
  opts,
  async () => {
    await withFileBroker({}, async (page, url, { broker, ids }) => {
      assert.equal((await page.goto(`${url}/`))!.status(), 200);
      const text = async (sel: string) => (await page.locator(sel).first().textContent())?.trim();
      assert.equal(await text(cell("emails", "ready")), "2");
      assert.equal(await text(cell("reports", "delayed")), "1");
      assert.equal(await text(cell("emails", "inFlight")), "1");
      assert.equal(await text(cell("emails", "dead")), "2");
      await shot(page, "file-overview");
      await mark(page);
      // A message sent by another producer shows up without a reload, pushed over the page's
      // event stream (/api/events), not polled from /api/live.
      await until(page, `Number(document.body.dataset.sse) >= 1`);
      const requests: string[] = [];
      page.on("request", (r) => requests.push(new URL(r.url!()).pathname));
      await broker.enqueue(
        new Message({ queueName: "emails", actorName: "send_email", args: ["x"] }),
      );
      await until(page, `document.querySelector('${cell("emails", "ready")}').textContent === "3"`);
      await notReloaded(page);
      assert.deepEqual(requests.filter((p) => p.startsWith("/api/")), [], "the page polled");
      await page.locator('header input[name="q"]').fill("timeout");
      await page.locator("header button").first().click();
      await page.locator("tbody tr").first().waitFor();
      assert.equal(await page.locator("tbody tr").count(), 2);
      await shot(page, "file-search");
      await mark(page);
      await page.locator('select[name="action"]').selectOption("requeue");
      await page.locator('button[name="scope"][value="query"]').click();
      const confirm = page.locator("#confirm");
      await confirm.waitFor({ state: "visible" });
      assert.match((await confirm.textContent())!, /Requeue: 2 messages/);
      assert.equal((await broker.stats("emails")).dead, 2); // nothing before the confirmation
      await page.locator("#confirm button.primary").click();
      await until(page, `document.querySelector("#notice").textContent.includes("2 done")`);
      const s = await broker.stats("emails");
      assert.deepEqual([s.dead, s.ready], [0, 5]);
      assert.equal((await broker.findMessage(ids.dead1!))?.state, "ready");
      assert.equal((await broker.stats("reports")).dead, 1);
      await until(page, `document.querySelectorAll("tbody .st-ready").length === 2`);
      await notReloaded(page);
    });
  },
);

test(
  "FileBroker: cancel a message a real Worker runs; the counts change without a reload",
  opts,
  async () => {
    await withFileBroker({}, async (page, url, { broker }) => {
      let started = 0, aborted = 0;
      const slow = actor(async function slow_job() {
        started++;
        const signal = currentSignal();
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
        aborted++;
      }, { broker, queueName: "jobs", maxRetries: 0 });
      const worker = new Worker(broker, { queues: ["jobs"], workerTimeout: 50, cancelPoll: 100 });
      await worker.start();
      try {
        const m = await slow.send();
        const deadline = Date.now() + 10_000;
        while (started === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.equal(started, 1);
        await page.goto(`${url}/queues/jobs?state=running`);
        const running = page.locator(`.tabs ${cell("jobs", "inFlight")}`);
        assert.equal((await running.textContent())?.trim(), "1");
        await mark(page);
        await actOnSelected(page, m.messageId, "cancel");
        await until(
          page,
          `document.querySelector("#notice").textContent.includes("1 asked of their worker")`,
        );
        await until(
          page,
          `document.querySelector('.tabs ${cell("jobs", "inFlight")}').textContent === "0"`,
        );
        await notReloaded(page);
        assert.equal(aborted, 1, "the actor saw its signal abort");
        // The worker's "cancelled" event reached the page over its event stream.
        await until(page, `Number(document.body.dataset.sseEvents) >= 1`);
        await shot(page, "file-cancelled");
      } finally {
        await worker.stop({ timeout: 2_000 });
      }
    });
  },
);

test("FileBroker: read-only refuses writes; a token is required", opts, async () => {
  await withFileBroker({ readOnly: true }, async (page, url, { broker, ids }) => {
    await page.goto(`${url}/queues/emails?state=dead`);
    assert.equal(await page.locator('form[action*="/actions/"]').count(), 0);
    const status = await deleteFromPage(page, ids.dead1!);
    assert.equal(status, 403);
    assert.equal((await broker.findMessage(ids.dead1!))?.state, "dead");
  });
  const token = "file-browser-token-0123456789";
  await withFileBroker({ token }, async (page, url) => {
    assert.equal((await page.goto(`${url}/`))!.status(), 401);
    await page.locator('input[name="token"]').fill("wrong-token");
    await page.locator("form.login button").click();
    await page.locator("form.login .err").waitFor();
    await page.locator('input[name="token"]').fill(token);
    await page.locator("form.login button").click();
    await until(page, `document.querySelector('${cell("emails", "dead")}')?.textContent === "2"`);
  });
});
