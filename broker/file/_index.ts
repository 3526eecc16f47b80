// The compact index of the replica: what a consumer keeps per live message is a few numbers in
// typed arrays (columns indexed by a _slot_), never an object. A message's JSON stays in its
// segment and is read when it is delivered.
//
// Per slot (23 bytes): the sort key (f64: the priority in a ready queue, the eta in a delayed one,
// the death time of a dead letter; the field it does not hold is in the record on disk), segment
// (u16, an index into the replica's segment table), offset (u32) and length (u16; longer ones in
// a map) of the JSON, flags (u8: state, and which kind of record holds the JSON), queue (u16, an
// index into the queue table), heap position (i32; the next free slot of a free one).
//
// The log id of a message created by an ENQ is not kept: it is the offset of that record, which
// its segment's base, the JSON's offset and its queue name's length give. Copies (SNAP, NACK) keep
// theirs in pages of a sparse side column. The order key within a priority level is (log id, 0)
// for nearly every message; the few that differ (requeued ones) keep theirs in a small map. Ids
// are found through an open-addressing table of slots (linear probing, at most 70% full): 4 bytes
// per bucket. Freed slots are reused, so the columns only grow with the messages live at once, and
// they grow in place (`_grow.ts`): never two copies at once.
import { REC_HEADER } from "./_format.ts";
import { column, free, grow } from "./_grow.ts";

/** Message states (`GONE`: a free slot). */
export const READY = 1, INFLIGHT = 2, DEAD = 3, GONE = 0;
/**
 * The record holding a slot's JSON, which says where its other fields are: an ENQ, a SNAP (its
 * queue name is the slot's queue's), a SNAP naming the slot's queue + `.DQ` (a dead letter copied
 * from a delayed queue), a NACK.
 */
export const FROM_ENQ = 0, FROM_SNAP = 1, FROM_SNAP_DQ = 2, FROM_NACK = 3;

const FIRST_CAPACITY = 1024;
const MAX_LOAD = 0.7;
/** Lengths from this one on are in `#long`. */
const LONG = 0xffff;
/** Slots per page of the side id column. */
const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;
/** Bytes of an ENQ before its JSON, besides the queue name: header, name length, two f64. */
const ENQ_FIXED = REC_HEADER + 1 + 16;

/** The columns of the live messages, with slot reuse and a lookup by log id. */
export class MsgIndex {
  /** Priority (ready queue), eta (delayed queue) or death time (dead letter). */
  key: Float64Array = column(FIRST_CAPACITY, Float64Array);
  /** Index in the segment table of the replica (`Uint32Array` once there are 65,536). */
  seg: Uint16Array | Uint32Array = column(FIRST_CAPACITY, Uint16Array);
  poff: Uint32Array = column(FIRST_CAPACITY, Uint32Array);
  /** The JSON's length, or `LONG` (then it is in `#long`); read it with `len()`. */
  #plen: Uint16Array = column(FIRST_CAPACITY, Uint16Array);
  /**
   * State (bits 0-1), the kind of record holding the JSON (`FROM_*`, bits 2-3), and bit 4: an ENQ
   * whose id is not derived (in tests). Below 4: an ENQ's message, its id derived.
   */
  #flags: Uint8Array = column(FIRST_CAPACITY, Uint8Array);
  /** Index in the queue table of the replica. */
  queue: Uint16Array = column(FIRST_CAPACITY, Uint16Array);
  /** Position in its queue's heap; -1 when in none. For a free slot: the next free one, or -1. */
  hi: Int32Array = column(FIRST_CAPACITY, Int32Array).fill(-1);
  /** Segment bases by segment number (`setSegment`). */
  readonly #segBase: number[] = [];
  /** Bytes of an ENQ before its JSON, by queue number (`setQueue`). */
  readonly #enqHead: number[] = [];
  /** Ids that are not derived (copies), in pages of `PAGE` slots, and each page's count. */
  readonly #side: (Float64Array | undefined)[] = [];
  readonly #sideCount: number[] = [];
  /** Lengths of `LONG` bytes or more, by slot. */
  readonly #long = new Map<number, number>();
  /** Order keys that are not (id, 0): requeued messages. */
  readonly #order = new Map<number, [number, number]>();
  /** Slots in use. */
  size = 0;
  /** Slots ever handed out (the free ones below are chained through `hi`). */
  #top = 0;
  #free = -1;
  /** Lookup by id: slot + 1 per bucket, 0 when empty. */
  #table: Int32Array = new Int32Array(2 * FIRST_CAPACITY);
  #shift = 32 - 11;

  /** The number of slots the columns have room for. */
  get capacity(): number {
    return this.key.length;
  }

  /** The slots ever handed out: every live slot is below this. */
  get top(): number {
    return this.#top;
  }

  /** Segment number `n` is the segment based at `base` (from now until it is reused). */
  setSegment(n: number, base: number): void {
    this.#segBase[n] = base;
  }

  /** Queue number `n` has a name of `nameBytes` bytes. */
  setQueue(n: number, nameBytes: number): void {
    this.#enqHead[n] = ENQ_FIXED + nameBytes;
  }

  /**
   * A new slot for message `id` (not already in the index), READY, with its columns set; `from`
   * says which record holds the JSON (`FROM_ENQ`: the record at offset `id`).
   */
  add(
    id: number,
    queue: number,
    key: number,
    seg: number,
    poff: number,
    plen: number,
    from = FROM_ENQ,
  ): number {
    let s = this.#free;
    if (s >= 0) this.#free = this.hi[s]!;
    else {
      if (this.#top === this.key.length) this.#grow(Math.ceil(this.key.length * 1.5));
      s = this.#top++;
    }
    if (seg > 0xffff && this.seg instanceof Uint16Array) this.#wideSegments();
    this.queue[s] = queue;
    this.key[s] = key;
    this.seg[s] = seg;
    this.poff[s] = poff;
    this.#setLen(s, plen);
    this.hi[s] = -1;
    this.#flags[s] = READY;
    if (from !== FROM_ENQ || this.#derived(s) !== id) this.#setSide(s, id, from);
    this.size++;
    if (this.size > MAX_LOAD * this.#table.length) this.#rehash(this.#table.length * 2);
    else this.#insert(s); // (a rehash inserts every live slot, this one too)
    return s;
  }

  /** Frees `slot` (its message is gone). */
  remove(slot: number): void {
    this.#unlink(slot);
    this.#order.delete(slot);
    if (this.#flags[slot]! >= 4) this.#clearSide(slot);
    this.#long.delete(slot);
    this.#flags[slot] = GONE;
    this.hi[slot] = this.#free;
    this.#free = slot;
    this.size--;
    const t = this.#table.length;
    if (t > 4 * FIRST_CAPACITY && this.size < t * 0.1) this.#rehash(t >> 2);
  }

  /** The state of `slot` (`READY`, `INFLIGHT`, `DEAD`, `GONE`). */
  state(slot: number): number {
    return this.#flags[slot]! & 3;
  }

  /** Sets the state of a live `slot`. */
  setState(slot: number, state: number): void {
    this.#flags[slot] = (this.#flags[slot]! & ~3) | state;
  }

  /** Which record holds the JSON of `slot` (`FROM_*`). */
  from(slot: number): number {
    return this.#from(slot);
  }

  #from(slot: number): number {
    return (this.#flags[slot]! >> 2) & 3;
  }

  /** The log id of the message in `slot`. */
  id(slot: number): number {
    if (this.#flags[slot]! < 4) return this.#derived(slot);
    return this.#side[slot >>> PAGE_BITS]![slot & (PAGE - 1)]!;
  }

  /** The length of the JSON of `slot`. */
  len(slot: number): number {
    const n = this.#plen[slot]!;
    return n === LONG ? this.#long.get(slot)! : n;
  }

  /** Moves the JSON of live `slot` to another record (`from`), keeping its id. */
  relocate(slot: number, seg: number, poff: number, plen: number, from: number): void {
    const id = this.id(slot);
    if (seg > 0xffff && this.seg instanceof Uint16Array) this.#wideSegments();
    this.seg[slot] = seg;
    this.poff[slot] = poff;
    this.#long.delete(slot);
    this.#setLen(slot, plen);
    this.#setSide(slot, id, from);
  }

  /** Moves live `slot` to queue `queue`, keeping its id; `from` as in `add()`. */
  moveQueue(slot: number, queue: number, from: number = this.#from(slot)): void {
    const id = this.id(slot);
    this.queue[slot] = queue;
    if (from === FROM_ENQ && this.#derived(slot) === id) {
      if (this.#flags[slot]! >= 4) this.#clearSide(slot);
    } else this.#setSide(slot, id, from);
  }

  /** The slot of message `id`, or -1. */
  find(id: number): number {
    const t = this.#table, mask = t.length - 1;
    for (let b = this.#bucket(id);; b = (b + 1) & mask) {
      const v = t[b]!;
      if (v === 0) return -1;
      if (this.id(v - 1) === id) return v - 1;
    }
  }

  /** First part of the order key within a priority (or eta) level. */
  k1(slot: number): number {
    return this.#order.get(slot)?.[0] ?? this.id(slot);
  }

  /** Second part of the order key. */
  k2(slot: number): number {
    return this.#order.get(slot)?.[1] ?? 0;
  }

  /** Sets the order key of `slot`. */
  setOrder(slot: number, k1: number, k2: number): void {
    if (k1 === this.id(slot) && k2 === 0) this.#order.delete(slot);
    else this.#order.set(slot, [k1, k2]);
  }

  /** True when `a` comes before `b` in a heap: (key, k1, k2). */
  before(a: number, b: number): boolean {
    const k = this.key;
    if (k[a] !== k[b]) return k[a]! < k[b]!;
    if (this.#order.size === 0) return this.id(a) < this.id(b);
    const a1 = this.k1(a), b1 = this.k1(b);
    return a1 < b1 || (a1 === b1 && this.k2(a) < this.k2(b));
  }

  /** Bytes held by the columns, the lookup table and the side ids (for tests and benches). */
  bytes(): number {
    const cols = this.key.byteLength + this.seg.byteLength + this.poff.byteLength +
      this.#plen.byteLength + this.#flags.byteLength + this.queue.byteLength +
      this.hi.byteLength;
    let side = 0;
    for (const p of this.#side) side += p?.byteLength ?? 0;
    return cols + this.#table.byteLength + side;
  }

  /** The id an ENQ at the place of `slot`'s JSON has. */
  #derived(slot: number): number {
    return this.#segBase[this.seg[slot]!]! + this.poff[slot]! - this.#enqHead[this.queue[slot]!]!;
  }

  #setLen(slot: number, plen: number): void {
    if (plen >= LONG) {
      this.#plen[slot] = LONG;
      this.#long.set(slot, plen);
    } else this.#plen[slot] = plen;
  }

  #setSide(slot: number, id: number, from: number): void {
    const p = slot >>> PAGE_BITS;
    if (this.#flags[slot]! < 4) {
      if (!this.#side[p]) {
        this.#side[p] = new Float64Array(PAGE);
        this.#sideCount[p] = 0;
      }
      this.#sideCount[p]!++;
    }
    this.#side[p]![slot & (PAGE - 1)] = id;
    this.#flags[slot] = (this.#flags[slot]! & 3) | (from << 2) | (from === FROM_ENQ ? 16 : 0);
  }

  #clearSide(slot: number): void {
    const p = slot >>> PAGE_BITS;
    this.#flags[slot] = this.#flags[slot]! & 3;
    if (--this.#sideCount[p]! === 0) {
      free(this.#side[p]!);
      this.#side[p] = undefined;
    }
  }

  #bucket(id: number): number {
    const lo = id >>> 0, hi = (id / 4294967296) >>> 0;
    return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> this.#shift;
  }

  #insert(slot: number): void {
    const t = this.#table, mask = t.length - 1;
    let b = this.#bucket(this.id(slot));
    while (t[b] !== 0) b = (b + 1) & mask;
    t[b] = slot + 1;
  }

  /** Removes `slot` from the lookup table (backward-shift deletion: no tombstones). */
  #unlink(slot: number): void {
    const t = this.#table, mask = t.length - 1;
    let b = this.#bucket(this.id(slot));
    while (t[b] !== slot + 1) {
      if (t[b] === 0) return;
      b = (b + 1) & mask;
    }
    let hole = b;
    for (let j = (hole + 1) & mask;; j = (j + 1) & mask) {
      const v = t[j]!;
      if (v === 0) break;
      const home = this.#bucket(this.id(v - 1));
      // Move v into the hole if its home is not in (hole, j] (cyclically).
      if (hole <= j ? (home <= hole || home > j) : (home <= hole && home > j)) {
        t[hole] = v;
        hole = j;
      }
    }
    t[hole] = 0;
  }

  #rehash(buckets: number): void {
    free(this.#table);
    this.#table = new Int32Array(buckets);
    this.#shift = 32 - Math.log2(buckets);
    for (let s = 0; s < this.#top; s++) if (this.#flags[s] !== GONE) this.#insert(s);
  }

  /**
   * Makes room for `n` slots at once (before replaying a log of known size). The columns grow in
   * place anyway; pages of a typed array that are never written cost no memory.
   */
  reserve(n: number): void {
    if (n > this.key.length) this.#grow(Math.ceil(n));
  }

  #grow(n: number): void {
    this.key = grow(this.key, n, Float64Array);
    this.seg = this.seg instanceof Uint16Array
      ? grow(this.seg, n, Uint16Array)
      : grow(this.seg, n, Uint32Array);
    this.poff = grow(this.poff, n, Uint32Array);
    this.#plen = grow(this.#plen, n, Uint16Array);
    this.#flags = grow(this.#flags, n, Uint8Array);
    this.queue = grow(this.queue, n, Uint16Array);
    this.hi = grow(this.hi, n, Int32Array); // (set by add())
  }

  #wideSegments(): void {
    const wide = column(this.seg.length, Uint32Array);
    wide.set(this.seg);
    free(this.seg);
    this.seg = wide;
  }
}
