// How many arguments a function takes, read from its source (for `dramatis send`).
// `fn.length` counts only the parameters before the first one with a default or the rest
// parameter, so the source says the rest: how many parameters there are, and whether one is a
// rest parameter. Native and bound functions have no source: their count is unknown.

/** What a function's parameter list allows. */
export interface Arity {
  /** Parameters without a default before the first with one (`fn.length`). */
  min: number;
  /** Every parameter; Infinity with a rest parameter, or when the source cannot be read. */
  max: number;
  /** Their names, as written (`{…}` for a destructured one, `...args` for a rest one). */
  names: string[];
  /** False when the parameter list could not be read (then only `min` is known). */
  known: boolean;
}

/** The arity of `fn`. */
export function arity(fn: (...args: never[]) => unknown): Arity {
  const min = fn.length;
  const params = paramList(Function.prototype.toString.call(fn));
  if (params === undefined) return { min, max: Infinity, names: [], known: false };
  const names: string[] = [];
  let rest = false, required = -1;
  for (const p of params) {
    if (p.startsWith("...")) {
      rest = true;
      names.push(`...${paramName(p.slice(3))}`);
      break;
    }
    const hasDefault = topLevelIndex(p, "=") >= 0;
    if (hasDefault && required < 0) required = names.length;
    names.push(paramName(hasDefault ? p.slice(0, topLevelIndex(p, "=")) : p));
  }
  // What fn.length counts must be what the source says: if not, trust fn.length alone.
  const expected = required >= 0 ? required : rest ? names.length - 1 : names.length;
  if (expected !== min) return { min, max: Infinity, names: [], known: false };
  return { min, max: rest ? Infinity : names.length, names, known: true };
}

function paramName(p: string): string {
  const t = p.trim();
  if (t.startsWith("{")) return "{…}";
  if (t.startsWith("[")) return "[…]";
  return t;
}

/** The parameters of a function's source text, split at top-level commas; undefined if unread. */
function paramList(source: string): string[] | undefined {
  let s = stripComments(source).trim();
  if (/^class\b/.test(s) || /\{\s*\[native code\]\s*\}\s*$/.test(s)) return undefined;
  s = s.replace(/^async\b\s*/, "");
  // `x => ...`: one parameter without parentheses.
  const single = /^([A-Za-z_$][\w$]*)\s*=>/.exec(s);
  if (single) return [single[1]!];
  const open = s.indexOf("(");
  if (open < 0) return undefined;
  const close = matching(s, open);
  if (close < 0) return undefined;
  const inner = s.slice(open + 1, close);
  const parts = splitTopLevel(inner).map((p) => p.trim());
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop(); // a trailing comma
  return parts.some((p) => p === "") ? undefined : parts;
}

/** Removes // and /* comments outside strings. */
function stripComments(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"' || c === "`") {
      const end = skipString(s, i);
      out += s.slice(i, end + 1);
      i = end;
    } else if (c === "/" && s[i + 1] === "/") {
      while (i < s.length && s[i] !== "\n") i++;
    } else if (c === "/" && s[i + 1] === "*") {
      const end = s.indexOf("*/", i + 2);
      i = end < 0 ? s.length : end + 1;
      out += " ";
    } else {
      out += c;
    }
  }
  return out;
}

/** The index of the quote closing the string that starts at `i`. */
function skipString(s: string, i: number): number {
  const q = s[i];
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === "\\") j++;
    else if (s[j] === q) return j;
  }
  return s.length - 1;
}

/** The index of the bracket closing the one at `open`, or -1. */
function matching(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"' || c === "`") i = skipString(s, i);
    else if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") {
      if (--depth === 0) return i;
    }
  }
  return -1;
}

function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"' || c === "`") i = skipString(s, i);
    else if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      parts.push(s.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

/** The index of `ch` in `s` outside brackets and strings (not part of `=>`, `==`), or -1. */
function topLevelIndex(s: string, ch: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'" || c === '"' || c === "`") i = skipString(s, i);
    else if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === ch && depth === 0 && s[i + 1] !== ">" && s[i + 1] !== "=") return i;
  }
  return -1;
}
