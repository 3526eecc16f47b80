/**
 * The "recently finished" list of the dashboard (`/finished`): messages that completed or were
 * dead-lettered, from the broker's events (`broker.events()`), which every broker keeps bounded:
 * the list is as long as those events go back, and says so.
 *
 * @example
 * ```ts
 * import type { FinishedList } from "./finished.ts";
 * const list: FinishedList = { messages: [], kept: 10_000, events: 0 };
 * ```
 * @module
 */

/**
 * One finished message, from its last event.
 *
 * @example
 * ```ts
 * import type { FinishedMessage } from "./finished.ts";
 * const f: FinishedMessage = {
 *   messageId: "5f7b0c2e-0000-4000-8000-000000000000", actor: "add", queue: "default",
 *   outcome: "completed", at: Date.now(), attempts: 1, durationMs: 12, workerId: "box:4242",
 * };
 * ```
 */
export interface FinishedMessage {
  /** The message id. */
  messageId: string;
  /** Its actor. */
  actor: string;
  /** Its canonical queue. */
  queue: string;
  /** `completed`, or `dead-lettered` (failed for good). */
  outcome: "completed" | "dead-lettered";
  /** When it finished (ms since the epoch). */
  at: number;
  /** The attempts of it the events hold (a lower bound if the older events were dropped). */
  attempts: number;
  /** How long its last attempt ran, in ms, where known. */
  durationMs?: number;
  /** The worker of its last attempt. */
  workerId?: string;
  /** The last error's first line (dead-lettered). */
  error?: string;
}

/**
 * The recently finished messages, newest first.
 *
 * @example
 * ```ts
 * import type { FinishedList } from "./finished.ts";
 * function newest(l: FinishedList): string | undefined {
 *   return l.messages[0]?.messageId;
 * }
 * ```
 */
export interface FinishedList {
  /** At most the `limit` asked for, newest first. */
  messages: FinishedMessage[];
  /** How many events the dashboard keeps (the list goes back that far at most). */
  kept: number;
  /** How many events it holds now. */
  events: number;
  /** When the oldest event held happened (ms since the epoch). */
  since?: number;
}
