// Entries numbered 1, 2, 3, ... on one channel (publish sequence numbers for confirms, delivery
// tags for acks), kept in an array with a moving head: O(1) lookup by number, and the settled
// head dropped as it goes.

export class SeqWindow<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  /** The number of `#items[#head]`. */
  #base = 1;

  /** How many entries are held (settled ones past the head included). */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** The number of the oldest entry held. */
  get first(): number {
    return this.#base;
  }

  /** The number the next `push` gets. */
  get next(): number {
    return this.#base + this.size;
  }

  push(item: T): number {
    this.#items.push(item);
    return this.next - 1;
  }

  /** The entry numbered `n`, if held. */
  at(n: number): T | undefined {
    const i = this.#head + (n - this.#base);
    return i >= this.#head && i < this.#items.length ? this.#items[i] : undefined;
  }

  set(n: number, item: T): void {
    const i = this.#head + (n - this.#base);
    if (i >= this.#head && i < this.#items.length) this.#items[i] = item;
  }

  /** Drops entries from the head while `done(entry)` holds; returns how many. */
  trim(done: (item: T) => boolean): number {
    const items = this.#items;
    let n = 0;
    while (this.#head < items.length && done(items[this.#head]!)) {
      items[this.#head++] = undefined;
      this.#base++;
      n++;
    }
    if (this.#head === items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return n;
  }

  /** Empties the window (numbering starts at 1 again); returns what it held. */
  clear(): T[] {
    const rest = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    this.#base = 1;
    return rest;
  }
}
