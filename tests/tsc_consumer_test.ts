// dramatis type-checked as a user's project checks it: the packed npm package installed offline
// into an empty folder, and that project's tsc (TypeScript 7, this repository's) run over a
// module importing the package's three entry points, once with the tsconfig `bun init` writes
// and once with the one `tsc --init` writes. The library's own .ts files are checked there as
// part of the user's program (skipLibCheck only skips .d.ts files).
import { test } from "node:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { bunProject, pack, root, run, toolchainBin } from "./_package.ts";

const app = `import { actor, FileBroker, Message, setBroker } from "@dramatis/dramatis";
import { main } from "@dramatis/dramatis/cli";
import { dashboardHandler, MemoryDashboardSource } from "@dramatis/dramatis/dashboard";

const broker = new FileBroker({ dir: ".dramatis" });
setBroker(broker);
export const add = actor(function add(a: number, b: number): number {
  return a + b;
});
const message: Message = add.message(1, 2);
const handler: (req: Request) => Promise<Response> = dashboardHandler(
  new MemoryDashboardSource(),
);
const run: (args: string[]) => Promise<number> = main;
console.log(message.messageId, handler, run);
`;

/** The tsconfig at `base` (this repository's), applied to the project's index.ts only. */
function tsconfig(base: string): string {
  return JSON.stringify({
    extends: join(root, "tests", "_tools", base),
    // The project is offline: @types/bun and @types/node come from this repository.
    compilerOptions: { typeRoots: [join(root, "node_modules", "@types")] },
    files: ["index.ts"],
    include: [],
    exclude: [],
  });
}

for (const base of ["tsconfig.bun.json", "tsconfig.node.json"]) {
  test(`tsc: a project using the packed package passes with ${base}'s settings`, {
    timeout: 120_000,
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-tsc-"));
    try {
      const project = bunProject(join(dir, "app"), pack(dir));
      // An ES module project, as `bun init` and a Node project using import write it.
      const pkgPath = join(project, "package.json");
      const pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
      writeFileSync(pkgPath, JSON.stringify({ ...pkg, type: "module" }));
      writeFileSync(join(project, "index.ts"), app);
      writeFileSync(join(project, "tsconfig.json"), tsconfig(base));
      // Fails with tsc's error list when anything in the package (or index.ts) does not check.
      run(join(toolchainBin, "tsc"), ["-p", join(project, "tsconfig.json")], { cwd: project });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
