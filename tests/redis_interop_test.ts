// Interop with the real Python Dramatiq 2.2 (../shared/peers) on the shared Redis, both ways,
// through the harness of tests/_python.ts: a dramatis send (and a delayed one) run by a Python
// worker; a Python send (and a delayed one) run by `cli.ts worker`; a Python failure in q.XQ
// listed by `cli.ts dead-letters list`. Each test uses its own namespace, deleted afterwards.
// Skips (with the reason) when /usr/bin/python3 lacks redis; .ci/run installs python3-redis.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { RedisBroker } from "../broker/redis/broker.ts";
import { Message } from "../message.ts";
import { cleanupPython, eventFile, pythonSkip, runPython, startPythonWorker } from "./_python.ts";
import { until } from "./_rabbitmq.ts";
import {
  cliRunsPythonSends,
  killAll,
  pythonFailureListed,
  pythonRunsDramatisSends,
  stop,
  track,
} from "./_interop.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

const skip = await pythonSkip(["redis"]);
const options = { skip, timeout: 120_000 };

const namespaces: string[] = [];
after(async () => {
  await killAll();
  for (const ns of namespaces) await deleteKeys(`${ns}:`);
  cleanupPython();
});

function setup() {
  const namespace = randomNamespace("interop");
  namespaces.push(namespace);
  const queue = "interop";
  const events = eventFile();
  const python = {
    DRAMATIS_TEST_BROKER: "redis",
    DRAMATIS_TEST_URL: SHARED_URL,
    DRAMATIS_TEST_NAMESPACE: namespace,
    DRAMATIS_TEST_QUEUE: queue,
    DRAMATIS_TEST_OUT: events.path,
  };
  const dramatis = {
    DRAMATIS_BROKER: `${SHARED_URL}?namespace=${namespace}`,
    INTEROP_QUEUE: queue,
    OUT_FILE: events.path,
  };
  const broker = new RedisBroker({ url: SHARED_URL, namespace });
  broker.declareQueue(queue);
  return { queue, events, python, dramatis, broker };
}

test(
  "redis interop: a dramatis send, and a delayed one, are run by a Python worker",
  options,
  () => pythonRunsDramatisSends(setup()),
);

test(
  "redis interop: a Python send, and a delayed one, are run by cli.ts worker",
  options,
  () => cliRunsPythonSends(setup()),
);

test(
  "redis interop: a Python failure in q.XQ is listed by cli.ts dead-letters list",
  options,
  () => pythonFailureListed(setup()),
);

// dramatis names its copies by the message id (broker/redis/_wire.ts keyedRid): a Python worker
// runs, retries (under a UUID of its own) and dead-letters one, leaving no key behind; findMessage
// finds a Python send (a scan: Python's ids are random) and the dead letter.
test(
  "redis interop: a dramatis send keyed by its id is retried and dead-lettered by Python; both found",
  options,
  async () => {
    const { queue, events, python, broker } = setup();
    const namespace = broker.namespace;
    try {
      // A Python send, before any worker: under a UUID of Python's, found by the scan.
      const pyId = (await runPython("interop_send.py", [
        "py_record",
        JSON.stringify([{ args: ["from python"] }]),
      ], python)).trim();
      const py = await broker.findMessage(pyId);
      assert.equal(py?.state, "ready");
      assert.deepEqual(py?.message.args, ["from python"]);
      // A dramatis send of py_fail (max_retries=1): stored under its message id.
      const m = await broker.enqueue(
        new Message({ queueName: queue, actorName: "py_fail", args: ["doomed"] }),
      );
      const field = await broker.client.send(["HGET", `${namespace}:${queue}.msgs`, m.messageId]);
      assert.notEqual(field, null);
      assert.equal((await broker.findMessage(m.messageId))?.state, "ready");
      const worker = track(await startPythonWorker(python));
      try {
        await until("the dead letter", async () => (await broker.stats(queue)).dead === 1, 30_000);
        await until("three runs", () => Promise.resolve(events.read().length === 3), 30_000);
      } finally {
        await stop(worker);
      }
      const runs = events.read().map((r) => r.message_id);
      assert.deepEqual(runs.sort(), [m.messageId, m.messageId, pyId].sort());
      // Python acked the copy named by the message id, and its own retry copy: nothing left.
      for (const key of [`${queue}.msgs`, `${queue}.DQ.msgs`]) {
        assert.equal(await broker.client.send(["HLEN", `${namespace}:${key}`]), 0, key);
      }
      const dead = await broker.findMessage(m.messageId);
      assert.equal(dead?.state, "dead");
      assert.equal(dead?.message.options.retries, 1);
      assert.match(String(dead?.error), /py_fail always fails/);
      assert.equal(await broker.requeueDeadLetters(queue), 1);
      assert.equal((await broker.findMessage(m.messageId))?.state, "ready");
    } finally {
      await broker.close();
      events.remove();
    }
  },
);
