// The bytes of the operations' records (docs/file-broker.md, "Operations"), and the few engine
// records the operations write themselves (ENQ, ACK, UNDEAD). Little-endian, like _format.ts.
import { type BodyReader, Kind, type RecordWriter } from "./_format.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Appends a string as a u32 byte length and UTF-8. */
function str(out: RecordWriter, s: string): void {
  const b = encoder.encode(s);
  out.u32(b.length);
  out.bytes(b);
}

/** Reads a string written by `str`. */
function readStr(r: BodyReader): string {
  const n = r.u32();
  const s = decoder.decode(r.buf.subarray(r.pos, r.pos + n));
  r.pos += n;
  return s;
}

/** The rest of the body as UTF-8. */
export function restText(r: BodyReader, end: number): string {
  return decoder.decode(r.buf.subarray(r.pos, end));
}

/** An ENQ record (the layout of `Engine.enqueue`): a ready message, or a delayed one on `q.DQ`. */
export function encodeEnq(
  out: RecordWriter,
  queueName: string,
  priority: number,
  eta: number,
  json: string,
): void {
  out.begin(Kind.ENQ);
  out.queue(queueName);
  out.f64(priority);
  out.f64(eta);
  out.text(json);
  out.end();
}

/** An ACK of pending messages (any owner's ack settles a message): they are gone. */
export function encodeAck(out: RecordWriter, owner: number, ids: readonly number[]): void {
  out.begin(Kind.ACK);
  out.f64(owner);
  out.u32(ids.length);
  for (const id of ids) out.f64(id);
  out.end();
}

/** An UNDEAD record: those dead letters are gone. */
export function encodeUndead(out: RecordWriter, ids: readonly number[]): void {
  out.begin(Kind.UNDEAD);
  out.u32(ids.length);
  for (const id of ids) out.f64(id);
  out.end();
}

/** MARK: message `messageId` (log id `id`) is cancelled; the mark holds until `until`. */
export function encodeMark(out: RecordWriter, messageId: string, id: number, until: number): void {
  out.begin(Kind.MARK);
  out.f64(until);
  out.f64(id);
  out.text(messageId);
  out.end();
}

/** A unique key's holder, as a UNIQUE record carries it. */
export interface HolderFields {
  /** The holder's log id; 0 in the record means "the record right after this one" (its ENQ). */
  id: number;
  /** The key is held at least until then (message_timestamp + unique_for), ms. */
  until: number;
  /** The holder's message_timestamp. */
  timestamp: number;
  key: string;
  messageId: string;
}

/** UNIQUE: `h.key` is held by message `h.messageId`. */
export function encodeUnique(out: RecordWriter, h: HolderFields): void {
  out.begin(Kind.UNIQUE);
  out.f64(h.id);
  out.f64(h.until);
  out.f64(h.timestamp);
  str(out, h.key);
  out.text(h.messageId);
  out.end();
}

/**
 * Reads a UNIQUE body; `next` is the log id of the following record, `at` the record's own
 * (kept with the holder, for compaction).
 */
export function decodeUnique(
  r: BodyReader,
  end: number,
  next: number,
  at: number,
): HolderFields & { at: number } {
  const id = r.f64();
  const until = r.f64();
  const timestamp = r.f64();
  const key = readStr(r);
  return { id: id === 0 ? next : id, until, timestamp, key, messageId: restText(r, end), at };
}

/** TICK: schedule `name` enqueued its message for `tick`. */
export function encodeTick(out: RecordWriter, name: string, tick: number): void {
  out.begin(Kind.TICK);
  out.f64(tick);
  out.text(name);
  out.end();
}

/** PAUSE: queue `queueName` is paused (or resumed). */
export function encodePause(out: RecordWriter, queueName: string, paused: boolean): void {
  out.begin(Kind.PAUSE);
  out.u8(paused ? 1 : 0);
  out.text(queueName);
  out.end();
}

/** The flag of a PAUSE record about a schedule (bit 0: paused; then the time, then the name). */
export const SCHEDULE_PAUSE = 2;

/**
 * PAUSE of a schedule: `name` is paused (or resumed) since `since` (ms). A PAUSE record whose flag
 * has `SCHEDULE_PAUSE` set: a reader that only knows queue pauses sees a resume of no queue.
 */
export function encodeSchedulePause(
  out: RecordWriter,
  name: string,
  paused: boolean,
  since: number,
): void {
  out.begin(Kind.PAUSE);
  out.u8(SCHEDULE_PAUSE | (paused ? 1 : 0));
  out.f64(since);
  out.text(name);
  out.end();
}

/** PROGRESS: the last progress of `messageId` (its value as JSON text). */
export function encodeProgress(
  out: RecordWriter,
  messageId: string,
  updatedAt: number,
  valueJson: string,
): void {
  out.begin(Kind.PROGRESS);
  out.f64(updatedAt);
  str(out, messageId);
  out.text(valueJson);
  out.end();
}

/** Reads a PROGRESS body. */
export function decodeProgress(
  r: BodyReader,
  end: number,
): { messageId: string; updatedAt: number; value: string } {
  const updatedAt = r.f64();
  const messageId = readStr(r);
  return { messageId, updatedAt, value: restText(r, end) };
}
