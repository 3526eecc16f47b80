// What the engine knows of the operations (cancel, unique, ticks, pause, progress): the records of
// kinds past SNAP are handed to an extension (`_ops_state.ts`), which also re-encodes its live
// records at compaction and says which queues are paused. Kept apart so that the engine depends on
// this small interface only. The lookup by message id of a browsing process (`_ids.ts`) is fed
// from here too.
import { BodyReader, Kind, REC_HEADER, type RecordWriter } from "./_format.ts";
import type { ApplyFn, Seg } from "./_segments.ts";

/** Where a live message is, as `Engine.messageState()` says it. */
export interface MessageState {
  /** `delayed`: on `q.DQ`; `running`: claimed (delivered, not acked). */
  state: "ready" | "delayed" | "running" | "dead";
  /** The canonical queue. */
  queue: string;
  priority: number;
  /** The eta of a delayed message (0 otherwise). */
  eta: number;
  /** When a dead letter died (0 otherwise). */
  deadAt: number;
}

/** The engine's view of the operations' replica. */
export interface EngineExtension {
  /**
   * Applies a record of kind MARK..PROGRESS: its body is read with `r` up to `end`; `id` is the
   * record's own log id (global offset), `next` the log id of the record that follows it.
   */
  apply(kind: number, r: BodyReader, end: number, id: number, next: number): void;
  /** The replica is read again from the start: forget everything. */
  reset(): void;
  /** Compaction (locked): re-encodes the live records whose log id is below `cutBase`. */
  snapshot(cutBase: number, out: RecordWriter): void;
  /** True when consumers must not be handed messages of `queueName` (`q`; `q.DQ` never). */
  paused(queueName: string): boolean;
  /**
   * The lookup by message id, when this process keeps one (`_ids.ts`): handed the message
   * records (ENQ, SNAP, NACK) once the replica has applied them.
   */
  readonly ids?: {
    record(kind: number, buf: Uint8Array, bs: number, be: number, id: number): void;
  } | undefined;
}

/** An ApplyFn that sends the operations' kinds to the extension and the others to `apply`. */
export function applyWith(
  apply: ApplyFn,
  extension: () => EngineExtension | undefined,
): ApplyFn {
  return (kind: number, buf: Uint8Array, bs: number, be: number, seg: Seg, at: number) => {
    if (kind < Kind.MARK) {
      apply(kind, buf, bs, be, seg, at);
      extension()?.ids?.record(kind, buf, bs, be, seg.base + at);
      return;
    }
    const ext = extension();
    if (!ext) return;
    const id = seg.base + at;
    ext.apply(kind, new BodyReader(buf, bs, be), be, id, id + REC_HEADER + (be - bs));
  };
}
