// The thin runtime adapter: what differs between Deno and Bun for the CLI (processes, signals,
// the environment). Deno gets its own API: on Deno, touching `process` (node compatibility)
// costs ~15 ms of start-up per isolate, and node:child_process more; on Bun they are native.

/** The runtime this code runs on. */
export const runtime: "deno" | "bun" = "Bun" in globalThis ? "bun" : "deno";

/** The parts of Deno's API used here. */
interface DenoApi {
  pid: number;
  ppid: number;
  args: string[];
  execPath(): string;
  cwd(): string;
  exit(code: number): never;
  kill(pid: number, signal: string): void;
  addSignalListener(signal: string, fn: () => void): void;
  env: { toObject(): Record<string, string> };
  Command: new (cmd: string, options: {
    args: string[];
    env: Record<string, string>;
    clearEnv: boolean;
    stdin: "null";
    stdout: "inherit";
    stderr: "inherit";
  }) => {
    spawn(): { pid: number; status: Promise<{ code: number; signal: string | null }> };
  };
}

/** The parts of node's `process` used here (Bun). */
interface NodeProcess {
  pid: number;
  ppid: number;
  argv: string[];
  execPath: string;
  env: Record<string, string | undefined>;
  cwd(): string;
  exit(code: number): never;
  kill(pid: number, signal?: string | number): void;
  on(signal: string, fn: () => void): void;
}

const deno = (globalThis as { Deno?: DenoApi }).Deno;
/** Only read on Bun (or when Deno lacks something). */
function node(): NodeProcess {
  return (globalThis as unknown as { process: NodeProcess }).process;
}

/** Lets the process exit while `timer` is pending (Deno: `Deno.unrefTimer`; Bun: `unref()`). */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  if (typeof timer === "number") {
    (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno?.unrefTimer(timer);
  } else {
    (timer as { unref?: () => void }).unref?.();
  }
}

/** Calls `fn` on each of these signals. */
export function onSignal(signals: string[], fn: (signal: string) => void): void {
  for (const s of signals) {
    if (deno) deno.addSignalListener(s, () => fn(s));
    else node().on(s, () => fn(s));
  }
}

/** The executable running this process. */
export function execPath(): string {
  return deno ? deno.execPath() : node().execPath;
}

/** The process arguments after the script (or after the binary, when compiled). */
export function args(): string[] {
  return deno ? deno.args : node().argv.slice(2);
}

/** Exits the process. */
export function exit(code: number): never {
  return deno ? deno.exit(code) : node().exit(code);
}

/** This process's id. */
export function pid(): number {
  return deno ? deno.pid : node().pid;
}

/** The parent process's id, read anew each call (it changes when the parent dies). */
export function ppid(): number {
  return deno ? deno.ppid : node().ppid;
}

/** The working directory. */
export function cwd(): string {
  return deno ? deno.cwd() : node().cwd();
}

/** The environment, as a plain object. */
export function environment(): Record<string, string> {
  if (deno) return deno.env.toObject();
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(node().env)) if (v !== undefined) out[k] = v;
  return out;
}

/** Sends `signal` to process `target`; false when there is no such process. */
export function kill(target: number, signal: "SIGTERM" | "SIGKILL" | "SIGINT"): boolean {
  try {
    if (deno) deno.kill(target, signal);
    else node().kill(target, signal);
    return true;
  } catch {
    return false;
  }
}

/** True when process `target` exists (signal 0; Deno's `kill` has no signal 0). */
export function isAlive(target: number): boolean {
  try {
    node().kill(target, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/** A child process started by `spawnProcess`. */
export interface ChildHandle {
  pid: number;
  /** Its exit code (128 + the signal number's usual stand-in, 9, when killed by a signal). */
  exited: Promise<number>;
}

/**
 * Starts `command` with `env`, stdin closed, stdout and stderr shared with this process.
 * Rejects `exited` (as exit code 3, "could not set up") when it cannot be started.
 */
export async function spawnProcess(
  command: string[],
  env: Record<string, string>,
): Promise<ChildHandle> {
  const [program, ...rest] = command;
  if (program === undefined) throw new TypeError("spawnProcess: the command is empty");
  if (deno) {
    const child = new deno.Command(program, {
      args: rest,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    const exited = child.status.then((s) => s.signal ? 128 + 9 : s.code);
    return { pid: child.pid, exited };
  }
  const { spawn } = await import("node:child_process");
  const proc = spawn(program, rest, {
    stdio: ["ignore", "inherit", "inherit"],
    env,
  });
  const exited = new Promise<number>((resolve, reject) => {
    proc.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
    proc.on("error", reject);
  });
  return { pid: proc.pid ?? -1, exited };
}

/** A listening HTTP server started by `serveHttp`. */
export interface HttpServer {
  /** The port it listens on (the one picked by the system when asked for 0). */
  readonly port: number;
  /** The host name it listens on. */
  readonly hostname: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/**
 * Serves `handler` on `hostname:port` (port 0: any free one), on Deno with `Deno.serve` and on
 * Bun with `Bun.serve`; resolves once it listens. The one HTTP server of the library (metrics
 * endpoint, dashboard).
 *
 * @example
 * ```ts ignore
 * const server = await serveHttp("127.0.0.1", 0, () => new Response("ok"));
 * console.log(server.port > 0); // true
 * await server.close();
 * ```
 */
export function serveHttp(
  hostname: string,
  port: number,
  handler: (request: Request) => Response | Promise<Response>,
): Promise<HttpServer> {
  const g = globalThis as {
    Deno?: {
      serve(
        options: {
          hostname: string;
          port: number;
          onListen?: (addr: { port: number }) => void;
        },
        handler: (request: Request) => Response | Promise<Response>,
      ): { shutdown(): Promise<void>; finished: Promise<void> };
    };
    Bun?: {
      serve(options: {
        hostname: string;
        port: number;
        fetch: (request: Request) => Response | Promise<Response>;
      }): { port: number; stop(closeActive?: boolean): Promise<void> | void };
    };
  };
  if (g.Bun) {
    const server = g.Bun.serve({ hostname, port, fetch: handler });
    return Promise.resolve({
      port: server.port,
      hostname,
      close: async () => {
        await server.stop(true);
      },
    });
  }
  if (!g.Deno) throw new Error("serveHttp: neither Deno nor Bun found; run on one of them.");
  const deno = g.Deno;
  return new Promise((resolve, reject) => {
    try {
      const server = deno.serve({
        hostname,
        port,
        onListen: (addr) =>
          resolve({
            port: addr.port,
            hostname,
            close: async () => {
              await server.shutdown();
              await server.finished;
            },
          }),
      }, handler);
    } catch (e) {
      reject(e);
    }
  });
}

/** `deno 2.9.6` or `bun 1.4.5`: the runtime and its version. */
export function runtimeVersion(): string {
  const g = globalThis as { Deno?: { version: { deno: string } }; Bun?: { version: string } };
  return g.Bun ? `bun ${g.Bun.version}` : `deno ${g.Deno?.version.deno ?? "?"}`;
}

/** This machine's host name ("unknown" where it may not be read, e.g. Deno without --allow-sys). */
export async function hostname(): Promise<string> {
  const g = globalThis as { Deno?: { hostname(): string } };
  try {
    return g.Deno ? g.Deno.hostname() : (await import("node:os")).hostname();
  } catch {
    return "unknown";
  }
}

const stderrEncoder = new TextEncoder();
/** Writes `line` and a newline to stderr, synchronously on Deno (console.error on Bun). */
export function writeStderr(line: string): void {
  const g = globalThis as { Deno?: { stderr: { writeSync(b: Uint8Array): number } } };
  if (g.Deno) {
    const bytes = stderrEncoder.encode(line + "\n");
    let off = 0;
    while (off < bytes.length) off += g.Deno.stderr.writeSync(bytes.subarray(off));
  } else {
    console.error(line);
  }
}

/** What `memoryUsage()` returns (bytes). */
export type MemoryUsage = { rss: number; heapUsed: number; heapTotal: number; external: number };

/** This isolate's memory figures: `Deno.memoryUsage()` on Deno, `process.memoryUsage()` on Bun. */
export function memoryUsage(): MemoryUsage {
  const g = globalThis as { Deno?: { memoryUsage(): MemoryUsage } };
  return g.Deno
    ? g.Deno.memoryUsage()
    : (node() as unknown as { memoryUsage(): MemoryUsage }).memoryUsage();
}

/**
 * Collects garbage in this isolate now, if the runtime lets code ask: on Deno only when started
 * with `--v8-flags=--expose-gc` (a full, or with `minor` a young-generation, collection); on
 * Bun always (`Bun.gc`, synchronous). Returns false when it cannot. (`collectGarbage` below
 * never collects on Deno.)
 *
 * @example
 * ```ts
 * import { requestGarbageCollection } from "./process.ts";
 * requestGarbageCollection();
 * ```
 */
export function requestGarbageCollection(minor = false): boolean {
  const g = globalThis as {
    gc?: (options?: { type: "minor" | "major" }) => void;
    Bun?: { gc(sync: boolean): void };
  };
  if (g.Bun) {
    g.Bun.gc(true);
    return true;
  }
  if (typeof g.gc !== "function") return false;
  g.gc({ type: minor ? "minor" : "major" });
  return true;
}

/**
 * Runs a full garbage collection now on Bun (`Bun.gc(true)`); does nothing on Deno, whose
 * collector needs no help. For a process that holds large typed arrays: Bun sizes its heap by
 * everything live, array buffers included, so their garbage can pile up to twice their size.
 *
 * @example
 * ```ts
 * import { collectGarbage } from "./process.ts";
 * collectGarbage();
 * ```
 */
export function collectGarbage(): void {
  (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc(true);
}
