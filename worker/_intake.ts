// What a Worker (worker/worker.ts) holds but does not run yet: the ready messages, lowest
// priority first and then in arrival order, and the delayed ones until due (then moved to their
// queue, or run in place on a broker whose delay queues hand them out only when due); and the
// consumer each message is settled with.
import type { Broker } from "../broker/broker.ts";
import type { Consumer } from "../broker/consumer.ts";
import type { MessageProxy } from "../message.ts";
import { formatError, getLogger } from "../util/log.ts";
import { Heap } from "../util/queue.ts";
import { asDue, Delays, moveToQueue, runsDueInPlace } from "./_delays.ts";

const logger = getLogger("dramatis.worker.Worker");

interface Ready {
  message: MessageProxy;
  priority: number;
  seq: number;
}

/** The ready and delayed messages of one Worker. */
export class Intake {
  readonly #broker: Broker;
  /** The Worker's consumers, by queue (`q` and `q.DQ`). */
  readonly #consumers: Map<string, Consumer>;
  /** Called when a delayed message became ready. */
  readonly #dispatch: () => void;
  #ready = new Heap<Ready>((a, b) =>
    a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq)
  );
  readonly #delays: Delays;
  /** Due delayed messages run in place (`capabilities.delaysUntilDue`), not moved to `q`. */
  readonly #inPlace: boolean;
  /** The `q.DQ` consumer of each delayed message run in place: it is settled there. */
  #delayedFrom = new WeakMap<MessageProxy, Consumer>();
  #seq = 0;

  /**
   * The intake of a Worker on `broker` consuming with `consumers`; `dispatch` runs what became
   * ready, `wake` is called when a delayed message was settled (moved).
   */
  constructor(
    broker: Broker,
    consumers: Map<string, Consumer>,
    hooks: { dispatch: () => void; wake: () => void },
  ) {
    this.#broker = broker;
    this.#consumers = consumers;
    this.#dispatch = hooks.dispatch;
    this.#delays = new Delays((m) => this.#release(m), hooks.wake);
    this.#inPlace = runsDueInPlace(broker);
  }

  /** How many messages are ready. */
  get ready(): number {
    return this.#ready.length;
  }

  /** How many messages are held: ready and delayed. */
  get size(): number {
    return this.#ready.length + this.#delays.size;
  }

  /** The next message to run (lowest priority, then oldest), if any. */
  next(): MessageProxy | undefined {
    return this.#ready.pop()?.message;
  }

  /** Takes a received message: ready, or delayed until its eta. */
  accept(m: MessageProxy): void {
    const eta = m.options.eta;
    const delayed = m.queueName.endsWith(".DQ");
    if (eta !== undefined && typeof eta !== "number") {
      // As in Dramatiq: a null eta means none; anything else is reported, and the message runs now.
      if (eta !== null) {
        logger.warning(
          `Invalid eta value for message ${m.messageId}: ${JSON.stringify(eta)}. Running it now.`,
        );
      }
      if (delayed) m.options.eta = 0;
      else delete m.options.eta;
    }
    if (delayed || (typeof eta === "number" && eta > Date.now())) {
      const r = this.#broker.emitBefore("delayMessage", m);
      if (r) r.catch((e) => logger.error(`beforeDelayMessage failed: ${formatError(e)}`));
      // Handed out once due: it runs now, in place (`!(eta > now)`: a bad eta was made 0).
      if (delayed && this.#inPlace && !((m.options.eta as number) > Date.now())) {
        this.#readyInPlace(m);
      } else {
        this.#delays.add(m);
      }
      return;
    }
    this.#ready.push({ message: m, priority: this.#broker.priorityOf(m), seq: this.#seq++ });
  }

  /** A due delayed message of `q.DQ` becomes ready as a message of `q`, settled on `q.DQ`. */
  #readyInPlace(m: MessageProxy): void {
    this.#delayedFrom.set(m, this.#consumers.get(m.queueName)!);
    asDue(m);
    this.#ready.push({ message: m, priority: this.#broker.priorityOf(m), seq: this.#seq++ });
  }

  /** The consumer a message is settled with. */
  consumerOf(m: MessageProxy): Consumer | undefined {
    return (this.#inPlace && this.#delayedFrom.get(m)) || this.#consumers.get(m.queueName);
  }

  /** A delayed message the worker held has become due: runs it in place, or moves it. */
  #release(m: MessageProxy): Promise<void> {
    if (!this.#inPlace || !m.queueName.endsWith(".DQ")) {
      return moveToQueue(this.#broker, this.#consumers.get(m.queueName)!, m);
    }
    this.#readyInPlace(m);
    this.#dispatch();
    return Promise.resolve();
  }

  /** Takes out the held messages whose ids are in `ids` (to be cancelled without running). */
  take(ids: ReadonlySet<string>): MessageProxy[] {
    const taken: MessageProxy[] = [];
    if (this.#ready.length > 0) {
      for (const r of this.#ready.clear()) {
        if (ids.has(r.message.messageId)) taken.push(r.message);
        else this.#ready.push(r);
      }
    }
    taken.push(...this.#delays.remove(ids));
    return taken;
  }

  /** Adds the ids of the held messages to `ids`. */
  ids(ids: string[]): string[] {
    for (const r of this.#ready.toArray()) ids.push(r.message.messageId);
    for (const m of this.#delays.messages()) ids.push(m.messageId);
    return ids;
  }

  /** Takes out every held message (the worker stops: they go back to the broker). */
  stop(): MessageProxy[] {
    return [...this.#ready.clear().map((r) => r.message), ...this.#delays.stop()];
  }

  /** Resolves once the moves of due delayed messages under way are done. */
  settled(): Promise<void> {
    return this.#delays.settled();
  }
}
