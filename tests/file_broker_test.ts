// FileBroker: the shared broker suite, unit tests of its semantics, and crash tests with real
// processes (SIGKILL) and Web Workers. Runs on both runtimes:
//   deno test -A tests/file_broker_test.ts        bun test tests/file_broker_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker, type FileBrokerOptions } from "../broker/file/broker.ts";
import { dirSize } from "../runtime/fs.ts";
import {
  bodyLength,
  Check,
  checkRecord,
  Kind,
  REC_HEADER,
  SEG_HEADER,
} from "../broker/file/_format.ts";
import { brokerFromUrl } from "../broker/url.ts";
import { type Consumer, Message, type MessageProxy, Worker } from "../mod.ts";
import { actor } from "../actor.ts";
import { configureLogging } from "../util/log.ts";
import { brokerSuite } from "./_broker_suite.ts";
import { Child } from "./_file_child.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(`${tmpdir()}/dramatis-file-`);
  dirs.push(d);
  return d;
}
function cleanup(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
  } catch { /* best effort */ }
}

/** Runs `fn` with a fresh directory and a broker on it; removes both afterwards. */
async function withBroker(
  fn: (broker: FileBroker, dir: string) => Promise<void>,
  options: FileBrokerOptions = {},
): Promise<void> {
  const dir = tempDir();
  const broker = new FileBroker({ dir, ...options });
  try {
    await fn(broker, dir);
  } finally {
    await broker.close();
    cleanup(dir);
  }
}

function msg(queueName: string, n: unknown, options = {}): Message {
  return new Message({ queueName, actorName: "t", args: [n as number], options });
}

/** Receives and acks until `count` messages came or `timeout` ms passed. */
async function drain(
  consumer: Consumer,
  options: { count?: number; timeout?: number; max?: number } = {},
): Promise<MessageProxy[]> {
  const { count = Infinity, timeout = 5_000, max = 100 } = options;
  const out: MessageProxy[] = [];
  const deadline = Date.now() + timeout;
  while (out.length < count && Date.now() < deadline) {
    const batch = await consumer.receive(Math.min(max, count - out.length), {
      timeout: Math.min(count === Infinity ? 100 : 500, deadline - Date.now()),
    });
    if (batch.length === 0 && count === Infinity) break;
    for (const m of batch) {
      out.push(m);
      await consumer.ack(m);
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function countIds(lines: string[], into = new Map<string, number>()): Map<string, number> {
  for (const l of lines) {
    if (/^[pq]\d*-\d+$/.test(l)) into.set(l, (into.get(l) ?? 0) + 1);
  }
  return into;
}

// ---------------------------------------------------------------------------------------------
// The shared behaviour suite

brokerSuite("FileBroker", () => new FileBroker({ dir: tempDir() }));

// ---------------------------------------------------------------------------------------------
// Semantics

test("FileBroker: priority comes from options.priority, else the actor, else 0; FIFO within", async () => {
  await withBroker(async (broker) => {
    const low = actor(function low(_n: number) {}, { broker, queueName: "p", priority: 5 });
    const high = actor(function high(_n: number) {}, { broker, queueName: "p" });
    await low.send(1);
    await high.send(2);
    await low.sendWithOptions({ args: [3], priority: -1 });
    await high.send(4);
    await low.send(5);
    const got = await drain(broker.consume("p"));
    assert.deepEqual(got.map((m) => m.args[0]), [3, 2, 4, 1, 5]);
  });
});

test("FileBroker: requeue puts messages at the front of their priority level, in order", async () => {
  await withBroker(async (broker) => {
    broker.declareQueue("rq");
    await broker.enqueue(msg("rq", "a0", { priority: 0 }));
    await broker.enqueue(msg("rq", "a1", { priority: 0 }));
    await broker.enqueue(msg("rq", "a2", { priority: 0 }));
    await broker.enqueue(msg("rq", "b0", { priority: 1 }));
    const c = broker.consume("rq");
    const first = await c.receive(10, { timeout: 100 });
    assert.deepEqual(first.map((m) => m.args[0]), ["a0", "a1", "a2", "b0"]);
    await c.ack(first[0]);
    await c.requeue([first[3]]);
    await c.requeue([first[2], first[1]]);
    const again = await drain(c);
    assert.deepEqual(again.map((m) => m.args[0]), ["a2", "a1", "b0"]);
    assert.equal(again[1].options.retries, undefined, "a requeue is not a retry");
    await c.close();
  });
});

test("FileBroker: a waiting receive is woken at a delayed message's eta, not at its timeout", async () => {
  await withBroker(async (broker) => {
    broker.declareQueue("later");
    const c = broker.consume("later.DQ");
    const pending = c.receive(10, { timeout: 10_000 });
    await sleep(20);
    const sent = await broker.enqueue(msg("later", 1), { delay: 150 });
    const got = await pending;
    const late = Date.now() - (sent.options.eta as number);
    assert.equal(got.length, 1);
    assert.equal(got[0].queueName, "later.DQ");
    assert.ok(late >= 0, `delivered ${-late} ms before its eta`);
    // The receive waits up to 10 s: a delivery well before that was woken by the eta's timer
    // (the latency itself is measured in bench/file_broker.ts, not asserted here).
    assert.ok(late < 5_000, `delivered ${late} ms after its eta: the eta did not wake the receive`);
    await c.ack(got[0]);
    await c.close();
  });
});

test("FileBroker: a Worker moves delayed messages to their queue and runs them", async () => {
  await withBroker(async (broker) => {
    const seen: number[] = [];
    const a = actor((n: number) => void seen.push(n), { actorName: "later", broker });
    await a.sendWithOptions({ args: [1], delay: 100 });
    await a.send(2);
    const worker = new Worker(broker, { workerTimeout: 50 });
    await worker.start();
    await broker.join("default", { timeout: 3_000 });
    await worker.stop();
    assert.deepEqual(seen, [2, 1]);
  });
});

test("FileBroker: dead letters are listed, requeued, purged, and dropped after deadMessageTtl", async () => {
  await withBroker(async (broker) => {
    broker.declareQueue("dl");
    for (let i = 0; i < 3; i++) await broker.enqueue(msg("dl", i));
    const c = broker.consume("dl");
    const got = await c.receive(3, { timeout: 200 });
    got[0].options.traceback = "Error: boom";
    for (const m of got) await c.nack(m);
    await c.close();
    const dead = await broker.deadLetters("dl");
    assert.deepEqual(dead.map((m) => m.args[0]), [0, 1, 2]);
    assert.equal(dead[0].options.traceback, "Error: boom", "the message as it was nacked");
    assert.equal((await broker.deadLetters("dl", { limit: 2 })).length, 2);
    assert.equal(await broker.requeueDeadLetters("dl", [dead[1].messageId]), 1);
    assert.equal(await broker.requeueDeadLetters("dl", [dead[1].messageId]), 0);
    const s = await broker.stats("dl");
    assert.deepEqual([s.ready, s.dead], [1, 2]);
    assert.equal(await broker.purgeDeadLetters("dl"), 2);
    assert.equal((await broker.stats("dl")).dead, 0);
  });
  await withBroker(async (broker) => {
    broker.declareQueue("ttl");
    await broker.enqueue(msg("ttl", 1));
    const c = broker.consume("ttl");
    const [m] = await c.receive(1, { timeout: 200 });
    await c.nack(m);
    await c.close();
    assert.equal((await broker.stats("ttl")).dead, 1);
    await sleep(250);
    assert.equal((await broker.stats("ttl")).dead, 0);
    assert.deepEqual(await broker.deadLetters("ttl"), []);
  }, { deadMessageTtl: 200 });
});

test("FileBroker: join failFast rejects on a new dead letter; by default it does not", async () => {
  await withBroker(async (broker) => {
    const bad = actor(async function bad() {
      await sleep(100);
      throw new Error("kaboom");
    }, { broker, queueName: "ff", maxRetries: 0 });
    const worker = new Worker(broker, { queues: ["ff"], workerTimeout: 50 });
    await worker.start();
    await bad.send();
    await broker.join("ff", { timeout: 3_000 });
    await bad.send();
    try {
      await assert.rejects(broker.join("ff", { timeout: 3_000, failFast: true }), (e: Error) => {
        assert.match(e.message, /bad message/);
        assert.match(e.message, /kaboom/);
        return true;
      });
    } finally {
      await worker.stop();
    }
  });
});

test("FileBroker: flush and flushAll; stats of every counter", async () => {
  await withBroker(async (broker) => {
    broker.declareQueue("f1");
    broker.declareQueue("f2");
    await broker.enqueue(msg("f1", 1));
    await broker.enqueue(msg("f1", 2), { delay: 60_000 });
    await broker.enqueue(msg("f2", 3));
    await broker.enqueue(msg("f2", 4));
    const c = broker.consume("f2");
    const [m] = await c.receive(1, { timeout: 200 });
    await c.nack(m);
    assert.deepEqual(await broker.stats("f1"), {
      queueName: "f1",
      ready: 1,
      delayed: 1,
      inFlight: 0,
      dead: 0,
    });
    assert.deepEqual(await broker.stats("f2.DQ"), {
      queueName: "f2",
      ready: 1,
      delayed: 0,
      inFlight: 0,
      dead: 1,
    });
    await broker.flush("f1");
    assert.equal((await broker.stats("f1")).ready + (await broker.stats("f1")).delayed, 0);
    assert.equal((await broker.stats("f2")).ready, 1);
    await broker.flushAll();
    const s = await broker.stats("f2");
    assert.deepEqual([s.ready, s.dead], [0, 0]);
    await c.close();
  });
});

test("FileBroker: a live consumer renews its lease; nobody steals a long-running message", async () => {
  const dir = tempDir();
  const a = new FileBroker({ dir, leaseTimeout: 300 });
  const b = new FileBroker({ dir, leaseTimeout: 300 });
  try {
    a.declareQueue("lease");
    b.declareQueue("lease");
    await a.enqueue(msg("lease", 1));
    const ca = a.consume("lease"), cb = b.consume("lease");
    const [m] = await ca.receive(1, { timeout: 200 });
    assert.ok(m);
    assert.deepEqual(await cb.receive(1, { timeout: 1_000 }), [], "stolen from a live consumer");
    assert.equal((await b.stats("lease")).inFlight, 1);
    await ca.ack(m);
    await ca.close();
    assert.deepEqual(await cb.receive(1, { timeout: 100 }), []);
    assert.equal((await b.stats("lease")).inFlight, 0);
    await cb.close();
  } finally {
    await a.close();
    await b.close();
    cleanup(dir);
  }
});

test("FileBroker: several instances on one directory deliver each message once", {
  timeout: 120_000,
}, async () => {
  const dir = tempDir();
  const brokers = [0, 1, 2].map(() => new FileBroker({ dir, durability: "batch" }));
  try {
    for (const b of brokers) b.declareQueue("many");
    const n = 3000;
    const producing = (async () => {
      for (let i = 0; i < n; i++) await brokers[0].enqueue(msg("many", i));
    })();
    const seen = new Map<number, number>();
    await Promise.all([1, 2].map(async (k) => {
      const c = brokers[k].consume("many");
      const deadline = Date.now() + 15_000;
      while (seen.size < n && Date.now() < deadline) {
        for (const m of await c.receive(37, { timeout: 50 })) {
          seen.set(m.args[0] as number, (seen.get(m.args[0] as number) ?? 0) + 1);
          await c.ack(m);
        }
      }
      await c.close();
    }));
    await producing;
    assert.equal(seen.size, n);
    assert.ok([...seen.values()].every((v) => v === 1), "a message was delivered twice");
  } finally {
    for (const b of brokers) await b.close();
    cleanup(dir);
  }
});

test("FileBroker: batch and none durability deliver everything, from a sender that never yields", {
  timeout: 120_000,
}, async () => {
  for (const durability of ["batch", "none"] as const) {
    await withBroker(async (broker) => {
      broker.declareQueue("d");
      for (let i = 0; i < 20_000; i++) await broker.enqueue(msg("d", i));
      const got = await drain(broker.consume("d"), { count: 20_000, max: 1000 });
      assert.equal(got.length, 20_000);
      assert.deepEqual(got.slice(0, 3).map((m) => m.args[0]), [0, 1, 2]);
    }, { durability });
  }
});

test("FileBroker: reopening the directory keeps ready, delayed and dead messages", async () => {
  const dir = tempDir();
  try {
    const a = new FileBroker({ dir });
    a.declareQueue("keep");
    for (let i = 0; i < 5; i++) await a.enqueue(msg("keep", i));
    await a.enqueue(msg("keep", 9), { delay: 60_000 });
    const c = a.consume("keep");
    const [m] = await c.receive(1, { timeout: 100 });
    await c.nack(m);
    await a.close();
    const b = new FileBroker({ dir });
    b.declareQueue("keep");
    const s = await b.stats("keep");
    assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [4, 1, 0, 1]);
    assert.deepEqual((await drain(b.consume("keep"))).map((x) => x.args[0]), [1, 2, 3, 4]);
    await b.close();
  } finally {
    cleanup(dir);
  }
});

test("FileBroker: URLs, options, and enqueue after close", async () => {
  const dir = tempDir();
  const b1 = brokerFromUrl(`file://${dir}/a`) as FileBroker;
  assert.ok(b1 instanceof FileBroker);
  assert.equal(b1.dir, `${dir}/a`);
  const b2 = brokerFromUrl("file://./rel/dir?durability=batch&leaseTimeout=500") as FileBroker;
  assert.deepEqual([b2.dir, b2.durability, b2.leaseTimeout], ["./rel/dir", "batch", 500]);
  assert.equal((brokerFromUrl("file:rel") as FileBroker).dir, "rel");
  assert.throws(() => brokerFromUrl("file://./x?colour=red"), /Unknown FileBroker URL parameter/);
  assert.throws(() => new FileBroker({ durability: "sometimes" as "always" }), /durability/);
  assert.throws(() => new FileBroker({ leaseTimeout: -1 }), /leaseTimeout/);
  b1.declareQueue("q");
  await b1.enqueue(msg("q", 1));
  await b1.close();
  await assert.rejects(b1.enqueue(msg("q", 2)), TypeError);
  await b2.close();
  cleanup(dir);
});

test("FileBroker: an empty dir is refused (it would mean /)", () => {
  // Before the check, { dir: "" } became "/" and the first send wrote broker.lock into /.
  for (const dir of ["", null, 42]) {
    assert.throws(
      () => new FileBroker({ dir: dir as string }),
      (e: Error) => e instanceof TypeError && /dir must be a non-empty path/.test(e.message),
    );
  }
  assert.equal(new FileBroker({ dir: "/tmp/x///" }).dir, "/tmp/x");
  assert.equal(new FileBroker({}).dir, "./.dramatis");
});

test("FileBroker: close() releases files, watchers and timers so the process exits", async () => {
  const dir = tempDir();
  const child = new Child("./_file_exit.ts", [dir]);
  const timer = setTimeout(() => child.kill(), 15_000);
  const { code, signal } = await child.exited;
  clearTimeout(timer);
  assert.equal(signal, null, `the process did not exit by itself: ${child.stderr}`);
  assert.equal(code, 0, child.stderr);
  assert.match(child.stdout, /closed/);
  cleanup(dir);
});

// ---------------------------------------------------------------------------------------------
// Crash tests: real processes, SIGKILL, Web Workers

test(
  "FileBroker crash test 1: 4 producer processes x 10,000 with 2 consumer processes (one with 2 Web Workers): each message processed once",
  { timeout: 120_000 },
  async () => {
    const dir = tempDir(), control = tempDir();
    const stop = `${control}/stop`;
    const consumers = [
      new Child("./_file_consumer.ts", [dir, "work", stop, "30000", "16"]),
      new Child("./_file_consumer.ts", [dir, "work", stop, "30000", "16", "2"]),
    ];
    try {
      for (const c of consumers) {
        await c.waitFor("a consumer to start", () => c.lines.includes("ready"));
      }
      const producers = [0, 1, 2, 3].map((p) =>
        new Child("./_file_producer.ts", [dir, `p${p}`, "10000", "16", "always"])
      );
      const total = 40_000;
      const seen = () => countIds(consumers.flatMap((c) => c.lines)).size;
      await consumers[0].waitFor(`${total} messages processed`, () => seen() >= total, 60_000);
      for (const p of producers) {
        const { code } = await p.exited;
        assert.equal(code, 0, p.stderr);
      }
      fs.writeFileSync(stop, "");
      for (const c of consumers) {
        await c.waitFor("a consumer to stop", () => c.lines.includes("stopped"));
      }
      const counts = countIds(consumers.flatMap((c) => c.lines));
      assert.equal(counts.size, total);
      const twice = [...counts].filter(([, n]) => n > 1);
      if (twice.length) {
        const per = consumers.map((c) => countIds(c.lines));
        console.error(twice.slice(0, 5).map(([id]) => `${id}: ${per.map((p) => p.get(id) ?? 0)}`));
        console.error(consumers.map((c) => c.stderr.slice(-2000)).join("\n"));
      }
      if (twice.length) fs.cpSync(dir, "/tmp/fb/faildir", { recursive: true });
      assert.deepEqual(twice.length, 0, "messages processed more than once");
      assert.ok(countIds(consumers[1].lines).size > 0, "the Web Worker consumer processed nothing");
      const broker = new FileBroker({ dir });
      const s = await broker.stats("q");
      assert.deepEqual([s.ready, s.inFlight, s.dead], [0, 0, 0]);
      await broker.close();
    } finally {
      fs.writeFileSync(stop, "");
      for (const c of consumers) c.kill();
      cleanup(dir);
      cleanup(control);
    }
  },
);

test(
  "FileBroker: compaction while 2 producers and 2 consumers run (64 KiB segments): each message processed once",
  { timeout: 120_000 },
  async () => {
    const dir = tempDir(), control = tempDir();
    const stop = `${control}/stop`;
    const seg = String(64 * 1024);
    const consumers = [0, 1].map(() =>
      new Child("./_file_consumer.ts", [dir, "yield", stop, "30000", "8", "0", seg, "20"])
    );
    try {
      for (const c of consumers) {
        await c.waitFor("a consumer to start", () => c.lines.includes("ready"));
      }
      const producers = [0, 1].map((p) =>
        new Child("./_file_producer.ts", [dir, `p${p}`, "5000", "8", "batch", "no", seg])
      );
      const total = 10_000;
      const seen = () => countIds(consumers.flatMap((c) => c.lines)).size;
      await consumers[0].waitFor(`${total} messages processed`, () => seen() >= total, 60_000);
      for (const p of producers) assert.equal((await p.exited).code, 0, p.stderr);
      fs.writeFileSync(stop, "");
      for (const c of consumers) {
        await c.waitFor("a consumer to stop", () => c.lines.includes("stopped"));
      }
      const counts = countIds(consumers.flatMap((c) => c.lines));
      assert.equal(counts.size, total);
      assert.deepEqual([...counts].filter(([, n]) => n > 1), [], "processed more than once");
      assert.ok(!consumers.some((c) => c.stdout.includes("compact failed")), consumers[0].stdout);
      const segments = fs.readdirSync(dir).filter((n) => n.endsWith(".seg")).length;
      assert.ok(segments <= 4, `${segments} segments left`);
    } finally {
      fs.writeFileSync(stop, "");
      for (const c of consumers) c.kill();
      cleanup(dir);
      cleanup(control);
    }
  },
);

test(
  "FileBroker crash test 2: a producer killed mid-burst loses no message whose send() resolved",
  { timeout: 120_000 },
  async () => {
    const dir = tempDir();
    try {
      const producer = new Child("./_file_producer.ts", [dir, "q", "0", "8", "always", "print"]);
      await producer.waitFor("3,000 sends", () => producer.lines.length >= 3000);
      producer.kill("SIGKILL");
      await producer.exited;
      const confirmed = producer.lines.filter((l) => /^q-\d+$/.test(l));
      const broker = new FileBroker({ dir });
      broker.declareQueue("q");
      const got = await drain(broker.consume("q"), { max: 1000 });
      const delivered = new Set(got.map((m) => m.args[0] as string));
      const lost = confirmed.filter((id) => !delivered.has(id));
      assert.deepEqual(lost, [], `${lost.length} of ${confirmed.length} confirmed messages lost`);
      assert.equal(delivered.size, got.length, "a message was delivered twice");
      await broker.close();
    } finally {
      cleanup(dir);
    }
  },
);

test(
  "FileBroker crash test 3: a consumer alive but stuck (its event loop blocked) loses its messages after its lease",
  { timeout: 120_000 },
  async () => {
    // A dead consumer's messages come back at once (file_broker_redelivery_test.ts); one whose
    // process lives on but never yields keeps its liveness lock, so the lease decides.
    const dir = tempDir(), control = tempDir();
    const logged: string[] = [];
    configureLogging({ write: (line) => logged.push(line) });
    const child = new Child("./_file_consumer.ts", [dir, "spin", `${control}/stop`, "700", "4"]);
    try {
      const broker = new FileBroker({ dir });
      const done: string[] = [];
      const record = actor((id: string) => void done.push(id), {
        actorName: "record",
        queueName: "q",
        broker,
      });
      for (let i = 0; i < 30; i++) await record.send(`q-${i}`);
      const started = () => child.lines.filter((l) => l.startsWith("start "));
      await child.waitFor("a message started", () => started().length >= 1);
      const stuckAt = Date.now();
      const held = (await broker.stats("q")).inFlight;
      assert.ok(held >= 1, `the stuck consumer held ${held} messages`);
      const worker = new Worker(broker, { queues: ["q"], workerTimeout: 50 });
      await worker.start();
      await broker.join("q", { timeout: 10_000 });
      await worker.stop();
      assert.ok(Date.now() - stuckAt >= 400, "taken from a live consumer before its lease ran out");
      assert.deepEqual(done.sort(), Array.from({ length: 30 }, (_, i) => `q-${i}`).sort());
      for (const l of started()) assert.ok(done.includes(l.slice(6)), `${l} was not redelivered`);
      assert.match(logged.join("\n"), /stopped renewing its lease/);
      assert.doesNotMatch(logged.join("\n"), /is gone/);
      await broker.close();
    } finally {
      configureLogging({ write: (line) => console.error(line) });
      child.kill("SIGKILL");
      await child.exited;
      cleanup(dir);
      cleanup(control);
    }
  },
);

test(
  "FileBroker crash test 3b: a terminated Web Worker's messages are redelivered (Deno: at once, Bun: after its lease)",
  { timeout: 120_000 },
  async () => {
    const dir = tempDir();
    try {
      const broker = new FileBroker({ dir, leaseTimeout: 500 });
      const done: string[] = [];
      const record = actor((id: string) => void done.push(id), {
        actorName: "record",
        queueName: "q",
        broker,
      });
      for (let i = 0; i < 10; i++) await record.send(`q-${i}`);
      const w = new globalThis.Worker(new URL("./_file_web_consumer.ts", import.meta.url).href, {
        type: "module",
      });
      let lines = "";
      w.onmessage = (e: MessageEvent) => lines += (e.data as { lines?: string }).lines ?? "";
      w.postMessage({ start: { dir, mode: "hang", leaseTimeout: 500, concurrency: 2 } });
      const deadline = Date.now() + 20_000;
      while ((lines.match(/start /g) ?? []).length < 2 && Date.now() < deadline) await sleep(10);
      w.terminate();
      assert.equal((lines.match(/start /g) ?? []).length, 2, "the Web Worker started nothing");
      const worker = new Worker(broker, { queues: ["q"], workerTimeout: 50 });
      await worker.start();
      await broker.join("q", { timeout: 10_000 });
      await worker.stop();
      assert.equal(new Set(done).size, 10);
      await broker.close();
    } finally {
      cleanup(dir);
    }
  },
);

test(
  "FileBroker crash test 4: a torn last record and a flipped byte in a middle record lose only those two",
  { timeout: 120_000 },
  async () => {
    const dir = tempDir();
    const logged: string[] = [];
    configureLogging({
      write: (line) => {
        logged.push(line);
        console.error(line);
      },
    });
    try {
      const a = new FileBroker({ dir });
      a.declareQueue("c");
      for (let i = 0; i < 100; i++) await a.enqueue(msg("c", i));
      await a.close();
      const seg = fs.readdirSync(dir).find((n) => n.endsWith(".seg"))!;
      const path = `${dir}/${seg}`;
      const bytes = new Uint8Array(fs.readFileSync(path));
      const enq: number[] = [];
      for (let p = SEG_HEADER; p < bytes.length; p += REC_HEADER + bodyLength(bytes, p)) {
        assert.equal(checkRecord(bytes, p, bytes.length), Check.OK);
        if (bytes[p + 2] === Kind.ENQ) enq.push(p);
      }
      assert.equal(enq.length, 100);
      const flipAt = enq[50] + REC_HEADER + 40;
      bytes[flipAt] ^= 0x10;
      const tornAt = enq[99];
      const torn = bytes.subarray(0, tornAt + Math.floor(bodyLength(bytes, tornAt) / 2));
      fs.writeFileSync(path, torn);

      const b = new FileBroker({ dir });
      b.declareQueue("c");
      const got = await drain(b.consume("c"), { max: 1000 });
      const want = Array.from({ length: 99 }, (_, i) => i).filter((i) => i !== 50);
      assert.deepEqual(got.map((m) => m.args[0]), want);
      assert.equal(fs.statSync(path).size >= tornAt, true);
      await b.close();
      const text = logged.join("\n");
      assert.match(
        text,
        new RegExp(`Truncated a torn write at the end of \\S*${seg} at offset ${tornAt}`),
      );
      assert.match(text, new RegExp(`Corrupt record in \\S*${seg} at offset ${enq[50]}`));
    } finally {
      configureLogging({ write: (line) => console.error(line) });
      cleanup(dir);
    }
  },
);

test(
  "FileBroker crash test 4b: a torn write that other writers appended after is skipped; the rest is kept",
  { timeout: 120_000 },
  async () => {
    const dir = tempDir();
    const logged: string[] = [];
    configureLogging({ write: (line) => logged.push(line) });
    try {
      const producer = new FileBroker({ dir });
      producer.declareQueue("t");
      for (let i = 0; i < 10; i++) await producer.enqueue(msg("t", i));
      // A process dies halfway through a write: half a record is left at the end of the file...
      const seg = `${dir}/${fs.readdirSync(dir).find((n) => n.endsWith(".seg"))}`;
      const size = fs.statSync(seg).size;
      const copy = new Uint8Array(fs.readFileSync(seg)).subarray(SEG_HEADER, SEG_HEADER + 150);
      fs.appendFileSync(seg, copy);
      // ...and a producer that is already running appends after it.
      for (let i = 10; i < 20; i++) await producer.enqueue(msg("t", i));
      const consumer = new FileBroker({ dir });
      consumer.declareQueue("t");
      const got = await drain(consumer.consume("t"));
      assert.deepEqual(got.map((m) => m.args[0]), Array.from({ length: 20 }, (_, i) => i));
      assert.match(
        logged.join("\n"),
        new RegExp(`Corrupt record in \\S+ at offset ${size}: skipped 150`),
      );
      await producer.close();
      await consumer.close();
    } finally {
      configureLogging({ write: (line) => console.error(line) });
      cleanup(dir);
    }
  },
);

test(
  "FileBroker crash test 5: a restart of every process keeps pending, delayed, in-flight and dead messages",
  { timeout: 120_000 },
  async () => {
    const dir = tempDir();
    try {
      const child = new Child("./_file_restart.ts", [dir]);
      await child.waitFor("the queues to be filled", () => child.lines.includes("filled"));
      child.kill("SIGKILL");
      await child.exited;
      const broker = new FileBroker({ dir });
      broker.declareQueue("r");
      const s = await broker.stats("r");
      assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [10, 5, 2, 3]);
      const dead = await broker.deadLetters("r");
      assert.deepEqual(dead.map((m) => m.args[0]), ["x0", "x1", "x2"]);
      const c = broker.consume("r");
      const got = await drain(c, { count: 12, timeout: 5_000 });
      assert.deepEqual(
        got.map((m) => m.args[0] as string).sort(),
        ["f0", "f1", ...Array.from({ length: 10 }, (_, i) => `r${i}`)].sort(),
      );
      const dq = broker.consume("r.DQ");
      assert.deepEqual(await dq.receive(10, { timeout: 50 }), [], "delayed messages came early");
      await c.close();
      await dq.close();
      await broker.close();
    } finally {
      cleanup(dir);
    }
  },
);

test("FileBroker crash test 6: compaction: 200,000 messages through and acked leave under 1 MB", {
  timeout: 120_000,
}, async () => {
  await withBroker(async (broker, dir) => {
    broker.declareQueue("big");
    const c = broker.consume("big");
    let maxSize = 0;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10_000; i++) await broker.enqueue(msg("big", round * 10_000 + i));
      const got = await drain(c, { count: 10_000, max: 1000, timeout: 20_000 });
      assert.equal(got.length, 10_000);
      maxSize = Math.max(maxSize, dirSize(dir));
      if (round % 5 === 4) await broker.compact();
    }
    await broker.compact();
    const size = dirSize(dir);
    assert.ok(size < 1024 * 1024, `the directory holds ${size} bytes after compaction`);
    assert.ok(maxSize < 32 * 1024 * 1024, `the directory grew to ${maxSize} bytes`);
    const s = await broker.stats("big");
    assert.deepEqual([s.ready, s.inFlight], [0, 0]);
    await c.close();
  }, { durability: "batch" });
});

test(
  "FileBroker: compaction keeps live messages (ready, delayed, in flight, dead) and their order",
  { timeout: 120_000 },
  async () => {
    await withBroker(async (broker, dir) => {
      broker.declareQueue("k");
      await broker.enqueue(msg("k", "dead"));
      await broker.enqueue(msg("k", "held"));
      await broker.enqueue(msg("k", "later"), { delay: 60_000 });
      const c = broker.consume("k");
      const [d, h] = await c.receive(2, { timeout: 100 });
      await c.nack(d);
      for (let i = 0; i < 30_000; i++) await broker.enqueue(msg("k", i));
      const filler = await drain(c, { count: 29_990, max: 1000 });
      assert.equal(filler.length, 29_990);
      const before = fs.readdirSync(dir).filter((n) => n.endsWith(".seg")).length;
      assert.ok(before >= 2, `expected several segments, got ${before}`);
      assert.ok(await broker.compact() > 0, "nothing was deleted");
      const other = new FileBroker({ dir });
      other.declareQueue("k");
      const s = await other.stats("k");
      assert.deepEqual([s.ready, s.delayed, s.inFlight, s.dead], [10, 1, 1, 1]);
      assert.deepEqual((await other.deadLetters("k")).map((m) => m.args[0]), ["dead"]);
      await c.ack(h);
      const rest = await drain(other.consume("k"));
      assert.deepEqual(
        rest.map((m) => m.args[0]),
        Array.from({ length: 10 }, (_, i) => 29_990 + i),
      );
      await other.close();
      await c.close();
    }, { segmentSize: 1024 * 1024, durability: "batch" });
  },
);

test(
  "FileBroker: a reader that fell behind compaction rebuilds its view",
  { timeout: 120_000 },
  async () => {
    await withBroker(async (busy, dir) => {
      const idle = new FileBroker({ dir, segmentSize: 64 * 1024 });
      try {
        busy.declareQueue("g");
        idle.declareQueue("g");
        await busy.enqueue(msg("g", "first"));
        await sleep(1); // batch mode: written at the end of the tick
        assert.equal((await idle.stats("g")).ready, 1);
        const c = busy.consume("g");
        for (let round = 0; round < 5; round++) {
          for (let i = 0; i < 2000; i++) await busy.enqueue(msg("g", i));
          assert.equal(
            (await drain(c, { count: round === 0 ? 2001 : 2000, max: 500 })).length,
            round === 0 ? 2001 : 2000,
          );
          await busy.compact();
        }
        for (let i = 0; i < 10; i++) await busy.enqueue(msg("g", `last${i}`));
        await sleep(1);
        const s = await idle.stats("g");
        assert.deepEqual([s.ready, s.inFlight, s.dead], [10, 0, 0]);
        const got = await drain(idle.consume("g"));
        assert.deepEqual(
          got.map((m) => m.args[0]),
          Array.from({ length: 10 }, (_, i) => `last${i}`),
        );
        await c.close();
      } finally {
        await idle.close();
      }
    }, { segmentSize: 64 * 1024, durability: "batch" });
  },
);

test("FileBroker: test temp dirs are cleaned up", () => {
  for (const d of dirs) cleanup(d);
  assert.deepEqual(dirs.filter((d) => fs.existsSync(d)), []);
});
