// Dead letters that cannot be decoded (issue 9, item 6): `stats().dead` and `deadLetters()` must
// agree on every broker. Such a letter is listed as a Message saying why it cannot be run
// (options.dramatis_undecodable, and the traceback), never requeued, and purged like the others.
//   deno test -A tests/dead_letters_test.ts        bun test tests/dead_letters_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import type { Broker, Consumer } from "../broker/broker.ts";
import { FileBroker } from "../broker/file/broker.ts";
import { Kind, RecordWriter } from "../broker/file/_format.ts";
import { RedisBroker } from "../broker/redis/broker.ts";
import { RedisClient } from "../broker/redis/client.ts";
import { StubBroker } from "../broker/stub.ts";
import { Message } from "../message.ts";
import { configureLogging } from "../util/log.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

const good = () => new Message({ queueName: "dl", actorName: "work", args: [1] });
/** Valid JSON, but not a message: its actor name is a number. */
const wrongField = () =>
  new Message({ queueName: "dl", actorName: 5 as unknown as string, args: [2] });
/** What a Python producer with a pickle encoder leaves: not UTF-8 at all. */
const PICKLE = new Uint8Array([0x80, 0x04, 0x95, 0x10]);

/** Receives until `n` messages were handed out (the undecodable ones are dead-lettered on the way). */
async function receiveAll(c: Consumer, broker: Broker, wantDead: number) {
  const got = [];
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    got.push(...await c.receive(10, { timeout: 100 }));
    if (got.length >= 1 && (await broker.stats("dl")).dead >= wantDead) break;
  }
  return got;
}

/** The checks shared by every broker, once the queue holds `undecodable` such letters and `good` nacked one. */
async function checkAgreement(broker: Broker, undecodable: number, reasons: RegExp[]) {
  const stats = await broker.stats("dl");
  const letters = await broker.deadLetters("dl");
  assert.equal(letters.length, stats.dead, "deadLetters() must list what stats() counts");
  assert.equal(stats.dead, undecodable + 1);
  const bad = letters.filter((m) => typeof m.options.dramatis_undecodable === "string");
  assert.equal(bad.length, undecodable);
  for (const re of reasons) {
    assert.ok(
      bad.some((m) => re.test(m.options.dramatis_undecodable as string)),
      `no letter says ${re}: ${JSON.stringify(bad.map((m) => m.options))}`,
    );
  }
  for (const m of bad) {
    assert.match(m.options.traceback as string, /^DecodeError: /);
    assert.equal(typeof m.messageId, "string");
  }
  assert.equal((await broker.deadLetters("dl", { limit: 1 })).length, 1);
  // Only the decodable letter goes back; the others stay, counted and listed.
  assert.equal(await broker.requeueDeadLetters("dl"), 1);
  const after = await broker.stats("dl");
  assert.deepEqual([after.ready, after.dead], [1, undecodable]);
  assert.equal((await broker.deadLetters("dl")).length, undecodable);
  assert.equal(await broker.purgeDeadLetters("dl"), undecodable);
  assert.equal((await broker.stats("dl")).dead, 0);
  assert.deepEqual(await broker.deadLetters("dl"), []);
}

function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const logged: string[] = [];
  configureLogging({ write: (line) => logged.push(line) });
  return fn().finally(() => configureLogging({ write: (line) => console.error(line) }));
}

test("dead letters: FileBroker lists the undecodable letters it counts", async () => {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-dl-`);
  try {
    await quietly(async () => {
      const first = new FileBroker({ dir });
      first.declareQueue("dl");
      await first.enqueue(good());
      await first.enqueue(wrongField());
      await first.close();
      // A record whose message bytes are not UTF-8, appended where the broker would put it.
      const seg = fs.readdirSync(dir).filter((n) => n.endsWith(".seg")).sort().at(-1)!;
      const w = new RecordWriter();
      w.begin(Kind.ENQ);
      w.queue("dl");
      w.f64(0);
      w.f64(0);
      w.bytes(PICKLE);
      w.end();
      fs.appendFileSync(`${dir}/${seg}`, w.view());

      const broker = new FileBroker({ dir });
      broker.declareQueue("dl");
      const c = broker.consume("dl");
      const got = await receiveAll(c, broker, 2);
      assert.deepEqual(got.map((m) => m.args), [[1]], "the decodable message is delivered");
      await c.nack(got[0]);
      await c.close();
      await checkAgreement(broker, 2, [/actor_name/, /not valid UTF-8/]);
      await broker.close();
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("dead letters: RedisBroker lists the undecodable letters it counts", async () => {
  const namespace = randomNamespace("dl");
  const broker = new RedisBroker({ url: SHARED_URL, namespace });
  const redis = await RedisClient.connect(SHARED_URL);
  try {
    await quietly(async () => {
      broker.declareQueue("dl");
      await broker.enqueue(good());
      await redis.send(["HSET", `${namespace}:dl.msgs`, "pickled", PICKLE]);
      await redis.send(["RPUSH", `${namespace}:dl`, "pickled"]);
      // A letter whose payload is gone (what a partial cleanup by hand leaves).
      await redis.send(["ZADD", `${namespace}:dl.XQ`, Date.now(), "nopayload"]);
      const c = broker.consume("dl");
      const got = await receiveAll(c, broker, 2);
      assert.deepEqual(got.map((m) => m.args), [[1]], "the decodable message is delivered");
      await c.nack(got[0]);
      const deadline = Date.now() + 5_000;
      while ((await broker.stats("dl")).dead < 3 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await c.close();
      await checkAgreement(broker, 2, [/not valid UTF-8/, /payload is missing/]);
    });
  } finally {
    await broker.close();
    await redis.close();
    await deleteKeys(`${namespace}:`);
  }
});

test("dead letters: StubBroker counts what it lists", async () => {
  const broker = new StubBroker();
  broker.declareQueue("dl");
  await broker.enqueue(good());
  const c = broker.consume("dl");
  const [m] = await c.receive(1, { timeout: 100 });
  await c.nack(m);
  const s = await broker.stats("dl");
  assert.equal((await broker.deadLetters("dl")).length, s.dead);
  assert.equal(s.dead, 1);
  await c.close();
});
