/**
 * The supervisor behind `dramatis worker`: starts worker processes (each running Web Workers),
 * restarts them when they crash or ask to be recycled, and handles signals:
 * INT/TERM stop gracefully, a second INT/TERM stops at once, HUP reloads the code.
 *
 * @example
 * ```ts ignore
 * import { runSupervisor } from "./supervisor.ts";
 * const code = await runSupervisor({ modules: ["./tasks.ts"], processes: 1, threads: 2 });
 * ```
 * @module
 */
import { getLogger, type Logger } from "../util/log.ts";
import { EXIT } from "./_exit.ts";
import type { ProcessConfig } from "./_process.ts";
import {
  type ChildHandle,
  cwd,
  environment,
  execPath,
  isAlive,
  kill as killPid,
  onSignal,
  pid,
  runtime,
  spawnProcess,
} from "../runtime/process.ts";
import {
  exists,
  listDir,
  readText,
  removeFile,
  rename,
  statPath,
  watchDir as watchFiles,
  writeText,
} from "../runtime/fs.ts";
import { VERSION } from "../version.ts";
import { reportMemory } from "./_memory_report.ts";

/**
 * Options of `runSupervisor` (the CLI's `worker` flags).
 *
 * @example
 * ```ts
 * import type { SupervisorOptions } from "./supervisor.ts";
 * const o: SupervisorOptions = { modules: ["file:///app/tasks.ts"], threads: 2, concurrency: 8 };
 * ```
 */
export interface SupervisorOptions {
  /** Module URLs holding the actors. */
  modules: string[];
  /** Queues to consume (default: every queue the modules declare). */
  queues?: string[] | undefined;
  /** Worker processes. Default 1. */
  processes?: number | undefined;
  /** Web Workers per process. Default: the number of CPU cores. */
  threads?: number | undefined;
  /** Messages in flight per Web Worker. Default 8. */
  concurrency?: number | undefined;
  /** Consumer wait timeout in ms. Default 1000. */
  workerTimeout?: number;
  /** How long a graceful stop lets in-flight messages finish, in ms. Default 600_000. */
  shutdownTimeout?: number | undefined;
  /** How long past its time limit an actor that does not yield may run. Default 1000 ms. */
  hardLimitGrace?: number;
  /** Log level number (10 DEBUG .. 50 CRITICAL). Default 20 (INFO). */
  logLevel?: number;
  /** Reload when a .ts/.js file under this directory changes. */
  watch?: string | undefined;
  /** With `watch`: look for changes every second instead of using file system events. */
  watchPolling?: boolean;
  /** Write the supervisor's pid here. */
  pidFile?: string | undefined;
  /** Append log lines here instead of stderr (every process and Web Worker). */
  logFile?: string | undefined;
  /** How to start a worker process: the command and its leading arguments. */
  processCommand?: string[] | undefined;
  /** The Web Worker entry module URL. */
  webWorkerUrl?: string | undefined;
}

/**
 * The command that starts a worker process (`cli.ts __process <config>`) on this runtime, when
 * running from source. A compiled binary passes its own.
 *
 * @example
 * ```ts
 * import { defaultProcessCommand } from "./supervisor.ts";
 * console.log(defaultProcessCommand());
 * ```
 */
export function defaultProcessCommand(): string[] {
  const cli = new URL("../cli.ts", import.meta.url);
  if (runtime === "bun") return [execPath(), decodeURIComponent(cli.pathname)];
  // A smaller young generation than V8's default keeps a busy worker process's memory down
  // (measured: peak RSS 349 -> 220 MB, no loss of throughput); `--expose-gc` lets its isolates
  // collect when their heap grew (worker/_gc.ts). DENO_V8_FLAGS, when set, decides instead.
  const v8 = environment().DENO_V8_FLAGS
    ? []
    : [`--v8-flags=--max-semi-space-size=${SEMI_SPACE_MB},--expose-gc`];
  return [execPath(), "run", "-A", "--quiet", ...v8, ...denoConfig(), cli.href];
}

/**
 * `--config` naming the project's deno.json (the nearest one from the working directory up), so
 * that a worker process started from a remote copy of the CLI (JSR) resolves the project's bare
 * imports, as the CLI process does. Deno reads no configuration for a remote entry by itself.
 */
function denoConfig(): string[] {
  for (let dir = cwd(); dir; dir = dir.slice(0, dir.lastIndexOf("/"))) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      if (exists(`${dir}/${name}`)) return ["--config", `${dir}/${name}`];
    }
  }
  return [];
}

/** Stop signals this close to the first one (in ms) are the same stop, delivered twice. */
const SAME_STOP_MS = 100;

/** V8's young-generation semi-space for worker processes on Deno, in MB. */
const SEMI_SPACE_MB = 2;

interface Child {
  index: number;
  /** Set once the process started. */
  proc?: ChildHandle;
  exited: Promise<number>;
  startedAt: number;
}

/**
 * Runs worker processes until stopped by a signal. Resolves with the exit code.
 *
 * @example
 * ```ts ignore
 * import { runSupervisor } from "./supervisor.ts";
 * Deno.exit(await runSupervisor({ modules: [new URL("./tasks.ts", import.meta.url).href] }));
 * ```
 */
export async function runSupervisor(options: SupervisorOptions): Promise<number> {
  const logger = getLogger("dramatis.MainProcess");
  reportMemory("supervisor");
  const processes = options.processes ?? 1;
  const config: Omit<ProcessConfig, "index"> = {
    schedulesSince: Date.now(), // a restarted or reloaded process catches up the ticks in between
    modules: options.modules,
    queues: options.queues,
    threads: options.threads ?? navigator.hardwareConcurrency ?? 1,
    concurrency: options.concurrency ?? 8,
    workerTimeout: options.workerTimeout ?? 1000,
    shutdownTimeout: options.shutdownTimeout ?? 600_000,
    grace: options.hardLimitGrace ?? 1000,
    logLevel: options.logLevel ?? 20,
    logFile: options.logFile,
    webWorkerUrl: options.webWorkerUrl ?? new URL("./_web_worker.ts", import.meta.url).href,
  };
  const command = options.processCommand ?? defaultProcessCommand();
  logger.info(`Dramatis '${VERSION}' is booting up (${runtime}).`);

  if (options.pidFile && !writePidFile(options.pidFile, logger)) return EXIT.PIDFILE;

  const children: (Child | undefined)[] = [];
  let stopping = false;
  let reloading = false;
  let exitCode: number = EXIT.OK;
  const restarts = new Map<number, number>();
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => resolveDone = r);

  const env = environment();
  /** What a stop sends to worker processes (also to one still starting when it was asked). */
  let stopSignal: "SIGTERM" | "SIGKILL" = "SIGTERM";

  function start(index: number): void {
    const full: ProcessConfig = { ...config, index };
    const started = spawnProcess([...command, "__process", JSON.stringify(full)], env);
    const child: Child = {
      index,
      exited: started.then((p) => p.exited).catch((e) => {
        logger.critical(`Could not start a worker process: ${(e as Error).message}`);
        return EXIT.CONNECT;
      }),
      startedAt: Date.now(),
    };
    void started.then((p) => {
      child.proc = p;
      // A stop requested while it was starting.
      if (stopping || reloading) kill(child, stopSignal);
    }, () => {});
    children[index] = child;
    void child.exited.then((code) => onExit(child, code));
  }

  function onExit(child: Child, code: number): void {
    if (children[child.index] !== child) return;
    children[child.index] = undefined;
    if (stopping) {
      if (children.every((c) => !c)) resolveDone();
      return;
    }
    if (reloading) return; // restarted by reload()
    if (code === EXIT.RECYCLE) {
      logger.info(`Worker process ${child.index} recycled (a Web Worker was stuck).`);
      start(child.index);
      return;
    }
    if (code === EXIT.IMPORT || code === EXIT.CONNECT) {
      logger.critical(`Worker process ${child.index} failed to boot (exit code ${code}).`);
      exitCode = code;
      void stop(false);
      return;
    }
    const n = (restarts.get(child.index) ?? 0) + 1;
    restarts.set(child.index, Date.now() - child.startedAt > 60_000 ? 1 : n);
    const delay = Math.min(30_000, 500 * 2 ** (restarts.get(child.index)! - 1));
    logger.error(
      `Worker process ${child.index} exited unexpectedly (code ${code}); restarting it in ${delay} ms.`,
    );
    setTimeout(() => {
      if (!stopping) start(child.index);
    }, delay);
  }

  async function stop(graceful: boolean): Promise<void> {
    stopping = true;
    stopSignal = graceful ? "SIGTERM" : "SIGKILL";
    const live = children.filter((c): c is Child => !!c);
    if (live.length === 0) return resolveDone();
    for (const c of live) kill(c, stopSignal);
    await done;
  }

  async function reload(reason: string): Promise<void> {
    if (stopping || reloading) return;
    reloading = true;
    logger.info(
      `Reloading (${reason}): stopping worker processes gracefully, then restarting them.`,
    );
    const live = children.filter((c): c is Child => !!c);
    for (const c of live) kill(c, "SIGTERM");
    await Promise.all(live.map((c) => c.exited));
    reloading = false;
    if (stopping) return;
    for (const c of live) start(c.index);
  }

  // One stop may arrive more than once: `timeout` signals this process and then its group, and
  // a terminal or systemd signals the group this process leads. Signals that close to the first
  // are the same stop; a second stop, from a user, comes later.
  let signals = 0, firstAt = 0;
  onSignal(["SIGINT", "SIGTERM"], (sig) => {
    if (signals > 0 && performance.now() - firstAt < SAME_STOP_MS) return;
    if (++signals === 1) {
      firstAt = performance.now();
      logger.info(`Received ${sig}: stopping gracefully (send it again to stop at once).`);
      void stop(true);
    } else {
      logger.warning(`Received ${sig} again: killing worker processes.`);
      exitCode = EXIT.KILLED;
      stopSignal = "SIGKILL";
      for (const c of children) if (c) kill(c, "SIGKILL");
    }
  });
  onSignal(["SIGHUP"], () => void reload("SIGHUP"));
  const unwatch = options.watch
    ? (options.watchPolling ? pollDir : watchDir)(options.watch, () => void reload("file change"))
    : undefined;
  if (options.watch) {
    logger.info(
      `Watching ${options.watch} for changes to .ts/.js files${
        options.watchPolling ? " (polling every second)" : ""
      }.`,
    );
  }

  for (let i = 0; i < processes; i++) start(i);
  await done;
  unwatch?.();
  if (options.pidFile) removePidFile(options.pidFile);
  logger.info("Worker processes stopped. Bye.");
  return exitCode;
}

function kill(child: Child, signal: "SIGTERM" | "SIGKILL"): void {
  if (child.proc) killPid(child.proc.pid, signal); // false: already gone
}

function writePidFile(path: string, logger: Logger): boolean {
  try {
    if (exists(path)) {
      // As Dramatiq: a file that does not hold a pid may be anything (a typo for a real file):
      // never overwrite it. Only a pid of a dead process is stale.
      const text = readText(path);
      if (!/^\s*\d+\s*$/.test(text)) {
        const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
        logger.critical(
          `Pid file ${path} does not hold a pid (it holds ${shown}): it may be another file, ` +
            `so it is left as it is. Choose another path, or remove it.`,
        );
        return false;
      }
      const other = Number(text.trim());
      if (other > 0 && other !== pid() && isAlive(other)) {
        logger.critical(
          `Pid file ${path} names a running process (${other}). Stop it, or remove the file.`,
        );
        return false;
      }
    }
    // Written whole or not at all (a crash mid-write leaves no empty pid file behind).
    const tmp = `${path}.${pid()}.tmp`;
    writeText(tmp, `${pid()}\n`);
    rename(tmp, path);
    return true;
  } catch (e) {
    logger.critical(`Could not write pid file ${path}: ${(e as Error).message}`);
    return false;
  }
}

function removePidFile(path: string): void {
  try {
    removeFile(path);
  } catch { /* cannot: leave it */ }
}

/** Source files, whose change reloads the code. */
const SOURCE = /\.(ts|tsx|js|mjs|jsx)$/;
/** Directories a polling watch does not walk. */
const SKIP_DIRS = new Set(["node_modules", ".git", ".dramatis"]);

/**
 * Calls `onChange` when a source file under `dir` is added, removed or modified, looking every
 * POLL_MS (for file systems without change events: network mounts, some containers).
 */
function pollDir(dir: string, onChange: () => void): () => void {
  const snapshot = (): Map<string, number> => {
    const files = new Map<string, number>();
    const walk = (d: string) => {
      let names: string[];
      try {
        names = listDir(d);
      } catch {
        return; // removed meanwhile, or unreadable
      }
      for (const name of names) {
        const path = `${d}/${name}`;
        const s = statPath(path);
        if (!s) continue;
        if (!s.isFile) {
          if (!SKIP_DIRS.has(name)) walk(path);
        } else if (SOURCE.test(name)) files.set(path, s.mtimeMs * 1e3 + s.size);
      }
    };
    walk(dir.replace(/\/+$/, "") || "/");
    return files;
  };
  let last = snapshot();
  const timer = setInterval(() => {
    const now = snapshot();
    const changed = now.size !== last.size || [...now].some(([f, v]) => last.get(f) !== v);
    last = now;
    if (changed) onChange();
  }, POLL_MS);
  return () => clearInterval(timer);
}

/** How often a polling watch looks, in ms. */
const POLL_MS = 1_000;

function watchDir(dir: string, onChange: () => void): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const fire = (file: string | null | undefined) => {
    if (file && !SOURCE.test(file)) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, 100);
  };
  const w = watchFiles(dir, fire, { recursive: true });
  return () => {
    clearTimeout(timer);
    w.close();
  };
}
