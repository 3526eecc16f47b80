// The replica: the state of every queue in the directory, rebuilt by applying log records in
// order. Pure memory, no I/O: `_segments.ts` reads the records and calls `apply()`.
//
// Every process that applies the same records in the same order reaches the same state; that is
// what lets a consumer decide, under the lock, which messages are free to claim.
import { BodyReader, Kind, REC_HEADER } from "./_format.ts";
import { IndexedHeap } from "./_heap.ts";
import type { Seg } from "./_segments.ts";

/** Message states. */
export const READY = 1, INFLIGHT = 2, DEAD = 3, GONE = 0;
/** Bytes a live message is charged for beyond its JSON (record header and fields). */
export const RECORD_OVERHEAD = 64;

/** One message, as the replica knows it. Its JSON stays on disk until delivered. */
export class Msg {
  /** Index in its queue's heap; -1 when not ready. */
  hi = -1;
  state: number = READY;
  /** The owner holding it, while in flight. */
  owner = 0;
  /** When it was dead-lettered (ms), while dead. */
  deadAt = 0;
  constructor(
    /** Log id: the global offset of the record that created it. */
    readonly id: number,
    /** Its queue (`q` or `q.DQ`; for a dead letter, the canonical `q`). */
    public q: QueueState,
    public priority: number,
    public eta: number,
    /** Order key within a priority level: (k1, k2), lowest first. */
    public k1: number,
    public k2: number,
    /** Where its JSON is: segment, file offset, length. */
    public seg: Seg,
    public poff: number,
    public plen: number,
  ) {}
}

function readyBefore(a: Msg, b: Msg): boolean {
  if (a.priority !== b.priority) return a.priority < b.priority;
  return a.k1 < b.k1 || (a.k1 === b.k1 && a.k2 < b.k2);
}

function dueBefore(a: Msg, b: Msg): boolean {
  if (a.eta !== b.eta) return a.eta < b.eta;
  return a.k1 < b.k1 || (a.k1 === b.k1 && a.k2 < b.k2);
}

/** One queue (`q` or `q.DQ`): its ready (or delayed) heap, in-flight and dead counters. */
export class QueueState {
  /** Ready messages by (priority, key); on `q.DQ`, delayed messages by (eta, key). */
  readonly heap: IndexedHeap<Msg>;
  /** Messages in flight. */
  inflight = 0;
  /** Messages in flight by owner. */
  readonly inflightBy: Map<number, number> = new Map();
  /** Dead letters (canonical queues only), in the order they died. */
  readonly dead: Map<number, Msg> = new Map();
  /** Counts dead letters ever added, so `join` can notice a new one. */
  deadSeq = 0;
  /** The latest dead letter. */
  lastDead: Msg | undefined;

  constructor(readonly name: string, readonly delayed: boolean) {
    this.heap = new IndexedHeap<Msg>(delayed ? dueBefore : readyBefore);
  }
}

/** A consumer instance (a FileBroker in one process or Web Worker) and its lease. */
export class Owner {
  leaseUntil = 0;
  readonly msgs: Set<Msg> = new Set();
  constructor(readonly id: number) {}
}

/** The state of every queue, built from the log. */
export class State {
  readonly msgs: Map<number, Msg> = new Map();
  readonly queues: Map<string, QueueState> = new Map();
  readonly owners: Map<number, Owner> = new Map();
  /** Records applied so far. */
  applied = 0;

  constructor(private readonly options: { deadMessageTtl: number }) {}

  /** The state of queue `name` (`q` or `q.DQ`), created on first use. */
  queue(name: string): QueueState {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, q = new QueueState(name, name.endsWith(".DQ")));
    return q;
  }

  #canonical(q: QueueState): QueueState {
    return q.delayed ? this.queue(q.name.slice(0, -3)) : q;
  }

  #owner(id: number): Owner {
    let o = this.owners.get(id);
    if (!o) this.owners.set(id, o = new Owner(id));
    return o;
  }

  /**
   * Applies the record whose body is `buf[bs..be)`; the record starts at file offset `at` of
   * segment `seg`.
   */
  apply(kind: number, buf: Uint8Array, bs: number, be: number, seg: Seg, at: number): void {
    this.applied++;
    const r = new BodyReader(buf, bs, be);
    const fileOffset = (p: number) => at + REC_HEADER + (p - bs);
    switch (kind) {
      case Kind.ENQ: {
        const q = this.queue(r.queue());
        const priority = r.f64();
        const eta = r.f64();
        const id = seg.base + at;
        if (this.msgs.has(id)) return;
        const m = new Msg(id, q, priority, eta, id, 0, seg, fileOffset(r.pos), be - r.pos);
        this.#add(m);
        q.heap.push(m);
        return;
      }
      case Kind.CLAIM: {
        const owner = this.#owner(r.f64());
        owner.leaseUntil = Math.max(owner.leaseUntil, r.f64());
        for (let n = r.u32(); n > 0; n--) {
          const m = this.msgs.get(r.f64());
          if (m && m.state === READY) {
            m.q.heap.remove(m);
            this.#own(m, owner);
          }
        }
        return;
      }
      case Kind.ACK: {
        r.f64(); // owner: any ack settles the message, even a late one after an EXPIRE
        for (let n = r.u32(); n > 0; n--) {
          const m = this.msgs.get(r.f64());
          if (m && m.state !== DEAD) this.#drop(m);
        }
        return;
      }
      case Kind.REQUEUE: {
        const owner = r.f64();
        const k1 = -(seg.base + at);
        for (let i = 0, n = r.u32(); i < n; i++) {
          const m = this.msgs.get(r.f64());
          if (m && m.state === INFLIGHT && m.owner === owner) {
            this.#unown(m);
            m.k1 = k1;
            m.k2 = i;
            m.state = READY;
            m.q.heap.push(m);
          }
        }
        return;
      }
      case Kind.NACK: {
        r.f64(); // owner
        const id = r.f64();
        const deadAt = r.f64();
        const q = this.queue(r.queue());
        const priority = r.f64();
        const old = this.msgs.get(id);
        if (old) this.#drop(old);
        if (this.#expiredDead(deadAt)) return;
        const m = new Msg(id, q, priority, 0, id, 0, seg, fileOffset(r.pos), be - r.pos);
        this.#add(m);
        this.#kill(m, deadAt);
        return;
      }
      case Kind.HEARTBEAT: {
        const owner = this.#owner(r.f64());
        owner.leaseUntil = Math.max(owner.leaseUntil, r.f64());
        return;
      }
      case Kind.EXPIRE: {
        const owner = this.owners.get(r.f64());
        if (!owner) return;
        for (const m of [...owner.msgs]) {
          this.#unown(m);
          m.state = READY;
          m.q.heap.push(m);
        }
        return;
      }
      case Kind.FLUSH: {
        const name = r.queue();
        for (const q of [this.queues.get(name), this.queues.get(`${name}.DQ`)]) {
          if (q) { for (const m of q.heap.clear()) this.#drop(m); }
        }
        return;
      }
      case Kind.FLUSHALL: {
        for (const q of this.queues.values()) {
          for (const m of q.heap.clear()) this.#drop(m);
          for (const m of [...q.dead.values()]) this.#drop(m);
        }
        return;
      }
      case Kind.PURGE: {
        const q = this.queues.get(r.queue());
        if (q) { for (const m of [...q.dead.values()]) this.#drop(m); }
        return;
      }
      case Kind.UNDEAD: {
        for (let n = r.u32(); n > 0; n--) {
          const m = this.msgs.get(r.f64());
          if (m && m.state === DEAD) this.#drop(m);
        }
        return;
      }
      case Kind.SNAP: {
        const id = r.f64();
        const state = r.u8();
        const k1 = r.f64(), k2 = r.f64();
        const ownerId = r.f64(), leaseUntil = r.f64(), deadAt = r.f64();
        const priority = r.f64(), eta = r.f64();
        const q = this.queue(r.queue());
        const poff = fileOffset(r.pos), plen = be - r.pos;
        const known = this.msgs.get(id);
        if (known) {
          // This replica saw the message's whole history: only its place on disk changed.
          this.#relocate(known, seg, poff, plen);
          return;
        }
        if (state === DEAD && this.#expiredDead(deadAt)) return;
        const m = new Msg(id, q, priority, eta, k1, k2, seg, poff, plen);
        this.#add(m);
        if (state === READY) {
          q.heap.push(m);
        } else if (state === INFLIGHT) {
          const owner = this.#owner(ownerId);
          owner.leaseUntil = Math.max(owner.leaseUntil, leaseUntil);
          this.#own(m, owner);
        } else {
          this.#kill(m, deadAt);
        }
        return;
      }
    }
  }

  #expiredDead(deadAt: number): boolean {
    return deadAt < Date.now() - this.options.deadMessageTtl;
  }

  #add(m: Msg): void {
    this.msgs.set(m.id, m);
    m.seg.live++;
    m.seg.liveBytes += m.plen + RECORD_OVERHEAD;
  }

  #relocate(m: Msg, seg: Seg, poff: number, plen: number): void {
    m.seg.live--;
    m.seg.liveBytes -= m.plen + RECORD_OVERHEAD;
    m.seg = seg;
    m.poff = poff;
    m.plen = plen;
    seg.live++;
    seg.liveBytes += plen + RECORD_OVERHEAD;
  }

  #own(m: Msg, owner: Owner): void {
    m.state = INFLIGHT;
    m.owner = owner.id;
    owner.msgs.add(m);
    m.q.inflight++;
    m.q.inflightBy.set(owner.id, (m.q.inflightBy.get(owner.id) ?? 0) + 1);
  }

  #unown(m: Msg): void {
    this.owners.get(m.owner)?.msgs.delete(m);
    m.q.inflight--;
    const n = (m.q.inflightBy.get(m.owner) ?? 1) - 1;
    if (n > 0) m.q.inflightBy.set(m.owner, n);
    else m.q.inflightBy.delete(m.owner);
    m.owner = 0;
  }

  #kill(m: Msg, deadAt: number): void {
    const q = this.#canonical(m.q);
    m.q = q;
    m.state = DEAD;
    m.deadAt = deadAt;
    q.dead.set(m.id, m);
    q.deadSeq++;
    q.lastDead = m;
  }

  #drop(m: Msg): void {
    if (m.state === READY) m.q.heap.remove(m);
    else if (m.state === INFLIGHT) this.#unown(m);
    else if (m.state === DEAD) this.#canonical(m.q).dead.delete(m.id);
    m.state = GONE;
    this.msgs.delete(m.id);
    m.seg.live--;
    m.seg.liveBytes -= m.plen + RECORD_OVERHEAD;
  }

  /** Drops dead letters older than the retention, and owners that hold nothing. */
  sweep(now = Date.now()): void {
    const limit = now - this.options.deadMessageTtl;
    for (const q of this.queues.values()) {
      for (const m of q.dead.values()) if (m.deadAt < limit) this.#drop(m);
    }
    for (const [id, o] of this.owners) {
      if (o.msgs.size === 0 && o.leaseUntil < now - 60_000) this.owners.delete(id);
    }
  }

  /** The earliest lease end among other owners holding messages of `q` (Infinity if none). */
  nextExpiry(q: QueueState, me: number): number {
    let t = Infinity;
    for (const id of q.inflightBy.keys()) {
      if (id === me) continue;
      const o = this.owners.get(id);
      if (o && o.leaseUntil < t) t = o.leaseUntil;
    }
    return t;
  }

  /** Other owners holding messages of `q` whose lease ended before `now`, or that are `gone`. */
  expiredOwners(
    q: QueueState,
    me: number,
    now: number,
    gone: (owner: number) => boolean = () => false,
  ): number[] {
    const out: number[] = [];
    for (const id of q.inflightBy.keys()) {
      if (id === me) continue;
      const o = this.owners.get(id);
      if (!o || o.leaseUntil < now || gone(id)) out.push(id);
    }
    return out;
  }
}
