// The replica: the state of every queue in the directory, rebuilt by applying log records in
// order. Pure memory, no I/O: `_segments.ts` reads the records and calls `apply()`.
//
// Every process that applies the same records in the same order reaches the same state; that is
// what lets a consumer decide, under the lock, which messages are free to claim.
//
// A message is a slot of the compact index (`_index.ts`): a few numbers in typed arrays. Objects
// exist per queue, per owner and per segment, never per message; `ref()` makes one for the few
// messages being delivered or inspected, and reads the one of priority and eta that the index
// does not keep from the record, if asked.
import { BodyReader, Kind, REC_HEADER } from "./_format.ts";
import { SlotHeap } from "./_heap.ts";
import {
  DEAD,
  FROM_ENQ,
  FROM_NACK,
  FROM_SNAP,
  FROM_SNAP_DQ,
  GONE,
  INFLIGHT,
  MsgIndex,
  READY,
} from "./_index.ts";
import type { Seg } from "./_segments.ts";
import { collectGarbage } from "../../runtime/process.ts";

export { DEAD, GONE, INFLIGHT, READY };
/** Index bytes from which deliveries ask for a collection now and then (`delivered()`). */
const GC_INDEX_BYTES = 16 * 1024 * 1024;
/** Messages delivered between two such collections. */
const GC_EVERY = 8192;

/** Bytes a live message is charged for beyond its JSON (record header and fields). */
export const RECORD_OVERHEAD = 64;

/** A copy of what the replica knows of one message (made on demand; not kept). */
export interface Msg {
  /** Its slot in the index (valid until the message is gone). */
  readonly slot: number;
  /** Log id: the global offset of the record that created it. */
  readonly id: number;
  /** Its queue (`q` or `q.DQ`; for a dead letter, the canonical `q`). */
  readonly q: QueueState;
  readonly state: number;
  readonly priority: number;
  readonly eta: number;
  /** When it was dead-lettered (ms), while dead. */
  readonly deadAt: number;
  /** The owner holding it, while in flight (else 0). */
  readonly owner: number;
  /** Order key within a priority level: (k1, k2), lowest first. */
  readonly k1: number;
  readonly k2: number;
  /** Where its JSON is: segment, file offset, length. */
  readonly seg: Seg;
  readonly poff: number;
  readonly plen: number;
}

const field = new Uint8Array(8);
const fieldView = new DataView(field.buffer);

/** A `Msg` made by `State.ref()`: priority and eta are read from the record when not in the key. */
class Ref implements Msg {
  constructor(
    readonly slot: number,
    readonly id: number,
    readonly q: QueueState,
    readonly state: number,
    /** The index's key: priority, eta or death time (see `_index.ts`). */
    readonly key: number,
    /** Which record holds the JSON (`FROM_*`). */
    readonly from: number,
    readonly owner: number,
    readonly k1: number,
    readonly k2: number,
    readonly seg: Seg,
    readonly poff: number,
    readonly plen: number,
  ) {}

  get priority(): number {
    if (this.state !== DEAD && !this.q.delayed) return this.key;
    return this.#read(
      this.from === FROM_NACK ? 8 : this.from === FROM_ENQ ? 16 : 16 + this.#name(),
    );
  }

  get eta(): number {
    if (this.state === DEAD || this.from === FROM_NACK) return 0;
    if (this.q.delayed) return this.key;
    return this.#read(this.from === FROM_ENQ ? 8 : 8 + this.#name());
  }

  get deadAt(): number {
    return this.state === DEAD ? this.key : 0;
  }

  /** Bytes of a SNAP's queue name and its length, just before the JSON. */
  #name(): number {
    return 1 + this.q.name.length + (this.from === FROM_SNAP_DQ ? 3 : 0);
  }

  /** The f64 that ends `back` bytes before the JSON. */
  #read(back: number): number {
    if (this.seg.file.read(field, this.poff - back) < 8) {
      throw new RangeError(`${this.seg.path} ends inside the record of message ${this.id}.`);
    }
    return fieldView.getFloat64(0, true);
  }
}

/** One queue (`q` or `q.DQ`): its ready (or delayed) heap, in-flight and dead counters. */
export class QueueState {
  /** Ready slots by (priority, k1, k2); on `q.DQ`, delayed slots by (eta, k1, k2). */
  readonly heap: SlotHeap;
  /** Messages in flight. */
  inflight = 0;
  /** Messages in flight by owner. */
  readonly inflightBy: Map<number, number> = new Map();
  /** Dead letters (canonical queues only), log id to slot, in the order they died. */
  readonly dead: Map<number, number> = new Map();
  /** Counts dead letters ever added, so `join` can notice a new one. */
  deadSeq = 0;
  /** The log id of the latest dead letter. */
  lastDead: number | undefined;

  constructor(
    readonly name: string,
    readonly delayed: boolean,
    /** Its number in the queue table (the index's `queue` column). */
    readonly index: number,
    msgs: MsgIndex,
  ) {
    this.heap = new SlotHeap(msgs);
  }
}

/** A consumer instance (a FileBroker in one process or Web Worker) and its lease. */
export class Owner {
  leaseUntil = 0;
  /** The slots it holds. */
  readonly msgs: Set<number> = new Set();
  constructor(readonly id: number) {}
}

/** The state of every queue, built from the log. */
export class State {
  /** The live messages. */
  readonly index: MsgIndex = new MsgIndex();
  readonly queues: Map<string, QueueState> = new Map();
  readonly owners: Map<number, Owner> = new Map();
  /** Records applied so far. */
  applied = 0;
  readonly #queueList: QueueState[] = [];
  /** The segment table: the segments holding live messages, by their number in the index. */
  readonly #segs: (Seg | undefined)[] = [];
  readonly #segNo = new Map<Seg, number>();
  readonly #segFree: number[] = [];
  /** The owner of each slot in flight. */
  readonly #ownerOf = new Map<number, number>();

  readonly #reader = new Fields();
  #delivered = 0;

  constructor(private readonly options: { deadMessageTtl: number }) {}

  /** The state of queue `name` (`q` or `q.DQ`), created on first use. */
  queue(name: string): QueueState {
    let q = this.queues.get(name);
    if (!q) {
      const n = this.#queueList.length;
      if (n > 0xffff) {
        throw new RangeError(
          `A FileBroker directory holds at most 65,536 queues; use fewer queue names.`,
        );
      }
      q = new QueueState(name, name.endsWith(".DQ"), n, this.index);
      this.index.setQueue(n, name.length); // (queue names are ASCII)
      this.queues.set(name, q);
      this.#queueList.push(q);
    }
    return q;
  }

  /** The slot of message `id`, or -1 when it is gone. */
  find(id: number): number {
    return this.index.find(id);
  }

  /** What is known of message `id`, or undefined when it is gone. */
  get(id: number): Msg | undefined {
    const s = this.index.find(id);
    return s < 0 ? undefined : this.ref(s);
  }

  /** What is known of the message in `slot` (a live slot). */
  ref(slot: number): Msg {
    const x = this.index;
    return new Ref(
      slot,
      x.id(slot),
      this.queueOf(slot),
      x.state(slot),
      x.key[slot]!,
      x.from(slot),
      this.#ownerOf.get(slot) ?? 0,
      x.k1(slot),
      x.k2(slot),
      this.segOf(slot),
      x.poff[slot]!,
      x.len(slot),
    );
  }

  /** The queue of a live slot. */
  queueOf(slot: number): QueueState {
    return this.#queueList[this.index.queue[slot]!]!;
  }

  /** The segment of a live slot. */
  segOf(slot: number): Seg {
    return this.#segs[this.index.seg[slot]!]!;
  }

  /** Calls `each` with every live slot. */
  forEachSlot(each: (slot: number) => void): void {
    const x = this.index, top = x.top;
    for (let s = 0; s < top; s++) if (x.state(s) !== GONE) each(s);
  }

  #owner(id: number): Owner {
    let o = this.owners.get(id);
    if (!o) this.owners.set(id, o = new Owner(id));
    return o;
  }

  #canonical(q: QueueState): QueueState {
    return q.delayed ? this.queue(q.name.slice(0, -3)) : q;
  }

  /**
   * Applies the record whose body is `buf[bs..be)`; the record starts at file offset `at` of
   * segment `seg`.
   */
  apply(kind: number, buf: Uint8Array, bs: number, be: number, seg: Seg, at: number): void {
    this.applied++;
    const r = this.#reader.at(buf, bs);
    const fileOffset = at + REC_HEADER - bs; // + a position in buf: the offset in the file
    const x = this.index;
    switch (kind) {
      case Kind.ENQ: {
        const q = r.queueIn(this);
        const priority = r.f64();
        const eta = r.f64();
        const id = seg.base + at;
        if (x.find(id) >= 0) return;
        const s = this.#add(id, q, q.delayed ? eta : priority, seg, fileOffset + r.pos, be - r.pos);
        q.heap.push(s);
        return;
      }
      case Kind.CLAIM: {
        const owner = this.#owner(r.f64());
        owner.leaseUntil = Math.max(owner.leaseUntil, r.f64());
        for (let n = r.u32(); n > 0; n--) {
          const s = x.find(r.f64());
          if (s >= 0 && x.state(s) === READY) {
            this.queueOf(s).heap.remove(s);
            this.#own(s, owner);
          }
        }
        return;
      }
      case Kind.ACK: {
        r.f64(); // owner: any ack settles the message, even a late one after an EXPIRE
        for (let n = r.u32(); n > 0; n--) {
          const s = x.find(r.f64());
          if (s >= 0 && x.state(s) !== DEAD) this.#drop(s);
        }
        return;
      }
      case Kind.REQUEUE: {
        const owner = r.f64();
        const k1 = -(seg.base + at);
        for (let i = 0, n = r.u32(); i < n; i++) {
          const s = x.find(r.f64());
          if (s >= 0 && x.state(s) === INFLIGHT && this.#ownerOf.get(s) === owner) {
            this.#unown(s);
            x.setOrder(s, k1, i);
            x.setState(s, READY);
            this.queueOf(s).heap.push(s);
          }
        }
        return;
      }
      case Kind.NACK: {
        r.f64(); // owner
        const id = r.f64();
        const deadAt = r.f64();
        const q = r.queueIn(this);
        r.f64(); // priority: read from the record when asked (`Ref`)
        const old = x.find(id);
        if (old >= 0) this.#drop(old);
        if (this.#expiredDead(deadAt)) return;
        const s = this.#add(id, q, deadAt, seg, fileOffset + r.pos, be - r.pos, FROM_NACK);
        this.#kill(s, deadAt, FROM_NACK);
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
        for (const s of [...owner.msgs]) {
          this.#unown(s);
          x.setState(s, READY);
          this.queueOf(s).heap.push(s);
        }
        return;
      }
      case Kind.FLUSH: {
        const name = r.queue();
        for (const q of [this.queues.get(name), this.queues.get(`${name}.DQ`)]) {
          if (q) { for (const s of q.heap.clear()) this.#drop(s); }
        }
        return;
      }
      case Kind.FLUSHALL: {
        for (const q of this.queues.values()) {
          for (const s of q.heap.clear()) this.#drop(s);
          for (const s of [...q.dead.values()]) this.#drop(s);
        }
        return;
      }
      case Kind.PURGE: {
        const q = this.queues.get(r.queue());
        if (q) { for (const s of [...q.dead.values()]) this.#drop(s); }
        return;
      }
      case Kind.UNDEAD: {
        for (let n = r.u32(); n > 0; n--) {
          const s = x.find(r.f64());
          if (s >= 0 && x.state(s) === DEAD) this.#drop(s);
        }
        return;
      }
      case Kind.SNAP: {
        const id = r.f64();
        const state = r.u8();
        const k1 = r.f64(), k2 = r.f64();
        const ownerId = r.f64(), leaseUntil = r.f64(), deadAt = r.f64();
        const priority = r.f64(), eta = r.f64();
        const q = r.queueIn(this);
        const poff = fileOffset + r.pos, plen = be - r.pos;
        const known = x.find(id);
        if (known >= 0) {
          // This replica saw the message's whole history: only its place on disk changed.
          const mine = this.queueOf(known);
          const from = q === mine || q.name !== `${mine.name}.DQ` ? FROM_SNAP : FROM_SNAP_DQ;
          this.#relocate(known, seg, poff, plen, from);
          return;
        }
        if (state === DEAD && this.#expiredDead(deadAt)) return;
        const key = state === DEAD ? deadAt : q.delayed ? eta : priority;
        const s = this.#add(id, q, key, seg, poff, plen, FROM_SNAP);
        x.setOrder(s, k1, k2);
        if (state === READY) {
          q.heap.push(s);
        } else if (state === INFLIGHT) {
          const owner = this.#owner(ownerId);
          owner.leaseUntil = Math.max(owner.leaseUntil, leaseUntil);
          this.#own(s, owner);
        } else {
          this.#kill(s, deadAt, q.delayed ? FROM_SNAP_DQ : FROM_SNAP);
        }
        return;
      }
    }
  }

  #expiredDead(deadAt: number): boolean {
    return deadAt < Date.now() - this.options.deadMessageTtl;
  }

  /** The number of `seg` in the segment table (entered on first use). */
  #segNumber(seg: Seg): number {
    let n = this.#segNo.get(seg);
    if (n === undefined) {
      n = this.#segFree.pop() ?? this.#segs.length;
      this.#segs[n] = seg;
      this.#segNo.set(seg, n);
      this.index.setSegment(n, seg.base);
    }
    return n;
  }

  /** One live message less in `seg` (a slot's JSON was there, `plen` bytes). */
  #segLeave(seg: Seg, plen: number): void {
    seg.live--;
    seg.liveBytes -= plen + RECORD_OVERHEAD;
    if (seg.live <= 0) {
      const n = this.#segNo.get(seg);
      if (n !== undefined) {
        this.#segNo.delete(seg);
        this.#segs[n] = undefined;
        this.#segFree.push(n);
      }
    }
  }

  #add(
    id: number,
    q: QueueState,
    key: number,
    seg: Seg,
    poff: number,
    plen: number,
    from = FROM_ENQ,
  ): number {
    const s = this.index.add(id, q.index, key, this.#segNumber(seg), poff, plen, from);
    seg.live++;
    seg.liveBytes += plen + RECORD_OVERHEAD;
    return s;
  }

  #relocate(s: number, seg: Seg, poff: number, plen: number, from: number): void {
    const x = this.index;
    const n = this.#segNumber(seg);
    seg.live++;
    seg.liveBytes += plen + RECORD_OVERHEAD;
    this.#segLeave(this.segOf(s), x.len(s));
    x.relocate(s, n, poff, plen, from);
  }

  #own(s: number, owner: Owner): void {
    const q = this.queueOf(s);
    this.index.setState(s, INFLIGHT);
    this.#ownerOf.set(s, owner.id);
    owner.msgs.add(s);
    q.inflight++;
    q.inflightBy.set(owner.id, (q.inflightBy.get(owner.id) ?? 0) + 1);
  }

  #unown(s: number): void {
    const q = this.queueOf(s);
    const id = this.#ownerOf.get(s) ?? 0;
    this.#ownerOf.delete(s);
    this.owners.get(id)?.msgs.delete(s);
    q.inflight--;
    const n = (q.inflightBy.get(id) ?? 1) - 1;
    if (n > 0) q.inflightBy.set(id, n);
    else q.inflightBy.delete(id);
  }

  /** Makes new slot `s` (from a `from` record naming its queue) a dead letter. */
  #kill(s: number, deadAt: number, from: number): void {
    const x = this.index;
    const q = this.#canonical(this.queueOf(s));
    const id = x.id(s);
    x.moveQueue(s, q.index, from);
    x.setState(s, DEAD);
    x.key[s] = deadAt;
    q.dead.set(id, s);
    q.deadSeq++;
    q.lastDead = id;
  }

  #drop(s: number): void {
    const x = this.index;
    const state = x.state(s);
    if (state === READY) this.queueOf(s).heap.remove(s);
    else if (state === INFLIGHT) this.#unown(s);
    else if (state === DEAD) this.#canonical(this.queueOf(s)).dead.delete(x.id(s));
    this.#segLeave(this.segOf(s), x.len(s));
    x.remove(s);
  }

  /** Drops dead letters older than the retention, and owners that hold nothing. */
  sweep(now = Date.now()): void {
    const limit = now - this.options.deadMessageTtl;
    const deadAt = this.index.key;
    for (const q of this.queues.values()) {
      for (const s of q.dead.values()) if (deadAt[s]! < limit) this.#drop(s);
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

  /**
   * Counts `n` messages handed out. With a big index, a full collection every `GC_EVERY` of
   * them on Bun: its collector sizes the heap by what is live, the index's columns included, and
   * would otherwise let the garbage of deliveries grow to gigabytes (measured: 2.2 GB while
   * draining 10,000,000 in a receive/ack loop, ~90 MB with these collections).
   */
  delivered(n: number): void {
    this.#delivered += n;
    if (this.#delivered < GC_EVERY) return;
    this.#delivered = 0;
    if (this.index.bytes() >= GC_INDEX_BYTES) collectGarbage();
  }

  /** Bytes held by the index, the heaps and the tables (for the memory benchmark). */
  bytes(): { index: number; heaps: number } {
    let heaps = 0;
    for (const q of this.queues.values()) heaps += q.heap.bytes();
    return { index: this.index.bytes(), heaps };
  }
}

/**
 * Reads the fields of record bodies without allocating per record: one reader for the replica,
 * the DataView kept while the buffer stays the same, the last queue's name compared as bytes.
 */
class Fields extends BodyReader {
  #last: QueueState | undefined;

  /** The state of the queue named next, from `state` (no string made when it is the last one). */
  queueIn(state: State): QueueState {
    const b = this.buf, n = b[this.pos]!, last = this.#last;
    if (last && last.name.length === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (b[this.pos + 1 + i] !== last.name.charCodeAt(i)) {
          same = false;
          break;
        }
      }
      if (same && state.queues.get(last.name) === last) {
        this.pos += 1 + n;
        return last;
      }
    }
    return this.#last = state.queue(this.queue());
  }
}
