// HTML building with escaping by default: h`<td>${value}</td>` escapes value unless it is Safe.

/** Already-escaped HTML. */
export class Safe {
  constructor(readonly html: string) {}
  toString(): string {
    return this.html;
  }
}

/** What h`` accepts between its literal parts. */
export type Part = Safe | string | number | null | undefined | false | Part[];

const ESC: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for an element or a quoted attribute. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c]!);
}

function part(p: Part): string {
  if (p === null || p === undefined || p === false) return "";
  if (p instanceof Safe) return p.html;
  if (Array.isArray(p)) return p.map(part).join("");
  return esc(String(p));
}

/** A template tag: literal parts as they are, every value escaped (arrays joined). */
export function h(strings: TemplateStringsArray, ...values: Part[]): Safe {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1]!;
  return new Safe(out);
}

/** 1234567 -> "1,234,567". */
export function num(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** A duration in ms as "850 ms", "12 s", "3 m 12 s", "2 h 5 m", "3 d 4 h". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${s % 60} s`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr} h ${m % 60} m`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

/** An ISO time in UTC without milliseconds. */
export function iso(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A <time> element: "3 m 12 s ago" (or "in ..."), the exact time in its title. */
export function when(t: number | null | undefined, now: number): Safe {
  if (t === null || t === undefined) return h`<span class="dim">never</span>`;
  const d = now - t;
  const text = d >= 0 ? `${duration(d)} ago` : `in ${duration(-d)}`;
  return h`<time datetime="${iso(t)}" title="${iso(t)}">${text}</time>`;
}
