// `dramatis cancel ID... [MODULE...]`: cancels messages by id and says what became of each.
import type { Broker } from "../broker/broker.ts";
import type { CancelOutcome } from "../broker/ops.ts";
import { EXIT } from "../worker/_exit.ts";
import { CliError, UsageError } from "./_args.ts";
import type { Run } from "./_commands.ts";
import { withBroker } from "./_broker.ts";
import { need } from "./_capability.ts";

const SAYS: Record<CancelOutcome, string> = {
  cancelled: "cancelled (it was queued or delayed: it will not run)",
  running: "running (its worker is told: its signal aborts with Cancelled)",
  finished: "finished (too late to cancel)",
  unknown: "unknown (no queue holds a message with this id)",
};

/** A positional naming a module (a .ts/.js file or URL, maybe with :NAME), not a message id. */
export function isModule(arg: string): boolean {
  return /\.(m|c)?[jt]sx?(:[\w$]+)?$/.test(arg) || /^(\.{0,2}\/|file:|https?:|jsr:|npm:)/.test(arg);
}

/**
 * Cancels message `id`. Found first (where the broker can browse), it is cancelled with
 * `message.cancel()`, which also stores the `Cancelled` failure of a queued or delayed one with
 * the `Results` middleware of MODULE(s) (a running one's is stored by its worker).
 */
async function cancelOne(broker: Broker, id: string): Promise<CancelOutcome> {
  const found = broker.capabilities.browse ? await broker.findMessage(id) : null;
  return found ? await found.message.cancel({ broker }) : await broker.cancel(id);
}

export const run: Run = (parsed, context) => {
  const ids = parsed.positionals.filter((a) => !isModule(a));
  const modules = parsed.positionals.filter(isModule);
  if (ids.length === 0) {
    throw new UsageError("cancel needs message ids: dramatis cancel ID...", "cancel");
  }
  return withBroker(modules, context, async (broker, where) => {
    need(broker, where, "cancel", "cancel messages");
    const outcomes: Record<string, CancelOutcome> = {};
    for (const id of new Set(ids)) outcomes[id] = await cancelOne(broker, id);
    if (parsed.flags.json) console.log(JSON.stringify(outcomes));
    else for (const [id, o] of Object.entries(outcomes)) console.log(`${id}: ${SAYS[o]}`);
    const missed = Object.values(outcomes).filter((o) => o === "finished" || o === "unknown");
    if (missed.length > 0) {
      throw new CliError(
        `${missed.length} of ${Object.keys(outcomes).length} message(s) could not be cancelled ` +
          `(finished or unknown on the ${where}).`,
        EXIT.NOT_FOUND,
      );
    }
    return EXIT.OK;
  });
};
