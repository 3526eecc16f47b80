// The file-system calls FileBroker needs, for Deno and for Bun. Everything on the hot path is
// synchronous: a sync file call costs about 1 µs, an async one about 25 µs. Only fdatasync, which
// blocks for ~0.1 ms, has an async form.
import * as fs from "node:fs";
import { setImmediate as nodeSetImmediate } from "node:timers";
import { getLogger } from "../../_log.ts";

/** True on Bun, false on Deno. */
export const isBun: boolean = "Bun" in globalThis;

/** A file opened for positional reads and writes. */
export interface RawFile {
  readonly path: string;
  /** Reads up to `buf.length` bytes at `pos`; returns how many (0 at the end of the file). */
  read(buf: Uint8Array, pos: number): number;
  /** Writes all of `buf` at `pos`. */
  write(buf: Uint8Array, pos: number): void;
  /** The file's current size. */
  size(): number;
  truncate(length: number): void;
  /** `fdatasync`, off the main thread. */
  syncData(): Promise<void>;
  /** `fdatasync`, blocking. */
  syncDataSync(): void;
  /** `flock(LOCK_EX)`; blocks. */
  lock(): void;
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
  constructor(readonly path: string, private readonly f: Deno.FsFile) {}
  read(buf: Uint8Array, pos: number): number {
    this.f.seekSync(pos, Deno.SeekMode.Start);
    let n = 0;
    while (n < buf.length) {
      const r = this.f.readSync(n === 0 ? buf : buf.subarray(n));
      if (r === null || r === 0) break;
      n += r;
    }
    return n;
  }
  write(buf: Uint8Array, pos: number): void {
    this.f.seekSync(pos, Deno.SeekMode.Start);
    let n = 0;
    while (n < buf.length) n += this.f.writeSync(n === 0 ? buf : buf.subarray(n));
  }
  size(): number {
    return this.f.statSync().size;
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
const pid = (globalThis as { process?: { pid: number } }).process?.pid ?? 0;

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
  #breakStaleLock(): void {
    const h = new Float64Array(3);
    if (this.read(new Uint8Array(h.buffer), HOLDER_AT) < 24) return;
    const [holderPid, holderFd, since] = h;
    if (holderPid !== pid || holderFd === this.fd || Date.now() - since < STALE_LOCK_MS) return;
    getLogger("dramatis.broker.FileBroker").error(
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

/** Opens `path` for reading and writing; creates it when `create` is set. */
export function openFile(path: string, options: { create?: boolean } = {}): RawFile {
  if (isBun) {
    const flags = fs.constants.O_RDWR | (options.create ? fs.constants.O_CREAT : 0);
    return new BunFile(path, fs.openSync(path, flags, 0o644));
  }
  return new DenoFile(
    path,
    Deno.openSync(path, { read: true, write: true, create: options.create ?? false }),
  );
}

/** Like `openFile`, but returns `undefined` when the file does not exist. */
export function tryOpenFile(path: string): RawFile | undefined {
  try {
    return openFile(path);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/** The names of the entries of `dir`. */
export function listDir(dir: string): string[] {
  return fs.readdirSync(dir);
}

/** Deletes a file; false when it was not there. */
export function removeFile(path: string): boolean {
  try {
    fs.unlinkSync(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** Creates `dir` and its parents. */
export function makeDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
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
  for (const name of fs.readdirSync(dir)) {
    try {
      const s = fs.statSync(`${dir}/${name}`);
      if (s.isFile()) total += s.size;
    } catch { /* deleted meanwhile */ }
  }
  return total;
}

/** A directory watcher (inotify). `close()` stops it. */
export interface Watcher {
  close(): void;
}

/** Calls `onChange` whenever something in `dir` changes. */
export function watchDir(dir: string, onChange: () => void): Watcher {
  if (isBun) {
    const w = fs.watch(dir, { persistent: true }, () => onChange());
    w.on("error", () => {});
    return { close: () => w.close() };
  }
  const w = Deno.watchFs(dir, { recursive: false });
  (async () => {
    try {
      for await (const _ of w) onChange();
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

/** Runs `fn` after the current macrotask and its microtasks (cheap on both runtimes). */
export const setImmediate: (fn: () => void) => unknown = nodeSetImmediate as (
  fn: () => void,
) => unknown;

/** Lets the process exit while `timer` is pending. */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  if (typeof timer === "number") {
    if (!isBun) Deno.unrefTimer(timer);
  } else {
    (timer as { unref?: () => void }).unref?.();
  }
}
