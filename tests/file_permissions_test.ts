// Who may read what the file broker and the file backends write (issue 9, item 14): by default
// the directory is 0700 and its files 0600, with `access: "group"` 0770 and 0660, with
// "group-read" 0750 and 0640.
//   deno test -A tests/file_permissions_test.ts        bun test tests/file_permissions_test.ts
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { type FileAccess, FileBroker, type FileBrokerOptions } from "../broker/file/broker.ts";
import { brokerFromUrl } from "../broker/url.ts";
import { FileResultBackend } from "../results/file.ts";
import { FileRateLimiterBackend } from "../rate_limits/file.ts";
import { Message } from "../message.ts";
import { configureLogging } from "../util/log.ts";

function mode(path: string): string {
  return (fs.statSync(path).mode & 0o777).toString(8);
}

/** Every entry under `dir` (itself included) with its mode, e.g. `{ ".": "700", "broker.lock": "600" }`. */
function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { ".": mode(dir) };
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    out[name] = mode(`${dir}/${name}`);
  }
  return out;
}

async function fill(options: FileBrokerOptions | FileBroker): Promise<void> {
  const broker = options instanceof FileBroker ? options : new FileBroker(options);
  broker.declareQueue("p");
  await broker.enqueue(new Message({ queueName: "p", actorName: "t", args: [1] }));
  await broker.stats("p");
  await broker.close();
}

async function withUmask<T>(fn: () => Promise<T>): Promise<T> {
  // The usual umask, whatever the test runner inherited: 022 gave 0755 and 0644 before the fix.
  const old = process.umask(0o022);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

test("file permissions: FileBroker, FileResultBackend and FileRateLimiterBackend keep their files to the owner", async () => {
  const root = fs.mkdtempSync(`${tmpdir()}/dramatis-perm-`);
  try {
    await withUmask(async () => {
      await fill({ dir: `${root}/q/nested` });
      const results = new FileResultBackend({ dir: `${root}/r` });
      await results.storeResult(new Message({ queueName: "p", actorName: "t" }), 42, 60_000);
      const limits = new FileRateLimiterBackend({ dir: `${root}/l` });
      assert.equal(await limits.add("k", 1, 60_000), true);
      limits.close();
    });
    assert.equal(mode(`${root}/q`), "700", "a parent created on the way is private too");
    for (const d of ["q/nested", "r", "l"]) {
      const m = modes(`${root}/${d}`);
      assert.ok(Object.keys(m).length >= 2, `${d} holds no file`);
      for (const [name, got] of Object.entries(m)) {
        assert.equal(got, name === "." ? "700" : "600", `${d}/${name}: mode ${got}`);
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

for (const [access, dirMode, fileMode] of [["group", "770", "660"], ["group-read", "750", "640"]]) {
  test(`file permissions: access: "${access}" gives 0${dirMode} and 0${fileMode}, even under umask 077`, async () => {
    const root = fs.mkdtempSync(`${tmpdir()}/dramatis-perm-`);
    const old = process.umask(0o077);
    try {
      const a = access as FileAccess;
      await fill({ dir: `${root}/q`, access: a });
      await fill(brokerFromUrl(`file://${root}/u?access=${access}`) as FileBroker);
      const results = new FileResultBackend({ dir: `${root}/r`, access: a });
      await results.storeResult(new Message({ queueName: "p", actorName: "t" }), 42, 60_000);
      const limits = new FileRateLimiterBackend({ dir: `${root}/l`, access: a });
      assert.equal(await limits.add("k", 1, 60_000), true);
      limits.close();
      for (const d of ["q", "u", "r", "l"]) {
        for (const [name, got] of Object.entries(modes(`${root}/${d}`))) {
          assert.equal(got, name === "." ? dirMode : fileMode, `${d}/${name}: mode ${got}`);
        }
      }
    } finally {
      process.umask(old);
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
}

test("file permissions: a bad access value is refused; an existing world-readable directory is reported", async () => {
  assert.throws(
    () => new FileBroker({ dir: "/tmp/x", access: "world" as "owner" }),
    /FileBroker: access must be "owner", "group" or "group-read", got "world"/,
  );
  assert.throws(() => brokerFromUrl("file:///tmp/x?access=all"), /access must be/);
  assert.throws(() => new FileResultBackend({ access: "all" as "owner" }), /access must be/);
  const root = fs.mkdtempSync(`${tmpdir()}/dramatis-perm-`);
  const logged: string[] = [];
  configureLogging({ write: (line) => logged.push(line) });
  try {
    fs.mkdirSync(`${root}/old`, { mode: 0o755 });
    fs.chmodSync(`${root}/old`, 0o755);
    await fill({ dir: `${root}/old` });
    await fill({ dir: `${root}/old` });
    assert.equal(mode(`${root}/old`), "755", "an existing directory is left as it is");
    const warnings = logged.filter((l) => l.includes("is open to every local user"));
    assert.equal(warnings.length, 1, logged.join("\n"));
    assert.match(warnings[0], /mode 0755.*chmod 700/);
  } finally {
    configureLogging({ write: (line) => console.error(line) });
    fs.rmSync(root, { recursive: true, force: true });
  }
});
