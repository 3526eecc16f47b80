/**
 * The dramatis dashboard: see, search and act on every queue, message, worker and schedule.
 * `dashboardHandler(source, options)` is a `(req: Request) => Promise<Response>` for
 * Deno.serve, Bun.serve or Hono; `source` is a `DashboardSource` (each broker provides one;
 * `MemoryDashboardSource` is the in-memory reference for tests and demos). See
 * `docs/dashboard.md`.
 *
 * @example
 * ```ts
 * import { dashboardHandler, MemoryDashboardSource } from "./mod.ts";
 * const source = new MemoryDashboardSource({ name: "demo" });
 * source.add({ queue: "default", actor: "add", args: [1, 2] });
 * const handler = dashboardHandler(source);
 * // Deno.serve({ hostname: "127.0.0.1", port: 8181 }, handler);
 * const res = await handler(new Request("http://127.0.0.1:8181/api/overview"));
 * console.log((await res.json()).queues[0].ready); // 1
 * ```
 * @module
 */
export { dashboardHandler } from "./handler.ts";
export type { DashboardAccess, DashboardOptions, ServeInfo } from "./handler.ts";
export { MemoryDashboardSource } from "./memory.ts";
export { brokerSource, DEFAULT_SCAN_LIMIT, OLDEST_EXACT } from "./broker_source.ts";
export type { BrokerSourceOptions } from "./broker_source.ts";
export type { MemoryMessage, MemoryPlacement } from "./memory.ts";
export type { FinishedList, FinishedMessage } from "./finished.ts";
export { ACTION_STATES, DashboardUnsupported, MESSAGE_STATES } from "./source.ts";
export type {
  ActionResult,
  Attempt,
  DashboardSource,
  MessageAction,
  MessageActionRequest,
  MessageDetail,
  MessagePage,
  MessageQuery,
  MessageState,
  MessageSummary,
  ProgressInfo,
  QueueAction,
  QueueOverview,
  ResultInfo,
  ScheduleAction,
  ScheduleInfo,
  WorkerInfo,
} from "./source.ts";
