// A binary min-heap of message slots (see `_index.ts`) over an Int32Array. Each slot's position
// is kept in the index's `hi` column, so any message can be removed in O(log n): a message claimed
// by another process is not necessarily at the top of this replica's heap.
import type { MsgIndex } from "./_index.ts";

/** A min-heap of slots of `index`, by (priority, key) or, when `delayed`, by (eta, key). */
export class SlotHeap {
  #a: Int32Array = new Int32Array(16);
  #n = 0;
  readonly #less: (a: number, b: number) => boolean;

  constructor(private readonly index: MsgIndex, delayed: boolean) {
    this.#less = delayed ? (a, b) => index.dueBefore(a, b) : (a, b) => index.readyBefore(a, b);
  }

  get size(): number {
    return this.#n;
  }

  /** The first slot, or -1 when empty. */
  peek(): number {
    return this.#n > 0 ? this.#a[0]! : -1;
  }

  push(slot: number): void {
    if (this.#n === this.#a.length) {
      const b = new Int32Array(Math.ceil(this.#a.length * 1.5));
      b.set(this.#a);
      this.#a = b;
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
      this.#a = this.#a.slice(0, this.#a.length >> 1);
    }
  }

  #up(i: number): void {
    const a = this.#a, less = this.#less, hi = this.index.hi;
    const item = a[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (!less(item, parent)) break;
      a[i] = parent;
      hi[parent] = i;
      i = p;
    }
    a[i] = item;
    hi[item] = i;
  }

  #down(i: number): void {
    const a = this.#a, less = this.#less, n = this.#n, hi = this.index.hi;
    const item = a[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && less(a[r]!, a[l]!) ? r : l;
      const child = a[c]!;
      if (!less(child, item)) break;
      a[i] = child;
      hi[child] = i;
      i = c;
    }
    a[i] = item;
    hi[item] = i;
  }
}
