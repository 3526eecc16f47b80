import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import {
  MemoryResultBackend,
  Message,
  type ResultBackend,
  ResultFailure,
  ResultMissing,
  ResultTimeout,
} from "../mod.ts";
import { FileResultBackend } from "../results/file.ts";
import { runScript } from "./_runtime.ts";

const backends: [string, () => { backend: ResultBackend; cleanup: () => void }][] = [
  ["MemoryResultBackend", () => ({ backend: new MemoryResultBackend(), cleanup: () => {} })],
  ["FileResultBackend", () => {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-results-"));
    return {
      backend: new FileResultBackend({ dir }),
      cleanup: () => rmSync(dir, { recursive: true }),
    };
  }],
];

const msg = () => new Message({ queueName: "default.DQ", actorName: "add", args: [1, 2] });

test("result keys are Dramatiq's: MD5 of namespace:canonical queue:actor:message id", () => {
  const m = msg();
  const want = createHash("md5").update(`dramatiq-results:default:add:${m.messageId}`).digest(
    "hex",
  );
  assert.equal(new MemoryResultBackend().buildMessageKey(m), want);
});

for (const [name, make] of backends) {
  test(`${name}: store, get, failure, missing, expiry`, async () => {
    const { backend, cleanup } = make();
    try {
      const a = msg(), b = msg(), c = msg();
      await assert.rejects(backend.getResult(a), ResultMissing);
      await backend.storeResult(a, { sum: 3 }, 10_000);
      assert.deepEqual(await backend.getResult(a), { sum: 3 });
      await backend.storeFailure(b, new TypeError("bad"), 10_000);
      await assert.rejects(backend.getResult(b), (e: unknown) => {
        assert.ok(e instanceof ResultFailure);
        assert.equal(e.errorName, "TypeError");
        return true;
      });
      await backend.storeResult(c, 1, 30);
      await new Promise((r) => setTimeout(r, 60));
      await assert.rejects(backend.getResult(c), ResultMissing);
    } finally {
      cleanup();
    }
  });

  test(`${name}: a blocking read wakes when the result arrives, or times out`, async () => {
    const { backend, cleanup } = make();
    try {
      const m = msg();
      const t0 = Date.now();
      const pending = backend.getResult(m, { block: true, timeout: 5_000 });
      setTimeout(() => backend.storeResult(m, "late", 10_000), 100);
      assert.equal(await pending, "late");
      const waited = Date.now() - t0;
      assert.ok(waited >= 90 && waited < 1_000, `woke after ${waited} ms`);
      const t1 = Date.now();
      await assert.rejects(backend.getResult(msg(), { block: true, timeout: 150 }), ResultTimeout);
      assert.ok(Date.now() - t1 >= 140);
    } finally {
      cleanup();
    }
  });
}

test("FileResultBackend: a result stored by another process wakes a blocked reader", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-results-"));
  try {
    const backend = new FileResultBackend({ dir });
    const m = msg();
    const script = join(dir, "writer.ts");
    const mod = fileURLToPath(new URL("../results/file.ts", import.meta.url));
    const msgMod = fileURLToPath(new URL("../message.ts", import.meta.url));
    writeFileSync(
      script,
      `import { FileResultBackend } from ${JSON.stringify(mod)};\n` +
        `import { Message } from ${JSON.stringify(msgMod)};\n` +
        `await new Promise((r) => setTimeout(r, 200));\n` +
        `const m = Message.fromDict(${JSON.stringify(m.asDict())});\n` +
        `await new FileResultBackend({ dir: ${
          JSON.stringify(dir)
        } }).storeResult(m, 42, 60_000);\n`,
    );
    const child = runScript(script);
    assert.equal(await backend.getResult(m, { block: true, timeout: 10_000 }), 42);
    assert.equal((await child).code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("FileResultBackend: sweep deletes expired results, so disk use stays bounded", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-results-"));
  try {
    const backend = new FileResultBackend({ dir });
    for (let i = 0; i < 50; i++) await backend.storeResult(msg(), i, 10);
    await backend.storeResult(msg(), "keep", 60_000);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(backend.sweep(), 50);
    assert.equal(readdirSync(dir).length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
