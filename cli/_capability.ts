// The broker operations a command needs (broker/ops.ts): a broker without one is one line and
// exit code 3, naming the brokers that have it.
import type { Broker } from "../broker/broker.ts";
import type { BrokerCapabilities } from "../broker/ops.ts";
import { EXIT } from "../worker/_exit.ts";
import { CliError } from "./_args.ts";

/** Throws a CliError unless `broker` has `capability`; `what` says what it could not do. */
export function need(
  broker: Broker,
  where: string,
  capability: keyof BrokerCapabilities,
  what: string,
): void {
  if (broker.capabilities[capability]) return;
  throw new CliError(
    `the ${where} cannot ${what} (capabilities.${capability} is false): use the file or ` +
      `Redis broker.`,
    EXIT.CONNECT,
  );
}

/** How long ago `at` (ms since the epoch) was, e.g. `1.2s`, `3m10s`. */
export function ago(at: number, now = Date.now()): string {
  const s = Math.max(0, now - at) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${Math.floor(s % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}
