// A child process of this runtime running one of the tests/_file_*.ts scripts, for the file
// broker tests: its output, waiting for a line, SIGKILL.
import { spawn } from "node:child_process";
import { scriptArgs } from "./_runtime.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A child process of this runtime running one of the tests/_file_*.ts scripts. */
export class Child {
  stdout = "";
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  readonly #proc;
  constructor(script: string, args: string[]) {
    const file = new URL(script, import.meta.url).pathname;
    this.#proc = spawn(process.execPath, [...scriptArgs(file), ...args], {
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#proc.stdout!.on("data", (d: Uint8Array) => this.stdout += new TextDecoder().decode(d));
    this.#proc.stderr!.on("data", (d: Uint8Array) => this.stderr += new TextDecoder().decode(d));
    this.exited = new Promise((resolve) => {
      this.#proc.on(
        "close",
        (code: number | null, signal: string | null) => resolve({ code, signal }),
      );
    });
  }
  /** Complete lines written so far. */
  get lines(): string[] {
    const all = this.stdout.split("\n");
    all.pop();
    return all;
  }
  async waitFor(what: string, pred: () => boolean, timeout = 30_000): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!pred()) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for ${what}. stderr:\n${this.stderr.slice(-3000)}`);
      }
      await sleep(5);
    }
  }
  kill(signal: "SIGKILL" | "SIGTERM" = "SIGKILL"): void {
    this.#proc.kill(signal);
  }
}
