// The operations' part of the replica: cancel marks, unique holders, last ticks, paused queues and
// progress, built from the MARK, UNIQUE, TICK, PAUSE and PROGRESS records (no I/O). Every process
// that reads the log reaches the same state. Nothing here is per pending message: a mark exists
// per cancelled message, a holder per unique key, progress per message that reported some.
//
// Each entry remembers the log id of the record it came from (`at`), so that compaction re-encodes
// the live ones that lie in the segments it deletes (see `snapshot`).
import { type BodyReader, Kind, type RecordWriter } from "./_format.ts";
import type { EngineExtension, MessageState } from "./_ops_hooks.ts";
import type { IdLookup } from "./_ids.ts";
import {
  decodeProgress,
  decodeUnique,
  encodeMark,
  encodePause,
  encodeProgress,
  encodeSchedulePause,
  encodeTick,
  encodeUnique,
  type HolderFields,
  restText,
  SCHEDULE_PAUSE,
} from "./_ops_records.ts";

/** How long a cancel mark is kept (the contract says at least 1 h). */
export const MARK_TTL = 3600_000;
/** How long progress is kept after its last write. */
export const PROGRESS_TTL = 3600_000;

/** A cancel mark. */
interface Mark {
  id: number;
  until: number;
  at: number;
}

/** A unique key's holder. */
export interface Holder extends HolderFields {
  at: number;
}

/** The operations' replica; the engine hands it their records (see `_ops_hooks.ts`). */
export class OpsState implements EngineExtension {
  readonly marks: Map<string, Mark> = new Map();
  readonly holders: Map<string, Holder> = new Map();
  /** Holder keys by the holder's log id. */
  readonly holderOf: Map<number, string> = new Map();
  readonly ticks: Map<string, { tick: number; at: number }> = new Map();
  readonly pausedQueues: Map<string, number> = new Map();
  /** Schedules paused (or resumed) since `since`; kept once resumed, for the missed ticks. */
  readonly schedulePauses: Map<string, { paused: boolean; since: number; at: number }> = new Map();
  readonly progress: Map<string, { value: string; updatedAt: number; at: number }> = new Map();
  /** Counts the MARK records applied: `cancelled()` answers from memory while it stays put. */
  markSeq = 0;
  /** The lookup by message id, once this process asked for a message by id (`_ids.ts`). */
  ids: IdLookup | undefined;

  /** `stateOf(id)`: where the message with that log id is (the engine's replica). */
  constructor(private readonly stateOf: (id: number) => MessageState | undefined) {}

  apply(kind: number, r: BodyReader, end: number, at: number, next: number): void {
    switch (kind) {
      case Kind.MARK: {
        const until = r.f64(), id = r.f64();
        this.marks.set(restText(r, end), { id, until, at });
        this.markSeq++;
        return;
      }
      case Kind.UNIQUE: {
        const h = decodeUnique(r, end, next, at);
        const old = this.holders.get(h.key);
        if (old) this.holderOf.delete(old.id);
        this.holders.set(h.key, h);
        this.holderOf.set(h.id, h.key);
        return;
      }
      case Kind.TICK: {
        const tick = r.f64(), name = restText(r, end);
        const last = this.ticks.get(name);
        if (!last || last.tick <= tick) this.ticks.set(name, { tick, at });
        return;
      }
      case Kind.PAUSE: {
        const flag = r.u8();
        if (flag & SCHEDULE_PAUSE) {
          const since = r.f64(), name = restText(r, end);
          this.schedulePauses.set(name, { paused: (flag & 1) === 1, since, at });
          return;
        }
        const paused = flag === 1, q = restText(r, end);
        if (paused) this.pausedQueues.set(q, at);
        else this.pausedQueues.delete(q);
        return;
      }
      case Kind.PROGRESS: {
        const p = decodeProgress(r, end);
        this.progress.set(p.messageId, { value: p.value, updatedAt: p.updatedAt, at });
        return;
      }
    }
  }

  reset(): void {
    this.marks.clear();
    this.holders.clear();
    this.holderOf.clear();
    this.ticks.clear();
    this.pausedQueues.clear();
    this.schedulePauses.clear();
    this.progress.clear();
    this.markSeq++;
  }

  paused(queueName: string): boolean {
    return this.pausedQueues.size > 0 && this.pausedQueues.has(queueName);
  }

  /** True while `key`'s holder is queued, delayed or running, or its `unique_for` lasts. */
  holds(h: Holder, now = Date.now()): boolean {
    if (now < h.until) return true;
    const s = this.stateOf(h.id);
    return s !== undefined && s.state !== "dead";
  }

  /** The live holder of `key`, if any. */
  holder(key: string, now = Date.now()): Holder | undefined {
    const h = this.holders.get(key);
    return h && this.holds(h, now) ? h : undefined;
  }

  /** The ids among `messageIds` with an unexpired cancel mark. */
  cancelled(messageIds: readonly string[], now = Date.now()): Set<string> {
    const out = new Set<string>();
    if (this.marks.size === 0) return out;
    for (const id of messageIds) {
      const m = this.marks.get(id);
      if (m && m.until > now) out.add(id);
    }
    return out;
  }

  snapshot(cutBase: number, out: RecordWriter): void {
    const now = Date.now();
    for (const [messageId, m] of this.marks) {
      if (m.until <= now || this.stateOf(m.id) === undefined) this.marks.delete(messageId);
      else if (m.at < cutBase) encodeMark(out, messageId, m.id, m.until);
    }
    for (const [key, h] of this.holders) {
      if (!this.holds(h, now)) {
        this.holders.delete(key);
        this.holderOf.delete(h.id);
      } else if (h.at < cutBase) {
        encodeUnique(out, h);
      }
    }
    for (const [name, t] of this.ticks) if (t.at < cutBase) encodeTick(out, name, t.tick);
    for (const [q, at] of this.pausedQueues) if (at < cutBase) encodePause(out, q, true);
    for (const [name, p] of this.schedulePauses) {
      if (p.at < cutBase) encodeSchedulePause(out, name, p.paused, p.since);
    }
    for (const [messageId, p] of this.progress) {
      if (p.updatedAt < now - PROGRESS_TTL) this.progress.delete(messageId);
      else if (p.at < cutBase) encodeProgress(out, messageId, p.updatedAt, p.value);
    }
  }
}
