// The files of runtime/fs.ts: an open file for positional reads and writes (`RawFile`), on Deno
// through Deno's API and on Bun through node:fs and libc's flock, and the handles both use.
import type * as NodeFs from "node:fs";
import { writeStderr } from "./process.ts";

/** Where this adapter reports what it notices; util/log.ts routes it to its loggers. */
export type Reporter = (level: "error" | "warning", logger: string, text: string) => void;
export let report: Reporter = (_level, _logger, text) => writeStderr(text);

/**
 * Routes what this adapter reports (a stale lock broken, a directory open to every user) to
 * `fn`; util/log.ts installs its loggers here, so this file needs no import of the logger.
 */
export function setFsReporter(fn: Reporter): void {
  report = fn;
}

/** True on Bun, false on Deno. */
export const isBun: boolean = "Bun" in globalThis;

/** node:fs, on Bun only. */
export const fs: typeof NodeFs = isBun
  ? (import.meta as unknown as { require(s: string): typeof NodeFs }).require("node:fs")
  : undefined as unknown as typeof NodeFs;

/** The parts of Deno's file API used here (declared here, so that tsc needs no Deno types). */
export interface DenoFsFile {
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
export const Deno = (globalThis as unknown as { Deno: DenoFsApi }).Deno;

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

export class DenoFile implements RawFile {
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

export class BunFile implements RawFile {
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
