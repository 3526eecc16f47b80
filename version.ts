/**
 * The dramatis version.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * console.log(VERSION);
 * ```
 * @module
 */

/**
 * The version of this package, kept equal to `version` in deno.json.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * console.log(`dramatis ${VERSION}`);
 * ```
 */
export const VERSION = "0.1.0";
