// The log ids of the compact index (broker/file/_index.ts): an ENQ's message keeps no id column
// (its id is derived from its segment and offset), copies (SNAP, NACK) keep theirs in a side
// column, and the index keeps one of priority and eta (the other is read from the record). Every
// message must keep its id, priority, eta and death time across segments, requeues, NACKs,
// compaction, reopening and a producer killed mid-write.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker } from "../broker/file/broker.ts";
import { Engine } from "../broker/file/_engine.ts";
import { Message, type MessageProxy } from "../mod.ts";
import { Child } from "./_file_child.ts";

const SEGMENT = 64 * 1024;
const LONG = "x".repeat(70_000); // a JSON over 65,535 bytes

interface Seen {
  id: number;
  state: string;
  priority: number;
  eta: number;
  deadAt: number;
  bytes: number;
}

/** What a fresh replica of `dir` knows of every message of queue `q`, by message id. */
async function snapshot(dir: string, q: string): Promise<Map<string, Seen>> {
  const engine = reader(dir);
  try {
    engine.refresh();
    return seen(engine, q);
  } finally {
    await engine.close();
  }
}

/** An engine over `dir` that only reads (its replica is what is checked). */
function reader(dir: string): Engine {
  return new Engine({
    dir,
    durability: "always",
    flushInterval: 10,
    leaseTimeout: 30_000,
    deadMessageTtl: 7 * 86_400_000,
    segmentSize: SEGMENT,
    access: "owner",
  });
}

function seen(engine: Engine, q: string): Map<string, Seen> {
  const out = new Map<string, Seen>();
  for (const state of ["ready", "delayed", "running", "dead"] as const) {
    engine.forEachId(q, state, (id) => {
      const st = engine.messageState(id)!;
      const json = engine.readJson(id)!;
      const m = Message.decode(json);
      assert.ok(!out.has(m.messageId), `${m.messageId} twice`);
      out.set(m.messageId, {
        id,
        state: st.state,
        priority: st.priority,
        eta: st.eta,
        deadAt: st.deadAt,
        bytes: json.length,
      });
    });
  }
  return out;
}

function message(q: string, n: number, priority: number, body: string | number = n): Message {
  return new Message({ queueName: q, actorName: "t", args: [body], options: { priority } });
}

async function receiveN(c: ReturnType<FileBroker["consume"]>, n: number): Promise<MessageProxy[]> {
  const got: MessageProxy[] = [];
  while (got.length < n) {
    const batch = await c.receive(n - got.length, { timeout: 2000 });
    assert.ok(batch.length > 0, `only ${got.length} of ${n} received`);
    got.push(...batch);
  }
  return got;
}

function tempDir(): string {
  return fs.mkdtempSync(`${tmpdir()}/dramatis-ids-`);
}

test("FileBroker ids: derived across segments, kept by requeues, NACKs, compaction and reopening", {
  timeout: 120_000,
}, async () => {
  const dir = tempDir();
  const broker = new FileBroker({ dir, segmentSize: SEGMENT, durability: "batch" });
  const follower = reader(dir); // follows the log record by record (SNAPs of messages it knows)
  try {
    broker.declareQueue("ids");
    broker.declareQueue("fill");
    const sent = new Map<string, { priority: number; delayed: boolean }>();
    const send = async (n: number, priority: number, delay = 0, body?: string) => {
      const m = message("ids", n, priority, body);
      await broker.enqueue(m, delay > 0 ? { delay } : {});
      sent.set(m.messageId, { priority, delayed: delay > 0 });
    };
    // Over several segments: ready (priorities 0-3), delayed for an hour, long ones of each.
    for (let i = 0; i < 600; i++) await send(i, i % 4, i % 5 === 0 ? 3_600_000 : 0);
    await send(1000, 2, 0, LONG);
    await send(1001, 1, 3_600_000, LONG);
    await send(1002, 3, 0, LONG); // to be dead
    await send(1003, 2, 1); // delayed 1 ms: due at once, to be dead from the delayed queue
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(fs.readdirSync(dir).filter((f) => f.endsWith(".seg")).length >= 3);
    const s0 = await snapshot(dir, "ids");
    assert.equal(s0.size, sent.size);
    for (const [mid, st] of s0) {
      assert.equal(st.priority, sent.get(mid)!.priority, `priority of ${mid}`);
      assert.equal(st.state, sent.get(mid)!.delayed ? "delayed" : "ready");
      assert.equal(st.eta > 0, sent.get(mid)!.delayed, `eta of ${mid}`);
    }
    assert.ok([...s0.values()].some((s) => s.bytes > 70_000));
    follower.refresh();

    // NACKs (two dead letters, one from the delayed queue), requeues, messages held in flight.
    const c = broker.consume("ids");
    const first = await receiveN(c, 40); // the priority-0 ones first
    const long = first.find((m) => m.args[0] === LONG);
    assert.equal(long, undefined);
    await c.requeue(first.slice(0, 20).reverse());
    const held = first.slice(20);
    const all = await receiveN(c, 600 - 120 - 20 + 2); // every other ready message
    const dying = all.find((m) => m.args[0] === LONG && m.options.priority === 3)!;
    await c.nack(dying);
    for (const m of all) if (m !== dying) await c.requeue([m]);
    const dq = broker.consume("ids.DQ");
    const due = (await receiveN(dq, 1))[0]!;
    assert.equal(due.args[0], 1003);
    await dq.nack(due);
    await new Promise((r) => setTimeout(r, 20));
    const s1 = await snapshot(dir, "ids");
    assert.equal(s1.size, sent.size);
    for (const [mid, st] of s1) {
      assert.equal(st.id, s0.get(mid)!.id, `the id of ${mid} changed`);
      assert.equal(st.priority, sent.get(mid)!.priority, `priority of ${mid}`);
      assert.equal(st.bytes, s0.get(mid)!.bytes);
    }
    assert.equal(s1.get(dying.messageId)!.state, "dead");
    assert.equal(s1.get(due.messageId)!.state, "dead");
    assert.equal(s1.get(due.messageId)!.eta, 0);
    assert.ok(s1.get(due.messageId)!.deadAt > 0);
    assert.equal(s1.get(held[0]!.messageId)!.state, "running");
    follower.refresh();
    assert.deepEqual([...seen(follower, "ids")].sort(), [...s1].sort());

    // Filler through and acked, then compaction copies the live messages forward (SNAP).
    for (let i = 0; i < 3000; i++) await broker.enqueue(message("fill", i, 0));
    const f = broker.consume("fill");
    for (const m of await receiveN(f, 3000)) await f.ack(m);
    await f.close();
    assert.ok(await broker.compact() > 0, "compaction deleted nothing");
    assert.ok(!fs.existsSync(`${dir}/0000000000000000.seg`), "the first segment is still there");
    const s2 = await snapshot(dir, "ids");
    assert.deepEqual([...s2].sort(), [...s1].sort());
    // The replica that followed the copies record by record agrees.
    follower.refresh();
    assert.deepEqual([...seen(follower, "ids")].sort(), [...s1].sort());

    // Acks by the ids handed out before the copies settle the copies.
    for (const m of held) await c.ack(m);
    await c.close();
    await dq.close();
    const s3 = await snapshot(dir, "ids");
    assert.equal(s3.size, sent.size - held.length);
    assert.ok(![...s3.values()].some((s) => s.state === "running"));
    follower.refresh();
    assert.deepEqual([...seen(follower, "ids")].sort(), [...s3].sort());

    // A reopened broker delivers the ready messages by (priority, requeued first, sent).
    const reopened = new FileBroker({ dir, segmentSize: SEGMENT });
    try {
      reopened.declareQueue("ids");
      const stats = await reopened.stats("ids");
      const ready = [...s3.values()].filter((s) => s.state === "ready").length;
      assert.deepEqual([stats.ready, stats.inFlight, stats.dead], [ready, 0, 2]);
      const got = await receiveN(reopened.consume("ids"), ready);
      const pr = got.map((m) => m.options.priority as number);
      assert.deepEqual(pr, [...pr].sort((a, b) => a - b));
    } finally {
      await reopened.close();
    }
  } finally {
    await follower.close();
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "FileBroker ids: after a producer is killed mid-write, old and new messages keep distinct ids that acks settle",
  {
    timeout: 120_000,
  },
  async () => {
    const dir = tempDir();
    try {
      const producer = new Child("./_file_producer.ts", [dir, "q", "0", "8", "always", "print"]);
      await producer.waitFor("2,000 sends", () => producer.lines.length >= 2000);
      producer.kill("SIGKILL");
      await producer.exited;
      const confirmed = producer.lines.filter((l) => /^q-\d+$/.test(l));
      const broker = new FileBroker({ dir, segmentSize: SEGMENT });
      try {
        broker.declareQueue("q");
        await broker.stats("q"); // the torn write is cut off here
        const before = await snapshot(dir, "q");
        for (let i = 0; i < 300; i++) {
          await broker.enqueue(
            new Message({ queueName: "q", actorName: "record", args: [`n-${i}`] }),
          );
        }
        const after = await snapshot(dir, "q");
        assert.equal(after.size, before.size + 300);
        for (const [mid, st] of before) assert.equal(after.get(mid)?.id, st.id, `id of ${mid}`);
        const ids = [...after.values()].map((s) => s.id);
        assert.equal(new Set(ids).size, ids.length, "two messages share an id");
        const c = broker.consume("q");
        const args = new Set<string>();
        for (const m of await receiveN(c, after.size)) {
          args.add(m.args[0] as string);
          await c.ack(m);
        }
        await c.close();
        assert.deepEqual(confirmed.filter((id) => !args.has(id)), [], "a confirmed send was lost");
        const s = await broker.stats("q");
        assert.deepEqual([s.ready, s.inFlight], [0, 0]);
        assert.equal((await snapshot(dir, "q")).size, 0);
      } finally {
        await broker.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
