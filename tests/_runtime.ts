// Running scripts in a child process of the same runtime (Deno or Bun), for tests.
import { spawn } from "node:child_process";

export const isBun = "Bun" in globalThis;
export const runtimeName = isBun ? "bun" : "deno";

/** The command line that runs `file` with this runtime (Deno: `run -A`, type-checked if asked). */
export function scriptArgs(file: string, options: { check?: boolean } = {}): string[] {
  return isBun ? [file] : ["run", "-A", ...(options.check ? ["--check"] : []), file];
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs `file` to completion (killed after `timeout` ms) and collects its output. */
export function runScript(
  file: string,
  options: {
    args?: string[];
    env?: Record<string, string>;
    timeout?: number;
    check?: boolean;
    cwd?: string;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...scriptArgs(file, options), ...(options.args ?? [])], {
      env: { ...process.env, NO_COLOR: "1", ...options.env },
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "", stderr = "";
    child.stdout!.on("data", (d) => stdout += d);
    child.stderr!.on("data", (d) => stderr += d);
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeout ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
