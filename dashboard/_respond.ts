// The handler's responses: the security headers every answer carries, HTML and JSON bodies,
// redirects, the static assets, errors as pages or JSON, and reading a form body.
import { getLogger } from "../util/log.ts";
import { CSS, JS } from "./_assets.ts";
import { BadParam } from "./_params.ts";
import { errorPage, type Got } from "./_render.ts";
import { DashboardUnsupported } from "./source.ts";
import type { Req, ServeInfo } from "./_handler_types.ts";

const logger = getLogger("dramatis.dashboard");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
};

const HTML = "text/html; charset=utf-8";
/** The content type of the JSON answers. */
export const JSON_TYPE = "application/json; charset=utf-8";
const TEXT = "text/plain; charset=utf-8";
const ASSET_VERSION = hash(CSS + JS);

function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(36);
}

/** An answer with a status and a one-line message, thrown by the routes. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function failure(r: Req, e: unknown): Response {
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

export function finish(r: Req, res: Response): Response {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.headers.set(k, v);
  res.headers.set("cache-control", "no-store");
  for (const c of r.setCookies) res.headers.append("set-cookie", c);
  return res;
}

export function html(
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

export function send(r: Req, status: number, value: unknown): Response {
  return finish(
    r,
    new Response(r.req.method === "HEAD" ? null : JSON.stringify(value), {
      status,
      headers: { "content-type": JSON_TYPE },
    }),
  );
}

export function redirect(r: Req, to: string): Response {
  return finish(r, new Response(null, { status: 303, headers: { location: to } }));
}

export function asset(req: Request, path: string): Response {
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

export function plain(status: number, text: string): Response {
  return new Response(text + "\n", { status, headers: { "content-type": TEXT } });
}

export function unwrap<T>(g: Got<T>): T | { unsupported: string } {
  return "ok" in g ? g.ok : { unsupported: g.unsupported };
}

/** A form body (urlencoded, multipart or a JSON object) as search parameters. */
export async function formFields(req: Request): Promise<URLSearchParams> {
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

export function remote(req: Request, info: ServeInfo): string {
  if (info && "remoteAddr" in info && info.remoteAddr?.hostname) return info.remoteAddr.hostname;
  if (info && "requestIP" in info && typeof info.requestIP === "function") {
    try {
      const ip = info.requestIP(req);
      if (ip) return ip.address;
    } catch { /* not a Bun server */ }
  }
  return "unknown address";
}
