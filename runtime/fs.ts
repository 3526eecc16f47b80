// The file-system calls FileBroker (and the file result and rate-limiter backends, and the log
// file) need, for Deno and for Bun: the thin runtime adapter. Everything on the hot path is
// synchronous: a sync file call costs about 1 µs, an async one about 25 µs. Only fdatasync, which
// blocks for ~0.1 ms, has an async form.
//
// Deno gets Deno's own API, Bun gets node:fs. On Deno, importing node:fs costs ~25 ms of start-up
// in every isolate (each Web Worker too), so it is only loaded on Bun, where it is cheap.
import { BunFile, Deno, DenoFile, fs, isBun, isNotFound, type RawFile, report } from "./_fs_raw.ts";

export { isBun, isNotFound, type RawFile, setFsReporter } from "./_fs_raw.ts";
export { unrefTimer } from "./process.ts";

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
