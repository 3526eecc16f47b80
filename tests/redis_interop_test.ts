// Interop with the real Python Dramatiq 2.2 (../shared/peers) on the shared Redis, both ways,
// through the harness of tests/_python.ts: a dramatis send (and a delayed one) run by a Python
// worker; a Python send (and a delayed one) run by `cli.ts worker`; a Python failure in q.XQ
// listed by `cli.ts dead-letters list`. Each test uses its own namespace, deleted afterwards.
// Skips (with the reason) when /usr/bin/python3 lacks redis; .ci/run installs python3-redis.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { RedisBroker } from "../broker/redis/broker.ts";
import { Message } from "../message.ts";
import {
  type Child,
  cleanupPython,
  eventFile,
  pythonSkip,
  runCli,
  runPython,
  startCliWorker,
  startPythonWorker,
} from "./_python.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";
import { until } from "./_rabbitmq.ts";

const skip = await pythonSkip(["redis"]);
const options = { skip, timeout: 120_000 };
const tasks = fileURLToPath(new URL("./fixtures/interop_tasks.ts", import.meta.url));

const namespaces: string[] = [];
const running: Child[] = [];
after(async () => {
  for (const c of running) await c.kill();
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

async function stop(c: Child): Promise<void> {
  await c.stop();
  running.splice(running.indexOf(c), 1);
}

test(
  "redis interop: a dramatis send, and a delayed one, are run by a Python worker",
  options,
  async () => {
    const { queue, events, python, broker } = setup();
    const worker = await startPythonWorker(python);
    running.push(worker);
    try {
      const now = await broker.enqueue(
        new Message({
          queueName: queue,
          actorName: "py_record",
          args: [1, "é✓", { k: [true, null] }],
          kwargs: { x: 1 },
        }),
      );
      const sentAt = Date.now();
      const later = await broker.enqueue(
        new Message({ queueName: queue, actorName: "py_record", args: ["later"] }),
        { delay: 1_500 },
      );
      await until("both ran in Python", () => events.read().length === 2, 30_000);
      const [first, second] = events.read();
      assert.deepEqual(
        [first.side, first.args, first.kwargs, first.message_id],
        ["python", [1, "é✓", { k: [true, null] }], { x: 1 }, now.messageId],
      );
      assert.equal(second.message_id, later.messageId);
      assert.ok((second.t as number) - sentAt >= 1_400, "the delayed message ran early");
    } finally {
      await stop(worker);
      await broker.close();
      events.remove();
    }
  },
);

test(
  "redis interop: a Python send, and a delayed one, are run by cli.ts worker",
  options,
  async () => {
    const { events, python, dramatis, broker } = setup();
    const worker = await startCliWorker(tasks, ["-t", "1"], dramatis);
    running.push(worker);
    try {
      const [nowId] = (await runPython("interop_send.py", [
        "ts_record",
        JSON.stringify([{ args: [2, "ü"], kwargs: { y: "z" } }]),
      ], python)).trim().split("\n");
      const sentAt = Date.now();
      const [laterId] = (await runPython("interop_send.py", [
        "ts_record",
        JSON.stringify([{ args: ["later"], delay: 1_500 }]),
      ], python)).trim().split("\n");
      await until("both ran in dramatis", () => events.read().length === 2, 30_000);
      const [first, second] = events.read();
      assert.equal(first.side, "dramatis");
      assert.equal(first.message_id, nowId);
      assert.deepEqual(first.args, [2, "ü", { y: "z" }]);
      assert.equal(second.message_id, laterId);
      assert.ok((second.t as number) - sentAt >= 1_300, "the delayed message ran early");
    } finally {
      await stop(worker);
      await broker.close();
      events.remove();
    }
  },
);

test(
  "redis interop: a Python failure in q.XQ is listed by cli.ts dead-letters list",
  options,
  async () => {
    const { queue, events, python, dramatis, broker } = setup();
    const worker = await startPythonWorker(python);
    running.push(worker);
    try {
      const [id] = (await runPython("interop_send.py", [
        "py_fail",
        JSON.stringify([{ args: ["doomed"] }]),
      ], python)).trim().split("\n");
      // max_retries=1: it runs, is retried through q.DQ, runs again, and is dead-lettered.
      await until("the dead letter", async () => (await broker.stats(queue)).dead === 1, 30_000);
      assert.equal(events.read().length, 2);
      const listed = await runCli(["dead-letters", "list", queue, "--json"], dramatis);
      assert.equal(listed.code, 0, listed.stderr);
      const dead = JSON.parse(listed.stdout);
      assert.equal(dead.length, 1);
      assert.deepEqual([dead[0].actor_name, dead[0].message_id], ["py_fail", id]);
      assert.equal(dead[0].options.retries, 1);
      assert.match(dead[0].options.traceback, /py_fail always fails/);
      const table = await runCli(["dead-letters", "list", queue], dramatis);
      assert.match(table.stdout, new RegExp(`${id}\\s+py_fail\\s+1`));
    } finally {
      await stop(worker);
      await broker.close();
      events.remove();
    }
  },
);
