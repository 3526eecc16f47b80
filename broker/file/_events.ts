// The events of a FileBroker directory: JSON lines in `<dir>/events/<seq>.jsonl`, appended under
// the directory's lock (so one process's batch is one write, whole lines, never interleaved) and
// tailed by every process that calls `events()`, which polls every 50 ms. Past 1 MiB (about 5,000
// events) a new file is started and all but the previous one are deleted: the directory keeps the
// last ~5,000-10,000 events. A reader that was slower than two rotations skips to the oldest
// file left. A subdirectory, so that events do not wake the consumers that watch the directory.
import type { BrokerEvent } from "../ops.ts";
import {
  isNotFound,
  listDir,
  makeDir,
  type RawFile,
  removeFile,
  statPath,
  tryOpenFile,
  writeText,
} from "../../runtime/fs.ts";
import { sleep } from "../../util/async.ts";

/** A file is rotated past this size. */
const ROTATE_BYTES = 1024 * 1024;
/** How often a reader looks for new events. */
const POLL_MS = 50;

const decoder = new TextDecoder();

function fileName(seq: number): string {
  return `${seq.toString(16).padStart(16, "0")}.jsonl`;
}

/** The sequence numbers of the event files present, ascending. */
function sequences(dir: string): number[] {
  let names: string[];
  try {
    names = listDir(dir);
  } catch (e) {
    if (isNotFound(e)) return [];
    throw e;
  }
  return names.filter((n) => /^[0-9a-f]{16}\.jsonl$/.test(n)).map((n) =>
    parseInt(n.slice(0, 16), 16)
  )
    .sort((a, b) => a - b);
}

/** The events file set of one directory. */
export class EventLog {
  readonly dir: string;
  #made = false;
  /** Aborted at close: ends every reader. */
  readonly #closed = new AbortController();

  constructor(
    brokerDir: string,
    private readonly modes: { dir: number; file: number },
    /** Runs a function holding the directory's lock. */
    private readonly withLock: <T>(fn: () => T) => T,
  ) {
    this.dir = `${brokerDir}/events`;
  }

  /** Appends `events` (one write, under the lock), rotating the file when it is full. */
  publish(events: readonly BrokerEvent[]): void {
    if (events.length === 0) return;
    const text = events.map((e) => JSON.stringify(e)).join("\n") + "\n";
    if (!this.#made) {
      makeDir(this.dir, this.modes.dir);
      this.#made = true;
    }
    this.withLock(() => {
      const seqs = sequences(this.dir);
      let seq = seqs.at(-1) ?? 0;
      if ((statPath(`${this.dir}/${fileName(seq)}`)?.size ?? 0) >= ROTATE_BYTES) {
        seq++;
        for (const old of seqs) if (old < seq - 1) removeFile(`${this.dir}/${fileName(old)}`);
      }
      writeText(`${this.dir}/${fileName(seq)}`, text, { append: true, mode: this.modes.file });
    });
  }

  /**
   * The events appended from now on by any process (with `past`: from the oldest file kept),
   * until `signal` aborts or close.
   */
  tail(signal?: AbortSignal, past = false): AsyncGenerator<BrokerEvent> {
    const stop = signal ? AbortSignal.any([signal, this.#closed.signal]) : this.#closed.signal;
    // Where "now" is, decided at the call (a generator's body only starts at the first next()).
    const seqs = sequences(this.dir);
    const seq = (past ? seqs[0] : seqs.at(-1)) ?? 0;
    const off = past ? 0 : statPath(`${this.dir}/${fileName(seq)}`)?.size ?? 0;
    return this.#follow(seq, off, stop);
  }

  async *#follow(seq: number, off: number, stop: AbortSignal): AsyncGenerator<BrokerEvent> {
    let file: RawFile | undefined;
    let buf = new Uint8Array(64 * 1024);
    try {
      while (!stop.aborted) {
        file ??= tryOpenFile(`${this.dir}/${fileName(seq)}`, { readOnly: true });
        let got = false;
        while (file) {
          const n = file.read(buf, off);
          const end = buf.subarray(0, n).lastIndexOf(0x0a);
          if (end < 0) {
            if (n < buf.length) break; // nothing new, or a line being written
            buf = new Uint8Array(buf.length * 2); // a line longer than the buffer
            continue;
          }
          off += end + 1;
          got = true;
          for (const line of decoder.decode(buf.subarray(0, end)).split("\n")) {
            if (stop.aborted) return;
            try {
              yield JSON.parse(line) as BrokerEvent;
            } catch { /* not an event: skip */ }
          }
        }
        if (got) continue;
        // Nothing new here: was a newer file started (then this one is complete)?
        const later = sequences(this.dir).filter((s) => s > seq);
        if (later.length === 0 || (file && file.size() > off)) {
          await sleep(POLL_MS, stop);
          continue;
        }
        file?.close();
        file = undefined;
        seq = later.includes(seq + 1) ? seq + 1 : later[0]!;
        off = 0;
      }
    } finally {
      file?.close();
    }
  }

  /** Ends every reader. */
  close(): void {
    this.#closed.abort();
  }
}
