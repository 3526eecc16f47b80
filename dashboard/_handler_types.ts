// The handler's option types (re-exported by handler.ts) and the state its parts share: the
// handler built once per dashboardHandler() call (`Dash`) and one request on its way (`Req`).
import type { WireMessage } from "../message.ts";
import type { BrokerSourceOptions } from "./broker_source.ts";
import type { MetricsSampler } from "./_live.ts";
import type { Signer } from "./_auth.ts";
import type { Ctx } from "./_render.ts";
import type { DashboardSource, MessageAction, MessageState, QueueAction } from "./source.ts";

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
  /**
   * How often the open pages get fresh counts and chart points, in ms (default 2000): pushed over
   * /api/events (and soon after each event) when the source has events, else polled.
   */
  refreshMs?: number;
  /**
   * Aborting it ends the live streams of the open pages (/api/events) and refuses new ones: abort
   * it before a graceful shutdown of the server, which waits for the open responses.
   */
  signal?: AbortSignal;
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
/** What dashboardHandler() settles once: the source, its options and what follows from them. */
export interface Dash {
  source: DashboardSource;
  options: DashboardOptions;
  /** The prefix without its trailing slash ("" at the root). */
  base: string;
  refreshMs: number;
  csrfSigner: Signer;
  /** The session cookie's value (an HMAC of the token), when a token is asked for. */
  sessionValue: Promise<string> | undefined;
  sampler: MetricsSampler;
  /** The live updates pushed to the open pages (/api/events: `_sse.ts`, `LiveHub`). */
  hub: { readonly enabled: boolean; open(r: Req): Response };
  states: readonly MessageState[];
  actions: readonly MessageAction[];
  queueActions: readonly QueueAction[];
  heartbeatMs: number;
}

/** One request on its way through the handler. */
export interface Req {
  req: Request;
  url: URL;
  path: string;
  json: boolean;
  ctx: Ctx;
  who: string;
  bearer: boolean;
  setCookies: string[];
}
