// FileBroker.findMessage through the lookup by message id (broker/file/_ids.ts): made by the
// replay or by a scan of a built replica, kept up to date with what other instances write, across
// compaction and after most of its entries are finished. Runs on both runtimes:
//   deno test -A tests/file_find_test.ts        bun test tests/file_find_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker, type FileBrokerOptions } from "../broker/file/broker.ts";
import { Message } from "../message.ts";

function open(dir: string, options: FileBrokerOptions = {}): FileBroker {
  const broker = new FileBroker({ dir, ...options });
  for (const q of ["q", "other"]) broker.declareQueue(q);
  return broker;
}

function msg(n: number, options = {}, queueName = "q"): Message {
  return new Message({ queueName, actorName: "t", args: [n], options });
}

/** A directory with a ready, a delayed, a dead and a running message (held by `writer`). */
async function fill(writer: FileBroker) {
  const ready = await writer.enqueue(msg(1));
  const delayed = await writer.enqueue(msg(2), { delay: 3_600_000 });
  const dying = await writer.enqueue(msg(3));
  const running = await writer.enqueue(msg(4));
  const c = writer.consume("q");
  const got = await c.receive(3, { timeout: 1000 });
  assert.deepEqual(got.map((m) => m.args[0]), [1, 3, 4]);
  c.requeue([got[0]!]); // back to ready
  const dead = got[1]!;
  dead.error = new Error("boom");
  c.nack(dead);
  await writer.stats("q"); // (writes what the consumer buffered)
  return { ready, delayed, dying, running, consumer: c, held: got[2]! };
}

for (const when of ["before", "after"] as const) {
  test(`findMessage: ready, delayed, dead and running, the lookup made ${when} the replica`, async () => {
    const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-find-`);
    const writer = open(dir);
    const reader = open(dir);
    try {
      const m = await fill(writer);
      // "after": the reader's replica is built first (stats), so its lookup scans the segments.
      if (when === "after") assert.equal((await reader.stats("q")).dead, 1);
      assert.equal((await reader.findMessage(m.ready.messageId))?.state, "ready");
      assert.equal((await reader.findMessage(m.delayed.messageId))?.state, "delayed");
      assert.equal((await reader.findMessage(m.dying.messageId))?.state, "dead");
      assert.equal((await reader.findMessage(m.running.messageId))?.state, "running");
      assert.equal(await reader.findMessage(crypto.randomUUID()), null);
      // What the writer does next is seen by the reader's lookup.
      const later = await writer.enqueue(msg(5));
      assert.deepEqual((await reader.findMessage(later.messageId))?.message.args, [5]);
      assert.equal(await writer.moveMessages([m.ready.messageId], "other"), 1);
      const moved = await reader.findMessage(m.ready.messageId);
      assert.equal(moved?.message.queueName, "other");
      assert.equal(moved?.state, "ready");
      m.consumer.ack(m.held);
      await writer.deleteMessages([later.messageId]);
      await writer.stats("q");
      assert.equal(await reader.findMessage(m.running.messageId), null);
      assert.equal(await reader.findMessage(later.messageId), null);
      // Actions by id in the reader use the same lookup.
      assert.equal(await reader.runNow([m.delayed.messageId]), 1);
      assert.equal((await reader.findMessage(m.delayed.messageId))?.state, "ready");
      assert.equal(await reader.cancel(m.delayed.messageId), "cancelled");
      assert.equal(await reader.cancel(m.delayed.messageId), "finished");
      assert.equal(await reader.cancel(crypto.randomUUID()), "unknown");
      m.consumer.close();
    } finally {
      await reader.close();
      await writer.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("findMessage: after compaction, and after most of the lookup's entries finished", {
  timeout: 60_000,
}, async () => {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-find-`);
  const broker = open(dir, { segmentSize: 64 * 1024, durability: "none" });
  try {
    const kept = [await broker.enqueue(msg(0, {}, "other"))];
    assert.equal((await broker.findMessage(kept[0]!.messageId))?.state, "ready");
    // 12,000 messages through the lookup, acked: more than its first table holds, live or not.
    const c = broker.consume("q");
    const filler = "x".repeat(100);
    for (let round = 0; round < 12; round++) {
      await Promise.all(Array.from({ length: 1000 }, (_, i) => broker.enqueue(msg(i, { filler }))));
      if (round === 5) kept.push(await broker.enqueue(msg(7, {}, "other")));
      let left = 1000;
      while (left > 0) {
        const got = await c.receive(left, { timeout: 1000 });
        for (const m of got) c.ack(m);
        left -= got.length;
      }
      assert.equal((await broker.findMessage(kept[0]!.messageId))?.state, "ready", `${round}`);
    }
    let deleted = 0;
    for (let i = 0; i < 5; i++) deleted += await broker.compact();
    assert.ok(deleted > 0, "compaction deleted segments");
    for (const m of kept) {
      assert.equal((await broker.findMessage(m.messageId))?.state, "ready", m.messageId);
    }
    const fresh = open(dir);
    for (const m of kept) {
      assert.equal((await fresh.findMessage(m.messageId))?.state, "ready", m.messageId);
    }
    await fresh.close();
    c.close();
  } finally {
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
