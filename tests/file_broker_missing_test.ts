// Segment files deleted by hand (issue 9, item 10): whatever is left is read, what is missing is
// reported loudly, once, and sends keep being stored where readers can find them.
//   deno test -A tests/file_broker_missing_test.ts      bun test tests/file_broker_missing_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker } from "../broker/file/broker.ts";
import { bodyLength, Kind, REC_HEADER, SEG_HEADER } from "../broker/file/_format.ts";
import { Message } from "../message.ts";
import { configureLogging } from "../util/log.ts";

const SEGMENT = 64 * 1024;

function msg(n: number | string): Message {
  return new Message({ queueName: "q", actorName: "t", args: [n] });
}

/** Runs `fn` with a fresh directory and the log lines written meanwhile. */
async function withDir(fn: (dir: string, lines: string[]) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-missing-`);
  const lines: string[] = [];
  configureLogging({ write: (line) => lines.push(line) });
  try {
    await fn(dir, lines);
  } finally {
    configureLogging({ write: (line) => console.error(line) });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Sends `n` messages (0..n-1) in batches, so that they spread over segments of 64 KiB. */
async function fill(dir: string, n: number): Promise<string[]> {
  const broker = new FileBroker({ dir, segmentSize: SEGMENT });
  broker.declareQueue("q");
  for (let i = 0; i < n; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, (_, k) => broker.enqueue(msg(i + k))),
    );
  }
  await broker.close();
  const segs = fs.readdirSync(dir).filter((f) => f.endsWith(".seg")).sort();
  assert.ok(segs.length >= 4, `only ${segs.length} segments`);
  return segs;
}

/** The args of the messages whose ENQ records are in segment file `path`. */
function sentIn(path: string): number[] {
  const b = new Uint8Array(fs.readFileSync(path));
  const out: number[] = [];
  for (let p = SEG_HEADER; p + REC_HEADER <= b.length; p += REC_HEADER + bodyLength(b, p)) {
    if (b[p + 2] !== Kind.ENQ) continue;
    const body = b.subarray(p + REC_HEADER, p + REC_HEADER + bodyLength(b, p));
    const json = new TextDecoder().decode(body.subarray(1 + body[0] + 16));
    out.push(JSON.parse(json).args[0]);
  }
  return out;
}

/** Everything a fresh broker on `dir` delivers, after `stats` (which must not throw). */
async function readAll(dir: string): Promise<{ ready: number; got: unknown[] }> {
  const broker = new FileBroker({ dir, segmentSize: SEGMENT });
  try {
    broker.declareQueue("q");
    const { ready } = await broker.stats("q");
    const c = broker.consume("q");
    const got: unknown[] = [];
    for (;;) {
      const batch = await c.receive(500, { timeout: 100 });
      if (batch.length === 0) break;
      for (const m of batch) {
        got.push(m.args[0]);
        c.ack(m);
      }
    }
    await c.close();
    return { ready, got };
  } finally {
    await broker.close();
  }
}

const errors = (lines: string[]) => lines.filter((l) => l.includes("[ERROR]"));

for (const which of ["middle", "oldest", "newest"] as const) {
  test(`FileBroker: the ${which} segment deleted by hand: the rest is read, the loss reported once`, async () => {
    await withDir(async (dir, lines) => {
      const segs = await fill(dir, 1500);
      const victim = which === "oldest" ? segs[0] : which === "newest" ? segs.at(-1)! : segs[1];
      const lost = new Set(sentIn(`${dir}/${victim}`));
      assert.ok(lost.size > 50, `${victim} held ${lost.size} messages`);
      fs.rmSync(`${dir}/${victim}`);

      const first = await readAll(dir);
      const want = Array.from({ length: 1500 }, (_, i) => i).filter((i) => !lost.has(i));
      assert.equal(first.ready, want.length);
      assert.deepEqual(first.got, want, "every message of the other segments, in order");
      const reported = errors(lines);
      assert.equal(reported.length, 1, `one ERROR line:\n${lines.join("\n")}`);
      assert.match(reported[0], /missing/);
      if (which !== "oldest") assert.ok(reported[0].includes(victim.slice(0, 16)), reported[0]);

      // Sends go on, and are read by the next process; the loss is not reported again.
      const broker = new FileBroker({ dir, segmentSize: SEGMENT });
      broker.declareQueue("q");
      await broker.enqueue(msg("after"));
      await broker.close();
      const second = await readAll(dir);
      assert.deepEqual(second.got, ["after"]);
      assert.equal(errors(lines).length, 1, lines.join("\n"));
    });
  });
}

test("FileBroker: the newest segment deleted while in use: later sends are stored where others find them", async () => {
  await withDir(async (dir, lines) => {
    const producer = new FileBroker({ dir });
    const consumer = new FileBroker({ dir });
    try {
      producer.declareQueue("q");
      consumer.declareQueue("q");
      for (let i = 0; i < 5; i++) await producer.enqueue(msg(i));
      assert.equal((await consumer.stats("q")).ready, 5);
      for (const f of fs.readdirSync(dir).filter((n) => n.endsWith(".seg"))) {
        fs.rmSync(`${dir}/${f}`);
      }
      await producer.enqueue(msg("after"));
      // A process that opens the directory now finds it.
      const other = new FileBroker({ dir });
      other.declareQueue("q");
      assert.equal((await other.stats("q")).ready, 1, "the send after the deletion was lost");
      await other.close();
      // The consumer that was running notices the deleted file and finds it too.
      const c = consumer.consume("q");
      const seen: unknown[] = [];
      const deadline = Date.now() + 10_000;
      while (!seen.includes("after") && Date.now() < deadline) {
        for (const m of await c.receive(10, { timeout: 200 })) seen.push(m.args[0]);
      }
      assert.ok(seen.includes("after"), `the running consumer got ${JSON.stringify(seen)}`);
      await c.close();
      const reported = errors(lines);
      assert.equal(reported.length, 1, `one ERROR line:\n${lines.join("\n")}`);
      assert.match(reported[0], /deleted|missing/);
    } finally {
      await producer.close();
      await consumer.close();
    }
  });
});
