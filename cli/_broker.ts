// The broker of the commands that operate on queues (queues, dead-letters, send): imports the
// modules, takes the broker they set (else DRAMATIS_BROKER, else the default), connects, and
// turns what goes wrong with it into one line and exit code 3.
import { configureLogging, LEVELS } from "../util/log.ts";
import { importModules, moduleUrl } from "../worker/_import.ts";
import type { Broker } from "../broker/broker.ts";
import { EXIT } from "../worker/_exit.ts";
import { CliError } from "./_args.ts";
import { DramatisError } from "../errors.ts";
import type { Context } from "./_commands.ts";

/** How long closing the broker may take at the end of a command, in ms. */
const CLOSE_MS = 2_000;

/**
 * Runs `fn` with the broker of `modules` (`where` names it: `file broker at /abs/dir`) and
 * closes it. A broker that cannot be created (a bad URL or option) or reached, or an operation
 * that fails on it, is a `CliError` with exit code 3.
 */
export async function withBroker(
  modules: string[],
  context: Context,
  fn: (broker: Broker, where: string) => Promise<number>,
): Promise<number> {
  configureLogging({ level: LEVELS.WARNING });
  await importModules(modules.map((m) => moduleUrl(m, context.cwd)));
  const { getBroker } = await import("../broker/global.ts");
  const { describeBroker, redactUrls } = await import("../broker/url.ts");
  let broker: Broker;
  try {
    broker = getBroker();
  } catch (e) {
    throw new CliError(`the broker is misconfigured: ${redactUrls(message(e))}`, EXIT.CONNECT);
  }
  const where = describeBroker(broker, context.cwd);
  try {
    const connect = (broker as { connect?: () => Promise<void> }).connect;
    if (typeof connect === "function") {
      try {
        await connect.call(broker);
      } catch (e) {
        throw new CliError(
          `could not connect to the broker: ${redactUrls(message(e))}`,
          EXIT.CONNECT,
        );
      }
    }
    return await fn(broker, where);
  } catch (e) {
    if (e instanceof CliError || !isBrokerFailure(e)) throw e;
    throw new CliError(`the broker (${where}) failed: ${redactUrls(message(e))}`, EXIT.CONNECT);
  } finally {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      broker.close().catch(() => {}),
      new Promise((r) => timer = setTimeout(r, CLOSE_MS)),
    ]);
    clearTimeout(timer);
  }
}

/** An error of the broker or of the system under it (not a bug of ours): one line, exit 3. */
function isBrokerFailure(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return e instanceof DramatisError || typeof code === "string" && /^E[A-Z]+$/.test(code);
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
}
