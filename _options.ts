// Actor options: the registry of legal names, their wire (snake_case) names, and the lookup
// rule "the message's option wins, then the actor's, then the default".
import type { Message } from "./message.ts";
import type { ErrorClass } from "./errors.ts";

const CORE_OPTIONS = [
  "actorName",
  "queueName",
  "priority",
  "broker",
  "maxRetries",
  "minBackoff",
  "maxBackoff",
  "retryWhen",
  "throws",
  "maxAge",
  "timeLimit",
  "storeResults",
  "resultTtl",
  "onSuccess",
  "onFailure",
  "onRetryExhausted",
  "notifyShutdown",
  "pipeIgnore",
  "rateLimitDelay",
];

const known = new Set<string>(CORE_OPTIONS);

/** Makes option names legal in `actor()` (called for every middleware added to a broker). */
export function registerActorOptions(names: readonly string[]): void {
  for (const n of names) known.add(n);
}

/** Throws a TypeError naming the first option of `options` no middleware declared. */
export function checkActorOptions(actorName: string, options: object): void {
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      throw new TypeError(
        `Unknown option ${JSON.stringify(key)} for actor ${JSON.stringify(actorName)}. ` +
          `Known options: ${[...known].sort().join(", ")}. If a middleware of yours declares ` +
          `it (in actorOptions), add that middleware to the broker before declaring the actor.`,
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
