// Helpers for the CLI end-to-end tests: the real CLI as a child process of this runtime, on the
// file broker in a temp directory, with messages sent from other processes.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { scriptArgs } from "./_runtime.ts";

export const root = fileURLToPath(new URL("..", import.meta.url));
export const cli = join(root, "cli.ts");
export const fixtures = join(root, "tests", "fixtures");

// These tests need a broker that several processes share (the file broker).
const shared = await import("../broker/url.ts").then((m) => {
  try {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-probe-"));
    void m.brokerFromUrl(`file://${dir}`).close();
    return true;
  } catch {
    return false;
  }
});
/** Test options of the end-to-end tests. */
export const e2e = { skip: shared ? false : "needs the file broker", timeout: 60_000 };

export interface Env {
  /** Processes started for this test: killed (with their descendants) on cleanup. */
  running: ChildProcess[];
  dir: string;
  out: string;
  env: Record<string, string>;
  /** A private copy of the tasks module (reload tests edit it). */
  tasks: string;
}

/** A temp directory with a file broker, an events file and a private copy of `fixture`. */
export function setup(fixture = "tasks.ts"): Env {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-cli-"));
  const out = join(dir, "out.jsonl");
  writeFileSync(out, "");
  const tasks = join(fixtures, `_tasks_${Date.now()}_${Math.random().toString(36).slice(2)}.ts`);
  copyFileSync(join(fixtures, fixture), tasks);
  return {
    running: [],
    dir,
    out,
    tasks,
    env: { DRAMATIS_BROKER: `file://${join(dir, "broker")}`, OUT_FILE: out, NO_COLOR: "1" },
  };
}

/** A failed test must not leave workers behind: kills each process and its descendants. */
export function cleanup(e: Env): void {
  for (const p of e.running) {
    if (p.exitCode !== null || p.signalCode !== null || !p.pid) continue;
    for (const pid of [...descendants(p.pid), p.pid]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  }
  rmSync(e.dir, { recursive: true, force: true });
  rmSync(e.tasks, { force: true });
}

/** The events the actors recorded, in order. */
export function events(e: Env): Record<string, unknown>[] {
  return readFileSync(e.out, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/** Sends a signal by pid: Deno's node:child_process reports a child it signalled through
 * `ChildProcess.kill()` as killed by that signal even when the child handled it and exited 0. */
export function signal(r: { proc: ChildProcess }, sig: NodeJS.Signals): void {
  process.kill(r.proc.pid!, sig);
}

export interface Running {
  proc: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts `cli.ts ...args`. `group: true` makes it the leader of a new process group (as a
 * shell makes a job), so that `process.kill(-pid, sig)` signals it as a terminal would.
 */
export function startCli(
  e: Env,
  args: string[],
  options: { group?: boolean; cwd?: string } = {},
): Running {
  const proc = spawn(process.execPath, [...scriptArgs(cli), ...args], {
    env: { ...process.env, ...e.env },
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.group ?? false,
  });
  let log = "";
  proc.stdout!.on("data", (d) => log += d);
  proc.stderr!.on("data", (d) => log += d);
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  e.running.push(proc);
  return { proc, log: () => log, exited };
}

/** Starts `cli.ts worker <tasks> ...args`. */
export function startWorker(e: Env, args: string[], options: { group?: boolean } = {}): Running {
  return startCli(e, ["worker", e.tasks, ...args], options);
}

/** Runs `cli.ts ...args` to its end. */
export async function runCli(
  e: Env,
  args: string[],
  options: { cwd?: string } = {},
): Promise<{ code: number | null; out: string; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [...scriptArgs(cli), ...args], {
    env: { ...process.env, ...e.env },
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  e.running.push(proc);
  let out = "", stdout = "", stderr = "";
  proc.stdout!.on("data", (d) => (out += d, stdout += d));
  proc.stderr!.on("data", (d) => (out += d, stderr += d));
  const code = await new Promise<number | null>((r) => proc.on("close", (c) => r(c)));
  return { code, out, stdout, stderr };
}

/** Asserts that `r` exited with `code` and printed exactly one line on stderr, matching `line`. */
export function oneLine(
  r: { code: number | null; stderr: string; out: string },
  code: number,
  line: RegExp,
): void {
  assert.equal(r.code, code, r.out);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `not one line:\n${r.stderr}`);
  assert.match(lines[0], /^dramatis: /);
  assert.match(lines[0], line);
}

/** Waits until `cond()` holds, or throws after `timeout` ms (with `log()` if given). */
export async function until(
  what: string,
  cond: () => boolean,
  timeout = 20_000,
  log?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${log ? `\n${log()}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Sends one message from a separate process: `cli.ts send`. */
export async function send(e: Env, actorName: string, args: unknown[]): Promise<void> {
  const r = await runCli(e, ["send", e.tasks, actorName, JSON.stringify(args)]);
  assert.equal(r.code, 0, r.out);
}

/** Sends many messages to one actor from one separate process. */
export function sendMany(e: Env, actorName: string, argsList: unknown[][]): Promise<void> {
  return sendAll(e, argsList.map((a) => [actorName, a]));
}

/** Sends `[actor, args]` messages, in this order, from one separate process. */
export async function sendAll(e: Env, messages: [string, unknown[]][]): Promise<void> {
  const script = join(e.dir, "producer.ts");
  writeFileSync(
    script,
    `import * as tasks from ${JSON.stringify(e.tasks)};\n` +
      `const actors = tasks as unknown as Record<string, { send(...a: unknown[]): Promise<unknown> }>;\n` +
      `for (const [name, args] of ${JSON.stringify(messages)} as [string, unknown[]][]) {\n` +
      `  await actors[name].send(...args);\n}\n` +
      `await tasks.work.broker.close();\n`,
  );
  const r = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, scriptArgs(script), {
      env: { ...process.env, ...e.env },
      stdio: "inherit",
    });
    p.on("exit", resolve);
  });
  assert.equal(r, 0);
}

/** The counters of `queue`, read by `cli.ts queues --json`. */
export async function queueStats(
  e: Env,
  queue = "default",
): Promise<{ ready: number; delayed: number; inFlight: number; dead: number }> {
  const r = await runCli(e, ["queues", e.tasks, "--json"]);
  assert.equal(r.code, 0, r.out);
  const q = JSON.parse(r.stdout).find((s: { queueName: string }) => s.queueName === queue);
  assert.ok(q, `no queue ${queue} in ${r.stdout}`);
  return q;
}

/** Every descendant of process `pid` (children first, depth first). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const kids = existsSync(`/proc/${pid}/task/${pid}/children`)
    ? readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean)
    : [];
  for (const k of kids) out.push(Number(k), ...descendants(Number(k)));
  return out;
}

/** Resolves after `ms` ms. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
