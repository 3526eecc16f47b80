// Search parameters <-> MessageQuery: every list page's URL says all of its query, so a page
// can be bookmarked and shared, and a bulk action's form carries the same fields.
import { MESSAGE_STATES, type MessageQuery, type MessageState } from "./source.ts";

/** A parameter was wrong: the message names it and says what is expected (HTTP 400). */
export class BadParam extends Error {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;
const UNIT: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Default and largest page sizes. */
export const PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

/**
 * A time parameter: ms since the epoch, an ISO date (`2026-12-02`, `2026-12-02T10:00`, read as
 * UTC without a zone), or a duration ago (`15m`, `2h`, `7d`).
 */
export function parseTime(name: string, v: string, now: number): number {
  const s = v.trim();
  if (/^\d{10,}$/.test(s)) return Number(s);
  const d = DURATION.exec(s);
  if (d) return now - Number(d[1]) * UNIT[d[2]!]!;
  const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/.test(s)
    ? s + (s.length > 10 ? "Z" : "")
    : s;
  const t = Date.parse(iso);
  if (/^\d{4}-\d{2}-\d{2}/.test(s) && Number.isFinite(t)) return t;
  throw new BadParam(
    `${name}: expected ms since the epoch, an ISO date (2026-12-02T10:00Z) or a duration ago ` +
      `(15m, 2h, 7d), got ${JSON.stringify(v)}.`,
  );
}

function parseStates(values: string[], allowed: readonly MessageState[]): MessageState[] {
  const out: MessageState[] = [];
  for (const v of values.flatMap((x) => x.split(","))) {
    const s = v.trim();
    if (!s) continue;
    if (!(MESSAGE_STATES as readonly string[]).includes(s)) {
      throw new BadParam(
        `state: expected one of ${MESSAGE_STATES.join(", ")}, got ${JSON.stringify(s)}.`,
      );
    }
    if (!allowed.includes(s as MessageState)) {
      throw new BadParam(
        `state: this broker cannot list ${s} messages (it lists ${allowed.join(", ")}).`,
      );
    }
    if (!out.includes(s as MessageState)) out.push(s as MessageState);
  }
  return out;
}

/**
 * The query of a list URL or a bulk form: `q` (text, or a message id when it is a UUID), `id`,
 * `actor`, `queue`, `state` (repeated or comma-separated), `from`, `to`, `in=error`, `limit`,
 * `cursor`.
 */
export function parseQuery(
  p: URLSearchParams,
  states: readonly MessageState[],
  now: number,
): MessageQuery {
  const get = (k: string) => {
    const v = p.get(k)?.trim();
    return v ? v : undefined;
  };
  const q: MessageQuery = { limit: PAGE_SIZE };
  const text = get("q");
  if (text && UUID.test(text) && !get("id")) q.id = text.toLowerCase();
  else if (text) q.text = text;
  const id = get("id");
  if (id) q.id = id;
  const actor = get("actor");
  if (actor) q.actor = actor;
  const queue = get("queue");
  if (queue) q.queue = queue;
  const st = parseStates(p.getAll("state"), states);
  if (st.length) q.states = st;
  const from = get("from"), to = get("to");
  if (from) q.from = parseTime("from", from, now);
  if (to) q.to = parseTime("to", to, now);
  if (q.from !== undefined && q.to !== undefined && q.from > q.to) {
    throw new BadParam("from: the range is empty (from is after to).");
  }
  const where = get("in");
  if (where && where !== "error" && where !== "all") {
    throw new BadParam(`in: expected all or error, got ${JSON.stringify(where)}.`);
  }
  if (where === "error") q.textIn = "error";
  const limit = get("limit");
  if (limit) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) {
      throw new BadParam(
        `limit: expected a whole number from 1 to ${MAX_PAGE_SIZE}, got ${JSON.stringify(limit)}.`,
      );
    }
    q.limit = n;
  }
  const cursor = get("cursor");
  if (cursor) q.cursor = cursor;
  return q;
}

/** The parameters (raw, as the user wrote them) that define a list, without the cursor. */
export const QUERY_KEYS = ["q", "id", "actor", "queue", "state", "from", "to", "in", "limit"];

/** `p` with only the query keys (and `extra` set). */
export function queryParams(p: URLSearchParams, extra: Record<string, string | undefined> = {}) {
  const out = new URLSearchParams();
  for (const k of QUERY_KEYS) for (const v of p.getAll(k)) if (v.trim()) out.append(k, v);
  for (const [k, v] of Object.entries(extra)) {
    out.delete(k);
    if (v !== undefined) out.set(k, v);
  }
  return out;
}
