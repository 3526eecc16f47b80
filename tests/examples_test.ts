// Every example in examples/ and every TypeScript block in the README runs as written.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { isBun, runScript } from "./_runtime.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const modUrl = new URL("../mod.ts", import.meta.url).href;

const expected: Record<string, RegExp> = {
  "quickstart.ts": /countWords -> 4[\s\S]*pipeline -> The text has 5 words\./,
};

for (const name of readdirSync(join(root, "examples")).filter((f) => f.endsWith(".ts")).sort()) {
  test(`examples/${name} runs`, async () => {
    const r = await runScript(join(root, "examples", name), { timeout: 60_000, check: !isBun });
    assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    if (expected[name]) assert.match(r.stdout, expected[name]);
  });
}

const readme = readFileSync(join(root, "README.md"), "utf8");
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);

test("the README has TypeScript examples", () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length}`);
});

blocks.forEach((code, i) => {
  const body = code.slice(code.lastIndexOf(' from "') + 1);
  const title = body.split("\n").slice(1).find((l) => l.trim()) ?? "";
  test(`README example ${i + 1} runs (${title.slice(0, 50)})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-readme-"));
    try {
      const file = join(dir, `readme_${i + 1}.ts`);
      writeFileSync(file, code.replaceAll('"jsr:@dramatis/dramatis"', JSON.stringify(modUrl)));
      const r = await runScript(file, { timeout: 60_000, check: !isBun, cwd: dir });
      assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
