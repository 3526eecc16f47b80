// A strict parser of the Prometheus text exposition format 0.0.4, for tests. It throws on anything
// the format (https://prometheus.io/docs/instrumenting/exposition_formats/) does not allow or
// Prometheus would reject: a missing final line feed, bad metric or label names, bad escapes, a
// label given twice, a reserved `__` label, HELP/TYPE given twice or TYPE after a sample, a family
// split in two groups, duplicate series, counters below zero, and histograms whose buckets are not
// cumulative, lack `+Inf`, or disagree with `_count`.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf)$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function fail(line: number, why: string, text: string): never {
  throw new Error(`exposition line ${line}: ${why}: ${JSON.stringify(text)}`);
}

function parseValue(s: string, line: number, text: string): number {
  if (s === "NaN") return NaN;
  if (!FLOAT.test(s)) fail(line, `bad value ${JSON.stringify(s)}`, text);
  if (/inf/i.test(s)) return s.startsWith("-") ? -Infinity : Infinity;
  return Number(s);
}

function unescapeHelp(s: string, line: number, text: string): string {
  return s.replace(/\\(.?)/g, (_, c) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    return fail(line, `bad escape in HELP`, text);
  });
}

/** The family a sample belongs to: its own name, or the histogram/summary it is a part of. */
function familyOf(name: string, families: Map<string, Family>): string {
  if (families.has(name)) return name;
  for (const suffix of ["_bucket", "_count", "_sum"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const f = families.get(base);
      if (f && (f.type === "histogram" || (f.type === "summary" && suffix !== "_bucket"))) {
        return base;
      }
    }
  }
  return name;
}

export function parseExposition(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith("\n")) throw new Error("exposition must end with \\n");
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const seenSeries = new Set<string>();
  let current: string | undefined;
  const lines = text.split("\n");
  lines.pop();
  const enter = (name: string, line: number, raw: string) => {
    if (current === name) return;
    if (closed.has(name)) fail(line, `metric family ${name} appears in two groups`, raw);
    if (current !== undefined) closed.add(current);
    current = name;
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const n = i + 1;
    if (raw.includes("\r")) fail(n, "carriage return", raw);
    const line = raw.replace(/^[ \t]+/, "");
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, rest = ""] = m;
      if (!METRIC_NAME.test(name)) fail(n, `bad metric name ${name}`, raw);
      enter(name, n, raw);
      let f = families.get(name);
      if (!f) families.set(name, f = { name, type: "untyped", samples: [] });
      if (kind === "HELP") {
        if (f.help !== undefined) fail(n, `second HELP for ${name}`, raw);
        f.help = unescapeHelp(rest, n, raw);
      } else {
        if ((f as { typed?: boolean }).typed) fail(n, `second TYPE for ${name}`, raw);
        if (f.samples.length) fail(n, `TYPE for ${name} after its samples`, raw);
        const t = rest.trim();
        if (!TYPES.has(t)) fail(n, `bad type ${t}`, raw);
        f.type = t as Family["type"];
        (f as { typed?: boolean }).typed = true;
      }
      continue;
    }
    // A sample: name [{labels}] value [timestamp]
    const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nm) fail(n, "bad metric name", raw);
    const name = nm[0];
    let at = name.length;
    const labels: Record<string, string> = {};
    if (line[at] === "{") {
      at++;
      for (;;) {
        while (line[at] === " " || line[at] === "\t") at++;
        if (line[at] === "}") {
          at++;
          break;
        }
        const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at));
        if (!ln) fail(n, "bad label name", raw);
        const label = ln[0];
        if (!LABEL_NAME.test(label) || label.startsWith("__")) {
          fail(n, `bad or reserved label ${label}`, raw);
        }
        if (label in labels) fail(n, `label ${label} twice`, raw);
        at += label.length;
        if (line[at] !== "=" || line[at + 1] !== '"') fail(n, `want ="value" after ${label}`, raw);
        at += 2;
        let value = "";
        for (;;) {
          const c = line[at];
          if (c === undefined) fail(n, "unterminated label value", raw);
          if (c === '"') {
            at++;
            break;
          }
          if (c === "\\") {
            const e = line[at + 1];
            if (e === "\\") value += "\\";
            else if (e === '"') value += '"';
            else if (e === "n") value += "\n";
            else fail(n, `bad escape \\${e} in label value`, raw);
            at += 2;
            continue;
          }
          value += c;
          at++;
        }
        labels[label] = value;
        while (line[at] === " " || line[at] === "\t") at++;
        if (line[at] === ",") {
          at++;
          continue;
        }
        if (line[at] === "}") {
          at++;
          break;
        }
        fail(n, "want , or } after a label", raw);
      }
    }
    const rest = line.slice(at);
    if (!/^[ \t]/.test(rest)) fail(n, "want a space before the value", raw);
    const tokens = rest.trim().split(/[ \t]+/);
    if (tokens.length < 1 || tokens.length > 2) {
      fail(n, "want a value and an optional timestamp", raw);
    }
    const value = parseValue(tokens[0], n, raw);
    if (tokens[1] !== undefined && !/^-?\d+$/.test(tokens[1])) fail(n, "bad timestamp", raw);
    const fam = familyOf(name, families);
    enter(fam, n, raw);
    let f = families.get(fam);
    if (!f) families.set(fam, f = { name: fam, type: "untyped", samples: [] });
    if (f.type === "counter" && name !== fam) {
      fail(n, `counter sample ${name} not named ${fam}`, raw);
    }
    if (f.type === "gauge" && name !== fam) fail(n, `gauge sample ${name} not named ${fam}`, raw);
    if (f.type === "counter" && !(value >= 0)) fail(n, "counter below zero", raw);
    if (f.type === "histogram") {
      if (name === fam) fail(n, `histogram sample without _bucket/_sum/_count`, raw);
      if (name.endsWith("_bucket") !== ("le" in labels)) {
        fail(n, "le goes on _bucket samples and only there", raw);
      }
    }
    const key = name + JSON.stringify(Object.entries(labels).sort());
    if (seenSeries.has(key)) fail(n, "duplicate series", raw);
    seenSeries.add(key);
    f.samples.push({ name, labels, value });
  }
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let g = groups.get(key);
    if (!g) groups.set(key, g = { buckets: [] });
    if (s.name.endsWith("_bucket")) {
      const bound = le === "+Inf" ? Infinity : Number(le);
      if (le !== "+Inf" && !FLOAT.test(le)) throw new Error(`${f.name}: bad le ${le}`);
      g.buckets.push([bound, s.value]);
    } else if (s.name.endsWith("_count")) g.count = s.value;
    else g.sum = s.value;
  }
  for (const [key, g] of groups) {
    if (g.count === undefined || g.sum === undefined) {
      throw new Error(`${f.name}${key}: histogram without _count or _sum`);
    }
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i][0] > g.buckets[i - 1][0])) {
        throw new Error(`${f.name}${key}: buckets not in increasing le order`);
      }
      if (g.buckets[i][1] < g.buckets[i - 1][1]) {
        throw new Error(`${f.name}${key}: buckets not cumulative`);
      }
    }
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`);
    if (last[1] !== g.count) throw new Error(`${f.name}${key}: +Inf bucket ${last[1]} != count`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`. */
export function valueOf(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  for (const f of families.values()) {
    const matches = f.samples.filter((s) =>
      s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
    );
    if (matches.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: several samples`);
    if (matches.length === 1) return matches[0].value;
  }
  throw new Error(`${name} ${JSON.stringify(labels)}: no sample`);
}
