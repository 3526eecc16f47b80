// `dramatis compile`: one executable holding the CLI and the user's task modules, built with
// `bun build --compile` (works offline). The binary starts its worker processes by running
// itself, and its Web Workers from an entry embedded next to the main one.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { execPath, runtime } from "./_runtime.ts";

/** Builds the binary; returns the bun exit code. */
export function compileBinary(
  moduleUrls: string[],
  output: string,
  options: { bun?: string } = {},
): number {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-compile-"));
  const here = (p: string) => JSON.stringify(fileURLToPath(new URL(p, import.meta.url)));
  const imports = moduleUrls.map((u) => `import ${JSON.stringify(fileURLToPath(u))};`).join("\n");
  try {
    writeFileSync(
      join(dir, "dramatis_main.ts"),
      `${imports}
import { main } from ${here("./cli.ts")};
import { args, execPath, exit } from ${here("./_runtime.ts")};
const webWorkerUrl = new URL("./dramatis_web_worker.ts", import.meta.url).href;
exit(await main(args(), { bundled: true, processCommand: [execPath()], webWorkerUrl }));
`,
    );
    writeFileSync(
      join(dir, "dramatis_web_worker.ts"),
      `${imports}\nimport ${here("./worker/_web_worker.ts")};\n`,
    );
    const bun = options.bun ?? (runtime === "bun" ? execPath() : "bun");
    const r = spawnSync(
      bun,
      [
        "build",
        "--compile",
        join(dir, "dramatis_main.ts"),
        join(dir, "dramatis_web_worker.ts"),
        "--outfile",
        output,
      ],
      { stdio: "inherit" },
    );
    if (r.error) {
      throw new Error(
        `Could not run ${bun}: ${r.error.message}. Install Bun (npm install bun) or put it on PATH.`,
      );
    }
    return r.status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
