// The Python Dramatiq interop harness: the real Dramatiq 2.2 (../shared/peers, extracted once
// per test process into a temp dir) under Debian's /usr/bin/python3, with the actor modules of
// tests/python. Python workers run as child processes and are stopped by pid (SIGTERM, then
// SIGKILL of their process group); `cli.ts worker` processes likewise.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { scriptArgs } from "./_runtime.ts";

export const PYTHON = "/usr/bin/python3";
const root = fileURLToPath(new URL("..", import.meta.url));
// ../shared/peers from the project root (a worktree may sit one level deeper).
const TARBALL = [
  join(root, "..", "shared", "peers"),
  join(root, "..", "..", "shared", "peers"),
  "/work/shared/peers",
].map((d) => join(d, "dramatiq-2.2.0.tar.gz")).find((f) => existsSync(f)) ?? "";
export const PYTHON_DIR = join(root, "tests", "python");

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (e, stdout, stderr) => {
        resolve({ code: e ? (typeof e.code === "number" ? e.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

let extracted: Promise<string> | undefined;
const temps: string[] = [];

/** The directory holding the `dramatiq` package (extracted once). */
export function dramatiqDir(): Promise<string> {
  return extracted ??= (async () => {
    const tarball = TARBALL;
    const dir = mkdtempSync(join(tmpdir(), "dramatis-py-"));
    temps.push(dir);
    const r = await run("tar", ["xzf", tarball, "-C", dir]);
    if (r.code !== 0) throw new Error(`could not extract ${tarball}: ${r.stderr}`);
    return join(dir, "dramatiq-2.2.0");
  })();
}

/** Removes the extracted copy (call from `after`). */
export function cleanupPython(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
  extracted = undefined; // bun test runs every file in one process: the next one extracts again
}

/**
 * Why the Python interop tests cannot run here (a message for `skip`), or false. They need
 * /usr/bin/python3 with `modules` (Debian's python3-pika, python3-redis; .ci/run installs them).
 */
export async function pythonSkip(modules: string[]): Promise<string | false> {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing (apt-get install python3)`;
  if (!TARBALL) return "no ../shared/peers/dramatiq-2.2.0.tar.gz (Python Dramatiq's source)";
  const r = await run(PYTHON, ["-c", modules.map((m) => `import ${m}`).join("; ")]);
  if (r.code !== 0) {
    const debs = modules.map((m) => `python3-${m}`).join(" ");
    return `${PYTHON} cannot import ${modules.join(", ")} (apt-get install ${debs})`;
  }
  return false;
}

async function pythonEnv(env: Record<string, string>): Promise<Record<string, string>> {
  return {
    PYTHONPATH: `${await dramatiqDir()}:${PYTHON_DIR}`,
    PYTHONUNBUFFERED: "1",
    PYTHONDONTWRITEBYTECODE: "1",
    ...env,
  };
}

/** Runs a script of tests/python to completion. */
export async function runPython(script: string, args: string[], env: Record<string, string>) {
  const r = await run(PYTHON, [join(PYTHON_DIR, script), ...args], await pythonEnv(env));
  if (r.code !== 0) throw new Error(`python3 ${script} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

/** A long-running child process: its output so far, a way to wait for a line, to stop it. */
export interface Child {
  readonly pid: number;
  output(): string;
  /** Resolves when the output matches `pattern`; rejects after `timeout` or if it exits. */
  waitFor(pattern: RegExp, timeout?: number): Promise<void>;
  /** SIGTERM, then SIGKILL of the process group after `grace` ms; resolves on exit. */
  stop(grace?: number): Promise<number | null>;
  /** SIGKILL of the process group at once. */
  kill(): Promise<void>;
  readonly exited: Promise<number | null>;
}

function child(proc: ChildProcess): Child {
  let log = "";
  proc.stdout!.on("data", (d) => log += d);
  proc.stderr!.on("data", (d) => log += d);
  let done = false;
  const exited = new Promise<number | null>((r) =>
    proc.on("exit", (code) => {
      done = true;
      r(code);
    })
  );
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid!, signal);
    } catch {
      try {
        process.kill(proc.pid!, signal);
      } catch { /* gone */ }
    }
  };
  return {
    pid: proc.pid!,
    output: () => log,
    exited,
    async waitFor(pattern, timeout = 30_000) {
      const deadline = Date.now() + timeout;
      while (!pattern.test(log)) {
        if (done) throw new Error(`process exited before printing ${pattern}:\n${log}`);
        if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeout} ms:\n${log}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop(grace = 15_000) {
      if (done) return await exited;
      process.kill(proc.pid!, "SIGTERM");
      const timer = setTimeout(() => group("SIGKILL"), grace);
      const code = await exited;
      clearTimeout(timer);
      group("SIGKILL"); // whatever it left behind
      return code;
    },
    async kill() {
      group("SIGKILL");
      await exited;
    },
  };
}

/** Starts `python3 -m dramatiq interop_actors` (ready once every process said so). */
export async function startPythonWorker(
  env: Record<string, string>,
  options: { processes?: number; threads?: number; module?: string } = {},
): Promise<Child> {
  const processes = options.processes ?? 1;
  const args = [
    "-m",
    "dramatiq",
    options.module ?? "interop_actors",
    "-p",
    String(processes),
    "-t",
    String(options.threads ?? 1),
  ];
  const proc = spawn(PYTHON, args, {
    env: { ...process.env, ...await pythonEnv(env) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, killed as one
  });
  const c = child(proc);
  const ready = new RegExp(`(Worker process is ready for action[\\s\\S]*){${processes}}`);
  try {
    await c.waitFor(ready, 60_000);
  } catch (e) {
    await c.kill();
    throw e;
  }
  return c;
}

/** Starts `cli.ts worker MODULE ARGS...` of this runtime (ready once it says so). */
export async function startCliWorker(
  module: string,
  args: string[],
  env: Record<string, string>,
): Promise<Child> {
  const proc = spawn(process.execPath, [
    ...scriptArgs(join(root, "cli.ts")),
    "worker",
    module,
    ...args,
  ], {
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const c = child(proc);
  try {
    await c.waitFor(/Worker process is ready for action/, 60_000);
  } catch (e) {
    await c.kill();
    throw e;
  }
  return c;
}

/** Runs `cli.ts ARGS...` to completion. */
export async function runCli(args: string[], env: Record<string, string>) {
  return await run(process.execPath, [...scriptArgs(join(root, "cli.ts")), ...args], {
    NO_COLOR: "1",
    ...env,
  });
}

/** A JSON-lines file the actors of both sides append to. */
export function eventFile(): { path: string; read(): Record<string, unknown>[]; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-interop-"));
  const path = join(dir, "events.jsonl");
  writeFileSync(path, "");
  return {
    path,
    read: () => readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
