// Logging in Python Dramatiq's line format:
//   [2026-11-27 10:00:00,123] [PID 4242] [MainThread] [dramatis.worker.Worker] [INFO] text
// Private module: the CLI configures it, library code calls getLogger().

import { env } from "../runtime/env.ts";
import { pid as processId, writeStderr } from "../runtime/process.ts";
import { setFsReporter, writeText } from "../runtime/fs.ts";

/** Log levels, as Python's logging numbers them. */
export const LEVELS = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 } as const;
export type LevelName = keyof typeof LEVELS;

interface LogConfig {
  file?: string;
  level: number;
  thread: string;
  write: (line: string) => void;
}

function defaultWrite(line: string): void {
  writeStderr(line);
}

function envLevel(): number {
  const v = env("DRAMATIS_LOG_LEVEL")?.toUpperCase();
  return v && v in LEVELS ? LEVELS[v as LevelName] : LEVELS.WARNING;
}

const config: LogConfig = {
  level: envLevel(),
  thread: "MainThread",
  write: defaultWrite,
};

/** Sets the global log level, the thread name shown, and where lines go. */
export function configureLogging(
  options: { level?: LevelName | number; thread?: string; write?: (line: string) => void },
): void {
  if (options.level !== undefined) {
    config.level = typeof options.level === "number" ? options.level : LEVELS[options.level];
  }
  if (options.thread !== undefined) config.thread = options.thread;
  if (options.write !== undefined) config.write = options.write;
}

/** Appends log lines to `path` (synchronously, so lines from several processes interleave whole). */
export function logToFile(path: string): void {
  config.write = (line: string) => writeText(path, line + "\n", { append: true });
  config.file = path;
}

/** The file log lines go to, if any. */
export function logFile(): string | undefined {
  return config.file;
}

/** The current level number. */
export function logLevel(): number {
  return config.level;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

function timestamp(d = new Date()): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())},${
      pad(d.getMilliseconds(), 3)
    }`;
}

const pid = processId();

/** Formats an error with its stack, for WARNING lines about failures. */
export function formatError(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  try {
    return `Non-error thrown: ${JSON.stringify(e)}`;
  } catch {
    return `Non-error thrown: ${String(e)}`;
  }
}

/** A named logger. */
export class Logger {
  constructor(readonly name: string) {}
  isEnabledFor(level: number): boolean {
    return level >= config.level;
  }
  log(level: LevelName, text: string): void {
    if (LEVELS[level] < config.level) return;
    config.write(
      `[${timestamp()}] [PID ${pid}] [${config.thread}] [${this.name}] [${level}] ${text}`,
    );
  }
  debug(text: string): void {
    if (LEVELS.DEBUG >= config.level) this.log("DEBUG", text);
  }
  info(text: string): void {
    if (LEVELS.INFO >= config.level) this.log("INFO", text);
  }
  warning(text: string): void {
    this.log("WARNING", text);
  }
  error(text: string): void {
    this.log("ERROR", text);
  }
  critical(text: string): void {
    this.log("CRITICAL", text);
  }
}

const loggers = new Map<string, Logger>();
/** Returns the logger named `name` (created once). */
export function getLogger(name: string): Logger {
  let l = loggers.get(name);
  if (!l) loggers.set(name, l = new Logger(name));
  return l;
}

setFsReporter((level, logger, text) => getLogger(logger)[level](text));
