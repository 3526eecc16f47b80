// The dashboard's safety: the bearer token or its session cookie, signed double-submit CSRF
// tokens, and the same-origin check on writes.

const enc = new TextEncoder();

/** The session cookie's name (it holds an HMAC of the token, never the token). */
export const SESSION_COOKIE = "dramatis_session";
/** The CSRF cookie's name. */
export const CSRF_COOKIE = "dramatis_csrf";
/** The form field and the header a write carries its CSRF token in. */
export const CSRF_FIELD = "_csrf";
export const CSRF_HEADER = "x-dramatis-csrf";

function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Compares two strings in time independent of where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const x = enc.encode(a), y = enc.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** HMAC-SHA-256 signing with one key. */
export class Signer {
  #key: Promise<CryptoKey>;
  constructor(secret: string | Uint8Array) {
    const raw = typeof secret === "string" ? enc.encode(secret) : secret;
    this.#key = crypto.subtle.importKey(
      "raw",
      raw as Uint8Array<ArrayBuffer>,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  }
  async sign(text: string): Promise<string> {
    const sig = await crypto.subtle.sign("HMAC", await this.#key, enc.encode(text));
    return b64url(new Uint8Array(sig));
  }
}

/** A random secret. */
export function randomSecret(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** A new CSRF token: a nonce and its signature. */
export async function mintCsrf(signer: Signer): Promise<string> {
  const nonce = b64url(crypto.getRandomValues(new Uint8Array(16)));
  return `${nonce}.${await signer.sign(`csrf:${nonce}`)}`;
}

/** True when `token` was minted by `signer`. */
export async function validCsrf(signer: Signer, token: string | undefined): Promise<boolean> {
  if (!token) return false;
  const dot = token.indexOf(".");
  if (dot <= 0) return false;
  return safeEqual(token.slice(dot + 1), await signer.sign(`csrf:${token.slice(0, dot)}`));
}

/** The request's cookies. */
export function cookies(req: Request): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) {
      const v = part.slice(eq + 1).trim();
      try {
        out.set(part.slice(0, eq).trim(), decodeURIComponent(v));
      } catch {
        out.set(part.slice(0, eq).trim(), v);
      }
    }
  }
  return out;
}

/** A Set-Cookie value: HttpOnly, SameSite=Strict, Secure over https. */
export function setCookie(
  name: string,
  value: string,
  path: string,
  secure: boolean,
  maxAge?: number,
): string {
  return `${name}=${encodeURIComponent(value)}; Path=${path}; HttpOnly; SameSite=Strict` +
    (secure ? "; Secure" : "") + (maxAge !== undefined ? `; Max-Age=${maxAge}` : "");
}

/**
 * Refuses cross-site writes: a browser's `Sec-Fetch-Site: cross-site` / `same-site`, or an
 * `Origin` whose host is not the request's (Host or X-Forwarded-Host). Returns the reason.
 */
export function crossSite(req: Request): string | undefined {
  const site = req.headers.get("sec-fetch-site");
  if (site === "cross-site" || site === "same-site") return `Sec-Fetch-Site is ${site}`;
  const origin = req.headers.get("origin");
  if (!origin) return undefined;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return `Origin ${origin} is not a URL`;
  }
  const own = [req.headers.get("x-forwarded-host"), req.headers.get("host"), new URL(req.url).host];
  return own.includes(host) ? undefined : `Origin ${origin} is not this dashboard's`;
}
