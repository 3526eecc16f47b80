// What the telemetry middleware (Metrics, Tracing) need to know about the messages of this
// isolate beyond what one hook tells them: which deliveries are running (so an enqueue of the same
// id is a retry or a requeue, and a send from inside an actor has an origin), which delayed
// messages a worker holds (so an enqueue of their id is a delay release), and which messages the
// running ones will send next (pipeline steps, group callbacks).
import type { MessageProxy } from "../broker/broker.ts";
import type { Message } from "../message.ts";
import { currentMessage } from "../worker/context.ts";

/**
 * Why a message is being enqueued (`dramatis.send.reason` on send spans):
 * - `user`: a new message from application code (an actor's `send`, `broker.enqueue`);
 * - `retry`: `Retries` enqueues it again (its `retries` option went up);
 * - `requeue`: a running message is enqueued again without a retry (a rate-limit delay);
 * - `delay_release`: a worker moves a delayed message (`q.DQ`) to its queue at its eta;
 * - `pipeline`: the next step of a pipeline;
 * - `group_callback`: the completion callback of a group.
 */
export type SendReason =
  | "user"
  | "retry"
  | "requeue"
  | "delay_release"
  | "pipeline"
  | "group_callback";

/** A delivery being tracked: what the middleware keeps per running message. */
export interface Tracked {
  /** The message as the worker holds it. */
  readonly message: MessageProxy;
  /** Its `retries` option when it started. */
  readonly retries: number;
  /** @internal The tracker's list of live deliveries. */
  prev?: Tracked | undefined;
  /** @internal */
  next?: Tracked | undefined;
  /** @internal When `sweep` first saw it finished without a settle hook. */
  doneSince?: number | undefined;
}

/** What `classify` found. */
export interface Classified<D, H> {
  reason: SendReason;
  /** The running delivery this send comes from (retry, requeue, pipeline, group, in-actor send). */
  origin?: D | undefined;
  /** For a delay release: what `hold` stored. */
  held?: H;
}

/** How long a finished delivery may wait for its settle hook before `sweep` drops it, in ms. */
const SETTLE_GRACE = 5_000;
/** `sweep` looks at the clock once per this many calls. */
const SWEEP_EVERY = 1024;

const USER: Classified<never, never> = Object.freeze({ reason: "user" });

/** Slots of the running-id filter (a power of two). */
const ID_SLOTS = 4096;

/**
 * A cheap key of a message id for the running-id filter: its last three characters and length
 * (the random part of a UUID), no hashing of the whole string.
 */
function idKey(id: string): number {
  const n = id.length;
  if (n < 3) return n;
  return ((id.charCodeAt(n - 1) * 31 + id.charCodeAt(n - 2)) * 31 + id.charCodeAt(n - 3) + n) &
    (ID_SLOTS - 1);
}

/**
 * Tracks running deliveries (`D`) and held delayed messages (`H`) of one middleware instance.
 * Entries end at the settle hooks (`afterAck` / `afterNack`); `sweep` drops those whose settle
 * never came (a failed ack, a message handed back at shutdown), so memory stays bounded.
 *
 * A delivery sits in a map by its proxy (an object key: no hashing of the message id, whose
 * string is new for every delivery and whose hashing in a map by id was most of the cost of
 * `Metrics`, ~0.7 µs per message on Deno) and in a linked list (for `sweep`, and to find a
 * running message by id when it is enqueued again: a retry or a requeue, whichever order the
 * middleware hooks run in). A counting filter over a cheap key of the ids (`idKey`) tells, for
 * almost every enqueue of a new message, that no running delivery has its id without walking the
 * list. No WeakMap and no property on the proxy: both measured slower on the hot path.
 */
export class DeliveryTracker<D extends Tracked, H> {
  #head: D | undefined;
  #byProxy = new Map<MessageProxy, D>();
  /** Live deliveries per `idKey` of their message id. */
  #ids = new Int32Array(ID_SLOTS);
  #children = new Map<string, { parent: D; reason: "pipeline" | "group_callback" }>();
  #held = new Map<string, H>();
  #calls = 0;
  #lastSweep = 0;

  /** Registers a delivery (replacing the one of the same proxy). */
  begin(delivery: D): D {
    const m = delivery.message;
    const old = this.#byProxy.get(m);
    if (old) this.#forget(old);
    delivery.next = this.#head;
    if (this.#head) this.#head.prev = delivery;
    this.#head = delivery;
    this.#byProxy.set(m, delivery);
    this.#ids[idKey(m.messageId)]!++;
    const target = m.options.pipe_target;
    if (target !== undefined && target !== null && typeof target === "object") {
      const id = (target as { message_id?: unknown }).message_id;
      if (typeof id === "string") this.#children.set(id, { parent: delivery, reason: "pipeline" });
    }
    const callbacks = m.options.group_completion_callbacks;
    if (Array.isArray(callbacks)) {
      for (const cb of callbacks) {
        const id = (cb as { message_id?: unknown } | null)?.message_id;
        if (typeof id === "string") {
          this.#children.set(id, { parent: delivery, reason: "group_callback" });
        }
      }
    }
    return delivery;
  }

  /** The delivery of this proxy, if tracked. */
  get(message: MessageProxy): D | undefined {
    return this.#byProxy.get(message);
  }

  /** The delivery begun last of those running a message of this id. */
  #running(id: string): D | undefined {
    if (this.#ids[idKey(id)] === 0) return undefined;
    for (let d = this.#head; d; d = d.next as D | undefined) {
      if (d.message.messageId === id) return d;
    }
    return undefined;
  }

  /** Stops tracking the delivery of this proxy and returns it. */
  end(message: MessageProxy): D | undefined {
    const d = this.#byProxy.get(message);
    if (d) this.#forget(d);
    return d;
  }

  #forget(d: D): void {
    const m = d.message;
    if (d.prev) d.prev.next = d.next;
    else this.#head = d.next as D | undefined;
    if (d.next) d.next.prev = d.prev;
    d.prev = d.next = undefined;
    if (this.#byProxy.get(m) === d) {
      this.#byProxy.delete(m);
      this.#ids[idKey(m.messageId)]!--;
    }
    if (this.#children.size === 0) return;
    const target = m.options.pipe_target as { message_id?: unknown } | undefined;
    if (typeof target?.message_id === "string") this.#dropChild(target.message_id, d);
    const callbacks = m.options.group_completion_callbacks;
    if (Array.isArray(callbacks)) {
      for (const cb of callbacks) {
        const id = (cb as { message_id?: unknown } | null)?.message_id;
        if (typeof id === "string") this.#dropChild(id, d);
      }
    }
  }

  #dropChild(id: string, parent: D): void {
    if (this.#children.get(id)?.parent === parent) this.#children.delete(id);
  }

  /** Notes a delayed message held by a worker. Returns false if it was held already. */
  hold(id: string, value: H): boolean {
    if (this.#held.has(id)) return false;
    this.#held.set(id, value);
    return true;
  }

  /** The held entry of `id`, removed. */
  release(id: string): H | undefined {
    if (this.#held.size === 0) return undefined;
    const h = this.#held.get(id);
    if (h !== undefined) this.#held.delete(id);
    return h;
  }

  /** Every held entry, removed (the worker handed them back at shutdown). */
  releaseAll(): H[] {
    const all = [...this.#held.values()];
    this.#held.clear();
    return all;
  }

  /**
   * Why `message` is being enqueued (with `delay` ms, or undefined), and from which delivery.
   * With `origin`, a user send from inside an actor also finds the delivery it comes from.
   */
  classify(message: Message, delay: number | undefined, origin = false): Classified<D, H> {
    const id = message.messageId;
    const running = this.#running(id);
    if (running) {
      const retries = message.options.retries;
      const up = typeof retries === "number" && retries > running.retries;
      return { reason: up ? "retry" : "requeue", origin: running };
    }
    if (delay === undefined && this.#held.size > 0 && !message.queueName.endsWith(".DQ")) {
      const held = this.#held.get(id);
      if (held !== undefined) return { reason: "delay_release", held };
    }
    if (this.#children.size > 0) {
      const child = this.#children.get(id);
      if (child) return { reason: child.reason, origin: child.parent };
    }
    if (!origin) return USER;
    const current = currentMessage();
    return { reason: "user", origin: current ? this.get(current) : undefined };
  }

  /**
   * Drops deliveries whose message finished (`done`) at least SETTLE_GRACE ms ago without a
   * settle hook, passing each to `onDrop`. With `all`, drops every finished one at once (the
   * worker stopped). Cheap to call per delivery: it looks only once per SWEEP_EVERY calls.
   */
  sweep(onDrop: (d: D) => void, all = false): void {
    if (!all && ++this.#calls % SWEEP_EVERY !== 0) return;
    const now = Date.now();
    if (!all && now - this.#lastSweep < SETTLE_GRACE) return;
    this.#lastSweep = now;
    for (let d = this.#head; d;) {
      const next = d.next as D | undefined;
      if (d.message.done) {
        if (all || (d.doneSince !== undefined && now - d.doneSince >= SETTLE_GRACE)) {
          this.#forget(d);
          onDrop(d);
        } else if (d.doneSince === undefined) {
          d.doneSince = now;
        }
      }
      d = next;
    }
  }
}
