// A binary min-heap whose items know their index (`hi`), so any item can be removed in O(log n):
// a message claimed by another process is not necessarily at the top of this replica's heap.

/** An item of an `IndexedHeap`: `hi` is its index in the heap, -1 when in none. */
export interface HeapItem {
  hi: number;
}

/** A min-heap ordered by `less`, with O(log n) removal of any item. */
export class IndexedHeap<T extends HeapItem> {
  #a: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.#a.length;
  }

  peek(): T | undefined {
    return this.#a[0];
  }

  push(item: T): void {
    item.hi = this.#a.length;
    this.#a.push(item);
    this.#up(item.hi);
  }

  pop(): T | undefined {
    const a = this.#a;
    if (a.length === 0) return undefined;
    const top = a[0];
    this.#removeAt(0);
    return top;
  }

  /** Removes `item` if it is in this heap. */
  remove(item: T): void {
    const i = item.hi;
    if (i < 0 || this.#a[i] !== item) return;
    this.#removeAt(i);
  }

  /** Every item, in no particular order. */
  items(): readonly T[] {
    return this.#a;
  }

  /** Removes every item. */
  clear(): T[] {
    const out = this.#a;
    for (const x of out) x.hi = -1;
    this.#a = [];
    return out;
  }

  #removeAt(i: number): void {
    const a = this.#a;
    const item = a[i]!;
    item.hi = -1;
    const last = a.pop()!;
    if (i < a.length) {
      a[i] = last;
      last.hi = i;
      this.#down(i);
      this.#up(last.hi);
    }
  }

  #up(i: number): void {
    const a = this.#a, less = this.less;
    const item = a[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (!less(item, parent)) break;
      a[i] = parent;
      parent.hi = i;
      i = p;
    }
    a[i] = item;
    item.hi = i;
  }

  #down(i: number): void {
    const a = this.#a, less = this.less, n = a.length;
    const item = a[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && less(a[r]!, a[l]!) ? r : l;
      const child = a[c]!;
      if (!less(child, item)) break;
      a[i] = child;
      child.hi = i;
      i = c;
    }
    a[i] = item;
    item.hi = i;
  }
}
