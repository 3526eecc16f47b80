// Actor options: the check of their names, their wire (snake_case) names, and the lookup rule
// "the message's option wins, then the actor's, then the default".
import type { Message } from "../message.ts";
import type { ErrorClass } from "../errors.ts";

/** The options `actor()` itself reads; every other option belongs to a middleware. */
const OWN_OPTIONS: readonly string[] = [
  "actorName",
  "queueName",
  "priority",
  "broker",
  // Unique jobs (broker/ops.ts): the broker reads them off the message.
  "uniqueKey",
  "uniqueFor",
  "debounce",
];

/** Where `checkActorOptions` checks: what the user called, for which actor, against what. */
export interface OptionCheck {
  /** What the user called: `actor()`, `actorClass(Report)`, or the actor (`add`). */
  call: string;
  /** The actor's name. */
  actorName: string;
  /** The `actorOptions` of the broker's middleware. */
  allowed: ReadonlySet<string>;
}

/**
 * Throws a TypeError naming the first option of `options` that is neither one of `actor()`'s
 * own nor one the broker's middleware declared.
 */
export function checkActorOptions(options: object, check: OptionCheck): void {
  const { call, actorName, allowed } = check;
  for (const key of Object.keys(options)) {
    if (!allowed.has(key) && !OWN_OPTIONS.includes(key)) {
      const known = [...OWN_OPTIONS, ...allowed].sort().join(", ");
      throw new TypeError(
        `${call}: Unknown option ${JSON.stringify(key)} for actor ${JSON.stringify(actorName)}. ` +
          `Known options: ${known}. If a middleware declares it (in actorOptions), add that ` +
          `middleware to the broker before declaring the actor.`,
      );
    }
  }
}

const snakeCache = new Map<string, string>();
/** `maxRetries` -> `max_retries`. */
export function snake(name: string): string {
  let s = snakeCache.get(name);
  if (s === undefined) {
    s = name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    snakeCache.set(name, s);
  }
  return s;
}

/** The options an actor holds, as seen by middleware. */
export interface OptionSource {
  readonly options: Readonly<Record<string, unknown>>;
}

/**
 * The value of option `name` (camelCase) for a message: the message's own option (by its
 * wire name) if the key is present, else the actor's, else `fallback`.
 */
export function getOption<T>(
  message: Message,
  actor: OptionSource | undefined,
  name: string,
  fallback: T,
): T {
  const wire = snake(name);
  if (Object.hasOwn(message.options, wire)) return message.options[wire] as T;
  const v = actor?.options[name];
  return v === undefined ? fallback : v as T;
}

/** True when `error` is an instance of a class in the actor's `throws` option (an expected error). */
export function isExpectedError(actor: OptionSource, error: unknown): boolean {
  const throws = actor.options.throws as ErrorClass | ErrorClass[] | undefined;
  if (!throws) return false;
  return (Array.isArray(throws) ? throws : [throws]).some((c) => error instanceof c);
}
