// Listing and searching a broker's messages for the dashboard: pages of `broker.browse()` per
// (queue, state), merged newest first, filtered, and bounded. One (queue, state) with no other
// filter pages through the broker's own totals; anything else examines at most `scanLimit`
// messages, taken round-robin from every (queue, state), and says when it stopped early.
import { type Broker, qName } from "../broker/broker.ts";
import type { BrowseEntry, BrowseState } from "../broker/ops.ts";
import type { Message } from "../message.ts";
import {
  DashboardUnsupported,
  type MessagePage,
  type MessageQuery,
  type MessageSummary,
} from "./source.ts";
import { UNSUPPORTED_BROWSE } from "./_broker_actions.ts";

/** Messages asked of `browse()` per call. */
export const BROWSE_PAGE = 5_000;

/** The broker's states the dashboard lists. */
export const BROWSE_STATES: readonly BrowseState[] = ["ready", "delayed", "running", "dead"];

/** A list entry: the broker's entry as the dashboard shows it. */
export function summaryOf(
  e: BrowseEntry,
  workerOf?: (id: string) => string | undefined,
): MessageSummary {
  const wire = e.message.asDict();
  if (e.state === "delayed" && !wire.queue_name.endsWith(".DQ")) {
    wire.queue_name = `${wire.queue_name}.DQ`;
  }
  const s: MessageSummary = { message: wire, state: e.state };
  if (e.since !== undefined) s.since = e.since;
  const error = e.error ?? tracebackLine(e.message);
  if (error) s.error = error;
  if (e.state === "running") s.workerId = workerOf?.(e.message.messageId);
  return s;
}

function tracebackLine(m: Message): string | undefined {
  const tb = m.options.traceback;
  return typeof tb === "string" && tb !== "" ? tb.split("\n", 1)[0] : undefined;
}

/** True when `q` narrows by more than queue and state (so a scan is needed). */
export function filtered(q: MessageQuery): boolean {
  return q.actor !== undefined || !!q.text || q.from !== undefined || q.to !== undefined;
}

/** The predicate of the query's actor, time range and text. */
export function matcher(q: MessageQuery): (e: BrowseEntry) => boolean {
  const text = q.text ? q.text.toLowerCase() : undefined;
  const errorOnly = q.textIn === "error";
  return (e) => {
    const m = e.message;
    if (q.actor !== undefined && m.actorName !== q.actor) return false;
    if (q.from !== undefined && m.messageTimestamp < q.from) return false;
    if (q.to !== undefined && m.messageTimestamp > q.to) return false;
    if (text === undefined) return true;
    const tb = m.options.traceback;
    const error = `${e.error ?? ""}\n${typeof tb === "string" ? tb : ""}`.toLowerCase();
    if (error.includes(text)) return true;
    return !errorOnly && JSON.stringify([m.args, m.kwargs]).toLowerCase().includes(text);
  };
}

/** What a scan found: the matches (newest first) and whether it saw everything. */
export interface ScanResult {
  entries: BrowseEntry[];
  complete: boolean;
  examined: number;
}

interface Stream {
  queue: string;
  state: BrowseState;
  size?: number | undefined;
  cursor?: string | undefined;
  done: boolean;
  total: number;
  seen: number;
}

/**
 * Every entry of the (queue, state) streams that `keep` accepts, examining at most `bound`
 * entries: in rounds of one browse page per open stream, each stream's share of what is left in
 * proportion to its `size` (the broker's count, when known), so that one round mostly does.
 */
export async function scan(
  broker: Broker,
  streams: { queue: string; state: BrowseState; size?: number }[],
  options: { keep: (e: BrowseEntry) => boolean; bound: number; perStream?: number },
): Promise<ScanResult & { totals: number }> {
  const open: Stream[] = streams.map((s) => ({ ...s, done: false, total: 0, seen: 0 }));
  const kept: BrowseEntry[] = [];
  let examined = 0;
  const perStream = options.perStream ?? Infinity;
  while (open.some((s) => !s.done) && examined < options.bound) {
    const open_ = open.filter((s) => !s.done);
    const shares = sharesOf(open_, options.bound - examined, perStream);
    const round = open_.filter((_, i) => shares[i]! > 0);
    const limits = shares.filter((n) => n > 0);
    if (round.length === 0) break;
    const pages = await Promise.all(round.map((s, i) =>
      broker.browse(s.queue, s.state, {
        limit: limits[i]!,
        ...(s.cursor !== undefined ? { cursor: s.cursor } : {}),
      })
    ));
    for (let i = 0; i < round.length; i++) {
      const s = round[i]!, page = pages[i]!;
      s.total = page.total;
      examined += page.entries.length;
      s.seen += page.entries.length;
      for (const e of page.entries) if (options.keep(e)) kept.push(e);
      s.cursor = page.next;
      if (page.next === undefined || page.entries.length === 0 || s.seen >= perStream) {
        s.done = true;
      }
    }
  }
  kept.sort(newestFirst);
  return {
    entries: kept,
    complete: open.every((s) => s.done),
    examined,
    totals: open.reduce((n, s) => n + s.total, 0),
  };
}

/**
 * Each open stream's page size this round: `left` shared in proportion to what each has not
 * given yet (never more than `left` in all, nor `BROWSE_PAGE` or `perStream` each).
 */
function sharesOf(streams: readonly Stream[], left: number, perStream: number): number[] {
  const weight = streams.map((s) => Math.max(1, (s.size ?? 1) - s.seen));
  const cap = (s: Stream, n: number) => Math.min(n, BROWSE_PAGE, perStream - s.seen);
  if (left === Infinity) return streams.map((s) => cap(s, BROWSE_PAGE));
  const sum = weight.reduce((a, b) => a + b, 0);
  const shares = streams.map((s, i) => cap(s, Math.floor(left * weight[i]! / sum)));
  let spare = left - shares.reduce((a, b) => a + b, 0);
  const order = streams.map((_, i) => i).sort((a, b) => weight[b]! - weight[a]!);
  for (const i of order) {
    if (spare <= 0) break;
    if (cap(streams[i]!, shares[i]! + 1) > shares[i]!) {
      shares[i]!++;
      spare--;
    }
  }
  return shares;
}

function newestFirst(a: BrowseEntry, b: BrowseEntry): number {
  return b.message.messageTimestamp - a.message.messageTimestamp;
}

/** The offset a cursor of `pageOf` holds (none: 0). */
export function offsetOf(cursor: string | undefined): number {
  if (cursor === undefined || cursor === "") return 0;
  const m = /^o:(\d+)$/.exec(cursor);
  if (!m) throw new RangeError(`cursor: ${JSON.stringify(cursor)} is not a cursor of this list.`);
  return Number(m[1]);
}

/** One page (`offset`, `limit`) of entries already sorted newest first. */
export function pageOf(
  entries: readonly BrowseEntry[],
  q: MessageQuery,
  total: number,
  toSummary: (e: BrowseEntry) => MessageSummary,
  lowerBound = false,
): MessagePage {
  const offset = offsetOf(q.cursor);
  const slice = entries.slice(offset, offset + q.limit);
  const page: MessagePage = { messages: slice.map(toSummary), total };
  if (lowerBound) page.totalIsLowerBound = true;
  if (q.limit > 0 && offset + q.limit < Math.max(entries.length, lowerBound ? 0 : total)) {
    page.next = `o:${offset + q.limit}`;
  }
  if (offset > 0) page.prev = `o:${Math.max(0, offset - q.limit)}`;
  return page;
}

/**
 * A broker without browse(): the dead letters of `queues` matching `q`, newest first, through
 * `deadLetters()` (at most `limit` a queue; `lowerBound` when one had that many).
 */
export async function deadLettersOf(
  broker: Broker,
  queues: readonly string[],
  q: MessageQuery,
  limit: number,
): Promise<{ entries: BrowseEntry[]; total: number; lowerBound: boolean }> {
  if (q.states?.length && !q.states.includes("dead")) {
    throw new DashboardUnsupported(
      `Listing ${q.states.join(", ")} messages: ${UNSUPPORTED_BROWSE}.`,
    );
  }
  const keep = matcher(q);
  const found: BrowseEntry[] = [];
  let lowerBound = false;
  for (const queue of queues) {
    const letters = await broker.deadLetters(queue, { limit });
    if (letters.length >= limit) lowerBound = true;
    for (const m of letters) {
      const e: BrowseEntry = { message: m.copy({ queueName: qName(m.queueName) }), state: "dead" };
      if ((q.id === undefined || m.messageId === q.id) && keep(e)) found.push(e);
    }
  }
  found.sort(newestFirst);
  return { entries: found, total: found.length, lowerBound };
}
