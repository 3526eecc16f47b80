// Shared by the dashboard's tests: a source with messages in every state, a client that keeps
// cookies and the CSRF token the way a browser does, and a real server on a free port.
import {
  dashboardHandler,
  type DashboardOptions,
  MemoryDashboardSource,
} from "../dashboard/mod.ts";
import type { DashboardSource } from "../dashboard/mod.ts";

/** The fixture's first timestamp: a day ago, whole seconds. */
export const T0 = Math.floor(Date.now() / 1000) * 1000 - 86_400_000;

/** Ids of the fixture's messages by role. */
export interface Fixture {
  source: MemoryDashboardSource;
  ids: Record<string, string>;
}

/**
 * Queues emails and reports: 3 ready, 2 delayed (one a retry), 2 running, 3 dead (two with a
 * timeout), 2 done; two workers, two schedules, metrics.
 */
export function fixture(): Fixture {
  const source = new MemoryDashboardSource({ name: "test source" });
  const ids: Record<string, string> = {};
  let t = T0;
  const add = (key: string, ...a: Parameters<MemoryDashboardSource["add"]>) => {
    a[0] = { timestamp: t += 1000, ...a[0] };
    ids[key] = source.add(...a);
  };
  add("ready1", { queue: "emails", actor: "send_email", args: ["alice@example.com", "Welcome"] });
  add("ready2", { queue: "emails", actor: "send_email", args: ["bob@example.org", "Invoice 12"] });
  add("ready3", { queue: "reports", actor: "build_report", args: [{ month: "2026-11" }] });
  add("delayed1", { queue: "reports", actor: "build_report", args: [{ month: "2026-12" }] }, {
    state: "delayed",
    eta: Date.now() + 3_600_000,
  });
  add("retrying", {
    queue: "emails",
    actor: "send_email",
    args: ["carol@example.net", "Reminder"],
    options: { retries: 1 },
  }, { state: "delayed", eta: Date.now() + 60_000, error: "SMTPError: 421 try later" });
  add("run1", { queue: "emails", actor: "send_email", args: ["dave@example.com", "Hi"] }, {
    state: "running",
    workerId: "w1",
  });
  add("run2", { queue: "reports", actor: "build_report", args: [{ month: "2026-10" }] }, {
    state: "running",
    workerId: "w2",
  });
  add("dead1", { queue: "emails", actor: "send_email", args: ["erin@example.com", "Hello"] }, {
    state: "dead",
    error: "TimeoutError: SMTP server did not answer",
  });
  add("dead2", { queue: "emails", actor: "send_email", args: ["frank@example.com", "Hello"] }, {
    state: "dead",
    error: "TimeoutError: SMTP server did not answer",
  });
  add("dead3", { queue: "reports", actor: "build_report", args: [{ month: "2026-09" }] }, {
    state: "dead",
    error: "ValueError: no data",
  });
  add("done1", { queue: "emails", actor: "send_email", args: ["gina@example.com", "Bye"] }, {
    state: "done",
    result: { sent: true },
  });
  add("done2", { queue: "reports", actor: "build_report", args: [{ month: "2026-08" }] }, {
    state: "done",
    result: 42,
  });
  const now = Date.now();
  source.setWorker({
    workerId: "w1",
    host: "box-1",
    pid: 101,
    runtime: "deno 2.9.6",
    queues: ["emails"],
    slots: 4,
    busy: 0,
    lastSeen: now,
  });
  source.setWorker({
    workerId: "w2",
    host: "box-2",
    pid: 202,
    runtime: "python dramatiq 2.2",
    queues: ["reports"],
    slots: 2,
    busy: 0,
    lastSeen: now - 120_000,
  });
  source.setSchedule({
    name: "nightly",
    actor: "build_report",
    queue: "reports",
    spec: "0 3 * * *",
    nextAt: now + 3_600_000,
    lastAt: null,
    paused: false,
  });
  source.setSchedule({
    name: "digest",
    actor: "send_email",
    queue: "emails",
    spec: "*/15 * * * *",
    nextAt: null,
    lastAt: now - 60_000,
    paused: true,
  });
  return { source, ids };
}

type Handler = ReturnType<typeof dashboardHandler>;

/** A browser-like client of a handler: keeps cookies, reads the CSRF token off the pages. */
export class Client {
  readonly jar = new Map<string, string>();
  csrf = "";
  constructor(readonly handler: Handler, readonly origin = "http://127.0.0.1:8181") {}

  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.jar.size) {
      headers.set(
        "cookie",
        [...this.jar].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("; "),
      );
    }
    const res = await this.handler(new Request(this.origin + path, { ...init, headers }));
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const eq = pair.indexOf("=");
      const value = decodeURIComponent(pair.slice(eq + 1));
      if (/Max-Age=0/.test(c)) this.jar.delete(pair.slice(0, eq));
      else this.jar.set(pair.slice(0, eq), value);
    }
    return res;
  }

  /** GET a page; remembers its CSRF token. */
  async page(
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; html: string; res: Response }> {
    const res = await this.request(path, { headers });
    const html = await res.text();
    const m = /name="dramatis-csrf" content="([^"]+)"/.exec(html);
    if (m) this.csrf = m[1];
    return { status: res.status, html, res };
  }

  /** GET JSON. */
  async json<T = Record<string, unknown>>(
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: T }> {
    const res = await this.request(path, { headers: { accept: "application/json", ...headers } });
    return { status: res.status, body: await res.json() as T };
  }

  /** POST a form as the page's script does (JSON answer), with the CSRF token unless `csrf: false`. */
  async post(
    path: string,
    fields: [string, string][] | Record<string, string>,
    options: { csrf?: boolean; headers?: Record<string, string>; html?: boolean } = {},
  ): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
    const body = new URLSearchParams(Array.isArray(fields) ? fields : Object.entries(fields));
    if (options.csrf !== false && this.csrf) body.set("_csrf", this.csrf);
    const res = await this.request(path, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        accept: options.html ? "text/html" : "application/json",
        origin: this.origin,
        ...options.headers,
      },
    });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text);
    } catch { /* HTML */ }
    return { status: res.status, body: parsed, text };
  }
}

/** A client with the CSRF token of the overview page. */
export async function client(
  source: DashboardSource,
  options: DashboardOptions = {},
): Promise<Client> {
  const c = new Client(dashboardHandler(source, options));
  await c.page("/");
  return c;
}

/** A real HTTP server on 127.0.0.1 and a free port (Deno.serve or Bun.serve). */
export async function serve(handler: Handler): Promise<{ url: string; stop(): Promise<void> }> {
  const deno = (globalThis as {
    Deno?: {
      serve(
        o: { hostname: string; port: number; onListen(a: { port: number }): void },
        h: Handler,
      ): { shutdown(): Promise<void> };
    };
  }).Deno;
  if (deno) {
    let server!: { shutdown(): Promise<void> };
    const port = await new Promise<number>((resolve) => {
      server = deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: (a) => resolve(a.port) },
        handler,
      );
    });
    return { url: `http://127.0.0.1:${port}`, stop: () => server.shutdown() };
  }
  const bun = (globalThis as unknown as {
    Bun: {
      serve(
        o: { hostname: string; port: number; fetch: Handler },
      ): { port: number; stop(force?: boolean): Promise<void> };
    };
  }).Bun;
  const s = bun.serve({ hostname: "127.0.0.1", port: 0, fetch: handler });
  return { url: `http://127.0.0.1:${s.port}`, stop: () => s.stop(true) };
}
