/**
 * `FileResultBackend`: results in a directory, shared by every process on one machine.
 *
 * @example
 * ```ts
 * import { FileResultBackend } from "./file.ts";
 * const backend = new FileResultBackend({ dir: await Deno.makeTempDir() });
 * ```
 * @module
 */
import {
  accessModes,
  exists,
  type FileAccess,
  listDir,
  makeDir,
  readText,
  removeFile,
  rename,
  statPath,
  watchDir,
  type Watcher,
  writeText,
} from "../runtime/fs.ts";
import { ResultBackend, type ResultBackendOptions } from "./backend.ts";
import { md5Hex } from "../util/md5.ts";

interface Stored {
  expires: number;
  value: string;
}

/**
 * Stores each result in its own file under `dir` (written to a temporary name, then renamed, so a
 * reader never sees half a file). A blocking `getResult` waits on a file-system watch, with a
 * short poll as a fallback, so it wakes within milliseconds without busy polling. Expired results
 * are deleted by a sweep every `sweepInterval` ms (default one minute), so disk use stays bounded.
 *
 * @example
 * ```ts
 * import { FileResultBackend } from "./file.ts";
 * import { Results } from "../middleware/results.ts";
 * import { StubBroker } from "../broker/stub.ts";
 * const broker = new StubBroker();
 * broker.addMiddleware(new Results({ backend: new FileResultBackend({ dir: await Deno.makeTempDir() }) }));
 * ```
 */
export class FileResultBackend extends ResultBackend {
  /** The directory holding the results. */
  readonly dir: string;
  readonly #sweepInterval: number;
  readonly #fileMode: number;
  #lastSweep = Date.now();
  #seq = 0;

  /**
   * Creates the backend; the directory is created if missing. `access`: `"owner"` (default;
   * directory 0700, files 0600), `"group"` (0770, 0660) or `"group-read"` (0750, 0640), as for
   * `FileBroker`.
   */
  constructor(
    options: ResultBackendOptions & { dir?: string; sweepInterval?: number; access?: FileAccess } =
      {},
  ) {
    super(options);
    this.dir = options.dir ?? "./.dramatis/results";
    this.#sweepInterval = options.sweepInterval ?? 60_000;
    const modes = accessModes(options.access);
    this.#fileMode = modes.file;
    makeDir(this.dir, modes.dir);
  }

  #path(key: string): string {
    return `${this.dir}/${fileName(key)}.json`;
  }

  /** Writes the result file atomically. */
  protected _store(key: string, value: string, ttl: number): Promise<void> {
    const tmp = `${this.dir}/.${fileName(key)}.${Date.now()}.${this.#seq++}.tmp`;
    const stored: Stored = { expires: Date.now() + ttl, value };
    writeText(tmp, JSON.stringify(stored), { mode: this.#fileMode });
    rename(tmp, this.#path(key));
    if (Date.now() - this.#lastSweep > this.#sweepInterval) this.sweep();
    return Promise.resolve();
  }

  /** Reads the result file, if present and not expired. */
  protected _get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.#read(key));
  }

  #read(key: string): string | undefined {
    let stored: Stored;
    try {
      stored = JSON.parse(readText(this.#path(key)));
    } catch {
      return undefined;
    }
    if (stored.expires <= Date.now()) {
      removeFile(this.#path(key));
      return undefined;
    }
    return stored.value;
  }

  /** Waits on a directory watch (and a slow poll) until the file appears or time runs out. */
  protected override _wait(key: string, timeout: number): Promise<string | undefined> {
    return new Promise((resolve) => {
      const first = this.#read(key);
      if (first !== undefined) return resolve(first);
      const file = `${fileName(key)}.json`;
      let done = false;
      let poll = 10;
      let pollTimer: ReturnType<typeof setTimeout>;
      const finish = (v: string | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        clearTimeout(pollTimer);
        watcher?.close();
        resolve(v);
      };
      const check = () => {
        const v = this.#read(key);
        if (v !== undefined) finish(v);
      };
      let watcher: Watcher | undefined;
      try {
        watcher = watchDir(this.dir, (name) => {
          if (!name || name === file) check();
        });
      } catch {
        watcher = undefined; // no watch support: the poll below still works
      }
      const tick = () => {
        check();
        poll = Math.min(poll * 2, 500);
        if (!done) pollTimer = setTimeout(tick, poll);
      };
      pollTimer = setTimeout(tick, poll);
      const deadline = setTimeout(() => finish(this.#read(key)), timeout);
    });
  }

  /** Deletes expired results (and temporary files left by a crash). Returns how many. */
  sweep(): number {
    this.#lastSweep = Date.now();
    let n = 0;
    if (!exists(this.dir)) return 0;
    for (const name of listDir(this.dir)) {
      const path = `${this.dir}/${name}`;
      try {
        if (name.endsWith(".tmp")) {
          if (Date.now() - (statPath(path)?.mtimeMs ?? Date.now()) > 60_000) {
            removeFile(path);
            n++;
          }
          continue;
        }
        const stored: Stored = JSON.parse(readText(path));
        if (stored.expires <= Date.now()) {
          removeFile(path);
          n++;
        }
      } catch { /* removed meanwhile, or not ours */ }
    }
    return n;
  }
}

/**
 * A key as a file name: MD5 keys as they are; a readable key (`useNamespacePrefixKeys`) with
 * characters other than letters, digits, `_`, `-`, `.` and `:` (and a leading `.`) escaped as
 * `%XX`, and shortened with its MD5 when it would be too long for a file name.
 */
function fileName(key: string): string {
  let name = key.replace(
    /[^\w.:-]|^\./gu,
    (c) =>
      Array.from(
        new TextEncoder().encode(c),
        (b) => `%${b.toString(16).toUpperCase().padStart(2, "0")}`,
      )
        .join(""),
  );
  if (name.length > 200) name = `${name.slice(0, 160)}~${md5Hex(key)}`;
  return name;
}
