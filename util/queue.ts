// Small data structures used on the hot path: a FIFO deque and a binary min-heap (with an
// index, for removal of any item, when asked).

/** A FIFO queue with O(1) push and shift (an array with a moving head). */
export class Deque<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }
  push(item: T): void {
    this.#items.push(item);
  }
  unshift(item: T): void {
    if (this.#head > 0) this.#items[--this.#head] = item;
    else this.#items.unshift(item);
  }
  peek(): T | undefined {
    return this.#items[this.#head];
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
  clear(): T[] {
    const out = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return out;
  }
  *[Symbol.iterator](): Iterator<T> {
    for (let i = this.#head; i < this.#items.length; i++) yield this.#items[i] as T;
  }
}

/** An item of an indexed `Heap`: `hi` is its index in the heap, -1 when in none. */
export interface HeapItem {
  hi: number;
}

/**
 * A binary min-heap ordered by `less`. Ties keep no particular order: add a sequence key.
 *
 * With `{ indexed: true }` its items are `HeapItem`s that know their index, so `remove(item)`
 * takes any item out in O(log n), not only the top (the file broker's queues need that: a
 * message claimed by another process is not necessarily at the top of this one's heap).
 */
export class Heap<T> {
  #a: T[] = [];
  readonly #less: (a: T, b: T) => boolean;
  readonly #indexed: boolean;

  constructor(less: (a: T, b: T) => boolean, options: { indexed?: boolean } = {}) {
    this.#less = less;
    this.#indexed = options.indexed ?? false;
  }

  get length(): number {
    return this.#a.length;
  }
  peek(): T | undefined {
    return this.#a[0];
  }
  push(item: T): void {
    this.#a.push(item);
    this.#up(item, this.#a.length - 1);
  }
  pop(): T | undefined {
    if (this.#a.length === 0) return undefined;
    const top = this.#a[0];
    this.#removeAt(0);
    return top;
  }
  /** Removes `item` if it is in this heap (an indexed heap only). */
  remove(item: T): void {
    if (!this.#indexed) {
      throw new TypeError("Heap.remove() needs a heap made with { indexed: true }.");
    }
    const i = (item as unknown as HeapItem).hi;
    if (i >= 0 && this.#a[i] === item) this.#removeAt(i);
  }
  /** Removes every item and returns them, in no particular order. */
  clear(): T[] {
    const out = this.#a;
    this.#a = [];
    if (this.#indexed) { for (const x of out) (x as unknown as HeapItem).hi = -1; }
    return out;
  }
  toArray(): T[] {
    return [...this.#a];
  }

  #removeAt(i: number): void {
    const a = this.#a;
    if (this.#indexed) (a[i] as unknown as HeapItem).hi = -1;
    const last = a.pop()!;
    if (i < a.length) {
      this.#down(last, i);
      // A removed inner item may be replaced by a smaller one than its parent.
      if (this.#indexed) this.#up(last, (last as unknown as HeapItem).hi);
    }
  }

  /** Moves `item`, which belongs at index `i`, up to its place. */
  #up(item: T, i: number): void {
    const a = this.#a, less = this.#less;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(item, a[p]!)) break;
      this.#place(a[p]!, i);
      i = p;
    }
    this.#place(item, i);
  }

  /** Moves `item`, which belongs at index `i`, down to its place. */
  #down(item: T, i: number): void {
    const a = this.#a, less = this.#less, n = a.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && less(a[r]!, a[l]!) ? r : l;
      if (!less(a[c]!, item)) break;
      this.#place(a[c]!, i);
      i = c;
    }
    this.#place(item, i);
  }

  #place(item: T, i: number): void {
    this.#a[i] = item;
    if (this.#indexed) (item as unknown as HeapItem).hi = i;
  }
}
