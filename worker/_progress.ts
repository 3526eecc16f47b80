// Progress reported by a running actor (`reportProgress`): kept on the message for the
// heartbeat, and written through the worker's sink at most once per interval; the last value
// is always written when the message finishes (`flushProgress`).
import type { JsonValue, MessageProxy } from "../message.ts";
import { findNonJson } from "../message.ts";
import { formatError, getLogger } from "../util/log.ts";

const logger = getLogger("dramatis.worker.Worker");

/**
 * Where a `Worker` writes the progress its actors report (default: `broker.setProgress`).
 *
 * @example
 * ```ts
 * import type { ProgressSink } from "@dramatis/dramatis";
 * const log: ProgressSink = (m, value) => console.log(m.messageId, value);
 * ```
 */
export type ProgressSink = (message: MessageProxy, value: JsonValue) => void | Promise<void>;

/** Default: at most one write per message per 250 ms. */
export const PROGRESS_INTERVAL = 250;

const SINK = Symbol("dramatis.progressSink");
const STATE = Symbol("dramatis.progressState");

class ProgressState {
  /** The last value reported. */
  last: JsonValue = null;
  /** A value not yet written. */
  dirty = false;
  lastWrite = -Infinity;
  timer: ReturnType<typeof setTimeout> | undefined;
  writing: Promise<void> | undefined;
  /** Flushed: the message finished, nothing more is written. */
  closed = false;

  constructor(
    readonly message: MessageProxy,
    readonly sink: ProgressSink,
    readonly interval: number,
  ) {}

  report(value: JsonValue): void {
    this.last = value;
    if (this.closed) return;
    this.dirty = true;
    if (this.timer !== undefined || this.writing) return; // written when the timer fires
    const wait = this.lastWrite + this.interval - Date.now();
    if (wait <= 0) this.write();
    else this.timer = setTimeout(() => this.write(), wait);
  }

  write(): void {
    this.timer = undefined;
    if (!this.dirty || this.writing) return;
    // (After `flush` only flush itself writes: a timer left behind finds nothing dirty.)
    this.dirty = false;
    this.lastWrite = Date.now();
    const value = this.last;
    this.writing = (async () => {
      try {
        await this.sink(this.message, value);
      } catch (e) {
        logger.warning(
          `Failed to store the progress of ${this.message.messageId}: ${formatError(e)}`,
        );
      }
    })().finally(() => {
      this.writing = undefined;
      // Reported meanwhile: written one interval after this write.
      if (this.dirty && !this.closed && this.timer === undefined) {
        const wait = Math.max(0, this.lastWrite + this.interval - Date.now());
        this.timer = setTimeout(() => this.write(), wait);
      }
    });
  }

  async flush(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.writing) await this.writing;
    if (this.dirty) {
      this.write();
      await this.writing;
    }
  }
}

type Tracked = MessageProxy & {
  [SINK]?: { sink: ProgressSink; interval: number };
  [STATE]?: ProgressState;
};

/** Lets the actor of `m` report progress to `sink` (at most once per `interval` ms). */
export function bindProgress(m: MessageProxy, sink: ProgressSink, interval: number): void {
  (m as Tracked)[SINK] = { sink, interval };
}

/** Records `value` as the progress of `m` (the running message). */
export function reportFor(m: MessageProxy, value: JsonValue): void {
  const bad = findNonJson(value, "value");
  if (bad) {
    throw new TypeError(
      `reportProgress(): ${bad.path} is ${bad.problem}, which is not JSON. Report numbers, ` +
        `strings, plain objects or arrays.`,
    );
  }
  const t = m as Tracked;
  const bound = t[SINK];
  if (!bound) return; // not run by a Worker that stores progress
  const state = t[STATE] ??= new ProgressState(m, bound.sink, bound.interval);
  state.report(JSON.parse(JSON.stringify(value)));
}

/** The last progress `m` reported, if any. */
export function lastProgress(m: MessageProxy): JsonValue | undefined {
  const s = (m as Tracked)[STATE];
  return s ? s.last : undefined;
}

/** Writes the last progress of `m` if it was not written yet; resolves once stored. */
export function flushProgress(m: MessageProxy): Promise<void> | undefined {
  return (m as Tracked)[STATE]?.flush();
}
