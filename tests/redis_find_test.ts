// RedisBroker.findMessage's fast path: dramatis stores each copy it enqueues or moves under its
// message id (`keyedRid`), so a lookup is one HGET per hash; the same message sent twice onto a
// queue gets `id.1` for its second copy (both delivered and acked once); a copy under a random id
// (as Python Dramatiq makes them) is still found, by the scan. Python itself is in
// tests/redis_interop_test.ts. Each test uses its own namespace, deleted afterwards.
//   deno test -A tests/redis_find_test.ts        bun test tests/redis_find_test.ts
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { RedisBroker } from "../broker/redis/broker.ts";
import { Message } from "../message.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

const namespaces: string[] = [];
after(async () => {
  for (const ns of namespaces) await deleteKeys(`${ns}:`);
});

function makeBroker(): RedisBroker {
  const namespace = randomNamespace("rfind");
  namespaces.push(namespace);
  const broker = new RedisBroker({ url: SHARED_URL, namespace });
  broker.declareQueue("q");
  return broker;
}

function msg(n: number): Message {
  return new Message({ queueName: "q", actorName: "t", args: [n] });
}

test("findMessage: ready, delayed, running and dead copies are stored under their message id", async () => {
  const broker = makeBroker();
  const ns = broker.namespace;
  try {
    const ready = await broker.enqueue(msg(1));
    const delayed = await broker.enqueue(msg(2), { delay: 3_600_000 });
    const dying = await broker.enqueue(msg(3));
    const c = broker.consume("q");
    const got = await c.receive(2, { timeout: 1000 });
    assert.deepEqual(got.map((m) => m.args[0]), [1, 3]);
    got[1]!.options.traceback = "Error: boom";
    await c.nack(got[1]!);
    const hget = (key: string, id: string) => broker.client.send(["HGET", key, id]);
    assert.notEqual(await hget(`${ns}:q.msgs`, ready.messageId), null);
    assert.notEqual(await hget(`${ns}:q.DQ.msgs`, delayed.messageId), null);
    assert.notEqual(await hget(`${ns}:q.XQ.msgs`, dying.messageId), null);
    assert.equal((await broker.findMessage(ready.messageId))?.state, "running");
    assert.equal((await broker.findMessage(delayed.messageId))?.state, "delayed");
    assert.equal((await broker.findMessage(dying.messageId))?.state, "dead");
    assert.equal(await broker.findMessage(crypto.randomUUID()), null);
    // A retry (as the Retries middleware sends it): the delayed copy, then the original acked.
    await broker.enqueue(got[0]!.copy({ queueName: "q" }), { delay: 3_600_000 });
    await c.ack(got[0]!);
    const retried = await broker.findMessage(ready.messageId);
    assert.equal(retried?.state, "delayed");
    assert.notEqual(await hget(`${ns}:q.DQ.msgs`, ready.messageId), null);
    // Run now (a move): still found.
    assert.equal(await broker.runNow([ready.messageId]), 1);
    assert.equal((await broker.findMessage(ready.messageId))?.state, "ready");
    await c.close();
  } finally {
    await broker.close();
  }
});

test("the same message sent twice onto one queue: two copies, each delivered and acked once", async () => {
  const broker = makeBroker();
  const ns = broker.namespace;
  try {
    const m = msg(7);
    await broker.enqueue(m);
    await broker.enqueue(m);
    await Promise.all([broker.enqueue(m), broker.enqueue(msg(8))]); // one script call
    assert.equal((await broker.stats("q")).ready, 4);
    const fields = (await broker.client.send(["HKEYS", `${ns}:q.msgs`]) as string[]).map(String);
    assert.deepEqual(
      fields.filter((f) => f.startsWith(m.messageId)).sort(),
      [m.messageId, `${m.messageId}.1`, `${m.messageId}.2`],
    );
    const c = broker.consume("q");
    const got = await c.receive(10, { timeout: 1000 });
    assert.equal(got.length, 4);
    const rids = got.map((g) => g.options.redis_message_id);
    assert.equal(new Set(rids).size, 4, `distinct ids: ${rids}`);
    assert.equal((await broker.findMessage(m.messageId))?.state, "running");
    for (const g of got) await c.ack(g);
    await c.close();
    const s = await broker.stats("q");
    assert.deepEqual([s.ready, s.inFlight], [0, 0]);
    assert.equal(await broker.client.send(["HLEN", `${ns}:q.msgs`]), 0);
    assert.equal(await broker.findMessage(m.messageId), null);
  } finally {
    await broker.close();
  }
});

test("findMessage: a copy under a random redis_message_id (as Python makes them) is scanned for", async () => {
  const broker = makeBroker();
  const ns = broker.namespace;
  try {
    const m = msg(9);
    const rid = crypto.randomUUID();
    const payload = JSON.stringify({ ...m.asDict(), options: { redis_message_id: rid } });
    await broker.client.send(["HSET", `${ns}:q.msgs`, rid, payload]);
    await broker.client.send(["RPUSH", `${ns}:q`, rid]);
    const found = await broker.findMessage(m.messageId);
    assert.equal(found?.state, "ready");
    assert.deepEqual(found?.message.args, [9]);
  } finally {
    await broker.close();
  }
});

test("an events() reader (as the dashboard's) ends when its broker closes", async () => {
  const broker = makeBroker();
  let ended = false;
  const reading = (async () => {
    for await (const _ of broker.events({ past: true })) { /* none published */ }
    ended = true;
  })();
  await broker.publishEvents([]); // (a round trip: the reader has started by now)
  await broker.close();
  await reading;
  assert.ok(ended);
});
