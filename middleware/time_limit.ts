/**
 * `TimeLimit`: aborts actors that run past their `timeLimit`.
 *
 * @example
 * ```ts
 * import { TimeLimit } from "@dramatis/dramatis";
 * const m = new TimeLimit({ timeLimit: 60_000 });
 * ```
 * @module
 */
import { Middleware } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import type { MessageProxy } from "../message.ts";
import { TimeLimitExceeded } from "../errors.ts";
import { getLogger } from "../util/log.ts";

const logger = getLogger("dramatis.middleware.time_limit.TimeLimit");

interface Node {
  message: MessageProxy;
  deadline: number;
  limit: number;
  prev: Node | undefined;
  next: Node | undefined;
}

/** Messages with one time limit, in start order (so deadlines only grow along the list). */
class Lane {
  head: Node | undefined;
  tail: Node | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  timerAt = Infinity;
}

const NODE = Symbol("dramatis.timeLimitNode");
type Tracked = MessageProxy & { [NODE]?: Node | undefined };

/**
 * When an actor runs longer than its time limit (default 10 minutes), aborts its
 * `currentSignal()` with `TimeLimitExceeded`. The message then fails with that error and is
 * retried per its options, even if the actor ignores the signal: the worker stops waiting for
 * it. (Code that never yields, such as `while (true) {}`, needs the CLI's hard stop.)
 *
 * Cost: one timer per distinct time limit, not per message.
 *
 * @example
 * ```ts
 * import { StubBroker, TimeLimit } from "@dramatis/dramatis";
 * const broker = new StubBroker({ middleware: [new TimeLimit({ timeLimit: 5_000 })] });
 * ```
 */
export class TimeLimit extends Middleware {
  /** The default time limit in ms. */
  readonly timeLimit: number;
  #lanes = new Map<number, Lane>();

  /** Creates the middleware. */
  constructor(options: { timeLimit?: number } = {}) {
    super();
    this.timeLimit = options.timeLimit ?? 600_000;
  }
  /** The actor options this middleware adds. */
  override get actorOptions(): readonly string[] {
    return ["timeLimit"];
  }

  /** Runs before the actor. */
  override beforeProcessMessage(broker: Broker, message: MessageProxy): void {
    const limit = this.limitFor(broker, message);
    if (!Number.isFinite(limit) || limit <= 0) return;
    let lane = this.#lanes.get(limit);
    if (!lane) this.#lanes.set(limit, lane = new Lane());
    const node: Node = {
      message,
      deadline: Date.now() + limit,
      limit,
      prev: lane.tail,
      next: undefined,
    };
    if (lane.tail) lane.tail.next = node;
    else lane.head = node;
    lane.tail = node;
    (message as Tracked)[NODE] = node;
    if (lane.timer === undefined) this.#arm(lane);
  }

  /** The time limit of `message` in ms: the message's option, the actor's, or the default. */
  limitFor(broker: Broker, message: MessageProxy): number {
    return (message.options.time_limit as number | null | undefined) ||
      (broker.hasActor(message.actorName)
        ? broker.getActor(message.actorName).options.timeLimit as number | undefined
        : undefined) ||
      this.timeLimit;
  }

  /** Runs after the actor, with its result or error. */
  override afterProcessMessage(_broker: Broker, message: MessageProxy): void {
    this.#untrack(message as Tracked);
  }

  /** Runs after a message was skipped. */
  override afterSkipMessage(_broker: Broker, message: MessageProxy): void {
    this.#untrack(message as Tracked);
  }

  #untrack(message: Tracked): void {
    const node = message[NODE];
    if (!node) return;
    message[NODE] = undefined;
    const lane = this.#lanes.get(node.limit)!;
    if (node.prev) node.prev.next = node.next;
    else lane.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else lane.tail = node.prev;
    if (!lane.head && lane.timer !== undefined) {
      clearTimeout(lane.timer);
      lane.timer = undefined;
      lane.timerAt = Infinity;
    }
  }

  #arm(lane: Lane): void {
    const head = lane.head;
    if (!head) return;
    lane.timerAt = head.deadline;
    lane.timer = setTimeout(() => this.#fire(lane), Math.max(0, head.deadline - Date.now()));
  }

  #fire(lane: Lane): void {
    lane.timer = undefined;
    const now = Date.now();
    while (lane.head && lane.head.deadline <= now) {
      const { message, limit } = lane.head;
      this.#untrack(message as Tracked);
      if (!message.done) {
        logger.warning(
          `Time limit of ${limit} ms exceeded in message ${message.messageId} (${message.actorName}).`,
        );
        message.abort(new TimeLimitExceeded(`Time limit of ${limit} ms exceeded.`));
      }
    }
    if (lane.timer === undefined) this.#arm(lane);
  }
}
