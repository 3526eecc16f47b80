// Plain-text tables for the CLI's output: numbers right-aligned, text left-aligned.

/** The rows as aligned columns, the first row being the header. */
export function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) =>
    r.map((c, i) =>
      typeof c === "number" ? String(c).padStart(widths[i] ?? 0) : String(c).padEnd(widths[i] ?? 0)
    ).join("  ").trimEnd()
  ).join("\n");
}

/** `text` cut to `max` characters (with an ellipsis). */
export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
