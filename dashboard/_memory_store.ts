// The records of MemoryDashboardSource: kept in (timestamp, seq) order with an index by id and
// counts per queue and state, and the search over them (matching, time ranges, cursor pages).
import type { WireMessage } from "../message.ts";
import {
  type Attempt,
  MESSAGE_STATES,
  type MessagePage,
  type MessageQuery,
  type MessageState,
  type MessageSummary,
  type ProgressInfo,
  type ResultInfo,
} from "./source.ts";

/** One message of the memory source. */
export interface Rec {
  seq: number;
  ts: number;
  msg: WireMessage;
  queue: string;
  state: MessageState;
  since: number;
  hay: string;
  error?: string | undefined;
  workerId?: string | undefined;
  attempts?: Attempt[];
  result?: ResultInfo;
  progress?: ProgressInfo;
  gone?: boolean;
}

export type Counts = Record<MessageState, number>;

/** Zero of every state. */
export function emptyCounts(): Counts {
  return { ready: 0, delayed: 0, running: 0, dead: 0, done: 0 };
}

/** Before (a) or after (b) in the newest-first order's reverse: (timestamp, seq) ascending. */
function less(a: Rec, ts: number, seq: number): boolean {
  return a.ts < ts || (a.ts === ts && a.seq < seq);
}

/** The records, their index and counts, and the search over them. */
export class MemoryStore {
  /** Oldest first by (timestamp, seq); removed ones stay (`gone`) until `compact()`. */
  recs: Rec[] = [];
  byId = new Map<string, Rec>();
  counts = new Map<string, Counts>();
  paused = new Set<string>();
  /** The running messages, so that `workers()` needs no scan. */
  running = new Set<Rec>();
  seq = 0;
  gone = 0;

  insert(rec: Rec): void {
    const a = this.recs;
    if (a.length === 0 || !less(rec, a[a.length - 1]!.ts, a[a.length - 1]!.seq)) a.push(rec);
    else a.splice(this.lowerBound(rec.ts, rec.seq), 0, rec);
    this.byId.set(rec.msg.message_id, rec);
  }

  /** The first index whose (ts, seq) is not below (ts, seq). */
  lowerBound(ts: number, seq: number): number {
    const a = this.recs;
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (less(a[mid]!, ts, seq)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  count(queue: string, state: MessageState, d: number, rec?: Rec): void {
    if (rec && state === "running") {
      if (d > 0) this.running.add(rec);
      else this.running.delete(rec);
    }
    let c = this.counts.get(queue);
    if (!c) this.counts.set(queue, c = emptyCounts());
    c[state] += d;
  }

  setState(rec: Rec, state: MessageState): void {
    this.count(rec.queue, rec.state, -1, rec);
    this.count(rec.queue, state, 1, rec);
    rec.state = state;
    rec.since = Date.now();
    const q = rec.queue;
    rec.msg = { ...rec.msg, queue_name: state === "delayed" ? `${q}.DQ` : q };
    if (state !== "running") rec.workerId = undefined;
  }

  remove(rec: Rec): void {
    if (rec.gone) return;
    this.count(rec.queue, rec.state, -1, rec);
    this.byId.delete(rec.msg.message_id);
    rec.gone = true;
    this.gone++;
  }

  compact(): void {
    if (this.gone === 0) return;
    this.recs = this.recs.filter((r) => !r.gone);
    this.gone = 0;
  }

  matcher(q: MessageQuery): (r: Rec) => boolean {
    const states = q.states && q.states.length > 0 ? new Set(q.states) : undefined;
    const text = q.text ? q.text.toLowerCase() : undefined;
    const errorOnly = q.textIn === "error";
    return (r) =>
      !r.gone &&
      (q.queue === undefined || r.queue === q.queue) &&
      (!states || states.has(r.state)) &&
      (q.actor === undefined || r.msg.actor_name === q.actor) &&
      (q.from === undefined || r.ts >= q.from) &&
      (q.to === undefined || r.ts <= q.to) &&
      (text === undefined ||
        (!errorOnly && r.hay.includes(text)) ||
        (r.error !== undefined && r.error.toLowerCase().includes(text)));
  }

  /** The records matching `q` (all of them), oldest first. */
  select(q: MessageQuery): Rec[] {
    if (q.id !== undefined) {
      const r = this.byId.get(q.id);
      return r && this.matcher(q)(r) ? [r] : [];
    }
    const match = this.matcher(q);
    const out: Rec[] = [];
    const [lo, hi] = this.range(q);
    for (let i = lo; i < hi; i++) if (match(this.recs[i]!)) out.push(this.recs[i]!);
    return out;
  }

  /** The index range a time range allows. */
  range(q: MessageQuery): [number, number] {
    const lo = q.from === undefined ? 0 : this.lowerBound(q.from, -Infinity);
    const hi = q.to === undefined ? this.recs.length : this.lowerBound(q.to, Infinity);
    return [lo, hi];
  }

  /** The total from the counters when only queue and states narrow the query. */
  quickTotal(q: MessageQuery): number | undefined {
    if (q.actor !== undefined || q.text || q.from !== undefined || q.to !== undefined) {
      return undefined;
    }
    const states = q.states && q.states.length > 0 ? q.states : MESSAGE_STATES;
    let n = 0;
    for (const [name, c] of this.counts) {
      if (q.queue !== undefined && name !== q.queue) continue;
      for (const s of states) n += c[s];
    }
    return n;
  }

  /** A page of messages, newest first; cursors are positions in the (timestamp, seq) order. */
  page(q: MessageQuery): MessagePage {
    if (q.id !== undefined) {
      const list = this.select(q);
      return { messages: list.slice(0, q.limit).map(summary), total: list.length };
    }
    const match = this.matcher(q);
    const a = this.recs;
    const [lo, hi] = this.range(q);
    const cur = parseCursor(q.cursor);
    const page: Rec[] = [];
    let hasNext = false, hasPrev = false;
    if (!cur || cur.dir === "o") {
      // Down from the cursor (exclusive) or from the newest.
      let i = cur ? Math.min(this.lowerBound(cur.ts, cur.seq), hi) - 1 : hi - 1;
      const start = i;
      for (; i >= lo; i--) {
        if (!match(a[i]!)) continue;
        if (page.length === q.limit) {
          hasNext = true;
          break;
        }
        page.push(a[i]!);
      }
      if (cur) {
        for (let j = start + 1; j < hi; j++) {
          if (match(a[j]!)) {
            hasPrev = true;
            break;
          }
        }
      }
    } else {
      // Up from the cursor (exclusive), then reversed.
      let i = Math.max(this.lowerBound(cur.ts, cur.seq + 1), lo);
      const start = i;
      for (; i < hi; i++) {
        if (!match(a[i]!)) continue;
        if (page.length === q.limit) {
          hasPrev = true;
          break;
        }
        page.push(a[i]!);
      }
      page.reverse();
      for (let j = start - 1; j >= lo; j--) {
        if (match(a[j]!)) {
          hasNext = true;
          break;
        }
      }
    }
    let total = this.quickTotal(q);
    if (total === undefined) {
      total = 0;
      for (let i = lo; i < hi; i++) if (match(a[i]!)) total++;
    }
    const last = page[page.length - 1], first = page[0];
    return {
      messages: page.map(summary),
      total,
      next: hasNext && last ? `o:${last.ts}:${last.seq}` : undefined,
      prev: hasPrev && first ? `n:${first.ts}:${first.seq}` : undefined,
    };
  }
}

/** A record as the dashboard lists it. */
export function summary(r: Rec): MessageSummary {
  return {
    message: r.msg,
    state: r.state,
    since: r.since,
    error: r.error,
    workerId: r.workerId,
  };
}

function parseCursor(c: string | undefined): { dir: "o" | "n"; ts: number; seq: number } | null {
  if (!c) return null;
  const m = /^([on]):(-?\d+):(\d+)$/.exec(c);
  if (!m) throw new RangeError(`cursor: ${JSON.stringify(c)} is not a cursor of this list.`);
  return { dir: m[1] as "o" | "n", ts: Number(m[2]), seq: Number(m[3]) };
}
