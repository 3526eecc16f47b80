// A binary min-heap of message slots (see `_index.ts`) over an Int32Array. Each slot's position
// is kept in the index's `hi` column, so any message can be removed in O(log n): a message claimed
// by another process is not necessarily at the top of this replica's heap.
// The array grows and shrinks in place once big (`_grow.ts`).
import { free, grow, shrink } from "./_grow.ts";
import type { MsgIndex } from "./_index.ts";

/**
 * A min-heap of slots of `index`, by (key, k1, k2): the key is the priority in a ready queue, the
 * eta in a delayed one (see `_index.ts`).
 */
export class SlotHeap {
  #a: Int32Array = new Int32Array(16);
  #n = 0;

  constructor(private readonly index: MsgIndex) {}

  get size(): number {
    return this.#n;
  }

  /** The first slot, or -1 when empty. */
  peek(): number {
    return this.#n > 0 ? this.#a[0]! : -1;
  }

  push(slot: number): void {
    if (this.#n === this.#a.length) {
      this.#a = grow(this.#a, Math.ceil(this.#a.length * 1.5), Int32Array);
    }
    const i = this.#n++;
    this.#a[i] = slot;
    this.index.hi[slot] = i;
    this.#up(i);
  }

  /** Removes and returns the first slot, or -1 when empty. */
  pop(): number {
    if (this.#n === 0) return -1;
    const top = this.#a[0]!;
    this.#removeAt(0);
    return top;
  }

  /** Removes `slot` if it is in this heap. */
  remove(slot: number): void {
    const i = this.index.hi[slot]!;
    if (i < 0 || i >= this.#n || this.#a[i] !== slot) return;
    this.#removeAt(i);
  }

  /** Every slot, in no particular order (a view, valid until the next change). */
  items(): Int32Array {
    return this.#a.subarray(0, this.#n);
  }

  /** Removes every slot; returns them. */
  clear(): Int32Array {
    const out = this.#a.slice(0, this.#n);
    for (const s of out) this.index.hi[s] = -1;
    free(this.#a);
    this.#a = new Int32Array(16);
    this.#n = 0;
    return out;
  }

  /** Bytes held. */
  bytes(): number {
    return this.#a.byteLength;
  }

  #removeAt(i: number): void {
    const a = this.#a, hi = this.index.hi;
    hi[a[i]!] = -1;
    const last = a[--this.#n]!;
    if (i < this.#n) {
      a[i] = last;
      hi[last] = i;
      this.#down(i);
      this.#up(hi[last]!);
    }
    if (this.#n < this.#a.length >> 2 && this.#a.length > 1024) {
      this.#a = shrink(this.#a, this.#a.length >> 1, Int32Array);
    }
  }

  #up(i: number): void {
    const a = this.#a, x = this.index, hi = x.hi;
    const item = a[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (!x.before(item, parent)) break;
      a[i] = parent;
      hi[parent] = i;
      i = p;
    }
    a[i] = item;
    hi[item] = i;
  }

  #down(i: number): void {
    const a = this.#a, x = this.index, n = this.#n, hi = x.hi;
    const item = a[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && x.before(a[r]!, a[l]!) ? r : l;
      const child = a[c]!;
      if (!x.before(child, item)) break;
      a[i] = child;
      hi[child] = i;
      i = c;
    }
    a[i] = item;
    hi[item] = i;
  }
}
