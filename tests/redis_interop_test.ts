// Interop with the real Python Dramatiq 2.2 (../shared/peers) on the shared Redis, both ways,
// through the harness of tests/_python.ts: a dramatis send (and a delayed one) run by a Python
// worker; a Python send (and a delayed one) run by `cli.ts worker`; a Python failure in q.XQ
// listed by `cli.ts dead-letters list`. Each test uses its own namespace, deleted afterwards.
// Skips (with the reason) when /usr/bin/python3 lacks redis; .ci/run installs python3-redis.
import { after, test } from "node:test";
import { RedisBroker } from "../broker/redis/broker.ts";
import { cleanupPython, eventFile, pythonSkip } from "./_python.ts";
import {
  cliRunsPythonSends,
  killAll,
  pythonFailureListed,
  pythonRunsDramatisSends,
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
