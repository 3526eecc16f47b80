// Command-line parsing: each command declares its flags (cli/_commands.ts); a flag of another
// command, or an unknown one, is refused with one line saying who takes it. No node:util: on
// Deno it alone costs ~10 ms of the supervisor's start-up.
import { EXIT } from "../worker/_exit.ts";

/** An error the CLI reports as one line on stderr, exiting with `code`. */
export class CliError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = "CliError";
  }
}

/** Bad arguments (exit code 64); `command` names the command whose help to point at. */
export class UsageError extends CliError {
  constructor(message: string, readonly command?: string) {
    super(message, EXIT.USAGE);
    this.name = "UsageError";
  }
}

/** A flag of a command. */
export interface Flag {
  /** The long name, without `--`. */
  name: string;
  /** The one-letter name, without `-`. */
  short?: string;
  /** The value's name in the help (`N`, `FILE`); a flag without one takes no value. */
  value?: string;
  /** One line of help (with the default, if any). */
  help: string;
}

/** A command of the CLI, as its help and the parser see it. */
export interface Command {
  name: string;
  /** Its arguments as the usage line shows them, from source and in a compiled binary. */
  args: string;
  bundledArgs?: string;
  /** One line for the global help. */
  summary: string;
  /** What the command does, for its own help (lines of at most 80 columns). */
  about: string;
  flags: Flag[];
}

/** Flags every command takes. */
export const GLOBAL_FLAGS: Flag[] = [
  { name: "help", short: "h", help: "this help" },
  { name: "version", help: "the version of dramatis" },
];

/** What `parse` found: flag values by long name (`true` for a flag without a value). */
export interface Parsed {
  flags: Record<string, string | true>;
  positionals: string[];
}

/**
 * Parses `args` (what follows the command name) for `command`: `--name value`, `--name=value`,
 * `-n value`, `-nvalue`, `--` (the rest is positional). A negative number is positional.
 */
export function parse(command: Command, input: string[], others: Command[]): Parsed {
  const args = [...input];
  const flags: Record<string, string | true> = {};
  const positionals: string[] = [];
  const known = [...command.flags, ...GLOBAL_FLAGS];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    const long = arg.startsWith("--");
    const eq = long ? arg.indexOf("=") : -1;
    const key = long ? arg.slice(2, eq < 0 ? undefined : eq) : arg.slice(1, 2);
    const flag = known.find((f) => (long ? f.name : f.short) === key);
    const shown = long ? `--${key}` : `-${key}`;
    if (!flag) throw unknownFlag(shown, long, key, command, others);
    if (flag.value === undefined) {
      if (eq >= 0) throw new UsageError(`${shown} takes no value.`, command.name);
      flags[flag.name] = true;
      // Short switches together: -vh.
      if (!long && arg.length > 2) args.splice(i + 1, 0, `-${arg.slice(2)}`);
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (!long && arg.length > 2) value = arg.slice(2);
    else value = args[++i];
    if (value === undefined) {
      throw new UsageError(`${shown} needs a value: ${shown} ${flag.value}.`, command.name);
    }
    flags[flag.name] = value;
  }
  return { flags, positionals };
}

function unknownFlag(
  shown: string,
  long: boolean,
  key: string,
  command: Command,
  others: Command[],
): UsageError {
  const owners = others.filter((c) =>
    c !== command && c.flags.some((f) => (long ? f.name : f.short) === key)
  ).map((c) => `dramatis ${c.name}`);
  if (owners.length > 0) {
    return new UsageError(
      `${shown} is a flag of ${owners.join(" and ")}, not of dramatis ${command.name}.`,
      command.name,
    );
  }
  return new UsageError(`unknown flag ${shown}.`, command.name);
}

/** The value of flag `name` as a whole number >= `min`, if given. */
export function int(parsed: Parsed, name: string, min = 1): number | undefined {
  const v = parsed.flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== "string" || v.trim() === "" || !Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} takes a whole number >= ${min}, got ${JSON.stringify(v)}.`);
  }
  return n;
}

/** The value of flag `name` (a string), if given. */
export function str(parsed: Parsed, name: string): string | undefined {
  const v = parsed.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** The help of one command: its usage line, what it does, its flags. */
export function commandHelp(command: Command, bundled: boolean): string {
  const args = bundled ? command.bundledArgs ?? command.args : command.args;
  return [
    `Usage: dramatis ${command.name} ${args}`,
    "",
    command.about,
    "",
    "Options:",
    ...[...command.flags, ...GLOBAL_FLAGS].map(flagLine),
  ].join("\n");
}

function flagLine(f: Flag): string {
  const names = `${f.short ? `-${f.short}, ` : "    "}--${f.name}${f.value ? ` ${f.value}` : ""}`;
  return `  ${names.padEnd(28)}${f.help}`;
}

/** How the CLI was started (see `MainOptions` in cli.ts). */
export interface Context {
  /** The working directory. */
  cwd: string;
  /** A compiled binary: its task modules are already imported. */
  bundled: boolean;
  processCommand?: string[];
  webWorkerUrl?: string;
  webWorkerModules?: string[];
}

/** What runs a command: resolves with the exit code. */
export type Run = (parsed: Parsed, context: Context) => Promise<number>;
