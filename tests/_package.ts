// Helpers for the tests that use dramatis as a user does: the packed npm package installed into
// an empty folder, commands started by their bin names, and waiting on what they print.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));
/** Where `npm ci` put the pinned toolchain (deno, bun). */
export const toolchainBin = join(root, "node_modules", ".bin");
/** PATH with the toolchain first: the bin's `#!/usr/bin/env bun` finds Bun there. */
export const toolchainPath = `${toolchainBin}:${process.env.PATH}`;

type Env = Record<string, string | undefined>;

/** The environment of a child: ours, NO_COLOR, then `env` (an undefined value removes a key). */
function childEnv(env: Env = {}): Record<string, string> {
  const all: Env = { ...process.env, NO_COLOR: "1", ...env };
  return Object.fromEntries(
    Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined),
  );
}

/** Runs a command to completion; fails the test with its output unless it exits 0. */
export function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Env } = {},
): string {
  const r = spawnSync(cmd, args, {
    cwd: options.cwd,
    env: childEnv(options.env),
    encoding: "utf8",
  });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** `npm pack` into `dir`; returns the tarball's path. */
export function pack(dir: string): string {
  const [{ filename }] = JSON.parse(
    run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: root }),
  ) as { filename: string }[];
  return join(dir, filename);
}

/**
 * An empty folder with the tarball installed by `bun add`, offline: the registry points at a
 * closed port and the cache is empty, so anything fetched from the network fails the install.
 */
export function bunProject(dir: string, tarball: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), '{ "name": "app", "private": true }\n');
  run(join(toolchainBin, "bun"), ["add", tarball], {
    cwd: dir,
    env: {
      BUN_CONFIG_REGISTRY: "http://127.0.0.1:9/",
      BUN_INSTALL_CACHE_DIR: join(dir, ".bun-cache"),
      NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/",
    },
  });
  return dir;
}

/** Serves the files under `dir` over HTTP, TypeScript as TypeScript (as JSR serves a package). */
export async function serveFiles(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const { createServer } = await import("node:http");
  const server = createServer((req, res) => {
    const file = join(dir, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/typescript" }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A long-running child process and everything it printed so far. */
export interface Started {
  pid: number;
  log(): string;
  /** False once it exited. */
  running(): boolean;
  exited: Promise<number | null>;
}

/** Starts `cmd` (stdout and stderr collected together). */
export function start(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Env } = {},
): Started {
  const child = spawn(cmd, args, {
    cwd: options.cwd,
    env: childEnv(options.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout!.on("data", (d) => log += d);
  child.stderr!.on("data", (d) => log += d);
  let running = true;
  const exited = new Promise<number | null>((r) =>
    child.on("exit", (code) => {
      running = false;
      r(code);
    })
  );
  return { pid: child.pid!, log: () => log, running: () => running, exited };
}

/** `run`, without blocking this process's event loop (a server in the test may be needed). */
export async function runAsync(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Env } = {},
): Promise<string> {
  const p = start(cmd, args, options);
  const code = await p.exited;
  assert.equal(code, 0, `${cmd} ${args.join(" ")}: exit ${code}\n${p.log()}`);
  return p.log();
}

/** Stops `proc` at once if a failed test left it running. */
export function killIfRunning(proc: Started): void {
  if (proc.running()) process.kill(proc.pid, "SIGKILL");
}

/**
 * Waits (up to 30 s: the machine is shared) until `ok()`; fails with `what` and the log of
 * `proc`, at once if `proc` exits first.
 */
export async function until(what: string, ok: () => boolean, proc: Started): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!ok()) {
    assert.ok(Date.now() < deadline && proc.running(), `${what}:\n${proc.log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
