/**
 * `dashboardHandler(source, options)`: the dashboard as a `(req: Request) => Promise<Response>`
 * for Deno.serve, Bun.serve, Hono or any server built on the Web `Request`. Server-rendered HTML
 * with a small script (no dependency, no CDN), a JSON twin of every page under `/api/`, and
 * actions behind a token, CSRF protection and an optional read-only mode.
 *
 * @example
 * ```ts
 * import { dashboardHandler } from "./handler.ts";
 * import { MemoryDashboardSource } from "./memory.ts";
 * const handler = dashboardHandler(new MemoryDashboardSource(), { token: "s3cret-token-123456" });
 * // Deno.serve({ hostname: "127.0.0.1", port: 8181 }, handler);
 * // Bun.serve({ hostname: "127.0.0.1", port: 8181, fetch: handler });
 * const res = await handler(new Request("http://127.0.0.1:8181/api/overview", {
 *   headers: { authorization: "Bearer s3cret-token-123456" },
 * }));
 * console.log(res.status); // 200
 * ```
 * @module
 */
import type { WireMessage } from "../message.ts";
import { Broker } from "../broker/broker.ts";
import { getLogger } from "../util/log.ts";
import { brokerSource, type BrokerSourceOptions } from "./broker_source.ts";
import { MetricsSampler } from "./_live.ts";
import {
  cookies,
  crossSite,
  CSRF_COOKIE,
  CSRF_FIELD,
  CSRF_HEADER,
  mintCsrf,
  randomSecret,
  safeEqual,
  SESSION_COOKIE,
  setCookie,
  Signer,
  validCsrf,
} from "./_auth.ts";
import { CSS, JS } from "./_assets.ts";
import { BadParam, parseQuery } from "./_params.ts";
import {
  ACTION_LABEL,
  type Ctx,
  errorPage,
  type Got,
  link,
  listPage,
  loginPage,
  messageBox,
  messagePage,
  oldest,
  overviewPage,
  schedulesPage,
  workersPage,
} from "./_render.ts";
import {
  ACTION_STATES,
  type ActionResult,
  type DashboardSource,
  DashboardUnsupported,
  type MessageAction,
  type MessageDetail,
  type MessagePage,
  type MessageQuery,
  type MessageState,
  type QueueAction,
  type QueueOverview,
  type ScheduleAction,
  type WorkerInfo,
} from "./source.ts";

const logger = getLogger("dramatis.dashboard");

/**
 * What `options.authorize` grants a request: `readOnly` hides and refuses the writes for it,
 * `user` names it in the action log.
 *
 * @example
 * ```ts
 * import type { DashboardAccess } from "./handler.ts";
 * const viewer: DashboardAccess = { readOnly: true, user: "alice" };
 * ```
 */
export interface DashboardAccess {
  /** Refuse this request's writes (and hide their buttons). */
  readOnly?: boolean;
  /** Who it is, for the log of actions. */
  user?: string;
}

/**
 * Options of `dashboardHandler`.
 *
 * @example
 * ```ts
 * import type { DashboardOptions } from "./handler.ts";
 * const o: DashboardOptions = {
 *   prefix: "/dashboard",
 *   token: "a-long-random-token",
 *   redact: (m) => ({ ...m, args: m.args.map(() => "***"), kwargs: {} }),
 * };
 * ```
 */
export interface DashboardOptions extends Omit<BrokerSourceOptions, "name"> {
  /** The path it is mounted under (`/dashboard`); default the root. */
  prefix?: string;
  /** The title in the header and the tab (default `dramatis`). */
  title?: string;
  /**
   * Refuse every write with 403 and hide the buttons. Pages and searches still work.
   */
  readOnly?: boolean;
  /**
   * Require this token: `Authorization: Bearer TOKEN`, or a session cookie set by the login form
   * (it holds an HMAC of the token, never the token). Without it: 401.
   */
  token?: string;
  /**
   * Checks each request (after the token): false refuses it with 403; a `DashboardAccess` can
   * make it read-only and name its user. For a reverse proxy's user header, an IP allow list...
   */
  authorize?(
    req: Request,
  ): boolean | DashboardAccess | Promise<boolean | DashboardAccess>;
  /**
   * Rewrites each message before it is shown (HTML and JSON), for arguments that hold personal
   * data. When set, results are hidden and the text search looks in errors only (a search on
   * arguments would tell whether a value is there), unless `searchRedactedArgs`.
   */
  redact?(message: WireMessage): WireMessage;
  /** With `redact`, still search the text of the arguments (default false). */
  searchRedactedArgs?: boolean;
  /** How often the page asks for fresh counts and chart points, in ms (default 2000). */
  refreshMs?: number;
  /** A worker whose heartbeat is older than this (ms) is flagged (default 60,000). */
  heartbeatTimeoutMs?: number;
  /** Signs the CSRF tokens (default: random per handler, so a restart asks for a reload). */
  secret?: string;
}

/**
 * What Deno.serve (its `info`) and Bun.serve (its server) pass as a handler's second argument:
 * the dashboard reads the client's address from it, for the log of actions.
 *
 * @example
 * ```ts
 * import type { ServeInfo } from "./handler.ts";
 * const info: ServeInfo = { remoteAddr: { hostname: "127.0.0.1" } };
 * ```
 */
export type ServeInfo =
  | { remoteAddr?: { hostname?: string } }
  | { requestIP?(req: Request): { address: string } | null }
  | undefined;

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
};

const HTML = "text/html; charset=utf-8";
const JSON_TYPE = "application/json; charset=utf-8";
const TEXT = "text/plain; charset=utf-8";
const DESTRUCTIVE: readonly MessageAction[] = ["delete", "cancel"];
const MAX_IDS = 10_000;
const ASSET_VERSION = hash(CSS + JS);

function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

interface Req {
  req: Request;
  url: URL;
  path: string;
  json: boolean;
  ctx: Ctx;
  who: string;
  bearer: boolean;
  setCookies: string[];
}

/**
 * Builds the dashboard's request handler over `source`: a `DashboardSource`, or a `Broker`
 * (wrapped in `brokerSource(broker, options)`, which takes `results`, `scanLimit` and
 * `schedules` from the options). Routes (under `options.prefix`):
 * `/` overview, `/queues/NAME?state=`, `/search?q=&id=&actor=&queue=&state=&from=&to=&in=`,
 * `/messages/ID`, `/workers`, `/schedules`, the same under `/api/` as JSON, `/api/live` (counts
 * and chart points for the page's poll), `POST /actions/{messages,queues,schedules}`, `/login`,
 * `/logout`. Bulk actions answer a count first and act on `confirm=1`; each action is logged at
 * INFO by the `dramatis.dashboard` logger.
 *
 * @example
 * ```ts
 * import { dashboardHandler, MemoryDashboardSource } from "./mod.ts";
 * const source = new MemoryDashboardSource();
 * source.add({ queue: "emails", actor: "send_email", args: ["a@example.com"] });
 * const handler = dashboardHandler(source, { readOnly: true });
 * const res = await handler(new Request("http://127.0.0.1:8181/search?q=example"));
 * console.log(res.status, res.headers.get("content-type")); // 200 text/html; charset=utf-8
 * ```
 */
export function dashboardHandler(
  sourceOrBroker: DashboardSource | Broker,
  options: DashboardOptions = {},
): (req: Request, info?: ServeInfo) => Promise<Response> {
  const source = sourceOrBroker instanceof Broker
    ? brokerSource(sourceOrBroker, options)
    : sourceOrBroker;
  const base = (options.prefix ?? "").replace(/\/+$/, "");
  if (base && !base.startsWith("/")) {
    throw new TypeError(
      `dashboardHandler: prefix must start with "/", got ${JSON.stringify(options.prefix)}.`,
    );
  }
  if (options.token !== undefined && options.token.length === 0) {
    throw new TypeError(
      "dashboardHandler: token is empty: pass a long random string, or no token.",
    );
  }
  const refreshMs = options.refreshMs ?? 2000;
  if (!(refreshMs >= 100)) {
    throw new TypeError(`dashboardHandler: refreshMs must be at least 100, got ${refreshMs}.`);
  }
  const csrfSigner = new Signer(options.secret ?? randomSecret());
  const sessionValue = options.token === undefined
    ? undefined
    : new Signer(options.token).sign("dramatis-dashboard-session");
  const sampler = new MetricsSampler(refreshMs);
  const states = source.states ?? ["ready", "delayed", "running", "dead"];
  const actions = (source.actions ?? Object.keys(ACTION_STATES) as MessageAction[])
    .filter((a) => ACTION_STATES[a].some((s) => states.includes(s)));
  const queueActions = source.queueActions ?? ["pause", "resume", "purge"];
  const heartbeatMs = options.heartbeatTimeoutMs ?? 60_000;

  async function call<T>(fn: (() => Promise<T>) | undefined, what: string): Promise<Got<T>> {
    if (!fn) return { unsupported: `(The source has no ${what}.)` };
    try {
      return { ok: await fn() };
    } catch (e) {
      if (e instanceof DashboardUnsupported) return { unsupported: e.message };
      throw e;
    }
  }

  function redactSummary<T extends { message: WireMessage }>(s: T): T {
    if (!options.redact) return s;
    return { ...s, message: options.redact(structuredClone(s.message)) };
  }

  function redactDetail(d: MessageDetail): MessageDetail {
    if (!options.redact) return d;
    const out = redactSummary(d);
    if (out.result?.status === "ok") out.result = { status: "ok" };
    return out;
  }

  async function sample(now: number): Promise<Got<ReturnType<MetricsSampler["points"]>>> {
    if (!source.metrics) return { unsupported: "(The source has no metrics().)" };
    if (sampler.due(now)) {
      const got = await call(() => source.metrics!(), "metrics()");
      if ("unsupported" in got) return got;
      sampler.add(got.ok);
    }
    return { ok: [] };
  }

  async function overview(now: number): Promise<{
    queues: QueueOverview[];
    workers: Got<readonly WorkerInfo[]>;
  }> {
    const [queues, workers] = await Promise.all([
      source.queues(),
      call(source.workers && (() => source.workers!()), "workers()"),
    ]);
    const live = "ok" in workers
      ? workers.ok.filter((w) => now - w.lastSeen <= heartbeatMs)
      : undefined;
    return {
      queues: queues.map((q) =>
        q.consumers !== undefined || !live
          ? q
          : { ...q, consumers: live.filter((w) => w.queues?.includes(q.queueName)).length }
      ),
      workers,
    };
  }

  function queryOf(r: Req, params: URLSearchParams): MessageQuery {
    const q = parseQuery(params, states, r.ctx.now);
    if (q.text && options.redact && !options.searchRedactedArgs) q.textIn = "error";
    return q;
  }

  async function page(query: MessageQuery): Promise<Got<MessagePage>> {
    const got = await call(source.messages && (() => source.messages!(query)), "messages()");
    if ("ok" in got) got.ok = { ...got.ok, messages: got.ok.messages.map(redactSummary) };
    return got;
  }

  // ---- GET routes ----

  async function get(r: Req): Promise<Response> {
    const { path, ctx } = r;
    const api = path.startsWith("/api/");
    const p = api ? path.slice(4) : path;
    const json = api || r.json;
    if (p === "/live" && api) return live(r);
    if (p === "/" || p === "/overview") {
      const [{ queues, workers }, got] = await Promise.all([overview(ctx.now), sample(ctx.now)]);
      const points = "ok" in got ? { ok: sampler.points() } : got;
      if (json) return send(r, 200, { queues, workers: unwrap(workers), points: unwrap(points) });
      return html(r, 200, overviewPage(ctx, queues, points, workers));
    }
    if (p === "/search" || p.startsWith("/queues/")) {
      const params = new URLSearchParams(r.url.searchParams);
      const { queues } = await overview(ctx.now);
      let queue: QueueOverview | undefined;
      if (p.startsWith("/queues/")) {
        const name = decodeURIComponent(p.slice(8));
        queue = queues.find((q) => q.queueName === name);
        if (!queue) throw new HttpError(404, `No queue named ${JSON.stringify(name)}.`);
        params.set("queue", name);
      }
      const query = queryOf(r, params);
      const got = await page(query);
      if (json) return send(r, 200, unwrap(got));
      return html(
        r,
        200,
        listPage(ctx, {
          title: queue ? `Queue ${queue.queueName}` : "Search",
          active: queue ? "" : "/search",
          query,
          page: got,
          queue,
          queues,
        }),
      );
    }
    if (p.startsWith("/messages/")) {
      const id = decodeURIComponent(p.slice(10));
      const got = await call(source.message && (() => source.message!(id)), "message()");
      if ("unsupported" in got) {
        if (json) return send(r, 501, { error: got.unsupported });
        return html(r, 501, errorPage(ctx, "Not supported", got.unsupported));
      }
      if (!got.ok) {
        throw new HttpError(
          404,
          `No message with id ${id} (it may have finished and not be kept).`,
        );
      }
      const d = redactDetail(got.ok);
      if (json) return send(r, 200, d);
      return html(r, 200, messagePage(ctx, d, !!options.redact));
    }
    if (p === "/workers") {
      const got = await call(source.workers && (() => source.workers!()), "workers()");
      if (json) return send(r, 200, unwrap(got));
      return html(r, 200, workersPage(ctx, got));
    }
    if (p === "/schedules") {
      const got = await call(source.schedules && (() => source.schedules!()), "schedules()");
      if (json) return send(r, 200, unwrap(got));
      return html(r, 200, schedulesPage(ctx, got));
    }
    throw new HttpError(404, `No page at ${r.url.pathname}.`);
  }

  async function live(r: Req): Promise<Response> {
    const now = r.ctx.now;
    const since = Number(r.url.searchParams.get("since") ?? 0) || 0;
    const id = r.url.searchParams.get("id");
    const [{ queues }, got, msg] = await Promise.all([
      overview(now),
      sample(now),
      id && source.message ? source.message(id).catch(() => null) : Promise.resolve(null),
    ]);
    const totals = { queueName: "*", ready: 0, delayed: 0, inFlight: 0, dead: 0 };
    const out = queues.map((q) => {
      totals.ready += q.ready;
      totals.delayed += q.delayed;
      totals.inFlight += q.inFlight;
      totals.dead += q.dead;
      return {
        queueName: q.queueName,
        ready: q.ready,
        delayed: q.delayed,
        inFlight: q.inFlight,
        dead: q.dead,
        oldest: oldest(q, now),
        consumers: q.consumers ?? "?",
      };
    });
    return send(r, 200, {
      t: now,
      queues: out,
      totals,
      points: "ok" in got ? sampler.points(since) : [],
      message: id ? (msg ? { state: msg.state } : { state: "gone" }) : undefined,
    });
  }

  // ---- POST routes ----

  function post(r: Req, fields: URLSearchParams): Promise<Response> {
    if (r.path === "/actions/messages") return messageAction(r, fields);
    if (r.path === "/actions/queues") return queueAction(r, fields);
    if (r.path === "/actions/schedules") return scheduleAction(r, fields);
    throw new HttpError(404, `No action at ${r.url.pathname}.`);
  }

  function outcome(r: Req, title: string, res: ActionResult, back: string): Response {
    const text = `${title}: ${res.done} done, ${res.skipped} skipped` +
      (res.pending ? `, ${res.pending} asked of their worker` : "") + ".";
    if (r.json) return send(r, 200, { step: "done", ...res, text });
    return html(r, 200, messageBox(r.ctx, title, text, undefined, back));
  }

  function confirmStep(
    r: Req,
    title: string,
    text: string,
    count: number,
    fields: URLSearchParams,
    back: string,
  ): Response {
    const asOf = r.ctx.now;
    if (r.json) return send(r, 200, { step: "confirm", count, asOf, text });
    const keep = [...fields].filter(([k]) => k !== CSRF_FIELD && k !== "confirm");
    keep.push(["asOf", String(asOf)], ["expected", String(count)]);
    return html(
      r,
      200,
      messageBox(r.ctx, title, text, { action: link(r.ctx, r.path), fields: keep }, back),
    );
  }

  function backUrl(r: Req, fields: URLSearchParams): string {
    const ref = fields.get("back");
    return ref && ref.startsWith(base + "/") && !ref.startsWith("//") ? ref : link(r.ctx, "/");
  }

  async function messageAction(r: Req, fields: URLSearchParams): Promise<Response> {
    if (!source.act) {
      throw new HttpError(501, "This broker cannot act on messages (the source has no act()).");
    }
    const action = fields.get("action") as MessageAction;
    if (!actions.includes(action)) {
      throw new HttpError(
        400,
        `action: expected one of ${actions.join(", ")}, got ${
          JSON.stringify(fields.get("action"))
        }.`,
      );
    }
    const target = fields.get("target")?.trim() || undefined;
    if (action === "move" && !target) {
      throw new HttpError(400, "target: name the queue to move the messages to.");
    }
    const label = ACTION_LABEL[action];
    const confirmed = fields.get("confirm") === "1";
    const back = backUrl(r, fields);
    const scope = fields.get("scope") ?? (fields.has("ids") ? "ids" : "query");
    if (scope === "ids") {
      const ids = [
        ...new Set(
          fields.getAll("ids").flatMap((v) => v.split(",")).map((s) => s.trim()).filter(Boolean),
        ),
      ];
      if (!ids.length) throw new HttpError(400, "ids: select at least one message.");
      if (ids.length > MAX_IDS) {
        throw new HttpError(400, `ids: at most ${MAX_IDS} at once; act on the search instead.`);
      }
      if (!confirmed && (ids.length > 1 || DESTRUCTIVE.includes(action))) {
        const text = `${label}${target ? ` to ${target}` : ""}: ${ids.length} selected message${
          ids.length === 1 ? "" : "s"
        }?`;
        return confirmStep(r, label, text, ids.length, fields, back);
      }
      const res = await source.act({ action, ids, target });
      logger.info(
        `${r.who}: ${action}${target ? ` to ${target}` : ""} of ${
          ids.length === 1 ? `message ${ids[0]}` : `${ids.length} selected messages`
        }: ${res.done} done, ${res.skipped} skipped${
          res.pending ? `, ${res.pending} pending` : ""
        }.`,
      );
      return outcome(r, label, res, back);
    }
    if (scope !== "query") {
      throw new HttpError(400, `scope: expected ids or query, got ${JSON.stringify(scope)}.`);
    }
    if (!source.messages) {
      throw new HttpError(
        501,
        "A bulk action needs a count first, and this broker cannot search (no messages()).",
      );
    }
    const query = queryOf(r, fields);
    const applicable = ACTION_STATES[action].filter((s) =>
      states.includes(s) && (!query.states?.length || query.states.includes(s))
    );
    if (!applicable.length) {
      throw new HttpError(
        400,
        `${label} applies to ${
          ACTION_STATES[action].join(", ")
        } messages, and this search has none of those states.`,
      );
    }
    let to = query.to;
    if (confirmed) {
      const asOf = Number(fields.get("asOf"));
      if (!Number.isFinite(asOf) || asOf <= 0) {
        throw new HttpError(400, "asOf: missing; take the count again.");
      }
      to = to === undefined ? asOf : Math.min(to, asOf);
    }
    const scoped: MessageQuery = { ...query, states: applicable, to, limit: 0, cursor: undefined };
    const describe = describeQuery(scoped);
    if (!confirmed) {
      const { total } = await source.messages({ ...scoped, to: scoped.to ?? r.ctx.now });
      const text = `${label}${target ? ` to ${target}` : ""}: ${total} message${
        total === 1 ? "" : "s"
      } (${describe})?`;
      return confirmStep(r, label, text, total, fields, back);
    }
    const res = await source.act({ action, query: scoped, target });
    logger.info(
      `${r.who}: ${action}${target ? ` to ${target}` : ""} of the search ${describe} (${
        fields.get("expected") ?? "?"
      } counted): ${res.done} done, ${res.skipped} skipped${
        res.pending ? `, ${res.pending} pending` : ""
      }.`,
    );
    return outcome(r, label, res, back);
  }

  async function queueAction(r: Req, fields: URLSearchParams): Promise<Response> {
    if (!source.queueAction) {
      throw new HttpError(
        501,
        "This broker cannot pause or purge a queue (the source has no queueAction()).",
      );
    }
    const queue = fields.get("queue") ?? "";
    const action = fields.get("action") as QueueAction;
    if (!queueActions.includes(action)) {
      throw new HttpError(
        400,
        `action: expected one of ${queueActions.join(", ")}, got ${
          JSON.stringify(fields.get("action"))
        }.`,
      );
    }
    const queues = await source.queues();
    const q = queues.find((x) => x.queueName === queue);
    if (!q) throw new HttpError(404, `queue: no queue named ${JSON.stringify(queue)}.`);
    const back = link(r.ctx, `/queues/${encodeURIComponent(queue)}`);
    let purge: MessageState[] | undefined;
    if (action === "purge") {
      purge = (fields.get("states") || "ready,delayed").split(",").map((s) =>
        s.trim()
      ) as MessageState[];
      for (const s of purge) {
        if (s !== "ready" && s !== "delayed" && s !== "dead") {
          throw new HttpError(
            400,
            `states: purge drops ready, delayed or dead messages, got ${JSON.stringify(s)}.`,
          );
        }
      }
      if (fields.get("confirm") !== "1") {
        const n = purge.reduce(
          (n, s) => n + (s === "ready" ? q.ready : s === "delayed" ? q.delayed : q.dead),
          0,
        );
        return confirmStep(
          r,
          "Purge",
          `Purge ${queue}: delete ${n} ${purge.join(" and ")} message${
            n === 1 ? "" : "s"
          } for good?`,
          n,
          fields,
          back,
        );
      }
    }
    const res = await source.queueAction(queue, action, purge ? { states: purge } : undefined);
    logger.info(
      `${r.who}: ${action} queue ${queue}${
        purge ? ` (${purge.join(", ")})` : ""
      }: ${res.done} done.`,
    );
    return outcome(r, `${action[0]!.toUpperCase()}${action.slice(1)} ${queue}`, res, back);
  }

  async function scheduleAction(r: Req, fields: URLSearchParams): Promise<Response> {
    if (!source.scheduleAction) {
      throw new HttpError(
        501,
        "This broker cannot act on schedules (the source has no scheduleAction()).",
      );
    }
    const name = fields.get("name") ?? "";
    const action = fields.get("action") as ScheduleAction;
    if (action !== "run-now" && action !== "pause" && action !== "resume") {
      throw new HttpError(
        400,
        `action: expected run-now, pause or resume, got ${JSON.stringify(fields.get("action"))}.`,
      );
    }
    const res = await source.scheduleAction(name, action);
    logger.info(`${r.who}: ${action} schedule ${name}: ${res.done} done.`);
    return outcome(r, `${action} ${name}`, res, link(r.ctx, "/schedules"));
  }

  // ---- the pipeline: prefix, assets, token, authorize, CSRF, route ----

  return async function handle(req: Request, info?: ServeInfo): Promise<Response> {
    const url = new URL(req.url);
    if (base && url.pathname !== base && !url.pathname.startsWith(base + "/")) {
      return plain(404, `Not under ${base}.`);
    }
    const path = url.pathname.slice(base.length) || "/";
    const method = req.method === "HEAD" ? "GET" : req.method;
    if (method === "GET" && path.startsWith("/assets/")) return asset(req, path);
    const accept = req.headers.get("accept") ?? "";
    const json = path.startsWith("/api/") ||
      (accept.includes("application/json") && !accept.includes("text/html"));
    const jar = cookies(req);
    const secure = url.protocol === "https:";
    const cookiePath = base || "/";
    const setCookies: string[] = [];
    // The CSRF token of this browser (a new one when it has none or a forged one).
    let csrf = jar.get(CSRF_COOKIE);
    if (!(await validCsrf(csrfSigner, csrf))) {
      csrf = await mintCsrf(csrfSigner);
      setCookies.push(setCookie(CSRF_COOKIE, csrf, cookiePath, secure));
    }
    const ctx: Ctx = {
      base,
      url,
      now: Date.now(),
      csrf: csrf!,
      readOnly: !!options.readOnly,
      loggedIn: false,
      title: options.title ?? "dramatis",
      sourceName: source.name,
      refreshMs,
      states,
      actions,
      queueActions,
      canAct: !!source.act,
      canQueueAct: !!source.queueAction,
      canScheduleAct: !!source.scheduleAction,
      searchArgs: !options.redact || !!options.searchRedactedArgs,
      heartbeatMs,
    };
    const r: Req = { req, url, path, json, ctx, who: remote(req, info), bearer: false, setCookies };
    try {
      if (method !== "GET" && method !== "POST") {
        throw new HttpError(405, `Method ${req.method} not allowed: use GET, or POST for actions.`);
      }
      // Token: a bearer header or the session cookie.
      if (sessionValue) {
        const session = await sessionValue;
        const auth = req.headers.get("authorization") ?? "";
        const bearer = auth.toLowerCase().startsWith("bearer ") &&
          safeEqual(auth.slice(7).trim(), options.token!);
        const cookie = safeEqual(jar.get(SESSION_COOKIE) ?? "", session);
        r.bearer = bearer;
        ctx.loggedIn = cookie && !bearer;
        if (path === "/login") return await login(r, method, session);
        if (path === "/logout" && method === "POST") {
          await checkCsrf(r, await formFields(req));
          setCookies.push(setCookie(SESSION_COOKIE, "", cookiePath, secure, 0));
          return redirect(r, link(ctx, "/login"));
        }
        if (!bearer && !cookie) {
          logger.debug(`${r.who}: ${req.method} ${url.pathname} refused: no valid token.`);
          if (json || method !== "GET") {
            return finish(
              r,
              new Response(
                `${
                  JSON.stringify({
                    error: "A token is required: send Authorization: Bearer TOKEN, or log in.",
                  })
                }\n`,
                {
                  status: 401,
                  headers: {
                    "content-type": JSON_TYPE,
                    "www-authenticate": 'Bearer realm="dramatis"',
                  },
                },
              ),
            );
          }
          return html(r, 401, loginPage(ctx, url.pathname + url.search), {
            "www-authenticate": 'Bearer realm="dramatis"',
          });
        }
      }
      if (options.authorize) {
        const access = await options.authorize(req);
        if (access === false) {
          throw new HttpError(403, "Forbidden: this dashboard's authorize() refused the request.");
        }
        if (typeof access === "object") {
          if (access.readOnly) ctx.readOnly = true;
          if (access.user) r.who = `${access.user} (${r.who})`;
        }
      }
      if (method === "GET") return await get(r);
      if (ctx.readOnly) {
        logger.warning(`${r.who}: POST ${url.pathname} refused: the dashboard is read-only.`);
        throw new HttpError(403, "This dashboard is read-only: actions are refused.");
      }
      const fields = await formFields(req);
      await checkCsrf(r, fields);
      return await post(r, fields);
    } catch (e) {
      return failure(r, e);
    }
  };

  async function checkCsrf(r: Req, fields: URLSearchParams): Promise<void> {
    if (r.bearer) return; // A browser never sends the Authorization header on its own.
    const why = crossSite(r.req);
    const sent = r.req.headers.get(CSRF_HEADER) ?? fields.get(CSRF_FIELD) ?? undefined;
    const cookie = cookies(r.req).get(CSRF_COOKIE);
    const bad = why ??
      (!sent || !cookie || !safeEqual(sent, cookie) || !(await validCsrf(csrfSigner, sent))
        ? "the CSRF token is missing or does not match"
        : undefined);
    if (bad) {
      logger.warning(`${r.who}: POST ${r.url.pathname} refused: ${bad}.`);
      throw new HttpError(403, `Refused: ${bad}. Reload the page and try again.`);
    }
  }

  async function login(r: Req, method: string, session: string): Promise<Response> {
    if (method === "GET") {
      return html(r, 200, loginPage(r.ctx, r.url.searchParams.get("next") ?? ""));
    }
    const fields = await formFields(r.req);
    await checkCsrf(r, fields);
    const token = fields.get("token") ?? "";
    if (!safeEqual(token, options.token!)) {
      logger.warning(`${r.who}: login refused: wrong token.`);
      return html(r, 401, loginPage(r.ctx, fields.get("next") ?? "", "Wrong token."));
    }
    r.setCookies.push(setCookie(SESSION_COOKIE, session, base || "/", r.url.protocol === "https:"));
    const next = fields.get("next") ?? "";
    const safe = next.startsWith(base + "/") && !next.startsWith("//") ? next : link(r.ctx, "/");
    return redirect(r, safe);
  }

  function failure(r: Req, e: unknown): Response {
    let status = 500, text: string;
    if (e instanceof HttpError) [status, text] = [e.status, e.message];
    else if (e instanceof BadParam) [status, text] = [400, e.message];
    else if (e instanceof DashboardUnsupported) {
      [status, text] = [501, `Not supported by this broker: ${e.message}`];
    } else if (e instanceof RangeError || (e instanceof TypeError && r.req.method === "POST")) {
      [status, text] = [400, e.message];
    } else {
      text = `The broker failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`;
      logger.warning(
        `${r.who}: ${r.req.method} ${r.url.pathname} failed: ${e instanceof Error ? e.stack : e}`,
      );
    }
    if (r.json) return send(r, status, { error: text });
    const titles: Record<number, string> = {
      400: "Bad request",
      403: "Forbidden",
      404: "Not found",
      405: "Method not allowed",
      501: "Not supported",
    };
    return html(
      r,
      status,
      errorPage(r.ctx, titles[status] ?? "Error", text),
      status === 405 ? { allow: "GET, HEAD, POST" } : {},
    );
  }

  function finish(r: Req, res: Response): Response {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.headers.set(k, v);
    res.headers.set("cache-control", "no-store");
    for (const c of r.setCookies) res.headers.append("set-cookie", c);
    return res;
  }

  function html(
    r: Req,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ): Response {
    return finish(
      r,
      new Response(r.req.method === "HEAD" ? null : body, {
        status,
        headers: { "content-type": HTML, ...headers },
      }),
    );
  }

  function send(r: Req, status: number, value: unknown): Response {
    return finish(
      r,
      new Response(r.req.method === "HEAD" ? null : JSON.stringify(value), {
        status,
        headers: { "content-type": JSON_TYPE },
      }),
    );
  }

  function redirect(r: Req, to: string): Response {
    return finish(r, new Response(null, { status: 303, headers: { location: to } }));
  }

  function asset(req: Request, path: string): Response {
    const body = path === "/assets/app.css" ? CSS : path === "/assets/app.js" ? JS : undefined;
    if (body === undefined) return plain(404, `No asset at ${path}.`);
    const etag = `"${ASSET_VERSION}"`;
    const headers = {
      "content-type": path.endsWith(".css")
        ? "text/css; charset=utf-8"
        : "text/javascript; charset=utf-8",
      etag,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    };
    if (req.headers.get("if-none-match") === etag) {
      return new Response(null, { status: 304, headers });
    }
    return new Response(req.method === "HEAD" ? null : body, { headers });
  }
}

function plain(status: number, text: string): Response {
  return new Response(text + "\n", { status, headers: { "content-type": TEXT } });
}

function unwrap<T>(g: Got<T>): T | { unsupported: string } {
  return "ok" in g ? g.ok : { unsupported: g.unsupported };
}

/** A form body (urlencoded, multipart or a JSON object) as search parameters. */
async function formFields(req: Request): Promise<URLSearchParams> {
  const type = req.headers.get("content-type") ?? "";
  const out = new URLSearchParams();
  if (type.includes("application/json")) {
    let body: unknown;
    try {
      body = await req.json();
    } catch {
      throw new HttpError(400, "The body is not valid JSON.");
    }
    if (!body || typeof body !== "object" || Array.isArray(body)) {
      throw new HttpError(400, "The body must be a JSON object.");
    }
    for (const [k, v] of Object.entries(body)) {
      for (const x of Array.isArray(v) ? v : [v]) {
        if (x !== null && x !== undefined) out.append(k, String(x));
      }
    }
    return out;
  }
  if (type.includes("multipart/form-data")) {
    for (const [k, v] of await req.formData()) if (typeof v === "string") out.append(k, v);
    return out;
  }
  return new URLSearchParams(await req.text());
}

function remote(req: Request, info: ServeInfo): string {
  if (info && "remoteAddr" in info && info.remoteAddr?.hostname) return info.remoteAddr.hostname;
  if (info && "requestIP" in info && typeof info.requestIP === "function") {
    try {
      const ip = info.requestIP(req);
      if (ip) return ip.address;
    } catch { /* not a Bun server */ }
  }
  return "unknown address";
}

function describeQuery(q: MessageQuery): string {
  const parts: string[] = [];
  if (q.queue) parts.push(`queue ${q.queue}`);
  if (q.states?.length) parts.push(q.states.join("/"));
  if (q.actor) parts.push(`actor ${q.actor}`);
  if (q.id) parts.push(`id ${q.id}`);
  if (q.text) {
    parts.push(`text ${JSON.stringify(q.text)}${q.textIn === "error" ? " in errors" : ""}`);
  }
  if (q.from !== undefined) parts.push(`from ${new Date(q.from).toISOString()}`);
  if (q.to !== undefined) parts.push(`to ${new Date(q.to).toISOString()}`);
  return parts.join(", ") || "every message";
}
