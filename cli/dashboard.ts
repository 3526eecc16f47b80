// `dramatis dashboard [MODULE...] [--listen ADDR] [--read-only] [--token T]`: the dashboard of the
// broker the modules set (else DRAMATIS_BROKER, else ./.dramatis), served with `serveHttp` until
// INT/TERM. A non-loopback address needs a token. Also `dramatis worker --dashboard ADDR`, which
// serves it from the worker's supervisor (`besideWorker`).
import { env } from "../runtime/env.ts";
import { configureLogging, getLogger, LEVELS } from "../util/log.ts";
import { type HttpServer, onSignal, serveHttp } from "../runtime/process.ts";
import type { Broker } from "../broker/broker.ts";
import { EXIT } from "../worker/_exit.ts";
import { str, UsageError } from "./_args.ts";
import type { Run } from "./_commands.ts";
import { withBroker } from "./_broker.ts";

/** Where the dashboard listens unless told. */
export const DEFAULT_LISTEN = "127.0.0.1:8181";
/** The environment variable a token may come from (kept out of `ps`). */
export const TOKEN_ENV = "DRAMATIS_DASHBOARD_TOKEN";

const logger = getLogger("dramatis.dashboard");

/** `HOST:PORT`, `[::1]:PORT`, `:PORT` or `PORT` (host 127.0.0.1). */
export function parseListen(
  text: string,
  flag = "--listen",
): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*))?:?(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new UsageError(
      `${flag} ${JSON.stringify(text)}: expected HOST:PORT (127.0.0.1:8181, [::1]:8181, :8181).`,
      "dashboard",
    );
  }
  return { hostname: m[1] ?? (m[2] || "127.0.0.1"), port };
}

/** True for 127.0.0.0/8, ::1 and localhost. */
export function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

interface ServeOptions {
  listen: string;
  flag: string;
  readOnly: boolean;
  token: string | undefined;
}

function checked(o: ServeOptions): { hostname: string; port: number } {
  const addr = parseListen(o.listen, o.flag);
  if (!isLoopback(addr.hostname) && !o.token) {
    throw new UsageError(
      `${o.flag} ${o.listen} is not a loopback address: pass --token T (or set ${TOKEN_ENV}) ` +
        `to require a token there, or listen on 127.0.0.1.`,
      "dashboard",
    );
  }
  if (o.token !== undefined && o.token.length < 16) {
    throw new UsageError(
      "--token: use at least 16 characters (a long random string).",
      "dashboard",
    );
  }
  return addr;
}

async function serve(
  broker: Broker,
  where: string,
  o: ServeOptions,
): Promise<HttpServer> {
  const addr = checked(o);
  const { dashboardHandler } = await import("../dashboard/handler.ts");
  const { brokerSource } = await import("../dashboard/broker_source.ts");
  const streams = new AbortController(); // the pages' live streams end before the shutdown
  const handler = dashboardHandler(brokerSource(broker, { name: where }), {
    readOnly: o.readOnly,
    signal: streams.signal,
    ...(o.token !== undefined ? { token: o.token } : {}),
  });
  const http = await serveHttp(addr.hostname, addr.port, handler);
  const server: HttpServer = {
    ...http,
    close: () => {
      streams.abort();
      return http.close();
    },
  };
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  logger.info(
    `Dashboard of the ${where}: http://${host}:${server.port}/${o.readOnly ? " (read-only)" : ""}${
      o.token ? " (token required)" : ""
    }.`,
  );
  return server;
}

export const run: Run = (parsed, context) => {
  const options: ServeOptions = {
    listen: str(parsed, "listen") ?? DEFAULT_LISTEN,
    flag: "--listen",
    readOnly: !!parsed.flags["read-only"],
    token: str(parsed, "token") ?? envToken(),
  };
  checked(options); // before the modules are imported: one line, exit 64
  return withBroker(parsed.positionals, context, async (broker, where) => {
    configureLogging({ level: LEVELS.INFO });
    const server = await serve(broker, where, options);
    await new Promise<void>((resolve) => onSignal(["SIGINT", "SIGTERM"], () => resolve()));
    await server.close();
    return EXIT.OK;
  });
};

/**
 * `dramatis worker --dashboard ADDR`: serves the dashboard of the modules' broker from the
 * supervisor, until it exits (token from `DRAMATIS_DASHBOARD_TOKEN`, required off loopback).
 */
export async function besideWorker(listen: string, modules: string[]): Promise<void> {
  const options: ServeOptions = { listen, flag: "--dashboard", readOnly: false, token: envToken() };
  checked(options);
  const { importModules } = await import("../worker/_import.ts");
  await importModules(modules);
  const { getBroker } = await import("../broker/global.ts");
  const { describeBroker } = await import("../broker/url.ts");
  const broker = getBroker();
  await serve(broker, describeBroker(broker), options);
}

function envToken(): string | undefined {
  return env(TOKEN_ENV) || undefined;
}
