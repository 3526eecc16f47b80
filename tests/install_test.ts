// dramatis as a user installs it: the npm package holds the library and nothing else; packed,
// it installs offline into an empty folder with Bun, and `dramatis worker` / `dramatis send`,
// by their bin name, run a message; on Deno the same from a local path import (JSR cannot be
// reached here), by the import-map name and by a `deno install -g` command.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { VERSION } from "../version.ts";
import {
  bunProject,
  killIfRunning,
  pack,
  root,
  run,
  runAsync,
  serveFiles,
  start,
  toolchainBin,
  toolchainPath,
  until,
} from "./_package.ts";

const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const denoJson = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
const deno = join(toolchainBin, "deno");

/** Directories and files of the repository that are for developing dramatis, not using it. */
const devOnly =
  /^(tests|bench|docs|examples|deploy|\.ci)\/|^(deno\.json|package-lock\.json|\.gitignore)$/;

test("package.json: the npm package of the library, matching deno.json", () => {
  assert.equal(pkg.name, denoJson.name);
  assert.equal(pkg.version, denoJson.version);
  assert.equal(pkg.version, VERSION);
  assert.equal(pkg.license, denoJson.license);
  assert.deepEqual(
    Object.entries(pkg.exports).filter(([k]) => k !== "./package.json"),
    Object.entries(denoJson.exports),
  );
  assert.equal(pkg.types, denoJson.exports["."]);
  assert.equal(pkg.dependencies, undefined, "the library has no runtime dependencies");
  assert.deepEqual(Object.keys(pkg.devDependencies).sort(), [
    "@types/bun",
    "bun",
    "deno",
    "playwright-core",
    "typescript",
  ]);
  const bin = readFileSync(join(root, pkg.bin.dramatis), "utf8");
  assert.match(bin, /^#!\/usr\/bin\/env bun\n/);
});

test("npm pack: the library's modules, README, LICENSE and the bin; nothing else", () => {
  const [{ files }] = JSON.parse(
    run("npm", ["pack", "--dry-run", "--json"], { cwd: root }),
  ) as { files: { path: string; mode: number }[] }[];
  const packed = files.map((f) => f.path).sort();
  const repo = run("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: root })
    .split("\n").filter((f) => f && existsSync(join(root, f)));
  const expected = repo.filter((f) => !devOnly.test(f)).sort();
  assert.deepEqual(packed, expected);
  for (const f of ["mod.ts", "cli.ts", "README.md", "LICENSE", "package.json", "bin/dramatis.ts"]) {
    assert.ok(packed.includes(f), `${f} is not packed`);
  }
  const bin = files.find((f) => f.path === "bin/dramatis.ts")!;
  assert.ok(bin.mode & 0o111, "the bin is not executable in the tarball");
});

test("deno publish --dry-run: the library only, and no warning but the known one", () => {
  const r = spawnSync(deno, ["publish", "--dry-run", "--allow-dirty"], {
    cwd: root,
    env: { ...process.env, NO_COLOR: "1" },
    encoding: "utf8",
  });
  const out = r.stdout + r.stderr;
  assert.equal(r.status, 0, out);
  assert.match(out, /Success Dry run complete/);
  const published = [...out.matchAll(/^\s+file:\/\/(\S+) \(/gm)].map((m) =>
    m[1].slice(root.length)
  );
  for (const f of ["mod.ts", "cli.ts", "README.md", "LICENSE", "deno.json"]) {
    assert.ok(published.includes(f), `${f} is not published:\n${out}`);
  }
  const stray = published.filter((f) =>
    /^(tests|bench|examples|deploy|bin|\.ci)\/|^package/.test(f)
  );
  assert.deepEqual(stray, []);
  // Deno has no way to silence this one (denoland/deno#22594): the CLI imports the modules named
  // on its command line, full URLs that no import map is needed for.
  const known = /^warning\[unanalyzable-dynamic-import\]: .*\n\s+--> \S+\/worker\/_import\.ts:/;
  const warnings = [...out.matchAll(/^warning\[.*\n.*/gm)].map((m) => m[0]);
  assert.deepEqual(warnings.filter((w) => !known.test(w)), []);
});

const tasks = (from: string) =>
  `import { appendFileSync } from "node:fs";
import { actor } from ${JSON.stringify(from)};

export const hello = actor(function hello(name: string) {
  appendFileSync("ran.log", \`hello \${name}\\n\`);
});
`;

/** Sends one message before the worker starts and one while it runs; both must run once. */
async function sendAndRun(
  dir: string,
  cli: string[],
  module: string,
  env: Record<string, string | undefined>,
): Promise<void> {
  const [cmd, ...pre] = cli;
  const log = join(dir, "ran.log");
  const ran = () => existsSync(log) ? readFileSync(log, "utf8") : "";
  const send = (name: string) =>
    runAsync(cmd, [...pre, "send", module, "hello", JSON.stringify([name])], { cwd: dir, env });
  assert.match(await send("before"), /^Sent hello\("before"\)/m);
  const worker = start(cmd, [...pre, "worker", module, "-p", "1", "-t", "1"], { cwd: dir, env });
  try {
    await until(
      "the message sent before the worker started did not run",
      () => ran().includes("hello before"),
      worker,
    );
    await send("while running");
    await until(
      "the message sent to a running worker did not run",
      () => ran().includes("hello while running"),
      worker,
    );
    process.kill(worker.pid, "SIGTERM");
    assert.equal(await worker.exited, 0, worker.log());
    assert.equal(ran(), "hello before\nhello while running\n", "each message ran once");
  } finally {
    killIfRunning(worker);
  }
}

test("Bun: the packed package installs offline into an empty folder; its bin runs a message", {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-install-bun-"));
  try {
    const app = bunProject(join(dir, "app"), pack(dir));
    assert.ok(existsSync(join(app, "node_modules", "@dramatis", "dramatis", "mod.ts")));
    const bin = join(app, "node_modules", ".bin", "dramatis");
    // What `bunx dramatis` and package.json scripts run; Bun found on PATH by the shebang.
    const env = { PATH: toolchainPath, DRAMATIS_BROKER: undefined };
    assert.equal(run(bin, ["--version"], { cwd: app, env }), `dramatis ${VERSION}\n`);
    writeFileSync(join(app, "tasks.ts"), tasks("@dramatis/dramatis"));
    await sendAndRun(app, [bin], "tasks.ts", env);
    assert.ok(existsSync(join(app, ".dramatis")), "the default broker is ./.dramatis");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A Deno project whose deno.json maps dramatis' names to the package at `base` (a URL ending in
 * /), as `deno add` maps them to JSR, and a tasks.ts importing the mapped name.
 */
function denoProject(app: string, base: string): string {
  mkdirSync(app);
  const imports = {
    "@dramatis/dramatis": new URL("mod.ts", base).href,
    "@dramatis/dramatis/cli": new URL("cli.ts", base).href,
  };
  writeFileSync(join(app, "deno.json"), JSON.stringify({ imports }));
  writeFileSync(join(app, "tasks.ts"), tasks("@dramatis/dramatis"));
  return app;
}

test("Deno: from a local path import, by the import-map name and by deno install -g", {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-install-deno-"));
  try {
    // The names mapped to this clone, as `deno add jsr:@dramatis/dramatis` maps them to JSR.
    const app = denoProject(join(dir, "app"), `file://${root}`);
    const env = { PATH: toolchainPath, DRAMATIS_BROKER: undefined };
    await sendAndRun(app, [deno, "run", "-A", "@dramatis/dramatis/cli"], "tasks.ts", env);

    // `deno install -g` (here into a private root): the command runs with a configuration of
    // its own, not the project's, so this module imports dramatis by its full specifier.
    const installRoot = join(dir, "deno-root");
    run(deno, [
      "install",
      "-g",
      "-A",
      "-n",
      "dramatis",
      "--root",
      installRoot,
      join(root, "cli.ts"),
    ], {
      cwd: dir,
      env,
    });
    rmSync(join(app, "ran.log"));
    writeFileSync(join(app, "direct_tasks.ts"), tasks(join(root, "mod.ts")));
    await sendAndRun(app, [join(installRoot, "bin", "dramatis")], "direct_tasks.ts", env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Deno: the package from a URL, as from JSR: bare imports resolve in every process", {
  timeout: 120_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-install-remote-"));
  const files = join(dir, "package");
  mkdirSync(files);
  run("tar", ["xzf", pack(dir), "-C", files, "--strip-components=1"]);
  const server = await serveFiles(files);
  try {
    const app = denoProject(join(dir, "app"), server.url);
    const env = { PATH: toolchainPath, DRAMATIS_BROKER: undefined, DENO_DIR: join(dir, "deno") };
    await sendAndRun(app, [deno, "run", "-A", "@dramatis/dramatis/cli"], "tasks.ts", env);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
