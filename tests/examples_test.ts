// Every example in examples/ and every TypeScript block in the README runs as written, importing
// dramatis by its package name (the clone maps the name: deno.json's imports on Deno, the
// package's own name and exports on Bun); the web app example serves, enqueues and closes; the
// README's shell commands use commands that exist after its Install steps.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { isBun, runScript, scriptArgs } from "./_runtime.ts";
import { FileBroker } from "../mod.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

const expected: Record<string, RegExp> = {
  "quickstart.ts": /countWords -> 4[\s\S]*pipeline -> The text has 5 words\./,
};
/** Examples that run until stopped, tested on their own below. */
const servers = new Set(["web_app.ts", "dashboard_demo.ts"]);

for (const name of readdirSync(join(root, "examples")).filter((f) => f.endsWith(".ts")).sort()) {
  if (servers.has(name)) continue;
  test(`examples/${name} runs`, async () => {
    const r = await runScript(join(root, "examples", name), { timeout: 60_000, check: !isBun });
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    if (expected[name]) assert.match(r.stdout, expected[name]);
  });
}

const readme = readFileSync(join(root, "README.md"), "utf8");
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

test("the README has TypeScript examples, importing dramatis by its package name", () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length}`);
  for (const code of blocks) {
    for (const [, spec] of code.matchAll(/ from "([^"]+)"/g)) {
      assert.ok(
        spec === "@dramatis/dramatis" || spec === "@dramatis/dramatis/dashboard" ||
          spec.startsWith("node:"),
        `a README example imports ${spec}: import "@dramatis/dramatis" or its /dashboard (what Install sets up)`,
      );
    }
  }
});

blocks.forEach((code, i) => {
  const body = code.slice(code.lastIndexOf(' from "') + 1);
  const title = body.split("\n").slice(1).find((l) => l.trim()) ?? "";
  test(`README example ${i + 1} runs (${title.slice(0, 50)})`, async () => {
    // Inside the clone (under tests/, which is not packed), where "@dramatis/dramatis" resolves as it does in a user's project.
    const dir = mkdtempSync(join(root, "tests", ".tmp-readme-"));
    try {
      const file = join(dir, `readme_${i + 1}.ts`);
      writeFileSync(file, code);
      const r = await runScript(file, { timeout: 60_000, check: !isBun, cwd: dir });
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("README shell commands exist after the Install steps (or npm ci, in a clone)", () => {
  const lines = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1].split("\n"))
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l && !l.startsWith("#"));
  assert.ok(lines.length >= 10, `found ${lines.length} commands`);
  // What each Install path puts on PATH, or what a clone has after `npm ci`.
  const commands = new Set(["npm", "npx", "bunx", "dramatis", "deno", "bun", "docker", "curl"]);
  const clone = /^(npx (deno|bun)|\.\/node_modules\/\.bin\/(deno|bun|dramatis)) /;
  for (const line of lines) {
    const words = line.split(/\s+/).filter((w) => !/^[A-Z_]+=/.test(w));
    const cmd = words[0] ?? "";
    assert.ok(
      commands.has(cmd) || /^(\.\/)?(dist|node_modules\/\.bin)\//.test(cmd) ||
        cmd.startsWith("sudo"),
      `README runs ${JSON.stringify(cmd)}, which Install does not provide: ${line}`,
    );
    if (/\bcli\.ts\b/.test(line)) {
      // cli.ts is a file of the clone, where the toolchain is in node_modules/.bin, not on PATH.
      assert.match(words.join(" "), clone, `a clone command without npx: ${line}`);
    }
    if (cmd === "deno" || cmd === "bun") {
      // Outside a clone, deno and bun are the user's own installs: they add and install.
      assert.match(
        line,
        /^(deno (add|install|run -A (jsr:|@dramatis\/dramatis))|bun (add|run|x) )/,
        `a bare ${cmd} command that needs a clone: ${line}`,
      );
    }
  }
});

test("examples/web_app.ts: serves, enqueues on POST, closes its broker on SIGTERM", {
  timeout: 60_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-web-"));
  try {
    const app = spawn(process.execPath, scriptArgs(join(root, "examples", "web_app.ts")), {
      env: {
        ...process.env,
        NO_COLOR: "1",
        PORT: "0",
        HOST: "127.0.0.1",
        DRAMATIS_BROKER: `file://${join(dir, "queues")}`,
      },
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "", err = "";
    app.stdout!.on("data", (d) => out += d);
    app.stderr!.on("data", (d) => err += d);
    const exited = new Promise<number | null>((r) => app.on("exit", (code) => r(code)));
    const deadline = Date.now() + 30_000;
    let url: string | undefined;
    while (!(url = /Listening on (\S+)/.exec(out)?.[1])) {
      assert.ok(Date.now() < deadline, `the app never listened:\n${out}\n${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const res = await fetch(new URL("greet", url), {
      method: "POST",
      body: JSON.stringify({ name: "Ada" }),
    });
    assert.equal(res.status, 202);
    const { messageId } = await res.json() as { messageId: string };
    const bad = await fetch(new URL("greet", url), { method: "POST", body: "not json" });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();

    // process.kill, not app.kill: Deno's ChildProcess.kill() reports the exit as by signal
    // even when the child handled it and exited 0.
    process.kill(app.pid!, "SIGTERM");
    assert.equal(await exited, 0, `${out}\n${err}`);
    assert.match(out, /SIGTERM: finishing[\s\S]*Stopped\./);
    assert.equal(err, "");

    // The message is in the broker the app closed, as the app enqueued it.
    const broker = new FileBroker({ dir: join(dir, "queues") });
    try {
      broker.declareQueue("default");
      const consumer = broker.consume("default");
      const [m, ...more] = await consumer.receive(10, { timeout: 2_000 });
      assert.deepEqual(more, []);
      assert.equal(m?.messageId, messageId);
      assert.equal(m.actorName, "greet");
      assert.deepEqual(m.args, ["Ada"]);
      await consumer.ack(m);
      await consumer.close();
    } finally {
      await broker.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
