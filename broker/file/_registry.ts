// The worker registry of a FileBroker directory: one small JSON file per worker in
// `<dir>/workers/`, written atomically (a temporary file, then rename), without fsync: a record
// lost in a power cut is published again at the next heartbeat. A worker whose heartbeat is older
// than its ttl is not listed; its file is deleted by the next `workers()` a minute later. A
// subdirectory, so that heartbeats do not wake the consumers that watch the directory itself.
import type { WorkerRecord } from "../ops.ts";
import {
  isNotFound,
  listDir,
  makeDir,
  readText,
  removeFile,
  rename,
  writeText,
} from "../../runtime/fs.ts";

/** Files of workers dead this long (past their ttl) are deleted. */
const FORGET_AFTER_MS = 60_000;

/** What a worker's file holds. */
interface Stored {
  ttl: number;
  record: WorkerRecord;
}

/** A file name for `workerId`: safe characters kept, the others %-escaped. */
function fileName(workerId: string): string {
  return `${workerId.replace(/[^A-Za-z0-9_.:-]/g, (c) => `%${c.charCodeAt(0).toString(16)}`)}.json`;
}

/** The workers of one directory. */
export class Registry {
  readonly dir: string;
  #made = false;

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
    for (const name of names) {
      if (!name.endsWith(".json") || name.startsWith(".")) continue;
      const path = `${this.dir}/${name}`;
      let stored: Stored;
      try {
        stored = JSON.parse(readText(path));
      } catch {
        continue; // removed meanwhile, or not ours
      }
      const end = (stored.record?.heartbeatAt ?? 0) + (stored.ttl ?? 0);
      if (end > now) out.push(stored.record);
      else if (end + FORGET_AFTER_MS < now) removeFile(path);
    }
    return out.sort((a, b) => a.startedAt - b.startedAt || (a.workerId < b.workerId ? -1 : 1));
  }

  /** Deletes the record of `workerId`. */
  remove(workerId: string): void {
    removeFile(`${this.dir}/${fileName(workerId)}`);
  }
}
