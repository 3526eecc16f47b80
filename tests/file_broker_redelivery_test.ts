// Instant redelivery after a crash (issue 9): a FileBroker consumer holds a `flock` on its own
// liveness file for as long as it lives, so when its process dies, another consumer sees the lock
// free and takes its messages over at once, instead of after `leaseTimeout` (30 s by default).
// (A consumer alive but stuck still loses its messages by lease: file_broker_test.ts, crash 3.)
//   deno test -A tests/file_broker_redelivery_test.ts   bun test tests/file_broker_redelivery_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { FileBroker } from "../broker/file/broker.ts";
import { actor } from "../actor.ts";
import { Child } from "./_file_child.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const owners = (dir: string) => fs.readdirSync(dir).filter((n) => n.endsWith(".owner"));

test(
  "FileBroker: a consumer process SIGKILLed with 32 messages in flight: another process runs them all at once, none lost, none more than twice",
  {
    timeout: 120_000,
  },
  async () => {
    const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-redeliver-`);
    const stop = `${dir}-stop`;
    const ids = Array.from({ length: 32 }, (_, i) => `q-${i}`);
    // The default lease (30 s): only the liveness lock can explain a quick redelivery.
    const victim = new Child("./_file_consumer.ts", [dir, "hang", stop, "30000", "32"]);
    let rescuer: Child | undefined;
    try {
      const broker = new FileBroker({ dir });
      const record = actor((_id: string) => {}, { actorName: "record", queueName: "q", broker });
      for (const id of ids) await record.send(id);
      const started = () =>
        victim.lines.filter((l) => l.startsWith("start ")).map((l) => l.slice(6));
      await victim.waitFor("32 messages in flight", () => started().length === 32);
      assert.equal((await broker.stats("q")).inFlight, 32);
      rescuer = new Child("./_file_consumer.ts", [dir, "work", stop, "30000", "8"]);
      await rescuer.waitFor("the second consumer", () => rescuer!.lines.includes("ready"));
      await sleep(200); // it is waiting now, with nothing to run

      victim.kill();
      await victim.exited;
      const killedAt = Date.now();
      const ran = () => rescuer!.lines.filter((l) => /^q-\d+$/.test(l));
      await rescuer.waitFor(
        "the 32 messages to run again",
        () => new Set(ran()).size === 32,
        20_000,
      );
      const took = Date.now() - killedAt;
      console.error(`file_broker_redelivery_test: 32 messages ran again ${took} ms after the kill`);
      assert.ok(
        took < 15_000,
        `redelivered after ${took} ms: the lease (30 s) did it, not the lock`,
      );

      fs.writeFileSync(stop, "");
      await rescuer.waitFor(
        "the second consumer to stop",
        () => rescuer!.lines.includes("stopped"),
      );
      const runs = new Map<string, number>();
      for (const id of [...started(), ...ran()]) runs.set(id, (runs.get(id) ?? 0) + 1);
      assert.deepEqual([...runs.keys()].sort(), [...ids].sort(), "every message ran");
      const often = [...runs].filter(([, n]) => n > 2);
      assert.deepEqual(often, [], "a message ran more than twice");
      const s = await broker.stats("q");
      assert.deepEqual([s.ready, s.inFlight], [0, 0]);
      assert.deepEqual(owners(dir), [], "liveness files left behind");
      await broker.close();
    } finally {
      victim.kill();
      rescuer?.kill();
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(stop, { force: true });
    }
  },
);

test("FileBroker: compact() hands back the messages of a dead consumer of a queue nobody consumes, and sweeps dead liveness files", async () => {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-redeliver-`);
  const stop = `${dir}-stop`;
  const victim = new Child("./_file_consumer.ts", [dir, "hang", stop, "30000", "4"]);
  try {
    const broker = new FileBroker({ dir });
    const record = actor((_id: string) => {}, { actorName: "record", queueName: "q", broker });
    for (let i = 0; i < 4; i++) await record.send(`q-${i}`);
    await victim.waitFor(
      "4 in flight",
      () => victim.lines.filter((l) => /^start /.test(l)).length === 4,
    );
    victim.kill();
    await victim.exited;
    assert.equal(owners(dir).length, 1);
    assert.equal((await broker.stats("q")).inFlight, 4, "nobody took them yet");
    await broker.compact();
    const s = await broker.stats("q");
    assert.deepEqual([s.ready, s.inFlight], [4, 0]);
    assert.deepEqual(owners(dir), []);
    await broker.close();
  } finally {
    victim.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("FileBroker: two consumers in one process do not mistake each other for dead (flock is per open file)", async () => {
  const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-redeliver-`);
  const a = new FileBroker({ dir }), b = new FileBroker({ dir });
  try {
    a.declareQueue("q");
    b.declareQueue("q");
    const record = actor((_id: string) => {}, { actorName: "record", queueName: "q", broker: a });
    await record.send("x");
    const ca = a.consume("q"), cb = b.consume("q");
    const [m] = await ca.receive(1, { timeout: 500 });
    assert.ok(m);
    assert.deepEqual(await cb.receive(1, { timeout: 300 }), [], "taken from a live consumer");
    await b.compact();
    assert.equal((await b.stats("q")).inFlight, 1);
    assert.equal(owners(dir).length, 1);
    ca.ack(m);
    await ca.close();
    await a.close();
    assert.deepEqual(owners(dir), [], "close() removes the liveness file");
    await cb.close();
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
