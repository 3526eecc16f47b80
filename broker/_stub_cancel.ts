// The StubBroker's cancel marks (a running message's, kept for an hour, as the other brokers
// keep theirs) and the ids of the messages it finished lately (for `cancel()` saying `finished`).

const HOUR = 3_600_000;
/** How many finished message ids the stub remembers (for `cancel()` saying `finished`). */
const FINISHED_KEPT = 10_000;

/** Cancel marks of running messages, and the ids of messages finished lately. */
export class StubCancels {
  /** Cancel marks of running messages: id -> when the mark expires. */
  readonly #marks = new Map<string, number>();
  /** Ids of messages acked or dead-lettered lately (insertion order: oldest first). */
  readonly #finished = new Set<string>();

  /** Message `id` is finished (acked, dead-lettered, cancelled or deleted): its mark goes. */
  finished(id: string): void {
    this.#marks.delete(id);
    this.#finished.delete(id);
    this.#finished.add(id);
    if (this.#finished.size > FINISHED_KEPT) {
      this.#finished.delete(this.#finished.values().next().value!);
    }
  }

  /** Whether message `id` finished lately. */
  wasFinished(id: string): boolean {
    return this.#finished.has(id);
  }

  /** Marks running message `id` cancelled (for an hour). */
  mark(id: string): void {
    this.#marks.set(id, Date.now() + HOUR);
  }

  /** Whether message `id` carries a cancel mark (expired or not). */
  isMarked(id: string): boolean {
    return this.#marks.has(id);
  }

  /** Which of `ids` carry a cancel mark that has not expired (expired ones are dropped). */
  marked(ids: readonly string[]): Set<string> {
    const now = Date.now();
    const out = new Set<string>();
    for (const id of ids) {
      const until = this.#marks.get(id);
      if (until === undefined) continue;
      if (until > now) out.add(id);
      else this.#marks.delete(id);
    }
    return out;
  }
}
