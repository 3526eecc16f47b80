// The wire format the RedisBroker writes: Python Dramatiq's message JSON, checked before it is
// enqueued, under a fresh `redis_message_id`.
import type { JsonObject, Message } from "../../message.ts";
import { findNonJson } from "../../message.ts";
import type { Reply } from "./client.ts";

/**
 * Set on a due delayed message handed to a worker: the id of its `q.DQ` entry. When the worker
 * enqueues the message on `q`, the broker moves it in one atomic step instead (see `move`).
 * Never written to Redis.
 */
export const MOVE_MARK = "dramatis_dq_rid";
const WIRE_KEYS = [
  "queue_name",
  "actor_name",
  "args",
  "kwargs",
  "options",
  "message_id",
  "message_timestamp",
];
const WIRE_KEY_SET: ReadonlySet<string> = new Set(WIRE_KEYS);
const textDecoder = new TextDecoder();

/** A reply as text. */
export function str(reply: Reply): string {
  return reply instanceof Uint8Array ? textDecoder.decode(reply) : String(reply);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const SNAKE = /^[a-z0-9_]+$/;

/**
 * Checks a wire message before it is enqueued (Python's consumer crashes on malformed ones,
 * and strands its batch-mates: hazard H1). Throws a TypeError saying what to fix.
 */
export function checkWire(o: Record<string, unknown>, where: () => string): void {
  const fail = (what: string): never => {
    throw new TypeError(`Cannot enqueue ${where()}: ${what}`);
  };
  for (const key of Object.keys(o)) {
    if (!WIRE_KEY_SET.has(key)) {
      fail(
        `unknown top-level key ${JSON.stringify(key)}. A message has exactly the keys ` +
          `${WIRE_KEYS.join(", ")}; Python Dramatiq cannot decode anything else.`,
      );
    }
  }
  if (typeof o.queue_name !== "string" || o.queue_name === "") fail("queue_name must be a name.");
  if (typeof o.actor_name !== "string" || o.actor_name === "") fail("actor_name must be a name.");
  if (!Array.isArray(o.args)) fail("args must be an array.");
  if (!isPlainObject(o.kwargs)) fail("kwargs must be a plain object.");
  if (!isPlainObject(o.options)) fail("options must be a plain object.");
  if (typeof o.message_id !== "string" || o.message_id === "") fail("message_id must be a string.");
  if (typeof o.message_timestamp !== "number" || !Number.isFinite(o.message_timestamp)) {
    fail("message_timestamp must be a number of ms.");
  }
  const options = o.options as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!SNAKE.test(key)) {
      fail(
        `option ${JSON.stringify(key)} is not snake_case. Options travel under their wire names ` +
          `(maxRetries -> max_retries), which Python Dramatiq reads.`,
      );
    }
  }
  for (const part of ["args", "kwargs", "options"] as const) {
    const bad = findNonJson(o[part]);
    if (bad) fail(`${part}${bad.path} is ${bad.problem}, which is not JSON.`);
  }
  const target = options.pipe_target;
  if (target !== undefined && target !== null) {
    if (!isPlainObject(target)) fail("options.pipe_target must be a message object.");
    checkWire(target as Record<string, unknown>, () => `${where()} (its pipe_target)`);
  }
  const callbacks = options.group_completion_callbacks;
  if (callbacks !== undefined && callbacks !== null) {
    if (!Array.isArray(callbacks)) fail("options.group_completion_callbacks must be an array.");
    for (const c of callbacks as unknown[]) {
      if (!isPlainObject(c)) fail("options.group_completion_callbacks must hold message objects.");
      checkWire(c as Record<string, unknown>, () => `${where()} (a group completion callback)`);
    }
  }
}

/** A message id usable as a `redis_message_id` as it is (and in the scripts' rewrite of one). */
const PLAIN_ID = /^[0-9A-Za-z_.:-]{1,200}$/;

/**
 * The `redis_message_id` dramatis gives a copy it enqueues or moves: the message id itself when
 * it is plain, so that `findMessage()` reads it with one HGET per hash (the dispatch script adds
 * `.1`, `.2`, ... when that id is taken in the target hash); else a fresh UUID. Python Dramatiq
 * treats it as an opaque string (the list element and hash field) and gives its own copies fresh
 * UUIDs (retries, delayed moves): those are found by a scan.
 */
export function keyedRid(message: Message): string {
  return PLAIN_ID.test(message.messageId) ? message.messageId : crypto.randomUUID();
}

/**
 * The payload of `message` under `redis_message_id` `rid` (default: a fresh UUID), checked for
 * Python's decoder.
 */
export function encodeWire(
  message: Message,
  rid: string = crypto.randomUUID(),
): { rid: string; payload: string } {
  const dict = message.asDict() as unknown as Record<string, unknown>;
  checkWire(dict, () => `message ${message.messageId} (actor ${message.actorName})`);
  const options: JsonObject = { ...message.options };
  delete options[MOVE_MARK];
  options.redis_message_id = rid;
  dict.options = options;
  return { rid, payload: JSON.stringify(dict) };
}
