// The file-system calls FileBroker (and the file result and rate-limiter backends, and the log
// file) need, for Deno and for Bun: the thin runtime adapter. Everything on the hot path is
// synchronous: a sync file call costs about 1 µs, an async one about 25 µs. Only fdatasync, which
// blocks for ~0.1 ms, has an async form.
//
// Deno gets Deno's own API, Bun gets node:fs. On Deno, importing node:fs costs ~25 ms of start-up
// in every isolate (each Web Worker too), so it is only loaded on Bun, where it is cheap.
import type * as NodeFs from "node:fs";
import { writeStderr } from "./process.ts";

/** Where this adapter reports what it notices; util/log.ts routes it to its loggers. */
type Reporter = (level: "error" | "warning", logger: string, text: string) => void;
let report: Reporter = (_level, _logger, text) => writeStderr(text);

/**
 * Routes what this adapter reports (a stale lock broken, a directory open to every user) to
 * `fn`; util/log.ts installs its loggers here, so this file needs no import of the logger.
 */
export function setFsReporter(fn: Reporter): void {
  report = fn;
}
export { unrefTimer } from "./process.ts";

/** True on Bun, false on Deno. */
export const isBun: boolean = "Bun" in globalThis;

/** node:fs, on Bun only. */
const fs: typeof NodeFs = isBun
  ? (import.meta as unknown as { require(s: string): typeof NodeFs }).require("node:fs")
  : undefined as unknown as typeof NodeFs;

/** The parts of Deno's file API used here (declared here, so that tsc needs no Deno types). */
interface DenoFsFile {
  seekSync(offset: number, whence: number): number;
  readSync(buf: Uint8Array): number | null;
  writeSync(buf: Uint8Array): number;
  statSync(): { size: number; nlink: number | null };
  truncateSync(length?: number): void;
  syncData(): Promise<void>;
  syncDataSync(): void;
  syncSync(): void;
  lockSync(exclusive?: boolean): void;
  tryLockSync(exclusive?: boolean): boolean;
  unlockSync(): void;
  close(): void;
}
interface DenoFsApi {
  errors: { NotFound: new () => Error; AlreadyExists: new () => Error };
  SeekMode: { Start: number };
  openSync(path: string, options: {
    read?: boolean;
    write?: boolean;
    create?: boolean;
    createNew?: boolean;
    mode?: number;
  }): DenoFsFile;
  chmodSync(path: string, mode: number): void;
  readDirSync(path: string): Iterable<{ name: string }>;
  removeSync(path: string): void;
  mkdirSync(path: string, options: { recursive?: boolean; mode?: number }): void;
  statSync(path: string): {
    size: number;
    mode: number | null;
    mtime: Date | null;
    isFile: boolean;
  };
  readTextFileSync(path: string): string;
  writeTextFileSync(path: string, text: string, options: { append?: boolean; mode?: number }): void;
  renameSync(from: string, to: string): void;
  watchFs(path: string, options: { recursive: boolean }): AsyncIterable<{ paths: string[] }> & {
    close(): void;
  };
}
/** Deno's API, on Deno only (read only where `isBun` is false). */
const Deno = (globalThis as unknown as { Deno: DenoFsApi }).Deno;

/** A file opened for positional reads and writes. */
export interface RawFile {
  readonly path: string;
  /** Reads up to `buf.length` bytes at `pos`; returns how many (0 at the end of the file). */
  read(buf: Uint8Array, pos: number): number;
  /** Writes all of `buf` at `pos`. */
  write(buf: Uint8Array, pos: number): void;
  /** The file's current size. */
  size(): number;
  /** Size and number of names (0 once the file was deleted while open), in one `fstat`. */
  stat(): { size: number; links: number };
  truncate(length: number): void;
  /** `fdatasync`, off the main thread. */
  syncData(): Promise<void>;
  /** `fdatasync`, blocking. */
  syncDataSync(): void;
  /** `flock(LOCK_EX)`; blocks. */
  lock(): void;
  /** `flock(LOCK_EX | LOCK_NB)`: true when the lock was taken, false when someone holds it. */
  tryLock(): boolean;
  /** `flock(LOCK_UN)`. */
  unlock(): void;
  /** The OS file descriptor where the runtime exposes it (Bun), else -1. */
  readonly fd: number;
  close(): void;
}

/** True when `e` says the file does not exist. */
export function isNotFound(e: unknown): boolean {
  if (!isBun && e instanceof Deno.errors.NotFound) return true;
  return (e as { code?: string } | null)?.code === "ENOENT";
}

// ---------------------------------------------------------------------------------------------
// Deno

class DenoFile implements RawFile {
  readonly fd = -1;
  /** The file offset, when known: Deno has no pread, and a seek to where we are is wasted. */
  #pos = -1;
  constructor(readonly path: string, private readonly f: DenoFsFile) {}
  #seek(pos: number): void {
    if (this.#pos === pos) return;
    this.#pos = -1;
    this.f.seekSync(pos, Deno.SeekMode.Start);
    this.#pos = pos;
  }
  read(buf: Uint8Array, pos: number): number {
    this.#seek(pos);
    this.#pos = -1;
    let n = 0;
    while (n < buf.length) {
      const r = this.f.readSync(n === 0 ? buf : buf.subarray(n));
      if (r === null || r === 0) break;
      n += r;
    }
    this.#pos = pos + n;
    return n;
  }
  write(buf: Uint8Array, pos: number): void {
    this.#seek(pos);
    this.#pos = -1;
    let n = 0;
    while (n < buf.length) n += this.f.writeSync(n === 0 ? buf : buf.subarray(n));
    this.#pos = pos + n;
  }
  size(): number {
    return this.f.statSync().size;
  }
  stat(): { size: number; links: number } {
    const s = this.f.statSync();
    return { size: s.size, links: s.nlink ?? 1 };
  }
  truncate(length: number): void {
    this.f.truncateSync(length);
  }
  syncData(): Promise<void> {
    return this.f.syncData();
  }
  syncDataSync(): void {
    this.f.syncDataSync();
  }
  lock(): void {
    this.f.lockSync(true);
  }
  tryLock(): boolean {
    return this.f.tryLockSync(true);
  }
  unlock(): void {
    this.f.unlockSync();
  }
  close(): void {
    try {
      this.f.close();
    } catch { /* already closed */ }
  }
}

// ---------------------------------------------------------------------------------------------
// Bun

interface Libc {
  flock(fd: number, op: number): number;
}
let libc: Libc | undefined;
function bunLibc(): Libc {
  if (libc) return libc;
  // A non-literal specifier so that `deno check` does not try to resolve "bun:ffi".
  const spec = ["bun", "ffi"].join(":");
  const ffi = (import.meta as unknown as { require(s: string): BunFfi }).require(spec);
  const lib = ffi.dlopen(ffi.suffix === "dylib" ? "libc.dylib" : "libc.so.6", {
    flock: { args: [ffi.FFIType.i32, ffi.FFIType.i32], returns: ffi.FFIType.i32 },
  });
  return libc = lib.symbols as unknown as Libc;
}
interface BunFfi {
  suffix: string;
  FFIType: { i32: number };
  dlopen(
    path: string,
    symbols: Record<string, { args: number[]; returns: number }>,
  ): { symbols: Record<string, (...args: number[]) => number> };
}

const LOCK_EX = 2, LOCK_NB = 4, LOCK_UN = 8;
/** After waiting this long for a lock held by a descriptor of this very process, close it. */
const STALE_LOCK_MS = 10_000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const HOLDER_AT = 64;
/** This process (Bun only: on Deno, reading `process` costs start-up time). */
const pid = isBun ? (globalThis as unknown as { process: { pid: number } }).process.pid : 0;

class BunFile implements RawFile {
  #holder = new Float64Array(3);
  constructor(readonly path: string, readonly fd: number) {}
  read(buf: Uint8Array, pos: number): number {
    let n = 0;
    while (n < buf.length) {
      const r = fs.readSync(this.fd, buf, n, buf.length - n, pos + n);
      if (r <= 0) break;
      n += r;
    }
    return n;
  }
  write(buf: Uint8Array, pos: number): void {
    let n = 0;
    while (n < buf.length) n += fs.writeSync(this.fd, buf, n, buf.length - n, pos + n);
  }
  size(): number {
    return fs.fstatSync(this.fd).size;
  }
  stat(): { size: number; links: number } {
    const s = fs.fstatSync(this.fd);
    return { size: s.size, links: s.nlink };
  }
  truncate(length: number): void {
    fs.ftruncateSync(this.fd, length);
  }
  syncData(): Promise<void> {
    return new Promise((resolve, reject) =>
      fs.fdatasync(this.fd, (e) => e ? reject(e) : resolve())
    );
  }
  syncDataSync(): void {
    fs.fdatasyncSync(this.fd);
  }
  // Bun does not close the files of a terminated Web Worker, so a Worker terminated inside a
  // critical section would hold the lock forever. The holder therefore writes (pid, fd, time)
  // into the lock file, and a waiter that sees its own process hold the lock for too long closes
  // that descriptor (see docs/file-broker.md).
  lock(): void {
    const c = bunLibc();
    if (c.flock(this.fd, LOCK_EX | LOCK_NB) !== 0) {
      const start = Date.now();
      let wait = 0.02;
      for (;;) {
        Atomics.wait(sleeper, 0, 0, wait);
        if (c.flock(this.fd, LOCK_EX | LOCK_NB) === 0) break;
        wait = Math.min(wait * 2, 2);
        if (Date.now() - start > STALE_LOCK_MS) this.#breakStaleLock();
      }
    }
    this.#holder[0] = pid;
    this.#holder[1] = this.fd;
    this.#holder[2] = Date.now();
    this.write(new Uint8Array(this.#holder.buffer), HOLDER_AT);
  }
  tryLock(): boolean {
    return bunLibc().flock(this.fd, LOCK_EX | LOCK_NB) === 0;
  }
  #breakStaleLock(): void {
    const h = new Float64Array(3);
    if (this.read(new Uint8Array(h.buffer), HOLDER_AT) < 24) return;
    const holderPid = h[0]!, holderFd = h[1]!, since = h[2]!;
    if (holderPid !== pid || holderFd === this.fd || Date.now() - since < STALE_LOCK_MS) return;
    report(
      "error",
      "dramatis.broker.FileBroker",
      `${this.path} has been locked for ${Date.now() - since} ms by descriptor ${holderFd} of ` +
        `this process, left by a terminated Web Worker: closing it.`,
    );
    try {
      fs.closeSync(holderFd);
    } catch { /* already closed */ }
  }
  unlock(): void {
    bunLibc().flock(this.fd, LOCK_UN);
  }
  close(): void {
    try {
      fs.closeSync(this.fd);
    } catch { /* already closed */ }
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Who may use the files FileBroker and the file backends write: `"owner"` (the default: the
 * directory is created 0700 and files 0600, as PostgreSQL does with its data directory),
 * `"group"` (0770 and 0660: processes of several users of the directory's group share the
 * queues) or `"group-read"` (0750 and 0640: the group may only read them, e.g. a backup).
 *
 * @example
 * ```ts
 * import type { FileAccess } from "./fs.ts";
 * const access: FileAccess = "group"; // new FileBroker({ dir, access })
 * ```
 */
export type FileAccess = "owner" | "group" | "group-read";

/** The modes of a new directory and of a new file for `access`. */
export function accessModes(access: FileAccess = "owner"): { dir: number; file: number } {
  if (access === "owner") return { dir: 0o700, file: 0o600 };
  if (access === "group") return { dir: 0o770, file: 0o660 };
  if (access === "group-read") return { dir: 0o750, file: 0o640 };
  throw new TypeError(
    `access must be "owner", "group" or "group-read", got ${JSON.stringify(access)}: "owner" ` +
      `keeps the files to this user (the default), "group" shares them with the directory's ` +
      `group, "group-read" lets the group read them.`,
  );
}

/** True when `e` says the file exists already. */
function isAlreadyExists(e: unknown): boolean {
  if (!isBun && e instanceof Deno.errors.AlreadyExists) return true;
  return (e as { code?: string } | null)?.code === "EEXIST";
}

function openRaw(path: string, create: "no" | "yes" | "new" | "read", mode: number): RawFile {
  if (isBun) {
    const c = fs.constants;
    const flags = (create === "read" ? c.O_RDONLY : c.O_RDWR) |
      (create === "yes" || create === "new" ? c.O_CREAT : 0) | (create === "new" ? c.O_EXCL : 0);
    return new BunFile(path, fs.openSync(path, flags, mode));
  }
  return new DenoFile(
    path,
    Deno.openSync(path, {
      read: true,
      write: create !== "read",
      create: create === "yes",
      createNew: create === "new",
      mode,
    }),
  );
}

/**
 * Opens `path` for reading and writing; creates it when `create` is set, with `mode` (default
 * 0600). A mode that grants the group or others more than the umask allows is applied with
 * chmod to a file this call created (and only then: the file may belong to another user).
 */
export function openFile(
  path: string,
  options: { create?: boolean; mode?: number; readOnly?: boolean } = {},
): RawFile {
  const mode = options.mode ?? 0o600;
  if (options.readOnly) return openRaw(path, "read", mode);
  if (!options.create) return openRaw(path, "no", mode);
  if ((mode & 0o077) === 0) return openRaw(path, "yes", mode);
  try {
    const file = openRaw(path, "new", mode);
    chmod(path, mode);
    return file;
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
    return openRaw(path, "no", mode);
  }
}

function chmod(path: string, mode: number): void {
  if (isBun) fs.chmodSync(path, mode);
  else Deno.chmodSync(path, mode);
}

/** Like `openFile`, but returns `undefined` when the file does not exist. */
export function tryOpenFile(
  path: string,
  options: { readOnly?: boolean } = {},
): RawFile | undefined {
  try {
    return openFile(path, options);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** The names of the entries of `dir`. */
export function listDir(dir: string): string[] {
  if (isBun) return fs.readdirSync(dir);
  const names: string[] = [];
  for (const e of Deno.readDirSync(dir)) names.push(e.name);
  return names;
}

/** Deletes a file; false when it was not there. */
export function removeFile(path: string): boolean {
  try {
    if (isBun) fs.unlinkSync(path);
    else Deno.removeSync(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** Directories already warned about being open to every user. */
const warnedDirs = new Set<string>();

/**
 * Creates `dir` and its parents with `mode` (default 0700; a group mode is applied exactly,
 * whatever the umask). An existing directory is left as it is, with a warning when every local
 * user may enter it.
 */
export function makeDir(dir: string, mode = 0o700): void {
  const before = statMode(dir);
  if (before !== undefined) {
    if ((before & 0o007) !== 0 && !warnedDirs.has(dir)) {
      warnedDirs.add(dir);
      report(
        "warning",
        "dramatis",
        `${dir} is open to every local user (mode 0${(before & 0o777).toString(8)}): they can ` +
          `read the messages in it. Run chmod ${(mode & 0o777).toString(8)} ${dir}.`,
      );
    }
    return;
  }
  if (isBun) fs.mkdirSync(dir, { recursive: true, mode });
  else Deno.mkdirSync(dir, { recursive: true, mode });
  if ((mode & 0o077) !== 0) chmod(dir, mode);
}

/** The permission bits of `path`, or `undefined` when it does not exist. */
export function statMode(path: string): number | undefined {
  try {
    if (isBun) return fs.statSync(path).mode & 0o7777;
    return (Deno.statSync(path).mode ?? 0) & 0o7777;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** True when `path` exists. */
export function exists(path: string): boolean {
  return statPath(path) !== undefined;
}

/** Size, modification time and kind of `path`, or `undefined` when it does not exist. */
export function statPath(
  path: string,
): { size: number; mtimeMs: number; isFile: boolean } | undefined {
  try {
    if (isBun) {
      const s = fs.statSync(path);
      return { size: s.size, mtimeMs: s.mtimeMs, isFile: s.isFile() };
    }
    const s = Deno.statSync(path);
    return { size: s.size, mtimeMs: s.mtime?.getTime() ?? 0, isFile: s.isFile };
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** The whole file as UTF-8 text. */
export function readText(path: string): string {
  return isBun ? fs.readFileSync(path, "utf8") : Deno.readTextFileSync(path);
}

/**
 * Writes (or, with `append`, appends) UTF-8 text; creates the file if needed, with `mode` when
 * given (applied exactly when it grants the group or others anything).
 */
export function writeText(
  path: string,
  text: string,
  options: { append?: boolean; mode?: number } = {},
): void {
  const { append = false, mode } = options;
  if (isBun) {
    if (append) fs.appendFileSync(path, text, mode === undefined ? undefined : { mode });
    else fs.writeFileSync(path, text, mode === undefined ? undefined : { mode });
  } else {
    Deno.writeTextFileSync(path, text, mode === undefined ? { append } : { append, mode });
  }
  if (!append && mode !== undefined && (mode & 0o077) !== 0) chmod(path, mode);
}

/** Renames `from` to `to`, replacing `to` (atomic on one file system). */
export function rename(from: string, to: string): void {
  if (isBun) fs.renameSync(from, to);
  else Deno.renameSync(from, to);
}

/** fsyncs a directory, so that files created or deleted in it survive a power loss. */
export function syncDir(dir: string): void {
  if (isBun) {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } else {
    const f = Deno.openSync(dir, { read: true });
    try {
      f.syncSync();
    } finally {
      f.close();
    }
  }
}

/** The total size of the regular files in `dir`. */
export function dirSize(dir: string): number {
  let total = 0;
  for (const name of listDir(dir)) {
    const s = statPath(`${dir}/${name}`);
    if (s?.isFile) total += s.size;
  }
  return total;
}

/** A directory watcher (inotify). `close()` stops it. */
export interface Watcher {
  close(): void;
}

/**
 * Calls `onChange` (with the changed entry's name, when known) whenever something in `dir`
 * changes; with `recursive`, in its subdirectories too.
 */
export function watchDir(
  dir: string,
  onChange: (name?: string) => void,
  options: { recursive?: boolean } = {},
): Watcher {
  const recursive = options.recursive ?? false;
  if (isBun) {
    const w = fs.watch(
      dir,
      { persistent: true, recursive },
      (_event, name) => onChange(name ?? undefined),
    );
    w.on("error", () => {});
    return { close: () => w.close() };
  }
  const w = Deno.watchFs(dir, { recursive });
  (async () => {
    try {
      for await (const event of w) {
        if (event.paths.length === 0) onChange();
        for (const p of event.paths) onChange(p.slice(p.lastIndexOf("/") + 1));
      }
    } catch { /* closed */ }
  })();
  return {
    close: () => {
      try {
        w.close();
      } catch { /* already closed */ }
    },
  };
}

/**
 * Runs `fn` after the current macrotask and its microtasks. The global is looked up at each call:
 * on Deno, touching it loads node timers (~7 ms), which should not happen at import.
 */
export function setImmediate(fn: () => void): void {
  (globalThis as unknown as { setImmediate(fn: () => void): unknown }).setImmediate(fn);
}
