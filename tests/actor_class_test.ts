// Class-based actors (Dramatiq's GenericActor): a class with `perform` and static options.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  actorClass,
  type ActorOptions,
  MemoryResultBackend,
  Results,
  StubBroker,
  Worker,
} from "../mod.ts";
import { drainWith } from "./_helpers.ts";

test("actorClass: a class with perform and static options is an actor, sent like any", async () => {
  const broker = new StubBroker();
  broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
  const seen: string[] = [];
  class SendInvoice {
    static options = {
      queueName: "billing",
      maxRetries: 1,
      minBackoff: 1,
      storeResults: true,
      broker,
    };
    prefix = "invoice";
    attempts = 0;
    format(id: number, to: string) {
      return `${this.prefix} ${id} to ${to}`;
    }
    perform(id: number, to: string): string {
      this.attempts++;
      if (to === "flaky" && this.attempts === 1) throw new Error("mail server down");
      seen.push(this.format(id, to));
      return this.format(id, to);
    }
  }
  const sendInvoice = actorClass(SendInvoice);
  assert.equal(sendInvoice.actorName, "SendInvoice");
  assert.equal(sendInvoice.queueName, "billing");
  assert.equal(sendInvoice.options.maxRetries, 1);
  assert.deepEqual([...broker.getDeclaredActors()], ["SendInvoice"]);
  // Callable here and now, like any actor.
  assert.equal(sendInvoice(1, "ada"), "invoice 1 to ada");
  // Type checks only (never called): the arguments are typed from perform.
  const _typed = () => {
    // @ts-expect-error: id is a number
    sendInvoice.send("1", "ada");
    // @ts-expect-error: `to` is missing
    sendInvoice.send(1);
    const r: string = sendInvoice(1, "ada");
    return r;
  };
  const m = await sendInvoice.send(2, "flaky");
  const n = await sendInvoice.sendWithOptions({ args: [3, "bob"], delay: 10 });
  assert.equal(m.queueName, "billing");
  await drainWith(broker, "billing");
  assert.equal(await m.getResult(), "invoice 2 to flaky", "retried per its options");
  assert.equal(await n.getResult({ broker }), "invoice 3 to bob");
  assert.deepEqual(seen, ["invoice 1 to ada", "invoice 2 to flaky", "invoice 3 to bob"]);
  // Declared once: the same class again is a duplicate name.
  assert.throws(
    () => actorClass(SendInvoice),
    /An actor named "SendInvoice" is already registered/,
  );
  // actorName and other options can be given at declaration too.
  const other = actorClass(SendInvoice, { actorName: "sendInvoiceEu", queueName: "eu" });
  assert.equal(other.actorName, "sendInvoiceEu");
  assert.equal(other.queueName, "eu");
  assert.equal(other.options.maxRetries, 1);
});

test("actorClass: abstract bases are not declared; subclasses merge their options over the base's", async () => {
  const broker = new StubBroker();
  const out: string[] = [];
  abstract class BaseTask {
    static options: ActorOptions = { queueName: "tasks", maxRetries: 20, broker };
    abstract taskName(): string;
    perform(greeting: string) {
      out.push(`${greeting} from ${this.taskName()}`);
    }
  }
  class FooTask extends BaseTask {
    static override options: ActorOptions = { maxRetries: 3 };
    taskName() {
      return "Foo";
    }
  }
  class BarTask extends BaseTask {
    taskName() {
      return "Bar";
    }
  }
  const foo = actorClass(FooTask);
  const bar = actorClass(BarTask);
  // Type check only (never called): TypeScript refuses to declare an abstract class.
  const _abstract = () => {
    // @ts-expect-error: cannot assign an abstract constructor type to a non-abstract one
    actorClass(BaseTask);
  };
  assert.deepEqual([...broker.getDeclaredActors()].sort(), ["BarTask", "FooTask"]);
  assert.equal(foo.queueName, "tasks");
  assert.equal(foo.options.maxRetries, 3);
  assert.equal(bar.options.maxRetries, 20);
  await foo.send("Hello");
  await bar.send("Hi");
  const worker = new Worker(broker, { workerTimeout: 50 });
  await worker.start();
  await broker.join("tasks", { timeout: 5_000 });
  await worker.stop();
  assert.deepEqual(out.sort(), ["Hello from Foo", "Hi from Bar"]);
});

test("actorClass: refuses what is not a class with a perform method, with a clear error", () => {
  const broker = new StubBroker();
  class NoPerform {
    static options = { broker };
    run() {}
  }
  assert.throws(
    () => actorClass(NoPerform as never),
    /actorClass\(NoPerform\): the class has no perform\(\) method/,
  );
  class BadOptions {
    static options = 3;
    perform() {}
  }
  assert.throws(
    () => actorClass(BadOptions as never),
    /static options of BadOptions must be an object/,
  );
  class Typo {
    static options = { broker, maxRetires: 1 };
    perform() {}
  }
  assert.throws(() => actorClass(Typo), /Unknown option "maxRetires" for actor "Typo"/);
  assert.throws(() => actorClass(42 as never), /takes a class/);
  assert.equal(broker.getDeclaredActors().size, 0);
});
