/**
 * The global broker: `setBroker()` and `getBroker()`.
 *
 * @example
 * ```ts
 * import { getBroker, setBroker } from "./global.ts";
 * import { StubBroker } from "./stub.ts";
 * setBroker(new StubBroker());
 * console.log(getBroker() instanceof StubBroker); // true
 * ```
 * @module
 */
import type { Broker } from "./broker.ts";
import { defaultBroker } from "./url.ts";

type Listener = (broker: Broker) => void;
const listeners: Listener[] = [];
let current: Broker | undefined;

/**
 * Sets the global broker. Actors declared without a `broker` option (before or after this
 * call) are declared on it.
 *
 * @example
 * ```ts
 * import { setBroker } from "./global.ts";
 * import { StubBroker } from "./stub.ts";
 * setBroker(new StubBroker());
 * ```
 */
export function setBroker(broker: Broker): Broker {
  current = broker;
  for (const l of listeners) l(broker);
  return broker;
}

/**
 * Returns the global broker, creating the default one on first use: the URL in the
 * `DRAMATIS_BROKER` environment variable, else a `FileBroker` in `./.dramatis`.
 *
 * @example
 * ```ts
 * import { getBroker, setBroker } from "./global.ts";
 * import { StubBroker } from "./stub.ts";
 * setBroker(new StubBroker());
 * const broker = getBroker();
 * ```
 */
export function getBroker(): Broker {
  return current ?? setBroker(defaultBroker());
}

/** @internal Calls `listener` with every broker set as global from now on. */
export function onGlobalBroker(listener: Listener): void {
  listeners.push(listener);
}
/** @internal The global broker if one is set, without creating the default. */
onGlobalBroker.current = undefined as Broker | undefined;
onGlobalBroker((b) => {
  onGlobalBroker.current = b;
});
