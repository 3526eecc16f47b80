// Group commit for the RedisBroker's enqueues and acks.

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: items added while a call for their key is in flight go out together in the
 * next call. An item added while none is in flight goes out at once (`eager`, for lowest
 * latency) or at the end of the current microtask queue (collecting what the same tick adds).
 * One call in flight per key, so a key's calls run in order.
 */
export class GroupCommit<T> {
  #pending = new Map<string, { items: T[]; waiters: Waiter[] }>();
  #busy = new Set<string>();
  #idle: (() => void)[] = [];

  constructor(
    private readonly send: (key: string, items: T[]) => Promise<unknown>,
    private readonly max: number,
    private readonly eager: boolean,
  ) {}

  add(key: string, item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.eager && !this.#busy.has(key)) {
        this.#busy.add(key);
        this.#call(key, [item], [{ resolve, reject }]);
        return;
      }
      let batch = this.#pending.get(key);
      if (!batch) this.#pending.set(key, batch = { items: [], waiters: [] });
      batch.items.push(item);
      batch.waiters.push({ resolve, reject });
      if (!this.#busy.has(key)) {
        this.#busy.add(key);
        queueMicrotask(() => this.#next(key));
      }
    });
  }

  #call(key: string, items: T[], waiters: Waiter[]): void {
    let sent: Promise<unknown>;
    try {
      sent = this.send(key, items);
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then(
      () => {
        for (const w of waiters) w.resolve();
        this.#next(key);
      },
      (e) => {
        for (const w of waiters) w.reject(e);
        this.#next(key);
      },
    );
  }

  #next(key: string): void {
    const batch = this.#pending.get(key);
    if (!batch) {
      this.#busy.delete(key);
      if (this.#busy.size === 0) { for (const w of this.#idle.splice(0)) w(); }
      return;
    }
    let { items, waiters } = batch;
    if (items.length > this.max) {
      batch.items = items.slice(this.max);
      batch.waiters = waiters.slice(this.max);
      items = items.slice(0, this.max);
      waiters = waiters.slice(0, this.max);
    } else {
      this.#pending.delete(key);
    }
    this.#call(key, items, waiters);
  }

  /** Resolves once nothing is pending or in flight. */
  drain(): Promise<void> {
    if (this.#busy.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
