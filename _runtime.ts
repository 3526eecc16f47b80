// The thin runtime adapter: what differs between Deno and Bun for the CLI.

/** The runtime this code runs on. */
export const runtime: "deno" | "bun" = "Bun" in globalThis ? "bun" : "deno";

type Proc = {
  on(signal: string, fn: () => void): void;
  pid: number;
  execPath: string;
  argv: string[];
  exit(code: number): never;
};
const proc = (globalThis as unknown as { process: Proc }).process;

/** Calls `fn` on each of these signals. */
export function onSignal(signals: string[], fn: (signal: string) => void): void {
  const deno = (globalThis as {
    Deno?: { addSignalListener(s: string, f: () => void): void };
  }).Deno;
  for (const s of signals) {
    if (runtime === "deno" && deno) deno.addSignalListener(s, () => fn(s));
    else proc.on(s, () => fn(s));
  }
}

/** The executable running this process. */
export function execPath(): string {
  return proc.execPath;
}

/** The process arguments after the script (or after the binary, when compiled). */
export function args(): string[] {
  const deno = (globalThis as { Deno?: { args: string[] } }).Deno;
  return deno ? deno.args : proc.argv.slice(2);
}

/** Exits the process. */
export function exit(code: number): never {
  return proc.exit(code);
}
