// Browsing the RedisBroker's queues and acting on messages by id (broker/ops.ts). Dramatiq's
// layout stores messages by redis_message_id, not message id, so a lookup by id scans the hashes
// (`q.msgs`, `q.DQ.msgs`, `q.XQ.msgs`) in bounded HSCAN steps inside the operations script, which
// matches the payloads' top-level message_id; the queues declared here first, then every queue
// of the namespace. Pages read only what they list:
// - ready: the list from its tail (newest first), by offset;
// - running: every broker's ack set of `q` (brokers from Dramatiq's heartbeat set, no KEYS);
// - delayed: the `q.DQ` list from its tail, then the ids held by delay consumers (ack sets);
// - dead: the `q.XQ` sorted set, newest first.
// Each delete, move or runNow takes a message from where it waits and puts its copy in one script
// step, so a message is never lost or doubled; a running one is left alone.
import type { JsonObject, Message } from "../../message.ts";
import { dqName, qName } from "../queue_name.ts";
import { uniqueOf } from "../_unique.ts";
import type { BrowseEntry, BrowseOptions, BrowsePage, BrowseState } from "../ops.ts";
import { type OpsContext, text } from "./_ops_context.ts";
import { decodeStored, holderKey } from "./_unique.ts";
import type { Reply } from "./client.ts";

/** Entries one HSCAN step looks at (a few ms of the server per step; fewer round trips). */
const SCAN_COUNT = 4000;

/** Where a copy of a message was found. */
export interface Found {
  /** `q`: ready or running on q; `dq`: delayed; `dead`: a dead letter. */
  kind: "q" | "dq" | "dead";
  /** The queue as the script takes it: `q`, `q.DQ`, or the canonical name for `dead`. */
  queue: string;
  rid: string;
  payload: string;
}

function hashOf(ctx: OpsContext, f: { kind: Found["kind"]; queue: string }): string {
  const ns = ctx.host.ns;
  return f.kind === "dead" ? `${ns}:${f.queue}.XQ.msgs` : `${ns}:${f.queue}.msgs`;
}

/**
 * The copies of `ids` in `kinds` of every queue (declared ones first, then the others of the
 * namespace unless all were found). `first`: stop at the first copy of each id.
 */
export async function locate(
  ctx: OpsContext,
  ids: readonly string[],
  kinds: readonly Found["kind"][],
  first = false,
): Promise<Map<string, Found[]>> {
  const found = new Map<string, Found[]>();
  const wanted = new Set(ids);
  if (wanted.size === 0) return found;
  const declared = ctx.host.declaredQueues();
  const seen = new Set<string>();
  const search = async (queues: Iterable<string>) => {
    for (const c of queues) {
      if (seen.has(c)) continue;
      seen.add(c);
      for (const kind of kinds) {
        const queue = kind === "dq" ? dqName(c) : c;
        let cursor = "0";
        do {
          if (wanted.size === 0) return;
          const reply = await ctx.run("scan", [
            hashOf(ctx, { kind, queue }),
            cursor,
            SCAN_COUNT,
            ...wanted,
          ]) as Reply[];
          cursor = text(reply[0]);
          for (let i = 1; i + 2 < reply.length; i += 3) {
            const id = text(reply[i + 1]);
            let list = found.get(id);
            if (!list) found.set(id, list = []);
            list.push({ kind, queue, rid: text(reply[i]), payload: text(reply[i + 2]) });
            if (first) wanted.delete(id);
          }
        } while (cursor !== "0");
      }
    }
  };
  await search(declared);
  if (first ? wanted.size > 0 : found.size < wanted.size) await search(await ctx.host.listQueues());
  return found;
}

function lastLine(traceback: unknown): string | undefined {
  return typeof traceback === "string" ? traceback.trim().split("\n").at(-1) : undefined;
}

/** A stored payload as browsed (canonical queue name), or undefined if it cannot be decoded. */
function entryOf(
  payload: string,
  state: BrowseState,
  extra: { since?: number } = {},
): BrowseEntry | undefined {
  let message: Message;
  try {
    message = decodeStored(payload);
  } catch {
    return undefined;
  }
  message.queueName = qName(message.queueName);
  const entry: BrowseEntry = { message, state, ...extra };
  const eta = message.options.eta;
  if (state === "delayed" && typeof eta === "number") entry.eta = eta;
  if (state === "dead") {
    const error = lastLine(message.options.traceback);
    if (error) entry.error = error;
  }
  return entry;
}

/** One page of `queueName` in `state`, newest first; the cursor is an offset. */
export async function browse(
  ctx: OpsContext,
  queueName: string,
  state: BrowseState,
  options: BrowseOptions = {},
): Promise<BrowsePage> {
  const q = qName(queueName);
  const limit = Math.max(0, Math.floor(options.limit ?? 100));
  const offset = options.cursor ? Math.max(0, Number(options.cursor) || 0) : 0;
  const entries: BrowseEntry[] = [];
  let total: number;
  let listed: number;
  if (state === "ready") {
    const r = await ctx.run("ready", [q, offset, limit]) as Reply[];
    total = Number(r[0]);
    listed = (r.length - 1) / 2;
    for (let i = 1; i + 1 < r.length; i += 2) {
      const e = entryOf(text(r[i + 1]), "ready");
      if (e) entries.push(e);
    }
  } else if (state === "dead") {
    const r = await ctx.run("dead", [q, offset, limit]) as Reply[];
    total = Number(r[0]);
    listed = (r.length - 1) / 3;
    for (let i = 1; i + 2 < r.length; i += 3) {
      const e = entryOf(text(r[i + 1]), "dead", { since: Number(text(r[i + 2])) });
      if (e) entries.push(e);
    }
  } else {
    const r = await ctx.run("held", [
      state === "running" ? q : dqName(q),
      offset,
      limit,
    ]) as Reply[];
    total = Number(r[0]);
    listed = (r.length - 1) / 3;
    for (let i = 1; i + 2 < r.length; i += 3) {
      const e = entryOf(text(r[i + 1]), state);
      if (e) entries.push(e);
    }
  }
  const end = offset + listed;
  return { entries, total, ...(listed > 0 && end < total ? { next: String(end) } : {}) };
}

/**
 * The copies of message `id` stored under its own id (`keyedRid`: what dramatis enqueues), in
 * the hashes of `queues`: one round trip of HGETs. Each payload's message id is checked.
 */
async function keyed(ctx: OpsContext, id: string, queues: readonly string[]): Promise<Found[]> {
  const where = queues.flatMap((c) =>
    (["q", "dq", "dead"] as const).map((kind) => ({ kind, queue: kind === "dq" ? dqName(c) : c }))
  );
  if (where.length === 0) return [];
  const replies = await ctx.pipeline(where.map((w) => ["HGET", hashOf(ctx, w), id]));
  const found: Found[] = [];
  replies.forEach((r, i) => {
    if (r === null || r instanceof Error) return;
    const payload = text(r);
    try {
      if ((JSON.parse(payload) as { message_id?: unknown }).message_id !== id) return;
    } catch {
      return;
    }
    found.push({ ...where[i]!, rid: id, payload });
  });
  return found;
}

/**
 * A message by id, wherever it is, or null: first under its own id in the declared queues,
 * then in the others of the namespace, then by scanning the hashes (a copy Python Dramatiq
 * enqueued, retried or moved has a random `redis_message_id`).
 */
export async function findMessage(ctx: OpsContext, id: string): Promise<BrowseEntry | null> {
  const declared = [...ctx.host.declaredQueues()];
  for (const queues of [declared, null]) {
    const names = queues ?? (await ctx.host.listQueues()).filter((q) => !declared.includes(q));
    const e = await entryFrom(ctx, await keyed(ctx, id, names));
    if (e) return e;
  }
  return await entryFrom(ctx, (await locate(ctx, [id], ["q", "dq", "dead"], true)).get(id) ?? []);
}

/** The first of `copies` still where it was found, as an entry (null: none). */
async function entryFrom(ctx: OpsContext, copies: readonly Found[]): Promise<BrowseEntry | null> {
  for (const f of copies) {
    if (f.kind === "dead") {
      const since = Number(await ctx.send(["ZSCORE", `${ctx.host.ns}:${f.queue}.XQ`, f.rid]));
      return entryOf(f.payload, "dead", Number.isFinite(since) ? { since } : {}) ?? null;
    }
    if (f.kind === "dq") return entryOf(f.payload, "delayed") ?? null;
    const where = await ctx.run("locate", [f.queue, f.rid]);
    if (where === null) continue;
    return entryOf(f.payload, text(where) === "ready" ? "ready" : "running") ?? null;
  }
  return null;
}

/** The copy a move or runNow enqueues on `target`, ready: a fresh rid, no eta. */
function readyPayload(ctx: OpsContext, payload: string, target: string): {
  rid: string;
  payload: string;
  holder: string;
} {
  const m = decodeStored(payload);
  const options: JsonObject = { ...m.options };
  delete options.eta;
  const copy = m.copy({ queueName: target, options });
  const unique = uniqueOf(copy);
  return { ...ctx.host.encode(copy), holder: unique ? holderKey(ctx, unique.key) : "" };
}

/**
 * Takes waiting copies of `ids` (of `kinds`) and, with a `target` queue, enqueues them there
 * ready (`canonical`: each on its own canonical queue). Resolves with how many messages moved.
 */
export async function take(
  ctx: OpsContext,
  ids: readonly string[],
  kinds: readonly Found["kind"][],
  target: string | "canonical" | undefined,
): Promise<number> {
  const unique = [...new Set(ids)];
  const found = await locate(ctx, unique, kinds);
  let moved = 0;
  for (const id of unique) {
    const copies = (found.get(id) ?? []).sort((a, b) => order(a) - order(b));
    if (copies.length === 0) continue;
    if (target === undefined) {
      // A delete takes every waiting copy at once.
      const args = copies.flatMap((f) => [f.kind, f.queue, f.rid, "", "", "", ""]);
      if (Number(await ctx.run("take", args)) > 0) moved++;
      continue;
    }
    // A move takes one copy: the first still waiting (a running one is skipped by the script).
    for (const f of copies) {
      const to = target === "canonical" ? qName(f.queue) : target;
      const copy = readyPayload(ctx, f.payload, to);
      const n = await ctx.run("take", [
        f.kind,
        f.queue,
        f.rid,
        to,
        copy.rid,
        copy.payload,
        copy.holder,
      ]);
      if (Number(n) > 0) {
        moved++;
        break;
      }
    }
  }
  return moved;
}

function order(f: Found): number {
  return f.kind === "dq" ? 0 : f.kind === "q" ? 1 : 2;
}
