// `dramatis dashboard` as a real child process on the file broker: loopback unless told, a
// token required on any other address (refused with one line and exit 64 without it), the
// read-only mode refusing writes, actions logged, and `dramatis worker --dashboard ADDR`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FileBroker } from "../broker/file/broker.ts";
import { Message } from "../message.ts";
import { cleanup, e2e, oneLine, runCli, setup, signal, startCli, until } from "./_cli.ts";
import { join } from "node:path";

function urlOf(log: string): string | undefined {
  return /Dashboard of the .*: (http:\/\/\S+?)\/[ .]/.exec(log)?.[1];
}

/** POSTs `fields` to `path` as the dashboard's page does: its CSRF cookie and token. */
async function post(url: string, path: string, fields: Record<string, string>): Promise<Response> {
  const page = await fetch(`${url}/`);
  const html = await page.text();
  const csrf = /name="dramatis-csrf" content="([^"]+)"/.exec(html)![1]!;
  const cookie = page.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
  return await fetch(`${url}${path}`, {
    method: "POST",
    headers: {
      cookie,
      origin: url,
      accept: "application/json",
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ _csrf: csrf, ...fields }),
  });
}

test(
  "dramatis dashboard: loopback by default; actions work and are logged; INT stops it",
  e2e,
  async () => {
    const e = setup();
    const broker = new FileBroker({ dir: join(e.dir, "broker") });
    try {
      broker.declareQueue("mail");
      const m = await broker.enqueue(new Message({ queueName: "mail", actorName: "send" }), {
        delay: 3_600_000,
      });
      const r = startCli(e, ["dashboard", "--listen", ":0"]);
      e.running.push(r.proc);
      await until("the dashboard to listen", () => urlOf(r.log()) !== undefined, 20_000, r.log);
      const url = urlOf(r.log())!;
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const overview = await (await fetch(`${url}/api/overview`)).json();
      assert.equal(
        overview.queues.find((q: { queueName: string }) => q.queueName === "mail").delayed,
        1,
      );
      const res = await post(url, "/actions/messages", {
        action: "run-now",
        scope: "ids",
        ids: m.messageId,
        confirm: "1",
      });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal((await res.json()).done, 1);
      assert.equal((await broker.stats("mail")).ready, 1);
      await until("the action in the log", () => /run-now of message/.test(r.log()), 5_000, r.log);
      signal(r, "SIGINT");
      assert.equal(await r.exited, 0, r.log());
    } finally {
      await broker.close();
      cleanup(e);
    }
  },
);

test("dramatis dashboard: any other address needs a token (exit 64, one line)", e2e, async () => {
  const e = setup();
  try {
    const refused = await runCli(e, ["dashboard", "--listen", "0.0.0.0:0"]);
    oneLine(refused, 64, /--listen 0\.0\.0\.0:0 is not a loopback address: pass --token T/);
    const bad = await runCli(e, ["dashboard", "--listen", "nowhere"]);
    oneLine(bad, 64, /--listen "nowhere": expected HOST:PORT/);
    const token = "cli-token-0123456789abcdef";
    const r = startCli(e, ["dashboard", "--listen", "0.0.0.0:0", "--token", token]);
    e.running.push(r.proc);
    await until("the dashboard to listen", () => urlOf(r.log()) !== undefined, 20_000, r.log);
    const url = urlOf(r.log())!.replace("0.0.0.0", "127.0.0.1");
    assert.equal((await fetch(`${url}/api/overview`)).status, 401);
    const ok = await fetch(`${url}/api/overview`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    signal(r, "SIGTERM");
    assert.equal(await r.exited, 0, r.log());
  } finally {
    cleanup(e);
  }
});

test("dramatis dashboard --read-only: writes are refused with 403", e2e, async () => {
  const e = setup();
  const broker = new FileBroker({ dir: join(e.dir, "broker") });
  try {
    broker.declareQueue("mail");
    await broker.enqueue(new Message({ queueName: "mail", actorName: "send" }));
    const r = startCli(e, ["dashboard", "--listen", "127.0.0.1:0", "--read-only"]);
    e.running.push(r.proc);
    await until("the dashboard to listen", () => urlOf(r.log()) !== undefined, 20_000, r.log);
    const url = urlOf(r.log())!;
    const res = await post(url, "/actions/queues", {
      action: "purge",
      queue: "mail",
      confirm: "1",
    });
    assert.equal(res.status, 403);
    await res.body?.cancel();
    assert.equal((await broker.stats("mail")).ready, 1);
    signal(r, "SIGINT");
    assert.equal(await r.exited, 0, r.log());
  } finally {
    await broker.close();
    cleanup(e);
  }
});

test("dramatis worker --dashboard ADDR serves the dashboard beside the workers", e2e, async () => {
  const e = setup();
  try {
    const refused = await runCli(e, ["worker", e.tasks, "--dashboard", "0.0.0.0:0"]);
    oneLine(refused, 64, /--dashboard 0\.0\.0\.0:0 is not a loopback address/);
    const r = startCli(e, ["worker", e.tasks, "-p", "1", "-t", "1", "--dashboard", ":0"]);
    e.running.push(r.proc);
    await until("the dashboard to listen", () => urlOf(r.log()) !== undefined, 30_000, r.log);
    const res = await fetch(`${urlOf(r.log())}/api/overview`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    signal(r, "SIGTERM");
    assert.equal(await r.exited, 0, r.log());
  } finally {
    cleanup(e);
  }
});
