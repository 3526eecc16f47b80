// The compact index of the replica: what a consumer keeps per live message is a few numbers in
// typed arrays (columns indexed by a _slot_), never an object. A message's JSON stays in its
// segment and is read when it is delivered.
//
// Per slot: log id (f64), priority (f64), eta (f64; the death time for a dead letter), segment
// (u16, an index into the replica's segment table), offset and length of the JSON (u32 each),
// state (u8), queue (u16, an index into the queue table), heap position (i32): 41 bytes. The
// order key within a priority level is (log id, 0) for nearly every message; the few that differ
// (requeued ones) keep theirs in a small map. Ids are found through an open-addressing table of
// slots (linear probing, at most 70% full): 4 bytes per bucket, the id itself is read from the
// id column. Freed slots are reused (a free list), so the columns only grow with the number of
// messages live at once.

/** Message states (`GONE`: a free slot). */
export const READY = 1, INFLIGHT = 2, DEAD = 3, GONE = 0;

const FIRST_CAPACITY = 1024;
const MAX_LOAD = 0.7;

/** The columns of the live messages, with slot reuse and a lookup by log id. */
export class MsgIndex {
  id: Float64Array = new Float64Array(FIRST_CAPACITY);
  priority: Float64Array = new Float64Array(FIRST_CAPACITY);
  /** The eta; for a dead letter, when it died (its eta is 0 then). */
  eta: Float64Array = new Float64Array(FIRST_CAPACITY);
  /** Index in the segment table of the replica (`Uint32Array` once there are 65,536). */
  seg: Uint16Array | Uint32Array = new Uint16Array(FIRST_CAPACITY);
  poff: Uint32Array = new Uint32Array(FIRST_CAPACITY);
  plen: Uint32Array = new Uint32Array(FIRST_CAPACITY);
  state: Uint8Array = new Uint8Array(FIRST_CAPACITY);
  /** Index in the queue table of the replica. */
  queue: Uint16Array = new Uint16Array(FIRST_CAPACITY);
  /** Position in its queue's heap; -1 when in none. */
  hi: Int32Array = new Int32Array(FIRST_CAPACITY).fill(-1);
  /** Order keys that are not (id, 0): requeued messages. */
  readonly #order = new Map<number, [number, number]>();
  /** Slots in use. */
  size = 0;
  /** Slots ever handed out (the free ones below are in `#free`). */
  #top = 0;
  #free: Int32Array = new Int32Array(64);
  #freeCount = 0;
  /** Lookup by id: slot + 1 per bucket, 0 when empty. */
  #table: Int32Array = new Int32Array(2 * FIRST_CAPACITY);
  #shift = 32 - 11;

  /** The number of slots the columns have room for. */
  get capacity(): number {
    return this.id.length;
  }

  /** The slots ever handed out: every live slot is below this. */
  get top(): number {
    return this.#top;
  }

  /** A new slot for message `id` (not already in the index), with its columns set. */
  add(
    id: number,
    queue: number,
    priority: number,
    eta: number,
    seg: number,
    poff: number,
    plen: number,
  ): number {
    let s: number;
    if (this.#freeCount > 0) s = this.#free[--this.#freeCount]!;
    else {
      if (this.#top === this.id.length) this.#grow();
      s = this.#top++;
    }
    if (seg > 0xffff && this.seg instanceof Uint16Array) this.seg = Uint32Array.from(this.seg);
    this.id[s] = id;
    this.queue[s] = queue;
    this.priority[s] = priority;
    this.eta[s] = eta;
    this.seg[s] = seg;
    this.poff[s] = poff;
    this.plen[s] = plen;
    this.state[s] = READY;
    this.hi[s] = -1;
    this.size++;
    if (this.size > MAX_LOAD * this.#table.length) this.#rehash(this.#table.length * 2);
    else this.#insert(s); // (a rehash inserts every live slot, this one too)
    return s;
  }

  /** Frees `slot` (its message is gone). */
  remove(slot: number): void {
    this.#unlink(slot);
    this.#order.delete(slot);
    this.state[slot] = GONE;
    this.hi[slot] = -1;
    this.size--;
    if (this.#freeCount === this.#free.length) {
      const f = new Int32Array(this.#free.length * 2);
      f.set(this.#free);
      this.#free = f;
    }
    this.#free[this.#freeCount++] = slot;
  }

  /** The slot of message `id`, or -1. */
  find(id: number): number {
    const t = this.#table, mask = t.length - 1, ids = this.id;
    for (let b = this.#bucket(id);; b = (b + 1) & mask) {
      const v = t[b]!;
      if (v === 0) return -1;
      if (ids[v - 1] === id) return v - 1;
    }
  }

  /** First part of the order key within a priority (or eta) level. */
  k1(slot: number): number {
    return this.#order.get(slot)?.[0] ?? this.id[slot]!;
  }

  /** Second part of the order key. */
  k2(slot: number): number {
    return this.#order.get(slot)?.[1] ?? 0;
  }

  /** Sets the order key of `slot`. */
  setOrder(slot: number, k1: number, k2: number): void {
    if (k1 === this.id[slot] && k2 === 0) this.#order.delete(slot);
    else this.#order.set(slot, [k1, k2]);
  }

  /** True when `a` comes before `b` in a ready heap: (priority, k1, k2). */
  readyBefore(a: number, b: number): boolean {
    const p = this.priority;
    if (p[a] !== p[b]) return p[a]! < p[b]!;
    return this.#keyBefore(a, b);
  }

  /** True when `a` comes before `b` in a delayed heap: (eta, k1, k2). */
  dueBefore(a: number, b: number): boolean {
    const e = this.eta;
    if (e[a] !== e[b]) return e[a]! < e[b]!;
    return this.#keyBefore(a, b);
  }

  #keyBefore(a: number, b: number): boolean {
    if (this.#order.size === 0) return this.id[a]! < this.id[b]!;
    const a1 = this.k1(a), b1 = this.k1(b);
    return a1 < b1 || (a1 === b1 && this.k2(a) < this.k2(b));
  }

  /** Bytes held by the columns, the lookup table and the free list. */
  bytes(): number {
    const cols = this.id.byteLength + this.priority.byteLength + this.eta.byteLength +
      this.seg.byteLength + this.poff.byteLength + this.plen.byteLength +
      this.state.byteLength + this.queue.byteLength + this.hi.byteLength;
    return cols + this.#table.byteLength + this.#free.byteLength;
  }

  #bucket(id: number): number {
    const lo = id >>> 0, hi = (id / 4294967296) >>> 0;
    return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> this.#shift;
  }

  #insert(slot: number): void {
    const t = this.#table, mask = t.length - 1;
    let b = this.#bucket(this.id[slot]!);
    while (t[b] !== 0) b = (b + 1) & mask;
    t[b] = slot + 1;
  }

  /** Removes `slot` from the lookup table (backward-shift deletion: no tombstones). */
  #unlink(slot: number): void {
    const t = this.#table, mask = t.length - 1, ids = this.id;
    let b = this.#bucket(ids[slot]!);
    while (t[b] !== slot + 1) {
      if (t[b] === 0) return;
      b = (b + 1) & mask;
    }
    let hole = b;
    for (let j = (hole + 1) & mask;; j = (j + 1) & mask) {
      const v = t[j]!;
      if (v === 0) break;
      const home = this.#bucket(ids[v - 1]!);
      // Move v into the hole if its home is not in (hole, j] (cyclically).
      if (hole <= j ? (home <= hole || home > j) : (home <= hole && home > j)) {
        t[hole] = v;
        hole = j;
      }
    }
    t[hole] = 0;
  }

  #rehash(buckets: number): void {
    this.#table = new Int32Array(buckets);
    this.#shift = 32 - Math.log2(buckets);
    for (let s = 0; s < this.#top; s++) if (this.state[s] !== GONE) this.#insert(s);
  }

  /**
   * Makes room for `n` slots at once (before replaying a log of known size): the columns are not
   * copied again as they fill, and pages of a typed array that are never written cost no memory.
   */
  reserve(n: number): void {
    if (n > this.id.length) this.#grow(Math.ceil(n));
  }

  #grow(n = Math.ceil(this.id.length * 1.5)): void {
    this.id = growF64(this.id, n);
    this.priority = growF64(this.priority, n);
    this.eta = growF64(this.eta, n);
    const seg = this.seg instanceof Uint16Array ? new Uint16Array(n) : new Uint32Array(n);
    seg.set(this.seg);
    this.seg = seg;
    const poff = new Uint32Array(n), plen = new Uint32Array(n), q = new Uint16Array(n);
    poff.set(this.poff);
    plen.set(this.plen);
    q.set(this.queue);
    this.poff = poff;
    this.plen = plen;
    this.queue = q;
    const st = new Uint8Array(n);
    st.set(this.state);
    this.state = st;
    const hi = new Int32Array(n); // set by add()
    hi.set(this.hi);
    this.hi = hi;
  }
}

function growF64(a: Float64Array, n: number): Float64Array {
  const b = new Float64Array(n);
  b.set(a);
  return b;
}
