// How the StubBroker shows its messages to `browse()` and `findMessage()`, and the copy a
// move or `runNow()` enqueues.
import { Message, type MessageProxy } from "../message.ts";
import type { BrowseEntry, BrowseOptions, BrowsePage, BrowseState } from "./ops.ts";
import { qName } from "./queue_name.ts";
import type { Entry } from "./_stub_queue.ts";

/** `m` on `queueName`, without an eta. */
export function readyCopy(m: Message, queueName: string): Message {
  const options = { ...m.options };
  delete options.eta;
  return m.copy({ queueName, options });
}

/** A queued or running entry as browsed. */
export function liveEntry(e: Entry): BrowseEntry {
  const message = Message.decode(e.json);
  message.queueName = qName(message.queueName);
  const state: BrowseState = e.queue.delayed
    ? "delayed"
    : e.state === "running"
    ? "running"
    : "ready";
  return { message, state, since: e.since, ...(e.queue.delayed ? { eta: e.eta } : {}) };
}

/** A dead letter as browsed. */
export function deadEntry(m: MessageProxy): BrowseEntry {
  const message = m.copy({ queueName: qName(m.queueName) });
  const tb = m.options.traceback;
  const error = m.error instanceof Error
    ? `${m.error.name}: ${m.error.message}`.split("\n")[0]
    : typeof tb === "string"
    ? tb.trim().split("\n").at(-1)
    : undefined;
  return { message, state: "dead", ...(error ? { error } : {}) };
}

/** The page of `all` (newest first) that `options` ask for (`cursor`: an offset). */
export function browsePage(all: readonly BrowseEntry[], options: BrowseOptions): BrowsePage {
  const limit = options.limit ?? 100;
  const offset = options.cursor ? Number(options.cursor) : 0;
  const entries = all.slice(offset, offset + limit);
  const next = offset + limit < all.length ? String(offset + limit) : undefined;
  return { entries, total: all.length, ...(next ? { next } : {}) };
}
