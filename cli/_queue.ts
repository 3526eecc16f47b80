// Queue names given on the command line, checked as the brokers check them.
import { UsageError } from "./_args.ts";

/** Throws a UsageError naming `flag` unless every name is a valid queue name. */
export async function checkQueues(names: string[], flag?: string): Promise<void> {
  if (names.length === 0) return;
  // Imported here: the supervisor (`worker -Q`) does not load the broker otherwise.
  const { validateQueueName } = await import("../broker/broker.ts");
  for (const name of names) {
    try {
      validateQueueName(name);
    } catch (e) {
      throw new UsageError(`${flag ? `${flag}: ` : ""}${(e as Error).message}`);
    }
  }
}
