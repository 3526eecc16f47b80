/**
 * `pipeline()` and `group()`: compose messages. A pipeline runs steps one after another,
 * passing each result to the next; a group runs messages in parallel.
 *
 * @example
 * ```ts
 * import { actor, pipeline, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * const add = actor((a: number, b: number) => a + b, { actorName: "add", broker });
 * const double = actor((n: number) => n * 2, { actorName: "double", broker });
 * await pipeline([add.message(1, 2), double.message()], { broker }).run(); // double(3)
 * ```
 * @module
 */
import type { Broker } from "./broker/broker.ts";
import { getBroker } from "./broker/global.ts";
import { type GetResultOptions, type JsonObject, Message } from "./message.ts";
import { _attachBroker, brokerOf } from "./broker/_message_broker.ts";
import { GroupCallbacks } from "./middleware/group_callbacks.ts";
import { Barrier } from "./rate_limits/limiters.ts";
import { ResultFailure, ResultMissing, ResultTimeout } from "./errors.ts";

/**
 * Options of `pipeline()` and `group()`.
 *
 * @example
 * ```ts
 * import { type CompositionOptions, StubBroker } from "@dramatis/dramatis";
 * const o: CompositionOptions = { broker: new StubBroker() };
 * ```
 */
export interface CompositionOptions {
  /** The broker to enqueue on. Default: the first message's broker, else the global one. */
  broker?: Broker;
}

function resolveBroker(messages: Message[], options: CompositionOptions): Broker {
  return options.broker ?? messages.map(brokerOf).find((b) => b) ?? getBroker();
}

/**
 * A chain of messages: each runs after the previous one succeeded, with the previous result
 * appended to its arguments (unless the step has `pipeIgnore`).
 *
 * @example
 * ```ts
 * import { actor, Pipeline, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
 * const p = new Pipeline([inc.message(1), inc.message(), inc.message()], { broker });
 * console.log(p.messages.length); // 3
 * ```
 */
export class Pipeline {
  /** The steps, each linked to the next through its `pipe_target` option. */
  readonly messages: Message[];
  /** The broker it runs on. */
  readonly broker: Broker;

  /** Builds the pipeline from messages and other pipelines. */
  constructor(children: (Message | Pipeline)[], options: CompositionOptions = {}) {
    const flat: Message[] = [];
    for (const c of children) {
      if (c instanceof Pipeline) flat.push(...c.messages.map((m) => m.copy()));
      else if (c instanceof Message) flat.push(c.copy());
      else throw new TypeError("pipeline() takes messages (actor.message(...)) and pipelines.");
    }
    if (flat.length === 0) throw new TypeError("pipeline() needs at least one message.");
    for (let i = flat.length - 2; i >= 0; i--) {
      const options: JsonObject = {
        ...flat[i]!.options,
        pipe_target: flat[i + 1]!.asDict() as never,
      };
      flat[i] = flat[i]!.copy({ options });
    }
    this.messages = flat;
    this.broker = options.broker ?? resolveBroker(children.filter((c) => c instanceof Message), {});
  }

  /** Enqueues the first step (after `delay` ms, if given). Returns the pipeline. */
  async run(options: { delay?: number | undefined } = {}): Promise<this> {
    const first = this.messages[0]!;
    const delay = options.delay ?? (first.options.delay as number | undefined);
    await this.broker.enqueue(first, { delay });
    return this;
  }

  /** The last step's result. */
  getResult(options: GetResultOptions = {}): Promise<unknown> {
    return this.messages[this.messages.length - 1]!.getResult({ broker: this.broker, ...options });
  }

  /** Every step's result, in order. */
  async getResults(options: GetResultOptions = {}): Promise<unknown[]> {
    const deadline = Date.now() + (options.timeout ?? 10_000);
    const out: unknown[] = [];
    for (const m of this.messages) {
      const timeout = Math.max(0, deadline - Date.now());
      out.push(await m.getResult({ broker: this.broker, ...options, timeout }));
    }
    return out;
  }

  /**
   * How many steps have finished, counted from the first: those with a stored result (or a
   * stored failure: the pipeline stopped there). As in Dramatiq, steps of actors that do not
   * store results are not counted.
   */
  async completedCount(): Promise<number> {
    let n = 0;
    while (n < this.messages.length && await finished(this.messages[n]!, this.broker)) n++;
    return n;
  }

  /** True once the last step has finished (its result is stored). */
  completed(): Promise<boolean> {
    return finished(this.messages[this.messages.length - 1]!, this.broker);
  }
}

/** True when `message` has a stored result or failure; false when none is there yet. */
async function finished(message: Message, broker: Broker): Promise<boolean> {
  try {
    await message.getResult({ broker });
    return true;
  } catch (e) {
    if (e instanceof ResultMissing) return false;
    if (e instanceof ResultFailure) return true;
    throw e;
  }
}

/**
 * Builds a `Pipeline`.
 *
 * @example
 * ```ts
 * import { actor, pipeline, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
 * await pipeline([inc.message(1), inc.message()], { broker }).run();
 * ```
 */
export function pipeline(children: (Message | Pipeline)[], options?: CompositionOptions): Pipeline {
  return new Pipeline(children, options);
}

/**
 * A member of a group: a message, a pipeline, or another group.
 *
 * @example
 * ```ts
 * import { actor, group, type GroupMember, pipeline, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
 * const members: GroupMember[] = [
 *   inc.message(1),
 *   pipeline([inc.message(2), inc.message()], { broker }),
 *   group([inc.message(3), inc.message(4)], { broker }),
 * ];
 * ```
 */
export type GroupMember = Message | Pipeline | Group;

/** A group's completion barrier, as the `GroupCallbacks` middleware reads it off a message. */
interface Completion {
  uuid: string;
  callbacks: JsonObject[];
}

/**
 * Messages, pipelines and other groups that run in parallel, with optional completion callbacks
 * that run once all of them succeeded (needs the `GroupCallbacks` middleware). A member that is a
 * pipeline has succeeded when its last step has; one that is a group, when all of its members
 * have (its own callbacks run first).
 *
 * @example
 * ```ts
 * import { actor, Group, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
 * const g = new Group([inc.message(1), inc.message(2)], { broker });
 * console.log(g.children.length); // 2
 * ```
 */
export class Group {
  /** The members. */
  readonly children: GroupMember[];
  /** The broker it runs on. */
  readonly broker: Broker;
  /** Messages enqueued once every member succeeded. */
  readonly callbacks: Message[] = [];

  /** Builds the group. */
  constructor(children: GroupMember[], options: CompositionOptions = {}) {
    for (const c of children) {
      if (!(c instanceof Message) && !(c instanceof Pipeline) && !(c instanceof Group)) {
        throw new TypeError(
          "group() takes messages (actor.message(...)), pipelines and other groups.",
        );
      }
    }
    this.children = [...children];
    this.broker = options.broker ??
      this.children.map((c) => c instanceof Message ? brokerOf(c) : c.broker).find((b) => b) ??
      getBroker();
  }

  /** Adds a message to enqueue when every member has succeeded. */
  addCompletionCallback(message: Message): this {
    this.callbacks.push(message);
    return this;
  }

  /** Enqueues every member (after `delay` ms, if given). Returns the group. */
  async run(options: { delay?: number } = {}): Promise<this> {
    this.#check(false);
    await this.#run(options.delay, []);
    return this;
  }

  /** Throws before anything is enqueued when completion callbacks cannot work. */
  #check(tracked: boolean): void {
    tracked ||= this.callbacks.length > 0;
    if (tracked) {
      if (this.children.length === 0) {
        throw new TypeError(
          "group.run(): a group with completion callbacks needs at least one member.",
        );
      }
      groupCallbacksOf(this.broker);
    }
    for (const c of this.children) if (c instanceof Group) c.#check(tracked);
  }

  /**
   * Enqueues the members. When this group or an enclosing one has completion callbacks, each
   * group gets a barrier counting its members, and every message that completes a member
   * carries the barriers from its own group out (`parents`, innermost first).
   */
  async #run(delay: number | undefined, parents: Completion[]): Promise<void> {
    let chain = parents;
    if (this.callbacks.length > 0 || parents.length > 0) {
      const gc = groupCallbacksOf(this.broker);
      // A new barrier on every run, as in Dramatiq: a group run twice completes twice.
      const uuid = crypto.randomUUID();
      await new Barrier(gc.backend, uuid, { ttl: gc.barrierTtl }).create(this.children.length);
      chain = [{ uuid, callbacks: this.callbacks.map((c) => c.asDict() as never) }, ...parents];
    }
    // Members are replaced by the copies that carry the barriers (same message ids), so that
    // `children` shows what was enqueued.
    if (chain.length > 0) {
      for (let i = 0; i < this.children.length; i++) {
        const c = this.children[i];
        if (c instanceof Pipeline) {
          const steps = c.messages.slice();
          steps[steps.length - 1] = stamp(steps[steps.length - 1]!, chain);
          this.children[i] = new Pipeline(steps, { broker: c.broker });
        } else if (c instanceof Message) {
          this.children[i] = stamp(c, chain);
        }
      }
    }
    for (const c of this.children) {
      if (c instanceof Group) await c.#run(delay, chain);
      else if (c instanceof Pipeline) await c.run({ delay });
      else _attachBroker(await this.broker.enqueue(c, { delay }), this.broker);
    }
  }

  /**
   * Every member's result, in order and in the group's shape: a message's result, a pipeline's
   * last result, a group's list of results.
   */
  async getResults(options: GetResultOptions = {}): Promise<unknown[]> {
    const deadline = Date.now() + (options.timeout ?? 10_000);
    const out: unknown[] = [];
    for (const c of this.children) {
      const timeout = Math.max(0, deadline - Date.now());
      if (c instanceof Group) out.push(await c.getResults({ ...options, timeout }));
      else if (c instanceof Pipeline) out.push(await c.getResult({ ...options, timeout }));
      else out.push(await c.getResult({ broker: this.broker, ...options, timeout }));
    }
    return out;
  }

  /**
   * How many members have finished: a message or a pipeline whose (last) result is stored, or a
   * group all of whose members have finished. A stored failure counts as finished. As in
   * Dramatiq, members whose actors do not store results are not counted.
   */
  async completedCount(): Promise<number> {
    let n = 0;
    for (const c of this.children) {
      if (c instanceof Message ? await finished(c, this.broker) : await c.completed()) n++;
    }
    return n;
  }

  /** True once every member has finished (see `completedCount`). */
  async completed(): Promise<boolean> {
    return await this.completedCount() === this.children.length;
  }

  /** Waits until every member has a result. Throws `ResultTimeout` after `timeout` ms. */
  async wait(options: { timeout?: number } = {}): Promise<void> {
    try {
      await this.getResults({ block: true, timeout: options.timeout });
    } catch (e) {
      if (e instanceof ResultTimeout) {
        throw new ResultTimeout(`The group did not finish within ${options.timeout ?? 10_000} ms.`);
      }
      throw e;
    }
  }
}

/** The broker's `GroupCallbacks` middleware; throws when it has none. */
function groupCallbacksOf(broker: Broker): GroupCallbacks {
  const gc = broker.middleware.find((m): m is GroupCallbacks => m instanceof GroupCallbacks);
  if (!gc) {
    throw new TypeError(
      "group.run(): group completion callbacks need the GroupCallbacks middleware: " +
        "broker.addMiddleware(new GroupCallbacks({ backend })).",
    );
  }
  return gc;
}

/**
 * A copy of `m` that counts down the barriers of `chain` when it succeeds. The innermost group
 * uses Dramatiq's option names, so a Python worker runs its callbacks too; enclosing groups
 * (which Dramatiq does not have) go in `group_completion_parents`.
 */
function stamp(m: Message, chain: Completion[]): Message {
  const options: JsonObject = {
    ...m.options,
    group_completion_uuid: chain[0]!.uuid,
    group_completion_callbacks: chain[0]!.callbacks,
  };
  if (chain.length > 1) options.group_completion_parents = chain.slice(1) as never;
  else delete options.group_completion_parents;
  return m.copy({ options });
}

/**
 * Builds a `Group`.
 *
 * @example
 * ```ts
 * import { actor, group, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
 * await group([inc.message(1), inc.message(2)], { broker }).run();
 * ```
 */
export function group(children: GroupMember[], options?: CompositionOptions): Group {
  return new Group(children, options);
}
