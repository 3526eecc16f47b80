// `dramatis worker --metrics HOST:PORT`: the address parsed, the `Metrics` middleware turned on in
// every Web Worker (DRAMATIS_METRICS=1 set here, inherited by the worker processes; see
// _enable.ts), and the endpoint served from the supervisor with `serveHttp`.
import { setEnv } from "../_env.ts";
import { configureLogging, getLogger, LEVELS } from "../_log.ts";
import { serveHttp } from "../_runtime.ts";
import { METRICS_ENV } from "./_enable.ts";
import { CliError, UsageError } from "../cli/_args.ts";
import { withBroker } from "../cli/_broker.ts";
import { EXIT } from "../worker/_exit.ts";
import type { Context } from "../cli/_commands.ts";
import { brokerMetricsHandler } from "./broker_metrics.ts";

const logger = getLogger("dramatis.MainProcess");

/** Makes the worker processes started from now on (they inherit the environment) count. */
export function askForMetrics(): void {
  setEnv(METRICS_ENV, "1");
}

/** `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1; port 0: any free one), or an Error's text. */
export function parseAddress(text: string): { hostname: string; port: number } | string {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$|^(\d+)$/.exec(text.trim());
  const port = Number(m?.[3] ?? m?.[4]);
  if (!m || !Number.isInteger(port) || port > 65535) {
    return `--metrics takes HOST:PORT (e.g. 127.0.0.1:9191), got ${JSON.stringify(text)}.`;
  }
  return { hostname: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/**
 * Runs `supervise` (the supervisor) with `/metrics` served on `address` for the broker of the
 * modules (imported here too, for their broker): the one endpoint of every worker process.
 */
export async function serveMetrics(
  address: string,
  options: { modules: string[]; logLevel?: number | undefined },
  context: Context,
  supervise: () => Promise<number>,
): Promise<number> {
  const where = parseAddress(address);
  if (typeof where === "string") throw new UsageError(where, "worker");
  askForMetrics();
  return await withBroker(options.modules, context, async (broker) => {
    configureLogging({ level: options.logLevel ?? LEVELS.INFO });
    const handler = brokerMetricsHandler(broker);
    const server = await serveHttp(where.hostname, where.port, handler).catch((e) => {
      throw new CliError(
        `could not serve metrics on ${address}: ${(e as Error).message.split("\n")[0]}`,
        EXIT.USAGE,
      );
    });
    const host = where.hostname.includes(":") ? `[${where.hostname}]` : where.hostname;
    logger.info(`Serving metrics on http://${host}:${server.port}/metrics`);
    try {
      return await supervise();
    } finally {
      await server.close();
    }
  });
}
