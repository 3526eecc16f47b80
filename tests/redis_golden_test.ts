// Golden test of what RedisBroker writes to Redis: the exact commands its script runs (captured
// with MONITOR on a private server) and the exact JSON, for an enqueue, a delayed enqueue, a
// failed attempt that is retried, and a final failure that is dead-lettered. Ids and times are
// normalised. The expectations follow docs/redis.md and Dramatiq's protocol (§3, §4.4, §5.11).
// Update with UPDATE_GOLDEN=1. Runs on both `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RedisBroker } from "../broker/redis/broker.ts";
import { RedisClient } from "../broker/redis/client.ts";
import type { MessageProxy } from "../broker/broker.ts";
import { Message } from "../message.ts";
import { actor } from "../actor.ts";
import { Retries } from "../middleware/retries.ts";
import { TestRedis } from "./_redis_server.ts";

const GOLDEN = fileURLToPath(new URL("./fixtures/redis_golden/writes.txt", import.meta.url));
const WRITES = new Set([
  "HSET",
  "HSETNX",
  "HDEL",
  "RPUSH",
  "LPUSH",
  "LPOP",
  "SADD",
  "SREM",
  "ZADD",
  "ZREM",
  "DEL",
]);

/** Splits a MONITOR line's quoted arguments and undoes redis-cli's escapes. */
function parseMonitorLine(line: string): { lua: boolean; args: string[] } {
  const lua = / \[\d+ lua\] /.test(line);
  const args: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
    const bytes: number[] = [];
    const s = m[1];
    for (let i = 0; i < s.length; i++) {
      if (s[i] === "\\") {
        const c = s[++i];
        if (c === "x") {
          bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
          i += 2;
        } else {
          const map: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8 };
          bytes.push(map[c] ?? c.charCodeAt(0));
        }
      } else {
        bytes.push(...new TextEncoder().encode(s[i]));
      }
    }
    args.push(new TextDecoder().decode(new Uint8Array(bytes)));
  }
  return { lua, args };
}

/** Replaces ids and times by stable placeholders. */
class Normaliser {
  #ids = new Map<string, string>();
  constructor(private readonly brokerId: string) {}

  id(uuid: string): string {
    if (uuid === this.brokerId) return "<broker>";
    let name = this.#ids.get(uuid);
    if (!name) this.#ids.set(uuid, name = `<id${this.#ids.size + 1}>`);
    return name;
  }

  text(s: string): string {
    if (s.startsWith("{")) {
      const o = JSON.parse(s);
      if (o.options?.traceback) o.options.traceback = "<traceback>";
      s = JSON.stringify(o);
    }
    return s
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (u) => this.id(u))
      .replace(/\b1\d{12}\b/g, "<time>");
  }
}

interface Capture {
  admin: RedisClient;
  out: () => string;
  consumed: number;
  norm: Normaliser;
}

/** The script's write commands MONITOR showed since the last call, normalised. */
async function nextWrites(c: Capture, label: string): Promise<string[]> {
  const marker = `golden-step-${label}`;
  await c.admin.send(["ECHO", marker]);
  const deadline = Date.now() + 10_000;
  while (!c.out().includes(marker)) {
    if (Date.now() > deadline) throw new Error(`MONITOR never showed ${marker}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const out = c.out();
  const lines = out.slice(c.consumed, out.indexOf(marker)).split("\n");
  c.consumed = out.indexOf(marker) + marker.length;
  const writes: string[] = [];
  for (const line of lines) {
    const { lua, args } = parseMonitorLine(line);
    if (!lua || !WRITES.has(args[0]?.toUpperCase())) continue;
    writes.push(args.map((a) => c.norm.text(a)).join(" "));
  }
  return writes;
}

test("RedisBroker: golden key writes and JSON of enqueue, delay, retry and dead-lettering", {
  timeout: 30_000,
}, async () => {
  const server = await TestRedis.start();
  const monitor = spawn("redis-cli", ["-p", String(server.port), "monitor"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  let out = "";
  monitor.stdout!.on("data", (d) => out += d);
  // redis-cli prints OK once MONITOR is on: only then are all later commands captured.
  for (const deadline = Date.now() + 10_000; !out.startsWith("OK");) {
    if (Date.now() > deadline) throw new Error(`redis-cli monitor did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const admin = await RedisClient.connect(server.url);
  const broker = new RedisBroker({
    url: server.url,
    namespace: "golden",
    heartbeatInterval: 1e9,
    maintenanceInterval: 1e9,
  });
  try {
    await broker.connect();
    const norm = new Normaliser(broker.brokerId);
    const capture = { admin, out: () => out, consumed: 0, norm };
    const step = (label: string) => nextWrites(capture, label);
    await step("start");

    const task = actor(() => {}, {
      actorName: "golden_task",
      queueName: "golden",
      broker,
      maxRetries: 1,
      minBackoff: 1,
      maxBackoff: 1,
    });
    const retries = broker.middleware.find((m) => m instanceof Retries)!;
    const fields = { queueName: "golden", actorName: "golden_task", kwargs: { k: "v" } };
    const stamp = { messageTimestamp: 1_700_000_000_000 };
    const sections: [string, string[]][] = [];

    // 1. A plain enqueue.
    await broker.enqueue(new Message({ ...fields, args: [1, "one"], ...stamp }));
    sections.push(["enqueue", await step("enqueue")]);

    // 2. A delayed enqueue.
    await broker.enqueue(new Message({ ...fields, args: [2], ...stamp }), { delay: 60_000 });
    sections.push(["delayed enqueue", await step("delayed")]);

    // 3. The first message fails: the Retries middleware sends it to golden.DQ; it is acked.
    const c = broker.consume("golden");
    const [first] = await c.receive(1, { timeout: 1_000 });
    await retries.afterProcessMessage!(broker, first, { error: new Error("boom") });
    await c.ack(first);
    sections.push(["fetch, fail, retry (enqueue on .DQ), ack", await step("retry")]);
    await new Promise((r) => setTimeout(r, 20)); // the retry is due

    // 4. The retry is moved to golden when due, fails again and is dead-lettered.
    const dc = broker.consume("golden.DQ");
    const [due] = await dc.receive(10, { timeout: 1_000 });
    assert.equal(due.args[0], 1);
    const options = { ...due.options };
    delete options.eta;
    await broker.enqueue(due.copy({ queueName: "golden", options })); // what a Worker does
    await dc.ack(due);
    const [again] = await c.receive(1, { timeout: 1_000 }) as MessageProxy[];
    await retries.afterProcessMessage!(broker, again, { error: new Error("boom") });
    assert.equal(again.failed, true);
    await c.nack(again);
    sections.push(["delayed move, fetch, final failure, nack", await step("dead")]);
    void task;

    const text = sections.map(([title, lines]) => `## ${title}\n${lines.join("\n")}\n`).join("\n");
    if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, text);
    assert.equal(text, readFileSync(GOLDEN, "utf8"));

    // The protocol's essentials, spelled out.
    const [enq, delayed, retry, dead] = sections.map(([, l]) => l);
    assert.match(enq[0], /^HSETNX golden:golden\.msgs <id\d+> \{"queue_name":"golden",/);
    assert.match(enq[1], /^RPUSH golden:golden <id\d+>$/);
    assert.match(
      delayed[0],
      /^HSETNX golden:golden\.DQ\.msgs .*"queue_name":"golden\.DQ".*"eta":<time>/,
    );
    assert.ok(retry.some((l) => l.startsWith("SADD golden:__acks__.<broker>.golden ")));
    assert.ok(retry.some((l) => /^HSETNX golden:golden\.DQ\.msgs .*"retries":1/.test(l)));
    assert.ok(dead.some((l) => l.startsWith("ZADD golden:golden.XQ <time> ")));
    assert.ok(dead.some((l) => /^HSET golden:golden\.XQ\.msgs .*"retries":1/.test(l)));
    await dc.close();
    await c.close();
  } finally {
    await broker.close();
    await admin.close();
    monitor.kill("SIGKILL");
    await server.kill();
  }
});
