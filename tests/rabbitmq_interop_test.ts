// Interop with the real Python Dramatiq 2.2 (../shared/peers) on the shared RabbitMQ, both ways:
// a dramatis send run by a Python worker; a Python send run by `cli.ts worker`; a delayed message
// from each side run by the other; a Python failure in q.XQ listed, requeued and purged by
// `cli.ts dead-letters`; both sides declaring with maxPriority 10 (no 406) and broker_priority
// honoured in order with prefetch 1, by a Python worker and by `cli.ts worker`; a mismatched
// max_priority giving dramatis's clear error. Each test has its own queues, deleted afterwards.
// Skips (with the reason) when /usr/bin/python3 lacks pika; .ci/run installs it.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { RabbitmqBroker } from "../broker/rabbitmq/broker.ts";
import { BrokerError } from "../errors.ts";
import { Message } from "../message.ts";
import {
  cleanupPython,
  eventFile,
  pythonSkip,
  runCli,
  runPython,
  startCliWorker,
  startPythonWorker,
} from "./_python.ts";
import {
  cliRunsPythonSends,
  interopTasks,
  killAll,
  pythonFailureListed,
  pythonRunsDramatisSends,
  stop,
  track,
} from "./_interop.ts";
import { deleteDramatiqQueues, SHARED_AMQP_URL, uniqueName, until } from "./_rabbitmq.ts";

const skip = await pythonSkip(["pika"]);
const options = { skip, timeout: 120_000 };
const tasks = interopTasks;

const created: string[] = [];
after(async () => {
  await killAll();
  if (!skip) await deleteDramatiqQueues(created);
  cleanupPython();
});

function setup(maxPriority?: number) {
  const queue = uniqueName("interop");
  created.push(queue);
  const events = eventFile();
  const python = {
    DRAMATIS_TEST_BROKER: "rabbitmq",
    DRAMATIS_TEST_URL: SHARED_AMQP_URL,
    DRAMATIS_TEST_QUEUE: queue,
    DRAMATIS_TEST_OUT: events.path,
    ...(maxPriority ? { DRAMATIS_TEST_MAX_PRIORITY: String(maxPriority) } : {}),
  };
  const query = maxPriority ? `?maxPriority=${maxPriority}&prefetch=1` : "";
  const dramatis = {
    DRAMATIS_BROKER: `${SHARED_AMQP_URL}${query}`,
    INTEROP_QUEUE: queue,
    OUT_FILE: events.path,
  };
  const broker = new RabbitmqBroker({ url: SHARED_AMQP_URL, maxPriority });
  broker.declareQueue(queue);
  return { queue, events, python, dramatis, broker };
}

const message = (queueName: string, actorName: string, args: unknown[], options = {}) =>
  new Message({ queueName, actorName, args: args as never, options });

test(
  "interop: a dramatis send, and a delayed one, are run by a Python worker",
  options,
  () => pythonRunsDramatisSends(setup()),
);

test(
  "interop: a Python send, and a delayed one, are run by cli.ts worker",
  options,
  () => cliRunsPythonSends(setup()),
);

test(
  "interop: a Python failure in q.XQ is listed, requeued and purged by cli.ts dead-letters",
  options,
  () => {
    const side = setup();
    const { queue, events, dramatis, broker } = side;
    return pythonFailureListed(side, async () => {
      const requeued = await runCli(["dead-letters", "requeue", queue], dramatis);
      assert.match(requeued.stdout, /Requeued 1 dead letter/);
      // It keeps its retries (1 of 1): one more run, and it is dead again.
      await until("it failed again", () => events.read().length === 3, 30_000);
      await until("dead again", async () => (await broker.stats(queue)).dead === 1, 30_000);
      const purged = await runCli(["dead-letters", "purge", queue, "--json"], dramatis);
      assert.deepEqual(JSON.parse(purged.stdout), { purged: 1 });
      assert.equal((await broker.stats(queue)).dead, 0);
    });
  },
);

/** The order the `*_record` actor ran messages in, after the blocker. */
function order(events: Record<string, unknown>[], actor: string): unknown[] {
  return events.filter((e) => e.actor === actor).map((e) => (e.args as unknown[])[0]);
}

const shuffled = [3, 7, 0, 9, 5, 1, 8, 2, 6, 4];

test(
  "interop: maxPriority 10 on both sides, no 406; a Python worker with prefetch 1 runs broker_priority in order",
  options,
  async () => {
    const { queue, events, python, broker } = setup(10);
    // dramatis declares first, Python second: the same arguments, so no PRECONDITION_FAILED.
    await broker.connect();
    const worker = await startPythonWorker({ ...python, dramatiq_queue_prefetch: "1" });
    track(worker);
    try {
      await broker.enqueue(message(queue, "py_slow", [1_500]));
      await until("the blocker started", () => events.read().length === 1, 30_000);
      for (const p of shuffled) {
        await broker.enqueue(message(queue, "py_record", [p], { broker_priority: p }));
      }
      await until("all ran", () => order(events.read(), "py_record").length === 10, 30_000);
      assert.deepEqual(order(events.read(), "py_record"), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      assert.doesNotMatch(worker.output(), /PRECONDITION_FAILED|inequivalent/);
    } finally {
      await stop(worker);
      await broker.close();
      events.remove();
    }
  },
);

test(
  "interop: maxPriority 10 on both sides; cli.ts worker with prefetch 1 runs Python's broker_priority in order",
  options,
  async () => {
    const { events, python, dramatis, broker } = setup(10);
    // Python declares first this time.
    await runPython("interop_send.py", ["ts_slow", JSON.stringify([{ args: [1_500] }])], python);
    const worker = await startCliWorker(tasks, ["-t", "1", "-c", "1"], dramatis);
    track(worker);
    try {
      await until("the blocker started", () => events.read().length === 1, 30_000);
      await runPython(
        "interop_send.py",
        [
          "ts_record",
          JSON.stringify(shuffled.map((p) => ({ args: [p], options: { broker_priority: p } }))),
        ],
        python,
      );
      await until("all ran", () => order(events.read(), "ts_record").length === 10, 30_000);
      assert.deepEqual(order(events.read(), "ts_record"), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      assert.doesNotMatch(worker.output(), /PRECONDITION_FAILED|inequivalent|ERROR/);
    } finally {
      await stop(worker);
      await broker.close();
      events.remove();
    }
  },
);

test(
  "interop: a queue Python declared with max_priority 10 gives dramatis without it a clear error",
  options,
  async () => {
    const { queue, python } = setup(10);
    await runPython("interop_send.py", ["py_record", JSON.stringify([{ args: [1] }])], python);
    const broker = new RabbitmqBroker({ url: SHARED_AMQP_URL });
    broker.declareQueue(queue);
    try {
      const error = await broker.enqueue(message(queue, "py_record", [2])).catch((e) => e);
      assert.ok(error instanceof BrokerError);
      assert.match(
        error.message,
        /exists with x-max-priority = 10, but this broker declares it with x-max-priority = none/,
      );
      assert.match(error.message, /set maxPriority: 10/);
      // The CLI worker refuses to start, with that message and exit code 3.
      const r = await runCli(["worker", tasks, "-t", "1"], {
        DRAMATIS_BROKER: SHARED_AMQP_URL,
        INTEROP_QUEUE: queue,
      });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      assert.match(r.stderr, /x-max-priority = 10/);
    } finally {
      await broker.close();
    }
  },
);
