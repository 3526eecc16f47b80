// What the engine does when a write to the log fails (a full disk, an I/O error): the errors it
// gives and logs, and the records it keeps or drops. See docs/file-broker.md, "When a write fails".
//
// - `always`: the senders waiting for the failed write are rejected, and their ENQ records are
//   dropped (the part of the write that reached the file was cut off again): a rejected send is
//   never delivered.
// - `batch` / `none`: the sends in the failed write had resolved already. Their records are held
//   in memory and written as soon as a write succeeds again (they are lost only if the process
//   stops first, and then reported); meanwhile every new send is rejected.
import { BrokerError } from "../../errors.ts";
import { bodyLength, Kind, REC_HEADER, type RecordWriter } from "./_format.ts";
import { AppendError } from "./_segments.ts";

/** A write to `dir` failed: the error senders (and the first log line) get. */
export function writeError(dir: string, e: unknown, durability: string): BrokerError {
  const cause = e instanceof AppendError ? e.cause : e as Error;
  const undone = !(e instanceof AppendError) || e.undone;
  const what = !undone
    ? "Part of the write may have reached the disk, so these messages may be delivered: check " +
      "before you send them again."
    : durability === "always"
    ? "These messages were not stored (what reached the file was cut off again): send them " +
      "again once the disk has room."
    : "Messages sent from now on are rejected until a write succeeds again.";
  const err = new BrokerError(`Writing to ${dir} failed: ${cause.message}. ${what}`, {
    cause,
  });
  LOGGED.add(err);
  return err;
}

/** Errors already logged once (the engine logs the first failure of a run of them). */
const LOGGED = new WeakSet<object>();

/** True for an error made by `writeError`. */
export function isWriteError(e: unknown): boolean {
  return typeof e === "object" && e !== null && LOGGED.has(e);
}

/** What a `batch` / `none` send gets while earlier records are held: rejected, and why. */
export function heldError(dir: string, cause: BrokerError, held: number): BrokerError {
  return new BrokerError(
    `FileBroker cannot store this message: writing to ${dir} failed ` +
      `(${(cause.cause as Error).message}). It was not stored: send it again once the disk has ` +
      `room.` +
      (held > 0
        ? ` ${held} earlier message(s), whose send() had resolved, are held in memory and ` +
          `written then (lost if this process stops first).`
        : ""),
    { cause },
  );
}

/** Removes the ENQ records from `out` (keeping acks, nacks and the like), in place. */
export function dropSends(out: RecordWriter): number {
  const b = out.buf;
  let read = 0, write = 0, dropped = 0;
  while (read < out.length) {
    const len = REC_HEADER + bodyLength(b, read);
    if (b[read + 2] === Kind.ENQ) {
      dropped++;
    } else {
      if (write !== read) b.copyWithin(write, read, read + len);
      write += len;
    }
    read += len;
  }
  out.length = write;
  return dropped;
}

/** The message ids of the ENQ records in `out` (for the log), and how many there are. */
export function heldSends(out: RecordWriter): { count: number; ids: string[] } {
  const b = out.buf;
  const decoder = new TextDecoder();
  const ids: string[] = [];
  let count = 0;
  for (let p = 0; p < out.length; p += REC_HEADER + bodyLength(b, p)) {
    if (b[p + 2] !== Kind.ENQ) continue;
    count++;
    if (ids.length >= 100) continue;
    // Body: queue (length byte + name), priority, eta, then the message's JSON.
    const json = p + REC_HEADER + 1 + b[p + REC_HEADER]! + 16;
    const end = p + REC_HEADER + bodyLength(b, p);
    const m = /"message_id":"([^"]*)"/.exec(decoder.decode(b.subarray(json, end)));
    if (m) ids.push(m[1]!);
  }
  return { count, ids };
}

/** `ids` for a log line: the first `max`, then how many more. */
export function listIds(ids: string[], count: number, max = 20): string {
  const shown = ids.slice(0, max).join(", ");
  return count > max ? `${shown} and ${count - max} more` : shown;
}
