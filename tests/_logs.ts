// Captures dramatis log lines (at DEBUG and up) while `fn` runs.
import { configureLogging, logLevel } from "../util/log.ts";

/** Runs `fn` with every log line collected in `lines`; restores the level and writer after. */
export async function withLogs<T>(fn: (lines: string[]) => Promise<T> | T): Promise<T> {
  const lines: string[] = [];
  const level = logLevel();
  configureLogging({ level: "DEBUG", write: (line) => lines.push(line) });
  try {
    return await fn(lines);
  } finally {
    configureLogging({ level, write: (line) => console.error(line) });
  }
}

/** The lines of `lines` that match `re`. */
export function matching(lines: string[], re: RegExp): string[] {
  return lines.filter((l) => re.test(l));
}
