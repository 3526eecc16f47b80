// `dramatis compile`: one executable holding the CLI and the user's task modules, built with
// `bun build --compile` (works offline). The binary starts its worker processes by running
// itself, and its Web Workers from an entry embedded next to the main one. Source maps are
// embedded, so stack traces name the user's files and lines (relative to the directory the
// build ran in), not the bundle.
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { execPath, runtime } from "../runtime/process.ts";
import { EXIT } from "../worker/_exit.ts";

const INSTALL_BUN = "install it (npm i -D bun, then run this with npx; or see https://bun.sh) " +
  "or put it on PATH";

/**
 * Builds the binary; returns the exit code for the CLI. Failures are one line on stderr:
 * 64 for a module that is not a local file or when run from a compiled binary, 3 when Bun
 * cannot be run or dramatis itself is not on disk (a JSR copy), 2 when `bun build` fails (its
 * own errors, above, name the module).
 */
export function compileBinary(
  moduleUrls: string[],
  output: string,
  options: { bun?: string } = {},
): number {
  const fail = (code: number, message: string) => {
    console.error(`dramatis: ${message}`);
    return code;
  };
  if (import.meta.url.startsWith("file:///$bunfs/")) {
    return fail(
      EXIT.USAGE,
      "compile runs from the dramatis package, not from a compiled binary: " +
        "npx dramatis compile MODULE... -o FILE",
    );
  }
  if (!import.meta.url.startsWith("file:")) {
    return fail(
      EXIT.CONNECT,
      "compile bundles dramatis from files on disk, and this copy was loaded from " +
        `${new URL(import.meta.url).origin}: in a Bun project, bun add @dramatis/dramatis, ` +
        "then bunx dramatis compile MODULE... -o FILE",
    );
  }
  const paths: string[] = [];
  for (const url of moduleUrls) {
    if (!url.startsWith("file:")) {
      return fail(EXIT.USAGE, `compile bundles local module files; got ${url}.`);
    }
    paths.push(fileURLToPath(url));
  }
  const bun = options.bun ?? (runtime === "bun" ? execPath() : "bun");
  const dir = mkdtempSync(join(tmpdir(), "dramatis-compile-"));
  const cleanup = [dir];
  const here = (p: string) => JSON.stringify(fileURLToPath(new URL(p, import.meta.url)));
  const imports = paths.map((p) => `import ${JSON.stringify(p)};`).join("\n");
  try {
    writeFileSync(
      join(dir, "dramatis_main.ts"),
      `${imports}
import { main } from ${here("../cli.ts")};
import { args, execPath, exit } from ${here("../runtime/process.ts")};
const webWorkerUrl = new URL("./dramatis_web_worker.ts", import.meta.url).href;
exit(await main(args(), { bundled: true, processCommand: [execPath()], webWorkerUrl }));
`,
    );
    writeFileSync(
      join(dir, "dramatis_web_worker.ts"),
      `${imports}\nimport ${here("../worker/_web_worker.ts")};\n`,
    );
    // Built in a directory of its own next to the output (so that the rename below stays on one
    // file system): with --sourcemap, bun also writes .map files beside the binary, which it
    // does not need (they are embedded). Paths in stack traces are relative to the cwd.
    const dest = resolve(output);
    mkdirSync(dirname(dest), { recursive: true });
    const out = mkdtempSync(join(dirname(dest), ".dramatis-compile-"));
    cleanup.push(out);
    const built = join(out, basename(dest));
    const r = spawnSync(
      bun,
      [
        "build",
        "--compile",
        "--sourcemap",
        join(dir, "dramatis_main.ts"),
        join(dir, "dramatis_web_worker.ts"),
        "--outfile",
        built,
      ],
      // bun's summary names the temporary directory: replaced by one line below.
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    if (r.error) {
      const why = (r.error as { code?: string }).code === "ENOENT"
        ? `there is no ${JSON.stringify(bun)} on PATH`
        : `could not run ${bun}: ${r.error.message}`;
      return fail(
        EXIT.CONNECT,
        `compile needs Bun (bun build --compile), and ${why}: ${INSTALL_BUN}.`,
      );
    }
    if (r.status !== 0 || !existsSync(built)) {
      return fail(
        EXIT.IMPORT,
        `bun build --compile failed (exit ${r.status}); its errors are above.`,
      );
    }
    renameSync(built, dest);
    const mb = (statSync(dest).size / 2 ** 20).toFixed(0);
    console.log(`Built ${output} (${mb} MiB): run ${output} worker, ${output} send ACTOR [JSON].`);
    return EXIT.OK;
  } finally {
    for (const d of cleanup) rmSync(d, { recursive: true, force: true });
  }
}
