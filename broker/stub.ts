/**
 * `StubBroker`: an in-memory broker for tests. Messages still go through a JSON round trip,
 * as they would on a real broker.
 *
 * @example
 * ```ts
 * import { actor, StubBroker, Worker } from "@dramatis/dramatis";
 *
 * const broker = new StubBroker();
 * const seen: number[] = [];
 * const record = actor((n: number) => void seen.push(n), { actorName: "record", broker });
 * await record.send(1);
 * const worker = new Worker(broker, { workerTimeout: 100 });
 * await worker.start();
 * await broker.join("default");
 * await worker.stop();
 * console.log(seen); // [1]
 * ```
 * @module
 */
import { Broker, type BrokerOptions, type JoinOptions, type QueueStats } from "./broker.ts";
import type { Consumer, ReceiveOptions } from "./consumer.ts";
import { dqName, qName } from "./queue_name.ts";
import { MessageProxy } from "../message.ts";
import { QueueJoinTimeout, QueueNotFound } from "../errors.ts";
import type { Message } from "../message.ts";
import { Deque, Heap } from "../_queue.ts";

interface Entry {
  json: string;
  priority: number;
  eta: number;
  seq: number;
}

class StubQueue {
  /** Ready entries by priority (a FIFO per priority level). Used by normal queues. */
  readonly buckets: Map<number, Deque<Entry>> = new Map();
  priorities: number[] = [];
  /** Entries ordered by eta. Used by delay queues. */
  readonly byEta: Heap<Entry> = new Heap<Entry>((a, b) =>
    a.eta < b.eta || (a.eta === b.eta && a.seq < b.seq)
  );
  ready = 0;
  /** Enqueued and not yet acked or nacked (ready + in flight). */
  pending = 0;
  readonly waiters: Set<() => void> = new Set();

  constructor(readonly name: string, readonly delayed: boolean) {}

  put(entry: Entry, front = false): void {
    this.ready++;
    if (this.delayed) {
      this.byEta.push(entry);
    } else {
      let bucket = this.buckets.get(entry.priority);
      if (!bucket) {
        this.buckets.set(entry.priority, bucket = new Deque());
        this.priorities = [...this.buckets.keys()].sort((a, b) => a - b);
      }
      if (front) bucket.unshift(entry);
      else bucket.push(entry);
    }
    for (const w of this.waiters) w();
  }

  /** Up to `max` entries that may be delivered now. */
  take(max: number, now: number): Entry[] {
    const out: Entry[] = [];
    if (this.delayed) {
      while (out.length < max && this.byEta.length > 0 && this.byEta.peek()!.eta <= now) {
        out.push(this.byEta.pop()!);
      }
    } else {
      for (const p of this.priorities) {
        const bucket = this.buckets.get(p)!;
        while (out.length < max && bucket.length > 0) out.push(bucket.shift()!);
        if (out.length >= max) break;
      }
    }
    this.ready -= out.length;
    return out;
  }

  /** Ms until the next delayed entry is due (Infinity when none). */
  nextDue(now: number): number {
    const head = this.byEta.peek();
    return head ? Math.max(0, head.eta - now) : Infinity;
  }

  clear(): number {
    let n = 0;
    if (this.delayed) n = this.byEta.clear().length;
    for (const b of this.buckets.values()) n += b.clear().length;
    this.ready -= n;
    this.pending -= n;
    return n;
  }
}

/**
 * An in-memory broker for unit tests, like Dramatiq's `StubBroker`: `join(queue, { timeout,
 * failFast })` waits for a queue to drain and (with `failFast`, the default) re-throws the
 * error of a dead-lettered message.
 *
 * @example
 * ```ts
 * import { StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * broker.declareQueue("default");
 * await broker.join("default", { timeout: 100 });
 * ```
 */
export class StubBroker extends Broker {
  /** Dead-lettered messages by canonical queue name, with `error` set to what failed them. */
  readonly deadLettersByQueue: Map<string, MessageProxy[]> = new Map();
  #queues = new Map<string, StubQueue>();
  #seq = 0;
  #joiners = new Set<() => void>();

  /** Creates the broker with the default middleware stack unless `options.middleware`. */
  constructor(options: BrokerOptions = {}) {
    super(options);
  }

  /** Creates the in-memory queue and its delay queue. */
  protected override _declareQueue(queueName: string): void {
    this.#queues.set(queueName, new StubQueue(queueName, false));
    this.#queues.set(dqName(queueName), new StubQueue(dqName(queueName), true));
    this.deadLettersByQueue.set(queueName, []);
  }

  #queue(name: string): StubQueue {
    const q = this.#queues.get(name);
    if (!q) throw new QueueNotFound(name);
    return q;
  }

  /** Stores the message in memory. */
  protected _enqueue(message: Message): Promise<void> {
    const q = this.#queue(message.queueName);
    const priority = this.priorityOf(message);
    const eta = typeof message.options.eta === "number" ? message.options.eta : 0;
    q.pending++;
    q.put({ json: JSON.stringify(message.asDict()), priority, eta, seq: this.#seq++ });
    return Promise.resolve();
  }

  /** A consumer of `queueName` (`q` or `q.DQ`). */
  consume(queueName: string): Consumer {
    return new StubConsumer(this, this.#queue(queueName));
  }

  /** @internal */
  _settled(q: StubQueue): void {
    q.pending--;
    if (q.pending === 0) { for (const j of this.#joiners) j(); }
  }

  /** @internal */
  _deadLetter(message: MessageProxy): void {
    this.deadLettersByQueue.get(qName(message.queueName))?.push(message);
    for (const j of this.#joiners) j();
  }

  /**
   * Waits until `queueName` and its delay queue are empty and nothing is in flight. With
   * `failFast` (the default), rejects with the error of the first dead-lettered message of
   * the queue; with `timeout`, rejects with `QueueJoinTimeout`.
   */
  async join(queueName: string, options: JoinOptions = {}): Promise<void> {
    const { timeout, failFast = true } = options;
    const q = this.#queue(qName(queueName));
    const dq = this.#queue(dqName(queueName));
    const deadline = timeout === undefined ? Infinity : Date.now() + timeout;
    for (;;) {
      if (failFast) {
        const dead = this.deadLettersByQueue.get(q.name)?.[0];
        if (dead) {
          throw dead.error ?? new Error(`Message ${dead.messageId} failed with an unknown error.`);
        }
      }
      if (q.pending === 0 && dq.pending === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new QueueJoinTimeout(q.name);
      await new Promise<void>((resolve) => {
        const joiners = this.#joiners;
        const timer = left === Infinity ? undefined : setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          joiners.delete(done);
          resolve();
        }
        joiners.add(done);
      });
    }
  }

  /** Drops the ready messages of `queueName` and its delay queue. */
  flush(queueName: string): Promise<void> {
    this.#queue(qName(queueName)).clear();
    this.#queue(dqName(queueName)).clear();
    for (const j of this.#joiners) j();
    return Promise.resolve();
  }

  /** Drops every ready message and every dead letter. */
  override async flushAll(): Promise<void> {
    await super.flushAll();
    for (const list of this.deadLettersByQueue.values()) list.length = 0;
  }

  /** Counters of one queue. */
  stats(queueName: string): Promise<QueueStats> {
    const q = this.#queue(qName(queueName));
    const dq = this.#queue(dqName(queueName));
    return Promise.resolve({
      queueName: q.name,
      ready: q.ready,
      delayed: dq.ready,
      inFlight: q.pending - q.ready + dq.pending - dq.ready,
      dead: this.deadLettersByQueue.get(q.name)?.length ?? 0,
    });
  }

  /** The dead letters of `queueName` (copies), oldest first. */
  deadLetters(queueName: string, options: { limit?: number } = {}): Promise<Message[]> {
    const list = this.deadLettersByQueue.get(qName(queueName)) ?? [];
    return Promise.resolve(list.slice(0, options.limit ?? list.length).map((m) => m.copy()));
  }

  /** Puts dead letters back on their queue. */
  async requeueDeadLetters(queueName: string, messageIds?: string[]): Promise<number> {
    const q = qName(queueName);
    const list = this.deadLettersByQueue.get(q) ?? [];
    const ids = messageIds && new Set(messageIds);
    const keep: MessageProxy[] = [];
    let n = 0;
    for (const m of list) {
      if (ids && !ids.has(m.messageId)) {
        keep.push(m);
        continue;
      }
      await this.enqueue(m.copy({ queueName: q }));
      n++;
    }
    this.deadLettersByQueue.set(q, keep);
    return n;
  }

  /** Deletes the dead letters of `queueName`. */
  purgeDeadLetters(queueName: string): Promise<number> {
    const list = this.deadLettersByQueue.get(qName(queueName)) ?? [];
    const n = list.length;
    list.length = 0;
    return Promise.resolve(n);
  }
}

class StubConsumer implements Consumer {
  #closed = false;
  constructor(private readonly broker: StubBroker, private readonly q: StubQueue) {}

  async receive(max: number, options: ReceiveOptions): Promise<MessageProxy[]> {
    const q = this.q;
    let now = Date.now();
    if (q.ready === 0 || (q.delayed && q.nextDue(now) > 0)) {
      const deadline = now + options.timeout;
      while (!this.#closed && !options.signal?.aborted) {
        now = Date.now();
        if (q.ready > 0 && (!q.delayed || q.nextDue(now) === 0)) break;
        const wait = Math.min(deadline - now, q.delayed ? q.nextDue(now) : Infinity);
        if (wait <= 0) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, wait);
          const signal = options.signal;
          signal?.addEventListener("abort", done);
          q.waiters.add(done);
          function done() {
            clearTimeout(timer);
            signal?.removeEventListener("abort", done);
            q.waiters.delete(done);
            resolve();
          }
        });
      }
      now = Date.now();
    }
    if (this.#closed) return [];
    const entries = q.take(max, now);
    const out: MessageProxy[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const m = MessageProxy.decode(entries[i]!.json) as MessageProxy;
      m.receipt = entries[i];
      out[i] = m;
    }
    return out;
  }

  ack(_message: MessageProxy): void {
    this.broker._settled(this.q);
  }

  nack(message: MessageProxy): void {
    this.broker._deadLetter(message);
    this.broker._settled(this.q);
  }

  requeue(messages: MessageProxy[]): void {
    for (let i = messages.length - 1; i >= 0; i--) this.q.put(messages[i]!.receipt as Entry, true);
  }

  close(): void {
    this.#closed = true;
    for (const w of this.q.waiters) w();
  }
}
