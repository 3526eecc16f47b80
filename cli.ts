/**
 * The `dramatis` command line: `deno run -A cli.ts worker tasks.ts`.
 *
 * @example
 * ```sh
 * deno run -A cli.ts --help
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { VERSION } from "./version.ts";

const HELP = `dramatis ${VERSION}: background task processing for Deno and Bun

Usage:
  dramatis worker MODULE... [options]   run workers for the actors in MODULE(s)
  dramatis --version                    print the version
  dramatis --help                       print this help
`;

/**
 * Runs the CLI with `args` and resolves with the process exit code.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["--version"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: false,
    options: { help: { type: "boolean", short: "h" }, version: { type: "boolean" } },
  });
  if (values.version) {
    console.log(`dramatis ${VERSION}`);
    return 0;
  }
  if (values.help || positionals.length === 0) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  console.error(`dramatis: unknown command ${JSON.stringify(positionals[0])}. Try --help.`);
  return await Promise.resolve(2);
}

if (import.meta.main) {
  const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
    (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
  const code = await main(argv);
  (globalThis as unknown as { process: { exit(c: number): never } }).process.exit(code);
}
