// The interop scenarios both brokers run against the real Python Dramatiq (tests/_python.ts):
// dramatis sends run by a Python worker, Python sends run by `cli.ts worker`, a Python failure
// listed by `cli.ts dead-letters list`. Each takes the broker's environment for both sides.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { Broker } from "../broker/broker.ts";
import { Message } from "../message.ts";
import {
  type Child,
  type eventFile,
  runCli,
  runPython,
  startCliWorker,
  startPythonWorker,
} from "./_python.ts";
import { until } from "./_rabbitmq.ts";

export const interopTasks = fileURLToPath(new URL("./fixtures/interop_tasks.ts", import.meta.url));

/** One scenario's queue, event file, environments (Python's, the CLI's) and broker. */
export interface Side {
  queue: string;
  events: ReturnType<typeof eventFile>;
  python: Record<string, string>;
  dramatis: Record<string, string>;
  broker: Broker;
}

/** Child processes started by tests: killed by `killAll` if a test failed to stop them. */
const running = new Set<Child>();

export function track(c: Child): Child {
  running.add(c);
  return c;
}

export async function stop(c: Child): Promise<void> {
  await c.stop();
  running.delete(c);
}

export async function killAll(): Promise<void> {
  for (const c of running) await c.kill();
  running.clear();
}

/** Runs `fn` with `worker` started, then stops it and closes what `side` holds. */
async function withWorker(side: Side, worker: Promise<Child>, fn: () => Promise<void>) {
  const c = track(await worker);
  try {
    await fn();
  } finally {
    await stop(c);
    await side.broker.close();
    side.events.remove();
  }
}

/** A dramatis send and a delayed one (1.5 s), run by a Python worker. */
export function pythonRunsDramatisSends(side: Side): Promise<void> {
  const { queue, events, broker } = side;
  return withWorker(side, startPythonWorker(side.python), async () => {
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
    assert.equal(later.queueName, `${queue}.DQ`);
    await until("both ran in Python", () => events.read().length === 2, 30_000);
    const [first, second] = events.read();
    assert.deepEqual(
      [first.side, first.args, first.kwargs, first.message_id],
      ["python", [1, "é✓", { k: [true, null] }], { x: 1 }, now.messageId],
    );
    assert.deepEqual([second.message_id, second.args], [later.messageId, ["later"]]);
    const waited = (second.t as number) - sentAt;
    assert.ok(waited >= 1_400, `the delayed message ran after ${waited} ms`);
    assert.equal((second.options as Record<string, unknown>).eta, undefined, "eta left on q");
    const s = await broker.stats(queue);
    assert.deepEqual([s.ready, s.delayed, s.dead], [0, 0, 0]);
  });
}

/** A Python send and a delayed one (1.5 s), run by `cli.ts worker`. */
export function cliRunsPythonSends(side: Side): Promise<void> {
  const { queue, events, python, broker } = side;
  const send = async (spec: unknown) =>
    (await runPython("interop_send.py", ["ts_record", JSON.stringify([spec])], python)).trim();
  return withWorker(side, startCliWorker(interopTasks, ["-t", "1"], side.dramatis), async () => {
    const nowId = await send({ args: [2, "ü", { deep: [1.5] }], kwargs: { y: "z" } });
    const sentAt = Date.now();
    const laterId = await send({ args: ["later"], delay: 1_500 });
    await until("both ran in dramatis", () => events.read().length === 2, 30_000);
    const [first, second] = events.read();
    assert.deepEqual([first.side, first.message_id], ["dramatis", nowId]);
    // A TS actor gets non-empty kwargs as one trailing object.
    assert.deepEqual(first.args, [2, "ü", { deep: [1.5] }, { y: "z" }]);
    assert.equal(second.message_id, laterId);
    assert.ok((second.t as number) - sentAt >= 1_300, "the delayed message ran early");
    const s = await broker.stats(queue);
    assert.deepEqual([s.ready, s.delayed, s.dead], [0, 0, 0]);
  });
}

/**
 * A Python actor failing (max_retries=1: it runs, is retried through q.DQ, runs again) into
 * q.XQ, listed by `cli.ts dead-letters list`; then `more()` (requeue, purge, ...).
 */
export function pythonFailureListed(
  side: Side,
  more: (id: string) => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const { queue, events, python, dramatis, broker } = side;
  return withWorker(side, startPythonWorker(python), async () => {
    const id = (await runPython("interop_send.py", [
      "py_fail",
      JSON.stringify([{ args: ["doomed"] }]),
    ], python)).trim();
    await until("the dead letter", async () => (await broker.stats(queue)).dead === 1, 30_000);
    assert.equal(events.read().length, 2);
    const listed = await runCli(["dead-letters", "list", queue, "--json"], dramatis);
    assert.equal(listed.code, 0, listed.stderr);
    const dead = JSON.parse(listed.stdout);
    assert.equal(dead.length, 1);
    assert.deepEqual([dead[0].actor_name, dead[0].message_id], ["py_fail", id]);
    assert.equal(dead[0].options.retries, 1);
    assert.match(String(dead[0].options.traceback), /py_fail always fails/);
    const table = await runCli(["dead-letters", "list", queue], dramatis);
    assert.match(table.stdout, new RegExp(`${id}\\s+py_fail\\s+1`));
    assert.equal((await broker.stats(queue)).dead, 1, "listing left it in q.XQ");
    await more(id);
  });
}
