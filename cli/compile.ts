// `dramatis compile MODULE... -o FILE`: see cli/_compile.ts.
import { moduleUrl, splitModuleSpec } from "../worker/_import.ts";
import { str, UsageError } from "./_args.ts";
import type { Run } from "./_commands.ts";

export const run: Run = async (parsed, context) => {
  const output = str(parsed, "output");
  if (parsed.positionals.length === 0 || !output) {
    throw new UsageError(
      "compile needs modules and -o: dramatis compile tasks.ts -o app",
      "compile",
    );
  }
  const named = parsed.positionals.find((m) => splitModuleSpec(m).name !== undefined);
  if (named) {
    throw new UsageError(
      `compile takes module files, not MODULE:NAME (${named}): set the broker in the module ` +
        `with setBroker().`,
      "compile",
    );
  }
  const { compileBinary } = await import("./_compile.ts");
  return compileBinary(parsed.positionals.map((m) => moduleUrl(m, context.cwd)), output);
};
