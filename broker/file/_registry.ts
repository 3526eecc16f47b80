// The worker registry of a FileBroker directory: one small JSON file per worker in
// `<dir>/workers/`, written atomically (a temporary file, then rename), without fsync: a record
// lost in a power cut is published again at the next heartbeat. A worker whose heartbeat is older
// than its ttl is not listed; its file is deleted by the next `workers()` a minute later. A
// subdirectory, so that heartbeats do not wake the consumers that watch the directory itself.
// `list()` keeps each file's parsed record by its size and modification time, so that a scrape
// re-reads only the records written since the last (8 records of 100 actors are ~540 KB of JSON).
import type { WorkerRecord } from "../ops.ts";
import {
  isNotFound,
  listDir,
  makeDir,
  readText,
  removeFile,
  rename,
  statPath,
  writeText,
} from "../../runtime/fs.ts";

/** Files of workers dead this long (past their ttl) are deleted. */
const FORGET_AFTER_MS = 60_000;

/** What a worker's file holds. */
interface Stored {
  ttl: number;
  record: WorkerRecord;
}

/**
 * A file's stat is trusted to tell it unchanged only if it was last modified at least this long
 * (ms) before it was read: file times come from a coarse kernel clock (a tick behind the wall
 * clock), so a write just after a read could otherwise get the same time (and size) as the write
 * before it (git's "racy" rule).
 */
const RACY_MS = 100;

/** A file as `list()` last parsed it. */
interface Cached {
  size: number;
  mtimeMs: number;
  /** Date.now() just before it was read. */
  readAt: number;
  stored: Stored;
}

/** A file name for `workerId`: safe characters kept, the others %-escaped. */
function fileName(workerId: string): string {
  return `${workerId.replace(/[^A-Za-z0-9_.:-]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}.json`;
}

/** The workers of one directory. */
export class Registry {
  readonly dir: string;
  #made = false;
  /** File name -> its parsed content, while its size and time are unchanged. */
  #cache = new Map<string, Cached>();

  constructor(brokerDir: string, private readonly modes: { dir: number; file: number }) {
    this.dir = `${brokerDir}/workers`;
  }

  /** Writes `record` (kept `ttl` ms unless published again). */
  publish(record: WorkerRecord, ttl: number): void {
    if (!this.#made) {
      makeDir(this.dir, this.modes.dir);
      this.#made = true;
    }
    const path = `${this.dir}/${fileName(record.workerId)}`;
    const tmp = `${this.dir}/.${fileName(record.workerId)}.${crypto.randomUUID()}.tmp`;
    const stored: Stored = { ttl, record };
    writeText(tmp, JSON.stringify(stored), { mode: this.modes.file });
    try {
      rename(tmp, path);
    } catch (e) {
      removeFile(tmp);
      throw e;
    }
  }

  /** The records whose heartbeat is within their ttl. */
  list(now = Date.now()): WorkerRecord[] {
    let names: string[];
    try {
      names = listDir(this.dir);
    } catch (e) {
      if (isNotFound(e)) return [];
      throw e;
    }
    const out: WorkerRecord[] = [];
    const seen = new Set<string>();
    for (const name of names) {
      if (!name.endsWith(".json") || name.startsWith(".")) continue;
      const path = `${this.dir}/${name}`;
      const stored = this.#read(name, path);
      if (!stored) continue; // removed meanwhile, or not ours
      seen.add(name);
      const end = (stored.record?.heartbeatAt ?? 0) + (stored.ttl ?? 0);
      if (end > now) out.push(stored.record);
      else if (end + FORGET_AFTER_MS < now) removeFile(path);
    }
    for (const name of this.#cache.keys()) if (!seen.has(name)) this.#cache.delete(name);
    return out.sort((a, b) => a.startedAt - b.startedAt || (a.workerId < b.workerId ? -1 : 1));
  }

  /**
   * The content of `name`: the one parsed before if its size and time are unchanged (and it was
   * written well before that read), else read and parsed. Undefined if gone or not JSON.
   */
  #read(name: string, path: string): Stored | undefined {
    try {
      const st = statPath(path);
      if (!st) return undefined;
      const c = this.#cache.get(name);
      if (
        c && c.size === st.size && c.mtimeMs === st.mtimeMs && st.mtimeMs < c.readAt - RACY_MS
      ) {
        return c.stored;
      }
      const readAt = Date.now();
      const stored: Stored = JSON.parse(readText(path));
      // The stat was taken before the read: a write in between gives another time next call.
      this.#cache.set(name, { size: st.size, mtimeMs: st.mtimeMs, readAt, stored });
      return stored;
    } catch {
      this.#cache.delete(name);
      return undefined;
    }
  }

  /** Deletes the record of `workerId`. */
  remove(workerId: string): void {
    removeFile(`${this.dir}/${fileName(workerId)}`);
  }
}
