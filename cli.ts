/**
 * The `dramatis` command line. Each command lives in `cli/`; `dramatis COMMAND --help` prints
 * its usage and flags.
 *
 * ```sh
 * deno run -A cli.ts worker tasks.ts -t 2 -c 8      # run workers for the actors in tasks.ts
 * deno run -A cli.ts queues tasks.ts                # ready / delayed / in flight / dead, per queue
 * deno run -A cli.ts dead-letters list default tasks.ts
 * deno run -A cli.ts send tasks.ts countWords '["http://example.com"]'
 * ```
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["--version"]);
 * ```
 * @module
 */
import { VERSION } from "./version.ts";
import { EXIT } from "./worker/_exit.ts";
import { args as runtimeArgs, cwd as workingDir, exit } from "./runtime/process.ts";
import { CliError, commandHelp, GLOBAL_FLAGS, parse, UsageError } from "./cli/_args.ts";
import { COMMANDS, globalHelp, RUN } from "./cli/_commands.ts";
// Everything else is imported by the command that runs: the supervisor process stays small and
// starts fast.

/**
 * Options `main` takes when the CLI is embedded (the compiled binary).
 *
 * @example
 * ```ts
 * import type { MainOptions } from "./cli.ts";
 * const options: MainOptions = { bundled: true, processCommand: ["/usr/local/bin/app"] };
 * ```
 */
export interface MainOptions {
  /** Task modules already imported by the binary (so none need to be given). */
  bundled?: boolean;
  /** How to start a worker process, when not `cli.ts __process`. */
  processCommand?: string[];
  /** The Web Worker entry, when not `worker/_web_worker.ts`. */
  webWorkerUrl?: string;
  /** Modules the Web Workers must import (the bundled binary's own entry). */
  webWorkerModules?: string[];
}

/**
 * Runs the CLI with `args` and resolves with the process exit code. Errors are one line on
 * stderr (`dramatis: ...`) with the exit code the README gives.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["--help"]);
 * ```
 */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  if (args[0] === "__process") {
    const { runWorkerProcess } = await import("./worker/_process.ts");
    return await runWorkerProcess(JSON.parse(args[1] ?? ""));
  }
  try {
    return await run(args, options);
  } catch (e) {
    if (e instanceof UsageError) {
      const help = e.command ? `dramatis ${e.command} --help` : "dramatis --help";
      console.error(`dramatis: ${e.message.replace(/\.$/, "")}. See ${help}`);
      return EXIT.USAGE;
    }
    if (e instanceof CliError) {
      console.error(`dramatis: ${e.message}`);
      return e.code;
    }
    if ((e as Error).name === "ModuleImportError") {
      console.error(`dramatis: ${(e as Error).message}`);
      return EXIT.IMPORT;
    }
    console.error(`dramatis: internal error (please report it): ${(e as Error)?.stack ?? e}`);
    return EXIT.INTERNAL;
  }
}

async function run(args: string[], options: MainOptions): Promise<number> {
  const bundled = options.bundled ?? false;
  const [first, ...rest] = args;
  if (first === undefined || first === "-h" || first === "--help") {
    console.log(globalHelp(bundled));
    return first === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (first === "--version") {
    console.log(`dramatis ${VERSION}`);
    return EXIT.OK;
  }
  if (first === "help") {
    const command = COMMANDS.find((c) => c.name === rest[0]);
    if (rest[0] !== undefined && !command) throw unknownCommand(rest[0], bundled);
    console.log(command ? commandHelp(command, bundled) : globalHelp(bundled));
    return EXIT.OK;
  }
  if (first.startsWith("-")) {
    const global = GLOBAL_FLAGS.some((f) => first === `--${f.name}`);
    throw new UsageError(
      global
        ? `${first} goes alone: dramatis ${first}`
        : `the command comes first, then its flags.`,
    );
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (!command) throw unknownCommand(first, bundled);
  if (bundled && command.name === "compile") {
    throw new UsageError(
      "compile runs from the dramatis package, not from a compiled binary: " +
        "npx dramatis compile MODULE... -o FILE",
    );
  }
  const parsed = parse(command, rest, COMMANDS);
  if (parsed.flags.help) {
    console.log(commandHelp(command, bundled));
    return EXIT.OK;
  }
  if (parsed.flags.version) {
    console.log(`dramatis ${VERSION}`);
    return EXIT.OK;
  }
  const runCommand = await RUN[command.name]!();
  return await runCommand(parsed, { ...options, cwd: workingDir(), bundled });
}

function unknownCommand(name: string, bundled: boolean): UsageError {
  const names = COMMANDS.filter((c) => !bundled || c.name !== "compile").map((c) => c.name);
  return new UsageError(
    `unknown command ${JSON.stringify(name)}: use ${names.join(", ")}.`,
  );
}

if (import.meta.main) {
  exit(await main(runtimeArgs()));
}
