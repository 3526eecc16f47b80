/**
 * `pipeline()` and `group()`: compose messages. A pipeline runs steps one after another,
 * passing each result to the next; a group runs messages in parallel.
 *
 * @example
 * ```ts
 * import { actor } from "./actor.ts";
 * import { StubBroker } from "./broker/stub.ts";
 * import { pipeline } from "./composition.ts";
 * const broker = new StubBroker();
 * const add = actor((a: number, b: number) => a + b, { actorName: "add", broker });
 * const double = actor((n: number) => n * 2, { actorName: "double", broker });
 * await pipeline([add.message(1, 2), double.message()], { broker }).run(); // double(3)
 * ```
 * @module
 */
import type { Broker } from "./broker/broker.ts";
import { getBroker } from "./broker/global.ts";
import { type JsonObject, Message } from "./message.ts";
import type { GetResultOptions } from "./_message_broker.ts";
import { _attachBroker, brokerOf } from "./_message_broker.ts";
import { GroupCallbacks } from "./middleware/group_callbacks.ts";
import { Barrier } from "./rate_limits/limiters.ts";
import { ResultTimeout } from "./errors.ts";

/**
 * Options of `pipeline()` and `group()`.
 *
 * @example
 * ```ts
 * import type { CompositionOptions } from "./composition.ts";
 * import { StubBroker } from "./broker/stub.ts";
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
 * import { actor } from "./actor.ts";
 * import { StubBroker } from "./broker/stub.ts";
 * import { Pipeline } from "./composition.ts";
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
        ...flat[i].options,
        pipe_target: flat[i + 1].asDict() as never,
      };
      flat[i] = flat[i].copy({ options });
    }
    this.messages = flat;
    this.broker = options.broker ?? resolveBroker(children.filter((c) => c instanceof Message), {});
  }

  /** Enqueues the first step (after `delay` ms, if given). Returns the pipeline. */
  async run(options: { delay?: number } = {}): Promise<this> {
    const first = this.messages[0];
    const delay = options.delay ?? (first.options.delay as number | undefined);
    await this.broker.enqueue(first, { delay });
    return this;
  }

  /** The last step's result. */
  getResult(options: GetResultOptions = {}): Promise<unknown> {
    return this.messages[this.messages.length - 1].getResult({ broker: this.broker, ...options });
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
}

/**
 * Builds a `Pipeline`.
 *
 * @example
 * ```ts
 * import { actor } from "./actor.ts";
 * import { StubBroker } from "./broker/stub.ts";
 * import { pipeline } from "./composition.ts";
 * const broker = new StubBroker();
 * const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
 * await pipeline([inc.message(1), inc.message()], { broker }).run();
 * ```
 */
export function pipeline(children: (Message | Pipeline)[], options?: CompositionOptions): Pipeline {
  return new Pipeline(children, options);
}

/**
 * Messages (and pipelines) that run in parallel, with optional completion callbacks that run
 * once all succeeded (needs the `GroupCallbacks` middleware).
 *
 * @example
 * ```ts
 * import { actor } from "./actor.ts";
 * import { StubBroker } from "./broker/stub.ts";
 * import { Group } from "./composition.ts";
 * const broker = new StubBroker();
 * const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
 * const g = new Group([inc.message(1), inc.message(2)], { broker });
 * console.log(g.children.length); // 2
 * ```
 */
export class Group {
  /** The members. */
  readonly children: (Message | Pipeline)[];
  /** The broker it runs on. */
  readonly broker: Broker;
  /** Messages enqueued once every member succeeded. */
  readonly callbacks: Message[] = [];

  /** Builds the group. */
  constructor(children: (Message | Pipeline)[], options: CompositionOptions = {}) {
    for (const c of children) {
      if (!(c instanceof Message) && !(c instanceof Pipeline)) {
        throw new TypeError("group() takes messages (actor.message(...)) and pipelines.");
      }
    }
    this.children = [...children];
    this.broker = options.broker ??
      resolveBroker(children.map((c) => c instanceof Pipeline ? c.messages[0] : c), {});
  }

  /** Adds a message to enqueue when every member has succeeded. */
  addCompletionCallback(message: Message): this {
    this.callbacks.push(message);
    return this;
  }

  /** Enqueues every member (after `delay` ms, if given). Returns the group. */
  async run(options: { delay?: number } = {}): Promise<this> {
    if (this.callbacks.length > 0) {
      const gc = this.broker.middleware.find((m): m is GroupCallbacks =>
        m instanceof GroupCallbacks
      );
      if (!gc) {
        throw new TypeError(
          "Group completion callbacks need the GroupCallbacks middleware: " +
            "broker.addMiddleware(new GroupCallbacks({ backend })).",
        );
      }
      const id = crypto.randomUUID();
      await new Barrier(gc.backend, id, { ttl: gc.barrierTtl }).create(this.children.length);
      const stamp = (m: Message) =>
        m.copy({
          options: {
            ...m.options,
            group_completion_uuid: id,
            group_completion_callbacks: this.callbacks.map((c) => c.asDict()) as never,
          },
        });
      for (let i = 0; i < this.children.length; i++) {
        const c = this.children[i];
        if (c instanceof Pipeline) {
          const last = c.messages.length - 1;
          const steps = [...c.messages.slice(0, last), stamp(c.messages[last])];
          this.children[i] = new Pipeline(steps, { broker: c.broker });
        } else {
          this.children[i] = stamp(c);
        }
      }
    }
    for (const c of this.children) {
      if (c instanceof Pipeline) await c.run(options);
      else _attachBroker(await this.broker.enqueue(c, { delay: options.delay }), this.broker);
    }
    return this;
  }

  /** Every member's result (a pipeline's last result), in order. */
  async getResults(options: GetResultOptions = {}): Promise<unknown[]> {
    const deadline = Date.now() + (options.timeout ?? 10_000);
    const out: unknown[] = [];
    for (const c of this.children) {
      const timeout = Math.max(0, deadline - Date.now());
      const opts = { broker: this.broker, ...options, timeout };
      out.push(await (c instanceof Pipeline ? c.getResult(opts) : c.getResult(opts)));
    }
    return out;
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

/**
 * Builds a `Group`.
 *
 * @example
 * ```ts
 * import { actor } from "./actor.ts";
 * import { StubBroker } from "./broker/stub.ts";
 * import { group } from "./composition.ts";
 * const broker = new StubBroker();
 * const inc = actor((n: number) => n + 1, { actorName: "inc", broker });
 * await group([inc.message(1), inc.message(2)], { broker }).run();
 * ```
 */
export function group(children: (Message | Pipeline)[], options?: CompositionOptions): Group {
  return new Group(children, options);
}
