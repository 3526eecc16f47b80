// Links a sent message to the broker it went to, so that `message.getResult()` can find the
// broker's `Results` middleware without the message module importing the broker.
import type { Broker } from "./broker/broker.ts";
import type { Message } from "./message.ts";

/**
 * Options of `message.getResult()`.
 *
 * @example
 * ```ts
 * import type { GetResultOptions } from "./_message_broker.ts";
 * const o: GetResultOptions = { block: true, timeout: 5_000 };
 * ```
 */
export interface GetResultOptions {
  /** Wait for the result (up to `timeout`). Default false: throw `ResultMissing` at once. */
  block?: boolean;
  /** How long to wait when blocking, in ms. Default 10_000. */
  timeout?: number;
  /** The broker whose `Results` middleware to use. Default: the one the message was sent to. */
  broker?: Broker;
}

type Lookup = (message: Message, options: GetResultOptions) => Promise<unknown>;

const sentTo = new WeakMap<Message, Broker>();
let lookup: Lookup | undefined;

/** Records the broker a message was sent to. */
export function _attachBroker<M extends Message>(message: M, broker: Broker): M {
  sentTo.set(message, broker);
  return message;
}

/** The broker a message was sent to, if it was sent in this isolate. */
export function brokerOf(message: Message): Broker | undefined {
  return sentTo.get(message);
}

/** Installed by `middleware/results.ts`. */
export function _setResultLookup(fn: Lookup): void {
  lookup = fn;
}

export function lookupResult(message: Message, options: GetResultOptions): Promise<unknown> {
  if (!lookup) {
    return Promise.reject(
      new TypeError(
        "getResult() needs the Results middleware: " +
          "broker.addMiddleware(new Results({ backend: new MemoryResultBackend() })).",
      ),
    );
  }
  return lookup(message, options);
}
