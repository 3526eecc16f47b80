// The StubBroker's in-memory queues: ready messages by priority, delayed ones by eta, and those
// delivered and not yet settled. An entry taken out early (cancelled, deleted, moved) is marked
// gone and skipped when its turn comes.
import { Deque, Heap, type HeapItem } from "../util/queue.ts";

/** One stored message. */
export interface Entry extends HeapItem {
  /** The message as JSON (it goes through a round trip, as on a real broker). */
  json: string;
  /** Its message id. */
  id: string;
  priority: number;
  eta: number;
  seq: number;
  /** The queue holding it. */
  queue: StubQueue;
  /** Queued (ready or delayed), running (delivered, not settled), or gone. */
  state: "queued" | "running" | "gone";
  /** When it entered its state (ms since the epoch). */
  since: number;
}

/** One queue (`q` or `q.DQ`). */
export class StubQueue {
  /** Ready entries by priority (a FIFO per priority level). Used by normal queues. */
  readonly buckets: Map<number, Deque<Entry>> = new Map();
  priorities: number[] = [];
  /** Entries ordered by eta. Used by delay queues. */
  readonly byEta: Heap<Entry> = new Heap<Entry>(
    (a, b) => a.eta < b.eta || (a.eta === b.eta && a.seq < b.seq),
    { indexed: true },
  );
  /** Queued entries (not gone). */
  ready = 0;
  /** Delivered and not yet settled. */
  readonly running: Set<Entry> = new Set();
  readonly waiters: Set<() => void> = new Set();

  constructor(readonly name: string, readonly delayed: boolean) {}

  /** Enqueued and not yet acked or nacked (ready + in flight). */
  get pending(): number {
    return this.ready + this.running.size;
  }

  /** Queues `entry` (at the front of its priority with `front`: handed back). */
  put(entry: Entry, front = false): void {
    this.ready++;
    entry.state = "queued";
    entry.queue = this;
    entry.since = Date.now();
    if (this.delayed) {
      this.byEta.push(entry);
    } else {
      let bucket = this.buckets.get(entry.priority);
      if (!bucket) {
        this.buckets.set(entry.priority, bucket = new Deque());
        this.priorities = [...this.buckets.keys()].sort((a, b) => a - b);
      }
      if (front) bucket.unshift(entry);
      else bucket.push(entry);
    }
    this.wake();
  }

  /** Wakes every consumer waiting on this queue. */
  wake(): void {
    for (const w of this.waiters) w();
  }

  /** Up to `max` entries that may be delivered now; they become running. */
  take(max: number, now: number): Entry[] {
    const out: Entry[] = [];
    if (this.delayed) {
      while (out.length < max && this.byEta.length > 0 && this.byEta.peek()!.eta <= now) {
        out.push(this.byEta.pop()!);
      }
    } else {
      for (const p of this.priorities) {
        const bucket = this.buckets.get(p)!;
        while (out.length < max && bucket.length > 0) {
          const e = bucket.shift()!;
          if (e.state === "queued") out.push(e);
        }
        if (out.length >= max) break;
      }
    }
    this.ready -= out.length;
    for (const e of out) {
      e.state = "running";
      e.since = now;
      this.running.add(e);
    }
    return out;
  }

  /** Ms until the next delayed entry is due (Infinity when none). */
  nextDue(now: number): number {
    const head = this.byEta.peek();
    return head ? Math.max(0, head.eta - now) : Infinity;
  }

  /** Takes `entry` out, whatever its state. */
  remove(entry: Entry): void {
    if (entry.state === "queued") {
      this.ready--;
      if (this.delayed) this.byEta.remove(entry);
    } else if (entry.state === "running") {
      this.running.delete(entry);
    }
    entry.state = "gone";
  }

  /** The queued entries, in no particular order. */
  queued(): Entry[] {
    if (this.delayed) return this.byEta.toArray();
    const out: Entry[] = [];
    for (const b of this.buckets.values()) for (const e of b) if (e.state === "queued") out.push(e);
    return out;
  }

  /** Drops every queued entry; returns them. */
  clear(): Entry[] {
    const out = this.queued();
    for (const e of out) e.state = "gone";
    if (this.delayed) this.byEta.clear();
    for (const b of this.buckets.values()) b.clear();
    this.ready = 0;
    return out;
  }
}
