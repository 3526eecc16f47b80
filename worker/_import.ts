// Imports the user's task modules, with an error that says which one failed and why. A module
// given as `MODULE:NAME` (Dramatiq's `module:attribute`) names the export that holds the
// broker: it becomes the global broker once the module is imported.
import { formatError } from "../util/log.ts";
import { exists } from "../runtime/fs.ts";

/** A module that could not be imported, or whose broker export is missing or wrong. */
export class ModuleImportError extends Error {
  constructor(readonly module: string, cause: unknown, message?: string) {
    super(message ?? `Could not import ${module}: ${formatError(cause)}`, { cause });
    this.name = "ModuleImportError";
  }
}

/** `MODULE:NAME` split in two; `name` is undefined when no export is named. */
export function splitModuleSpec(spec: string): { module: string; name?: string } {
  const at = spec.lastIndexOf(":");
  if (at > 0) {
    const module = spec.slice(0, at), name = spec.slice(at + 1);
    // Not a URL scheme (`npm:x`, `jsr:x`) nor a port (`https://host:8080/x.ts`).
    if (/^[A-Za-z_$][\w$]*$/.test(name) && !/^[a-z][a-z0-9+.-]*$/i.test(module)) {
      return { module, name };
    }
  }
  return { module: spec };
}

/** Turns a module given on the command line (`tasks.ts`, `app.ts:broker`) into a module URL. */
export function moduleUrl(spec: string, cwd: string): string {
  const { module, name } = splitModuleSpec(spec);
  return name === undefined ? toUrl(module, cwd) : `${toUrl(module, cwd)}:${name}`;
}

function toUrl(spec: string, cwd: string): string {
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec) && !/^[a-z]:[\\/]/i.test(spec)) return spec;
  const abs = spec.startsWith("/") ? spec : `${cwd.replace(/\/$/, "")}/${spec}`;
  return new URL(`file://${abs}`).href;
}

/**
 * Imports each module (a URL, or `URL:NAME`) in order; for `URL:NAME`, sets the module's export
 * NAME as the global broker.
 */
export async function importModules(specs: string[]): Promise<void> {
  checkModuleFiles(specs);
  for (const spec of specs) {
    const { module: url, name } = splitModuleSpec(spec);
    let exports: Record<string, unknown>;
    try {
      exports = await import(url);
    } catch (e) {
      throw new ModuleImportError(url, e);
    }
    if (name !== undefined) {
      const { setBroker } = await import("../broker/global.ts");
      setBroker(brokerExport(url, exports, name) as Parameters<typeof setBroker>[0]);
    }
  }
}

/** Throws a ModuleImportError for the first module (URL or `URL:NAME`) that is a missing file. */
export function checkModuleFiles(specs: string[]): void {
  for (const spec of specs) {
    const url = splitModuleSpec(spec).module;
    if (url.startsWith("file:") && !exists(decodeURIComponent(new URL(url).pathname))) {
      throw new ModuleImportError(
        url,
        undefined,
        `Could not import ${url}: there is no such file. Check the path (relative paths start ` +
          `from the working directory).`,
      );
    }
  }
}

/** The export `name` of module `url`, checked to be a broker. */
function brokerExport(url: string, exports: Record<string, unknown>, name: string): unknown {
  if (!(name in exports)) {
    const names = Object.keys(exports).sort().join(", ") || "none";
    throw new ModuleImportError(
      url,
      undefined,
      `${url} has no export named ${JSON.stringify(name)} (its exports: ${names}). ` +
        `In MODULE:NAME, NAME is the export that holds the broker.`,
    );
  }
  const value = exports[name] as Record<string, unknown> | null | undefined;
  const isBroker = typeof value === "object" && value !== null &&
    ["enqueue", "consume", "declareActor"].every((m) => typeof value[m] === "function");
  if (!isBroker) {
    const kind = value === null
      ? "null"
      : typeof value === "object"
      ? value.constructor?.name ?? "object"
      : typeof value;
    throw new ModuleImportError(
      url,
      undefined,
      `${url}'s export ${JSON.stringify(name)} is not a broker (it is ${kind}). ` +
        `In MODULE:NAME, NAME is the export that holds the broker.`,
    );
  }
  return value;
}
