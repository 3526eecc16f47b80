// Result keys: Dramatiq's MD5 keys by default, readable `namespace:queue:actor:message_id` keys
// with `useNamespacePrefixKeys` (Dramatiq's `use_namespace_prefix_keys`), on the memory, file and
// Redis backends, and Python Dramatiq reading and writing the readable keys on Redis.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { MemoryResultBackend, Message, ResultFailure } from "../mod.ts";
import { FileResultBackend } from "../results/file.ts";
import { RedisResultBackend } from "../results/redis.ts";
import { RedisClient } from "../broker/redis/client.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

const md5 = (s: string) => createHash("md5").update(s).digest("hex");
const msg = (actorName = "add") =>
  new Message({ queueName: "default.DQ", actorName, args: [1, 2] });

test("useNamespacePrefixKeys: readable keys on every backend; MD5 keys by default", () => {
  const m = msg();
  const dir = mkdtempSync(join(tmpdir(), "dramatis-keys-"));
  const readable = `billing:default:add:${m.messageId}`;
  for (
    const make of [
      (o: object) => new MemoryResultBackend(o),
      (o: object) => new FileResultBackend({ dir, ...o }),
      (o: object) => new RedisResultBackend({ url: SHARED_URL, ...o }),
    ]
  ) {
    const name = make({}).constructor.name;
    assert.equal(make({ namespace: "billing" }).buildMessageKey(m), md5(readable), name);
    assert.equal(
      make({ namespace: "billing", useNamespacePrefixKeys: true }).buildMessageKey(m),
      readable,
      name,
    );
    assert.equal(make({ useNamespacePrefixKeys: true }).useNamespacePrefixKeys, true);
  }
  rmSync(dir, { recursive: true, force: true });
});

test("FileResultBackend with readable keys: one file per result, named after its key", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-keys-"));
  try {
    const backend = new FileResultBackend({ dir, namespace: "app", useNamespacePrefixKeys: true });
    const plain = msg();
    await backend.storeResult(plain, 3, 60_000);
    assert.deepEqual(readdirSync(dir), [`app:default:add:${plain.messageId}.json`]);
    assert.equal(await backend.getResult(plain), 3);
    // An actor name that is not a safe file name stays one file in `dir`, escaped.
    const odd = msg("../../etc/pass wd");
    await backend.storeFailure(odd, new RangeError("no"), 60_000);
    assert.ok(
      readdirSync(dir).includes(
        `app:default:..%2F..%2Fetc%2Fpass%20wd:${odd.messageId}.json`,
      ),
      readdirSync(dir).join(", "),
    );
    await assert.rejects(backend.getResult(odd), ResultFailure);
    // A key too long for a file name is shortened, and still found (a blocking read too).
    const long = msg("x".repeat(300));
    const pending = backend.getResult(long, { block: true, timeout: 5_000 });
    await backend.storeResult(long, "long", 60_000);
    assert.equal(await pending, "long");
    assert.ok(readdirSync(dir).every((n) => n.length <= 210), readdirSync(dir).join(", "));
    assert.equal(readdirSync(dir).length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("RedisResultBackend with readable keys: the list under namespace:queue:actor:id", async () => {
  const namespace = randomNamespace("keys-");
  const backend = new RedisResultBackend({
    url: SHARED_URL,
    namespace,
    useNamespacePrefixKeys: true,
  });
  const redis = await RedisClient.connect(SHARED_URL);
  try {
    const m = msg();
    await backend.storeResult(m, { sum: 3 }, 60_000);
    const key = `${namespace}:default:add:${m.messageId}`;
    assert.deepEqual(await redis.send(["LRANGE", key, 0, -1]), ['{"sum":3}']);
    assert.deepEqual(await backend.getResult(m, { block: true, timeout: 1_000 }), { sum: 3 });
  } finally {
    await redis.close();
    await backend.close();
    await deleteKeys(`${namespace}:`);
  }
});

/** Python Dramatiq's source, from the peers folder (see /work/shared/peers/README.md). */
function dramatiqSource(): string | undefined {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const tarball = [
    process.env.DRAMATIQ_TARBALL,
    join(root, "..", "shared", "peers", "dramatiq-2.2.0.tar.gz"),
    join(root, "..", "..", "shared", "peers", "dramatiq-2.2.0.tar.gz"),
    "/work/shared/peers/dramatiq-2.2.0.tar.gz",
  ].find((p) => p && existsSync(p));
  if (!tarball) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "dramatiq-src-"));
  const untar = spawnSync("tar", ["xzf", tarball, "-C", dir]);
  return untar.status === 0 ? join(dir, "dramatiq-2.2.0") : undefined;
}

test("Python Dramatiq reads and writes the readable keys dramatis uses", async (t) => {
  const src = dramatiqSource();
  const python = "/usr/bin/python3";
  const probe = src && spawnSync(python, ["-c", "import redis, dramatiq"], {
    env: { ...process.env, PYTHONPATH: src },
  });
  if (!src || !probe || probe.status !== 0) {
    t.skip("needs Python Dramatiq's source and Debian's python3-redis");
    return;
  }
  const namespace = randomNamespace("pykeys-");
  const backend = new RedisResultBackend({
    url: SHARED_URL,
    namespace,
    useNamespacePrefixKeys: true,
  });
  try {
    const ours = msg(), theirs = msg();
    await backend.storeResult(ours, { from: "dramatis" }, 60_000);
    const script = `
import json, sys
from dramatiq import Message
from dramatiq.results.backends.redis import RedisBackend
backend = RedisBackend(url=${JSON.stringify(SHARED_URL)}, namespace=${JSON.stringify(namespace)},
                       use_namespace_prefix_keys=True)
def message(d):
    return Message(queue_name=d["queue_name"], actor_name=d["actor_name"], args=tuple(d["args"]),
                   kwargs=d["kwargs"], options=d["options"], message_id=d["message_id"],
                   message_timestamp=d["message_timestamp"])
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps(backend.get_result(message(ours))))
backend.store_result(message(theirs), {"from": "python"}, 60000)
`;
    const r = spawnSync(
      python,
      ["-c", script, JSON.stringify(ours.asDict()), JSON.stringify(theirs.asDict())],
      { env: { ...process.env, PYTHONPATH: src }, encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { from: "dramatis" });
    assert.deepEqual(await backend.getResult(theirs), { from: "python" });
  } finally {
    rmSync(join(src, ".."), { recursive: true, force: true });
    await backend.close();
    await deleteKeys(`${namespace}:`);
  }
});
