// `dramatis worker --metrics HOST:PORT`: the address parsed, the `Metrics` middleware turned on in
// every Web Worker (DRAMATIS_METRICS=1 set here, inherited by the worker processes; see
// _enable.ts), and the endpoint served from the supervisor with `serveHttp`. On a FileBroker the
// queue depths come from the worker processes' records (DRAMATIS_METRICS_DEPTHS=1, _depth.ts).
import { setEnv } from "../runtime/env.ts";
import { configureLogging, getLogger, LEVELS } from "../util/log.ts";
import { serveHttp } from "../runtime/process.ts";
import { METRICS_ENV } from "./_enable.ts";
import { CliError } from "../cli/_args.ts";
import { parseListen } from "../cli/dashboard.ts";
import { withBroker } from "../cli/_broker.ts";
import { EXIT } from "../worker/_exit.ts";
import type { Context } from "../cli/_commands.ts";
import { brokerMetricsHandler } from "./broker_metrics.ts";
import { RECORD_DEPTHS_ENV } from "./_depth.ts";
import { FileBroker } from "../broker/file/broker.ts";

const logger = getLogger("dramatis.MainProcess");

/** Makes the worker processes started from now on (they inherit the environment) count. */
export function askForMetrics(): void {
  setEnv(METRICS_ENV, "1");
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
  const where = parseListen(address, "--metrics");
  askForMetrics();
  return await withBroker(options.modules, context, async (broker) => {
    configureLogging({ level: options.logLevel ?? LEVELS.INFO });
    // A FileBroker's depths cost a replica of its whole log here: its worker processes, which
    // follow the log anyway, publish them in their records instead.
    const recordDepths = broker instanceof FileBroker;
    if (recordDepths) setEnv(RECORD_DEPTHS_ENV, "1");
    const handler = brokerMetricsHandler(broker, { recordDepths });
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
