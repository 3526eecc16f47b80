/**
 * `actorClass()`: class-based actors, as Dramatiq's `GenericActor`. A class with a `perform`
 * method and `static options` becomes an actor; base classes share options and helper methods.
 *
 * @example
 * ```ts
 * import { actorClass, StubBroker } from "@dramatis/dramatis";
 *
 * const broker = new StubBroker();
 * class Greet {
 *   static options = { queueName: "greetings", maxRetries: 3, broker };
 *   perform(name: string) {
 *     return `hello ${name}`;
 *   }
 * }
 * const greet = actorClass(Greet);
 * await greet.send("ada"); // typed from perform: greet.send(42) does not compile
 * ```
 * @module
 */
import { _declareActor, type Actor, type ActorOptions } from "./actor.ts";

/**
 * What `actorClass()` takes: a class whose instances have a `perform` method, constructed
 * without arguments, with optional `static options`.
 *
 * @example
 * ```ts
 * import type { ActorClass } from "@dramatis/dramatis";
 * class Ping {
 *   static options = { maxRetries: 0 };
 *   perform() {
 *     return "pong";
 *   }
 * }
 * const c: ActorClass = Ping;
 * ```
 */
export interface ActorClass<P extends PerformMethod = PerformMethod> {
  /** Builds the one instance that runs every message. */
  new (): { perform: P };
  /** The actor's options; a subclass's are merged over its base classes'. */
  options?: ActorOptions;
}

/**
 * The type of a `perform` method.
 *
 * @example
 * ```ts
 * import type { PerformMethod } from "@dramatis/dramatis";
 * const p: PerformMethod = (a: number, b: number) => a + b;
 * ```
 */
// deno-lint-ignore no-explicit-any
export type PerformMethod = (...args: any[]) => unknown;

/**
 * Declares a class-based actor: one instance of `cls` is built, and each message runs its
 * `perform` method (with `this` the instance, so helper methods and fields work). The actor's
 * name is the class's name unless `actorName` says otherwise; its options are the `static
 * options` of the class and of each class it extends (a subclass's win), then `options`.
 *
 * Base classes are not declared: only the classes passed here are, once each (a second
 * `actorClass(C)` on the same broker throws, as for any duplicate actor name). Mark a base class
 * `abstract` and TypeScript refuses to declare it; at run time a class without `perform` is
 * refused too.
 *
 * @example
 * ```ts
 * import { actorClass, type ActorOptions, StubBroker } from "@dramatis/dramatis";
 *
 * const broker = new StubBroker();
 * abstract class Task {
 *   // Typed as ActorOptions, so that subclasses can set other options.
 *   static options: ActorOptions = { queueName: "tasks", maxRetries: 20, broker };
 *   abstract taskName(): string;
 *   perform(): string {
 *     return `Hello from ${this.taskName()}!`;
 *   }
 * }
 * class FooTask extends Task {
 *   static override options = { maxRetries: 5 }; // merged: queueName "tasks", maxRetries 5
 *   taskName() {
 *     return "Foo";
 *   }
 * }
 * class BarTask extends Task {
 *   taskName() {
 *     return "Bar";
 *   }
 * }
 * const foo = actorClass(FooTask);
 * const bar = actorClass(BarTask);
 * await foo.send();
 * console.log(bar(), foo.options.maxRetries); // Hello from Bar! 5
 * ```
 */
export function actorClass<P extends PerformMethod>(
  cls: ActorClass<P>,
  options: ActorOptions = {},
): Actor<Parameters<P>, ReturnType<P>> {
  if (typeof cls !== "function") {
    throw new TypeError(`actorClass() takes a class, got ${typeof cls}.`);
  }
  if (typeof cls.prototype?.perform !== "function") {
    throw new TypeError(
      `actorClass(${cls.name}): the class has no perform() method. Give it one; a base class ` +
        `that only shares options and helpers is not declared.`,
    );
  }
  const merged: ActorOptions = {};
  const chain: object[] = [];
  for (let c: object | null = cls; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    chain.unshift(c);
  }
  for (const c of chain) {
    if (!Object.hasOwn(c, "options")) continue;
    const own = (c as { options?: unknown }).options;
    if (own === undefined) continue;
    if (own === null || typeof own !== "object") {
      throw new TypeError(
        `actorClass(${cls.name}): static options of ${(c as { name?: string }).name} ` +
          `must be an object.`,
      );
    }
    Object.assign(merged, own);
  }
  Object.assign(merged, options);
  const instance = new cls();
  const perform = instance.perform;
  if (typeof perform !== "function") {
    throw new TypeError(`actorClass(${cls.name}): perform is not a method of its instances.`);
  }
  const fn = (...args: Parameters<P>) => perform.apply(instance, args) as ReturnType<P>;
  return _declareActor(fn, { actorName: cls.name, ...merged }, `actorClass(${cls.name})`);
}
