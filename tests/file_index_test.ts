// The compact index of the FileBroker replica (broker/file/_index.ts) and its slot heap
// (broker/file/_heap.ts), checked against plain Maps and sorting over random operations, and a
// FileBroker whose reopened replica must agree with the live one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { GONE, MsgIndex, READY } from "../broker/file/_index.ts";
import { SlotHeap } from "../broker/file/_heap.ts";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker } from "../broker/file/broker.ts";
import { Message, type MessageProxy } from "../mod.ts";

/** A small deterministic PRNG, so that a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test("MsgIndex finds every live id and no removed one, reusing slots, over 200,000 operations", () => {
  const x = new MsgIndex();
  const live = new Map<number, number>(); // id -> slot
  const order: number[] = []; // the live ids, to pick one at random
  const rand = rng(1);
  let nextId = 2 ** 33; // above 2^32: ids are global log offsets, f64
  let maxTop = 0;
  for (let i = 0; i < 200_000; i++) {
    if (live.size === 0 || rand() < 0.55) {
      // Ids grow like log offsets, with gaps, and some collide in their low 32 bits.
      const id = rand() < 0.1 ? nextId + 2 ** 32 * 3 : (nextId += 1 + Math.floor(rand() * 300));
      if (live.has(id)) continue;
      const s = x.add(id, 7, i % 5, 3, 100 + i, 200);
      assert.equal(x.state(s), READY);
      live.set(id, s);
      order.push(id);
    } else {
      const k = Math.floor(rand() * order.length);
      const id = order[k]!;
      order[k] = order[order.length - 1]!;
      order.pop();
      x.remove(live.get(id)!);
      live.delete(id);
      assert.equal(x.find(id), -1);
    }
    maxTop = Math.max(maxTop, x.top);
  }
  assert.equal(x.size, live.size);
  for (const [id, s] of live) {
    assert.equal(x.find(id), s);
    assert.equal(x.id(s), id);
    assert.equal(x.queue[s], 7);
  }
  assert.equal(x.find(12345), -1);
  // Slots are reused: the columns hold about the most messages live at once, not all ever added.
  assert.ok(x.top < live.size * 2 + 1000, `top ${x.top} for ${live.size} live`);
  // Freed slots read as gone.
  let gone = 0;
  for (let s = 0; s < x.top; s++) if (x.state(s) === GONE) gone++;
  assert.equal(gone, x.top - live.size);
});

test("MsgIndex keeps 1,000,000 messages in under 36 bytes each, their ids derived", () => {
  const x = new MsgIndex();
  // Segment 0 starts at 1e10; an ENQ to "default" puts its JSON 36 bytes after the record start.
  x.setSegment(0, 1e10);
  x.setQueue(0, "default".length);
  for (let i = 0; i < 1_000_000; i++) x.add(1e10 + i * 211, 0, 0, 0, i * 211 + 36, 180);
  const perMessage = x.bytes() / 1_000_000;
  console.log(`file_index_test: ${perMessage.toFixed(1)} bytes per message (columns + lookup)`);
  assert.ok(perMessage < 36, `${perMessage} bytes per message`);
  assert.equal(x.find(1e10 + 999_999 * 211), 999_999);
});

test("SlotHeap pops by (priority, key) and by (eta, key), and removes any slot", () => {
  const x = new MsgIndex();
  const ready = new SlotHeap(x), delayed = new SlotHeap(x);
  const rand = rng(7);
  const inReady = new Set<number>(), inDelayed = new Set<number>();
  for (let i = 0; i < 5_000; i++) {
    const key = i % 2 === 0 ? Math.floor(rand() * 4) : Math.floor(rand() * 50);
    const s = x.add(1000 + i * 10, 0, key, 0, 0, 1);
    if (i % 7 === 0) x.setOrder(s, -(1e6 - i), i % 3); // requeued: in front of its level
    if (i % 2 === 0) (ready.push(s), inReady.add(s));
    else (delayed.push(s), inDelayed.add(s));
  }
  // Remove a third of each, from anywhere.
  for (const [heap, set] of [[ready, inReady], [delayed, inDelayed]] as const) {
    for (const s of [...set]) {
      if (rand() < 0.33) {
        heap.remove(s);
        set.delete(s);
        assert.equal(x.hi[s], -1);
      }
    }
    heap.remove(set.values().next().value!); // and once more, then again: a no-op
    heap.remove([...set][0]!);
    set.delete(set.values().next().value!);
    assert.equal(heap.size, set.size);
  }
  const key = (s: number) => [x.key[s]!, x.k1(s), x.k2(s)];
  const cmp = (a: number[], b: number[]) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;
  for (
    const [heap, set] of [[ready, inReady], [delayed, inDelayed]] as const
  ) {
    const want = [...set].sort((a, b) => cmp(key(a), key(b)));
    const got: number[] = [];
    for (let s = heap.pop(); s >= 0; s = heap.pop()) got.push(s);
    assert.deepEqual(got, want);
    assert.equal(heap.peek(), -1);
  }
});

test("FileBroker over the index: after acks, requeues and sends into freed slots, a live and a reopened replica deliver in the same order", async () => {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-index-`);
  const receiveAll = async (broker: FileBroker, n: number, ack: boolean) => {
    const c = broker.consume("ix");
    const order: number[] = [];
    while (order.length < n) {
      const batch = await c.receive(250, { timeout: 1000 });
      assert.ok(batch.length > 0, `stuck after ${order.length}`);
      for (const m of batch) {
        order.push(m.args[0] as number);
        if (ack) await c.ack(m);
      }
    }
    await c.close();
    return order;
  };
  try {
    const a = new FileBroker({ dir });
    a.declareQueue("ix");
    const send = (n: number) =>
      a.enqueue(
        new Message({ queueName: "ix", actorName: "t", args: [n], options: { priority: n % 3 } }),
      );
    for (let i = 0; i < 3_000; i++) await send(i);
    // A replica built now follows everything below record by record (slots freed and reused).
    const live = new FileBroker({ dir });
    live.declareQueue("ix");
    assert.equal((await live.stats("ix")).ready, 3_000);
    const c = a.consume("ix");
    const got: MessageProxy[] = [];
    while (got.length < 1_200) got.push(...await c.receive(100, { timeout: 1000 }));
    const acked = got.filter((_, i) => i % 2 === 0);
    const requeued = got.filter((_, i) => i % 2 === 1).reverse();
    for (const m of acked) await c.ack(m);
    await c.requeue(requeued);
    await c.close();
    assert.equal((await live.stats("ix")).ready, 3_000 - acked.length);
    for (let i = 3_000; i < 3_600; i++) await send(i); // into the slots the acks freed
    await a.close();
    // By priority; the requeued ones first (in the order given), then in the order sent.
    const requeuedAt = new Map(requeued.map((m, i) => [m.args[0] as number, i]));
    const ackedSet = new Set(acked.map((m) => m.args[0] as number));
    const rank = (n: number) => requeuedAt.get(n) ?? 1e6 + n;
    const want = Array.from({ length: 3_600 }, (_, i) => i).filter((n) => !ackedSet.has(n))
      .sort((x, y) => x % 3 - y % 3 || rank(x) - rank(y));
    // The live replica claims them all (no ack): closing hands them back, keys unchanged.
    assert.deepEqual(await receiveAll(live, want.length, false), want);
    await live.close();
    const reopened = new FileBroker({ dir });
    try {
      reopened.declareQueue("ix");
      assert.equal((await reopened.stats("ix")).ready, want.length);
      assert.deepEqual(await receiveAll(reopened, want.length, true), want);
      assert.equal((await reopened.stats("ix")).ready, 0);
    } finally {
      await reopened.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("MsgIndex grows past its reserve in place, keeps lengths over 65,535 bytes, and shrinks its table", () => {
  const x = new MsgIndex();
  x.setSegment(0, 0);
  x.setQueue(0, 1);
  x.reserve(1000);
  const n = 300_000;
  let key: Float64Array | undefined;
  const slots: number[] = [];
  for (let i = 0; i < n; i++) {
    const len = i % 1000 === 0 ? 65_535 + i : 100;
    slots.push(x.add(i * 200, 0, i % 7, 0, i * 200 + 30, len)); // ids derived: ENQ at i * 200
    // Once big, the columns grow in place: the same array, never a copy beside the old one.
    if (i === 100_000) key = x.key;
  }
  assert.equal(x.key, key, "the key column was copied after 100,000 slots");
  assert.ok(x.capacity >= n);
  for (let i = 0; i < n; i += 997) {
    assert.equal(x.find(i * 200), slots[i]);
    assert.equal(x.len(slots[i]!), i % 1000 === 0 ? 65_535 + i : 100);
  }
  // A long message moved to a short record, a short one to a long record.
  x.relocate(slots[0]!, 0, 77, 10, 1);
  x.relocate(slots[1]!, 0, 99, 1 << 20, 1);
  assert.deepEqual([x.len(slots[0]!), x.len(slots[1]!)], [10, 1 << 20]);
  assert.deepEqual([x.find(0), x.find(200)], [slots[0], slots[1]]); // ids kept (side column)
  const full = x.bytes();
  for (let i = 0; i < n - 10; i++) x.remove(slots[i]!);
  assert.ok(x.bytes() < full - 1_500_000, `the lookup table did not shrink: ${x.bytes()} B`);
  for (let i = n - 10; i < n; i++) assert.equal(x.find(i * 200), slots[i]);
  assert.equal(x.find(200), -1);
  // Freed slots are reused before the columns grow again.
  const top = x.top;
  for (let i = 0; i < 1000; i++) x.add(n * 200 + i * 200, 0, 0, 0, n * 200 + i * 200 + 30, 5);
  assert.equal(x.top, top);
});
