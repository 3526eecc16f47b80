// The delayed messages a worker holds: those of `q.DQ` (and any with a future eta), each handed
// to `move` once its eta has passed. One timer, armed for the earliest eta.
//
// On a broker whose delay queues hand a message out only once it is due (the FileBroker:
// `capabilities.delaysUntilDue`), the worker does not move a due delayed message to its queue
// (a send, then an ack of the delayed copy, before it runs): it runs it in place, as the message
// of `q` it would have become, and acks it on `q.DQ`.
import type { MessageProxy } from "../message.ts";
import type { Broker, Consumer } from "../broker/broker.ts";
import { formatError, getLogger } from "../util/log.ts";
import { qName } from "../broker/queue_name.ts";
import { Heap } from "../util/queue.ts";
import { sleep } from "../util/async.ts";

const logger = getLogger("dramatis.worker.Worker");

/** Delayed messages ordered by eta (`options.eta`, a number by the time they get here). */
export class Delays {
  #heap = new Heap<MessageProxy>((a, b) => (a.options.eta as number) < (b.options.eta as number));
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #moving = 0;

  /**
   * `move(m)` takes a due message to its queue; `moved()` is called after each move has
   * settled, when there is room for more.
   */
  constructor(
    private readonly move: (m: MessageProxy) => Promise<void>,
    private readonly moved: () => void,
  ) {}

  /** Messages held: waiting for their eta, or being moved. */
  get size(): number {
    return this.#heap.length + this.#moving;
  }

  /** Holds `m` until its eta. */
  add(m: MessageProxy): void {
    this.#heap.push(m);
    this.#arm();
  }

  /** The messages waiting for their eta. */
  messages(): MessageProxy[] {
    return this.#heap.toArray();
  }

  /** Takes out and returns the waiting messages whose ids are in `ids` (cancelled ones). */
  remove(ids: ReadonlySet<string>): MessageProxy[] {
    const all = this.#heap.clear();
    const out: MessageProxy[] = [];
    for (const m of all) {
      if (ids.has(m.messageId)) out.push(m);
      else this.#heap.push(m);
    }
    return out;
  }

  /** Stops the timer and returns the messages still waiting (to hand back to the broker). */
  stop(): MessageProxy[] {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    return this.#heap.clear();
  }

  /** Resolves once no move is in progress. */
  async settled(): Promise<void> {
    while (this.#moving > 0) await sleep(1);
  }

  #arm(): void {
    const head = this.#heap.peek();
    if (!head) return;
    const at = head.options.eta as number;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#moveDue();
    }, Math.max(0, at - Date.now()));
  }

  #moveDue(): void {
    const now = Date.now();
    while (this.#heap.length > 0 && (this.#heap.peek()!.options.eta as number) <= now) {
      const m = this.#heap.pop()!;
      this.#moving++;
      this.move(m).finally(() => {
        this.#moving--;
        this.moved();
      });
    }
    this.#arm();
  }
}

/** Whether the workers of `broker` run a due delayed message in place (see above). */
export function runsDueInPlace(broker: Broker): boolean {
  return broker.capabilities.delaysUntilDue === true;
}

/**
 * Makes a due delayed message the message of `q` the worker would have moved it to (that is what
 * the middleware sees: `queueName` is `q`). Its `eta` stays: when it became due (the wait time
 * of `Metrics` counts from it); a retry sets a new one.
 */
export function asDue(m: MessageProxy): MessageProxy {
  m.queueName = qName(m.queueName);
  return m;
}

/** Moves a due delayed message to its queue: enqueues a copy first, then acks the original. */
export async function moveToQueue(
  broker: Broker,
  consumer: Consumer,
  m: MessageProxy,
): Promise<void> {
  try {
    const options = { ...m.options };
    delete options.eta;
    await broker.enqueue(m.copy({ queueName: qName(m.queueName), options }));
    await consumer.ack(m);
  } catch (e) {
    logger.error(`Failed to move delayed message ${m.messageId}: ${formatError(e)}`);
    try {
      await consumer.requeue([m]);
    } catch { /* the broker recovers it when the lease expires */ }
  }
}
