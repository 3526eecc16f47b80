// Imports the user's task modules, with an error that says which one failed and why.
import { formatError } from "../_log.ts";

/** A module that could not be imported. */
export class ModuleImportError extends Error {
  constructor(readonly module: string, cause: unknown) {
    super(`Could not import ${module}: ${formatError(cause)}`, { cause });
    this.name = "ModuleImportError";
  }
}

/** Turns a path given on the command line into a module URL. */
export function moduleUrl(spec: string, cwd: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec) && !/^[a-z]:[\\/]/i.test(spec)) return spec;
  const abs = spec.startsWith("/") ? spec : `${cwd.replace(/\/$/, "")}/${spec}`;
  return new URL(`file://${abs}`).href;
}

/** Imports each module in order. */
export async function importModules(urls: string[]): Promise<void> {
  for (const url of urls) {
    try {
      await import(url);
    } catch (e) {
      throw new ModuleImportError(url, e);
    }
  }
}
