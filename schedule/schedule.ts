/**
 * `schedule()`: declares a periodic job, an actor (or a built message) sent at every tick of a
 * cron expression in a time zone. Declaring validates everything and registers the schedule;
 * the worker that runs the module's schedules reads them with `getSchedules()` and enqueues each
 * tick once across all processes sharing the broker.
 *
 * @example
 * ```ts
 * import { actor } from "../actor.ts";
 * import { StubBroker } from "../broker/stub.ts";
 * import { getSchedules, schedule } from "./schedule.ts";
 *
 * const broker = new StubBroker();
 * const report = actor(function sendReport(kind: string) {
 *   console.log("report", kind);
 * }, { broker });
 * schedule("daily-report", "0 9 * * MON-FRI", report, {
 *   timezone: "Europe/Berlin",
 *   args: ["sales"],
 *   missed: "once",
 * });
 * console.log(getSchedules(broker).map((s) => s.name)); // ["daily-report"]
 * ```
 * @module
 */
import type { Actor, AnyActor } from "../actor.ts";
import { Broker } from "../broker/broker.ts";
import { onGlobalBroker } from "../broker/global.ts";
import { SCHEDULE_OPTION, SCHEDULE_TICK_OPTION } from "../broker/ops.ts";
import { findNonJson, type JsonValue, Message } from "../message.ts";
import { Cron } from "./cron.ts";
import { type MissedPolicy, tickMessageId } from "./ticks.ts";

/**
 * Options of `schedule()`.
 *
 * @example
 * ```ts
 * import type { ScheduleOptions } from "./schedule.ts";
 * const o: ScheduleOptions<[string]> = { timezone: "America/New_York", args: ["x"], missed: "all" };
 * ```
 */
export interface ScheduleOptions<A extends unknown[] = unknown[]> {
  /** IANA time zone the cron fields are read in. Default `"UTC"` (the same on every machine). */
  timezone?: string;
  /** The actor's arguments at every tick (JSON). Only with an actor target. Default none. */
  args?: A;
  /** Ticks missed while no process ran the schedule: `"skip"` (default), `"once"` or `"all"`. */
  missed?: MissedPolicy;
  /** With `missed: "all"`, at most this many missed ticks are enqueued (the latest). Default 100. */
  maxCatchUp?: number;
  /** The broker that runs it. Default: the actor's broker (its `broker` option, else the global). */
  broker?: Broker;
}

/**
 * A declared schedule, as `schedule()` returns it and `getSchedules()` lists it.
 *
 * @example
 * ```ts
 * import { Message } from "../message.ts";
 * import { schedule, type Schedule } from "./schedule.ts";
 * const s: Schedule = schedule("cleanup", "@hourly", new Message({ queueName: "default", actorName: "cleanup" }));
 * console.log(s.cron.next() !== null, s.actorName); // true cleanup
 * ```
 */
export interface Schedule {
  /** Its unique name: the key of its ticks and of its last tick in the broker. */
  readonly name: string;
  /** The cron expression in its time zone (`expression`, `timezone`, `next()`, `previous()`). */
  readonly cron: Cron;
  /** What it sends: an actor, or a message built with `actor.message()`. */
  readonly target: AnyActor | Message;
  /** The actor its messages go to. */
  readonly actorName: string;
  /** The queue its messages go to. */
  readonly queueName: string;
  /** The arguments sent at every tick. */
  readonly args: readonly JsonValue[];
  /** The missed-tick policy. */
  readonly missed: MissedPolicy;
  /** The catch-up limit of `missed: "all"`. */
  readonly maxCatchUp: number;
  /** The broker it was declared for: the `broker` option, else the actor's; `undefined` = global. */
  readonly broker: Broker | undefined;
  /**
   * The message of one tick: a new message each call, with the deterministic id
   * `tickMessageId(name, tick)` and the options `schedule_name` and `schedule_tick` (ms UTC).
   */
  message(tick: number): Message;
}

const registry = new Map<string, Schedule>();
const NAME = /^[A-Za-z0-9_.\-:]{1,200}$/;
const OPTIONS = new Set(["timezone", "args", "missed", "maxCatchUp", "broker"]);

/**
 * Declares a schedule: `target` (an actor, or a message built with `actor.message()`) is sent
 * at every tick of `cron` (see `Cron` for the syntax and the daylight-saving rules). Everything
 * is checked now, with a TypeError that names the schedule and what is wrong: the name (unique,
 * 1-200 letters, digits, `_ - . :`), the cron expression (field and value), the time zone, the
 * arguments (JSON) and the options. Nothing is enqueued here: the worker running the module's
 * schedules does that, once per tick across processes.
 *
 * @example
 * ```ts
 * import { actor } from "../actor.ts";
 * import { StubBroker } from "../broker/stub.ts";
 * import { schedule } from "./schedule.ts";
 * const cleanup = actor(function cleanup(days: number) {}, { broker: new StubBroker() });
 * schedule("cleanup", "*\/15 * * * *", cleanup, { args: [30] });
 * try {
 *   schedule("broken", "0 25 * * *", cleanup, { args: [1] });
 * } catch (e) {
 *   // schedule "broken": cron field "hour" value "25" is out of range 0-23 (in "0 25 * * *")
 *   console.log((e as Error).message);
 * }
 * ```
 */
export function schedule<A extends unknown[], R>(
  name: string,
  cron: string,
  target: Actor<A, R>,
  options?: ScheduleOptions<A>,
): Schedule;
/**
 * Declares a schedule that sends a copy of a built message (its arguments, options and queue)
 * at every tick.
 *
 * @example
 * ```ts
 * import { Message } from "../message.ts";
 * import { schedule } from "./schedule.ts";
 * const msg = new Message({ queueName: "reports", actorName: "weekly", kwargs: { full: true } });
 * schedule("weekly", "0 6 * * MON", msg, { timezone: "America/Chicago" });
 * ```
 */
export function schedule(
  name: string,
  cron: string,
  target: Message,
  options?: Omit<ScheduleOptions, "args">,
): Schedule;
export function schedule(
  name: string,
  cron: string,
  target: AnyActor | Message,
  options: ScheduleOptions = {},
): Schedule {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(
      `schedule name must be 1 to 200 letters, digits, '_', '-', '.', ':', got ${
        typeof name === "string" ? JSON.stringify(name) : typeof name
      }`,
    );
  }
  const p = `schedule ${JSON.stringify(name)}: `;
  const existing = registry.get(name);
  if (existing) {
    throw new TypeError(
      `${p}already declared (${existing.cron}, actor ${existing.actorName}); give each ` +
        `schedule its own name, or removeSchedule() the old one first`,
    );
  }
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${p}options must be an object, got ${options === null ? "null" : typeof options}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!OPTIONS.has(key)) {
      throw new TypeError(
        `${p}unknown option ${JSON.stringify(key)}; the options are ${[...OPTIONS].join(", ")}`,
      );
    }
  }
  const parsed = new Cron(cron, { timezone: options.timezone, name });
  const isMessage = target instanceof Message;
  if (!isMessage && !isActor(target)) {
    throw new TypeError(
      `${p}target must be an actor or a message built with actor.message(), got ${
        describe(target)
      }`,
    );
  }
  const args = checkArgs(p, options.args, isMessage ? target as Message : undefined);
  const missed = options.missed ?? "skip";
  if (missed !== "skip" && missed !== "once" && missed !== "all") {
    throw new TypeError(
      `${p}missed must be "skip", "once" or "all", got ${JSON.stringify(missed)}`,
    );
  }
  const maxCatchUp = options.maxCatchUp ?? 100;
  if (!Number.isInteger(maxCatchUp) || maxCatchUp < 1) {
    throw new TypeError(`${p}maxCatchUp must be a positive integer, got ${maxCatchUp}`);
  }
  if (options.broker !== undefined && !(options.broker instanceof Broker)) {
    throw new TypeError(`${p}broker must be a Broker, got ${describe(options.broker)}`);
  }
  const broker = options.broker ?? (isMessage ? undefined : (target as AnyActor).options.broker);
  const s: Schedule = Object.freeze({
    name,
    cron: parsed,
    target,
    actorName: target.actorName,
    queueName: target.queueName,
    args,
    missed,
    maxCatchUp,
    broker,
    message: (tick: number) => tickMessage(s, tick),
  });
  registry.set(name, s);
  return s;
}

/**
 * The declared schedules, in declaration order; with `broker`, only those it runs (declared for
 * it, or for the global broker when it is the global broker).
 *
 * @example
 * ```ts
 * import { getSchedules } from "./schedule.ts";
 * for (const s of getSchedules()) console.log(s.name, String(s.cron), s.cron.next());
 * ```
 */
export function getSchedules(broker?: Broker): Schedule[] {
  const all = [...registry.values()];
  if (broker === undefined) return all;
  const isGlobal = onGlobalBroker.current === broker;
  return all.filter((s) => s.broker === broker || (s.broker === undefined && isGlobal));
}

/**
 * The schedule named `name`, if declared.
 *
 * @example
 * ```ts
 * import { getSchedule } from "./schedule.ts";
 * console.log(getSchedule("no-such-schedule")); // undefined
 * ```
 */
export function getSchedule(name: string): Schedule | undefined {
  return registry.get(name);
}

/**
 * Removes a declared schedule (the broker keeps its last tick); true if it was declared.
 *
 * @example
 * ```ts
 * import { Message } from "../message.ts";
 * import { removeSchedule, schedule } from "./schedule.ts";
 * schedule("tmp", "@daily", new Message({ queueName: "default", actorName: "tmp" }));
 * console.log(removeSchedule("tmp")); // true
 * ```
 */
export function removeSchedule(name: string): boolean {
  return registry.delete(name);
}

function tickMessage(s: Schedule, tick: number): Message {
  if (!Number.isInteger(tick)) {
    throw new TypeError(
      `schedule ${JSON.stringify(s.name)}: tick must be ms since the epoch, got ${tick}`,
    );
  }
  const base = s.target instanceof Message
    ? s.target
    : s.target.messageWithOptions({ args: [...s.args] });
  return base.copy({
    messageId: tickMessageId(s.name, tick),
    messageTimestamp: Date.now(),
    options: { ...base.options, [SCHEDULE_OPTION]: s.name, [SCHEDULE_TICK_OPTION]: tick },
  });
}

function isActor(x: unknown): x is AnyActor {
  return typeof x === "function" && typeof (x as AnyActor).actorName === "string" &&
    typeof (x as AnyActor).messageWithOptions === "function";
}

function checkArgs(p: string, args: unknown, message: Message | undefined): JsonValue[] {
  if (args === undefined) return [];
  if (message) {
    throw new TypeError(
      `${p}args cannot be given with a message target: build the message with its arguments ` +
        `(actor.message(...args)), or pass the actor itself`,
    );
  }
  if (!Array.isArray(args)) throw new TypeError(`${p}args must be an array, got ${describe(args)}`);
  const bad = findNonJson(args, "args");
  if (bad) {
    throw new TypeError(
      `${p}${bad.path} is ${bad.problem}, which is not a JSON value; messages carry JSON only`,
    );
  }
  return Object.freeze([...args]) as JsonValue[];
}

function describe(x: unknown): string {
  if (x === null) return "null";
  if (typeof x === "function") {
    return `a function${x.name ? ` (${x.name}) that is not an actor` : ""}`;
  }
  if (typeof x === "object") return `an instance of ${x.constructor?.name ?? "Object"}`;
  return typeof x;
}
