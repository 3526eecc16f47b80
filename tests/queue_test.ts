// The hot-path data structures of util/queue.ts (the deque, the heap, plain and indexed) and sleep.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Deque, Heap, type HeapItem } from "../util/queue.ts";
import { sleep } from "../util/async.ts";

/** A small deterministic PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  return () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

test("Heap pops in order, ties by their sequence key", () => {
  const rand = prng(1);
  const heap = new Heap<{ k: number; seq: number }>((a, b) =>
    a.k < b.k || (a.k === b.k && a.seq < b.seq)
  );
  const all: { k: number; seq: number }[] = [];
  for (let i = 0; i < 2_000; i++) {
    const x = { k: Math.floor(rand() * 50), seq: i };
    all.push(x);
    heap.push(x);
    if (rand() < 0.3) all.splice(all.indexOf(heap.peek()!), 1) && heap.pop();
  }
  all.sort((a, b) => a.k - b.k || a.seq - b.seq);
  assert.equal(heap.length, all.length);
  const out: { k: number; seq: number }[] = [];
  while (heap.length) out.push(heap.pop()!);
  assert.deepEqual(out, all);
  assert.equal(heap.pop(), undefined);
  assert.throws(() => heap.remove(all[0]), /indexed: true/);
});

test("an indexed Heap removes any item and keeps each item's index", () => {
  interface Item extends HeapItem {
    k: number;
  }
  const rand = prng(7);
  const heap = new Heap<Item>((a, b) => a.k < b.k, { indexed: true });
  const inside = new Set<Item>();
  for (let i = 0; i < 5_000; i++) {
    const r = rand();
    if (r < 0.5 || inside.size === 0) {
      const x = { k: Math.floor(rand() * 1000), hi: -1 };
      heap.push(x);
      inside.add(x);
    } else if (r < 0.8) {
      const x = [...inside][Math.floor(rand() * inside.size)];
      heap.remove(x);
      assert.equal(x.hi, -1);
      inside.delete(x);
      heap.remove(x); // removing it again does nothing
    } else {
      const x = heap.pop()!;
      assert.equal(Math.min(...[...inside].map((y) => y.k)), x.k);
      assert.equal(x.hi, -1);
      inside.delete(x);
    }
    assert.equal(heap.length, inside.size);
  }
  const items = heap.toArray();
  items.forEach((x, i) => assert.equal(x.hi, i));
  for (let i = 1; i < items.length; i++) {
    assert.ok(items[(i - 1) >> 1].k <= items[i].k, "heap order");
  }
  const cleared = heap.clear();
  assert.equal(cleared.length, inside.size);
  assert.ok(cleared.every((x) => x.hi === -1));
  assert.equal(heap.length, 0);
});

test("Deque is FIFO, takes items back at the front, and compacts", () => {
  const d = new Deque<number>();
  for (let i = 0; i < 3_000; i++) d.push(i);
  for (let i = 0; i < 2_000; i++) assert.equal(d.shift(), i);
  d.unshift(1_999);
  assert.equal(d.peek(), 1_999);
  assert.equal(d.length, 1_001);
  assert.deepEqual([...d].slice(0, 3), [1_999, 2_000, 2_001]);
  assert.equal(d.clear().length, 1_001);
  assert.equal(d.shift(), undefined);
});

test("sleep resolves after its time, or at once on an aborted signal", async () => {
  const t0 = Date.now();
  await sleep(30);
  assert.ok(Date.now() - t0 >= 25);
  const aborted = AbortSignal.abort();
  const t1 = Date.now();
  await sleep(60_000, aborted); // would hang the test if it waited
  const c = new AbortController();
  const pending = sleep(60_000, c.signal);
  c.abort();
  await pending;
  assert.ok(Date.now() - t1 < 30_000);
});
