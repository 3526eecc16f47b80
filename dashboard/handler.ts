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

import { Broker } from "../broker/broker.ts";
import { getLogger } from "../util/log.ts";
import { brokerSource } from "./broker_source.ts";
import { MetricsSampler } from "./_live.ts";
import { LiveHub } from "./_sse.ts";
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
import { type Ctx, link, loginPage } from "./_render.ts";
import { ACTION_STATES, type DashboardSource, type MessageAction } from "./source.ts";
import type { Dash, DashboardOptions, Req, ServeInfo } from "./_handler_types.ts";
import { get } from "./_pages.ts";
import { post } from "./_actions.ts";
import {
  asset,
  failure,
  finish,
  formFields,
  html,
  HttpError,
  JSON_TYPE,
  plain,
  redirect,
  remote,
} from "./_respond.ts";

export type { DashboardAccess, DashboardOptions, ServeInfo } from "./_handler_types.ts";

const logger = getLogger("dramatis.dashboard");

/**
 * Builds the dashboard's request handler over `source`: a `DashboardSource`, or a `Broker`
 * (wrapped in `brokerSource(broker, options)`, which takes `results`, `scanLimit` and
 * `schedules` from the options). Routes (under `options.prefix`):
 * `/` overview, `/queues/NAME?state=`, `/search?q=&id=&actor=&queue=&state=&from=&to=&in=`,
 * `/messages/ID`, `/workers`, `/schedules`, the same under `/api/` as JSON, `/api/live` (counts
 * and chart points for the page's poll), `/api/events` (the same pushed as server-sent events,
 * with the source's events: 204 when it has none, and the page polls), `POST /actions/{messages,queues,schedules}`, `/login`,
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

  const h: Dash = {
    source,
    options,
    base,
    refreshMs,
    csrfSigner,
    sessionValue,
    sampler,
    hub: undefined!,
    states,
    actions,
    queueActions,
    heartbeatMs,
  };
  h.hub = new LiveHub(h);
  return (req, info) => handle(h, req, info);
}

// ---- the pipeline: prefix, assets, token, authorize, CSRF, route ----

async function handle(h: Dash, req: Request, info?: ServeInfo): Promise<Response> {
  const { source, options, base, refreshMs, csrfSigner, sessionValue } = h;
  const { states, actions, queueActions, heartbeatMs } = h;
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
    liveEvents: h.hub.enabled,
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
      if (path === "/login") return await login(h, r, method, session);
      if (path === "/logout" && method === "POST") {
        await checkCsrf(h, r, await formFields(req));
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
    if (method === "GET") return await get(h, r);
    if (ctx.readOnly) {
      logger.warning(`${r.who}: POST ${url.pathname} refused: the dashboard is read-only.`);
      throw new HttpError(403, "This dashboard is read-only: actions are refused.");
    }
    const fields = await formFields(req);
    await checkCsrf(h, r, fields);
    return await post(h, r, fields);
  } catch (e) {
    return failure(r, e);
  }
}

async function checkCsrf(h: Dash, r: Req, fields: URLSearchParams): Promise<void> {
  const { csrfSigner } = h;
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

async function login(h: Dash, r: Req, method: string, session: string): Promise<Response> {
  const { options, base } = h;
  if (method === "GET") {
    return html(r, 200, loginPage(r.ctx, r.url.searchParams.get("next") ?? ""));
  }
  const fields = await formFields(r.req);
  await checkCsrf(h, r, fields);
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
