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
}

/** What `classify` found. */
export interface Classified<D, H> {
  reason: SendReason;
  /** The running delivery this send comes from (retry, requeue, pipeline, group, in-actor send). */
  origin?: D;
  /** For a delay release: what `hold` stored. */
  held?: H;
}

/** How long a finished delivery may wait for its settle hook before `sweep` drops it, in ms. */
const SETTLE_GRACE = 5_000;
/** Sweep no more often than this, in ms. */
const SWEEP_EVERY = 5_000;

/**
 * Tracks running deliveries (`D`) and held delayed messages (`H`) of one middleware instance.
 * Entries end at the settle hooks (`afterAck` / `afterNack`); `sweep` drops those whose settle
 * never came (a failed ack, a message handed back at shutdown), so memory stays bounded.
 */
export class DeliveryTracker<D extends Tracked, H> {
  #byProxy = new WeakMap<MessageProxy, D>();
  #byId = new Map<string, D>();
  #children = new Map<string, { parent: D; reason: "pipeline" | "group_callback" }>();
  #held = new Map<string, H>();
  #doneSince = new WeakMap<D, number>();
  #lastSweep = 0;

  /** Registers a delivery (replacing one of the same proxy). */
  begin(delivery: D): D {
    const m = delivery.message;
    this.#byProxy.set(m, delivery);
    this.#byId.set(m.messageId, delivery);
    const target = m.options.pipe_target;
    if (target !== null && typeof target === "object" && !Array.isArray(target)) {
      if (typeof target.message_id === "string") {
        this.#children.set(target.message_id, { parent: delivery, reason: "pipeline" });
      }
    }
    const callbacks = m.options.group_completion_callbacks;
    if (Array.isArray(callbacks)) {
      for (const cb of callbacks) {
        if (cb !== null && typeof cb === "object" && !Array.isArray(cb)) {
          const id = (cb as { message_id?: unknown }).message_id;
          if (typeof id === "string") {
            this.#children.set(id, { parent: delivery, reason: "group_callback" });
          }
        }
      }
    }
    return delivery;
  }

  /** The delivery of this proxy, if tracked. */
  get(message: MessageProxy): D | undefined {
    return this.#byProxy.get(message);
  }

  /** Stops tracking the delivery of this proxy and returns it. */
  end(message: MessageProxy): D | undefined {
    const d = this.#byProxy.get(message);
    if (!d) return undefined;
    this.#forget(d);
    return d;
  }

  #forget(d: D): void {
    const m = d.message;
    this.#byProxy.delete(m);
    if (this.#byId.get(m.messageId) === d) this.#byId.delete(m.messageId);
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
    const h = this.#held.get(id);
    if (h !== undefined) this.#held.delete(id);
    return h;
  }

  /** The held entry of `id`, left in place. */
  heldEntry(id: string): H | undefined {
    return this.#held.get(id);
  }

  /** Every held entry, removed (the worker handed them back at shutdown). */
  releaseAll(): H[] {
    const all = [...this.#held.values()];
    this.#held.clear();
    return all;
  }

  /** Why `message` is being enqueued (with `delay` ms, or undefined), and from which delivery. */
  classify(message: Message, delay: number | undefined): Classified<D, H> {
    const id = message.messageId;
    const running = this.#byId.get(id);
    if (running) {
      const retries = message.options.retries;
      const up = typeof retries === "number" && retries > running.retries;
      return { reason: up ? "retry" : "requeue", origin: running };
    }
    if (delay === undefined && !message.queueName.endsWith(".DQ")) {
      const held = this.#held.get(id);
      if (held !== undefined) return { reason: "delay_release", held };
    }
    const child = this.#children.get(id);
    if (child) return { reason: child.reason, origin: child.parent };
    const current = currentMessage();
    return { reason: "user", origin: current ? this.#byProxy.get(current) : undefined };
  }

  /**
   * Drops deliveries whose message finished (`done`) at least SETTLE_GRACE ms ago without a
   * settle hook, passing each to `onDrop`. With `all`, drops every finished one at once (the
   * worker stopped). Cheap to call often: it runs at most every SWEEP_EVERY ms unless `all`.
   */
  sweep(onDrop: (d: D) => void, all = false): void {
    const now = Date.now();
    if (!all && now - this.#lastSweep < SWEEP_EVERY) return;
    this.#lastSweep = now;
    for (const d of [...this.#byId.values()]) {
      if (!d.message.done) continue;
      const since = this.#doneSince.get(d);
      if (all || (since !== undefined && now - since >= SETTLE_GRACE)) {
        this.#forget(d);
        onDrop(d);
      } else if (since === undefined) {
        this.#doneSince.set(d, now);
      }
    }
  }

  /** How many deliveries are tracked. */
  get size(): number {
    return this.#byId.size;
  }
}
