// Whether a value is JSON, and if not, the path to the first part that is not: the check of
// actor arguments, results, progress values and schedule arguments (`message.ts` re-exports it).

/**
 * Checks that `value` is a JSON value and returns the path of the first part that is not
 * (for example `"[0].user.tags[2]"`), or `undefined` when all of it is JSON. Also returns a
 * description of the problem.
 *
 * @example
 * ```ts
 * import { findNonJson } from "./json.ts";
 * console.log(findNonJson({ user: { tags: ["a", undefined] } })); // { path: ".user.tags[1]", problem: "undefined" }
 * ```
 */
export function findNonJson(
  value: unknown,
  path = "",
  seen?: Set<object>,
): { path: string; problem: string } | undefined {
  // The common case, a JSON value, is checked without building paths or a set of seen objects.
  if (!seen && isJson(value, 0)) return undefined;
  return explain(value, path, seen ?? new Set());
}

/** True when `value` is JSON (false also for very deep values: `explain` then decides). */
function isJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case "string":
      return !hasLoneSurrogate(value);
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(value);
    case "object":
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth > 64) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (!isJson(obj[key], depth + 1)) return false;
  return true;
}

/** Finds where `value` stops being JSON, with the path to it. */
function explain(
  value: unknown,
  path: string,
  seen: Set<object>,
): { path: string; problem: string } | undefined {
  switch (typeof value) {
    case "string":
      return hasLoneSurrogate(value)
        ? { path, problem: "a string with a lone surrogate" }
        : undefined;
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : { path, problem: String(value) };
    case "undefined":
      return { path, problem: "undefined" };
    case "bigint":
      return { path, problem: "a BigInt (convert it to a string or number)" };
    case "function":
      return { path, problem: "a function" };
    case "symbol":
      return { path, problem: "a symbol" };
  }
  if (value === null) return undefined;
  const obj = value as object;
  if (seen.has(obj)) return { path, problem: "a cycle (the object contains itself)" };
  if (Array.isArray(obj)) {
    seen.add(obj);
    for (let i = 0; i < obj.length; i++) {
      const bad = explain(obj[i], `${path}[${i}]`, seen);
      if (bad) return bad;
    }
    seen.delete(obj);
    return undefined;
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto !== Object.prototype && proto !== null) {
    const name = proto?.constructor?.name ?? "unknown";
    return { path, problem: `an instance of ${name} (only plain objects and arrays are JSON)` };
  }
  seen.add(obj);
  for (const key of Object.keys(obj)) {
    const sub = /^[A-Za-z_$][\w$]*$/.test(key)
      ? `${path}.${key}`
      : `${path}[${JSON.stringify(key)}]`;
    const bad = explain((obj as Record<string, unknown>)[key], sub, seen);
    if (bad) return bad;
  }
  seen.delete(obj);
  return undefined;
}

function hasLoneSurrogate(s: string): boolean {
  // Fast path: most strings have no surrogates at all.
  if (!/[\uD800-\uDFFF]/.test(s)) return false;
  return !s.isWellFormed();
}
