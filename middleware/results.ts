/**
 * `Results`: stores actors' return values so that `message.getResult()` can read them.
 *
 * @example
 * ```ts
 * import { MemoryResultBackend, Results } from "@dramatis/dramatis";
 * const m = new Results({ backend: new MemoryResultBackend() });
 * ```
 * @module
 */
import { Middleware, type ProcessOutcome } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import type { DeclaredActor } from "../broker/declared_actor.ts";
import type { Message, MessageProxy } from "../message.ts";
import type { ResultBackend } from "../results/backend.ts";
import { getOption } from "./_options.ts";
import { _registerResultsClass, resultPassedOn, resultToJson } from "./_util.ts";
import { brokerOf } from "../broker/_message_broker.ts";
import { _setCancelledHook, _setResultLookup } from "../message.ts";
import { getBroker } from "../broker/global.ts";
import { getLogger } from "../util/log.ts";
import { Cancelled } from "../errors.ts";

const logger = getLogger("dramatis.middleware.results.Results");

/**
 * Stores the return value of actors with `storeResults: true` in a result backend, for
 * `resultTtl` ms (default 10 minutes). A message that fails for good stores its error, which
 * `getResult()` throws as `ResultFailure`. Errors of attempts that will be retried are not
 * stored, so a blocking reader waits for the retries. A cancelled message stores a failure
 * whose `errorName` is `Cancelled`.
 *
 * @example
 * ```ts
 * import { actor, MemoryResultBackend, Results, StubBroker } from "@dramatis/dramatis";
 * const broker = new StubBroker();
 * broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));
 * const add = actor((a: number, b: number) => a + b, { actorName: "add", storeResults: true, broker });
 * ```
 */
export class Results extends Middleware {
  /** Where results go. */
  readonly backend: ResultBackend;
  /** Default for actors that do not set `storeResults`. */
  readonly storeResults: boolean;
  /** Default result TTL in ms. */
  readonly resultTtl: number;
  /** Actors already warned about a discarded return value. */
  #warned = new Set<string>();

  /** Creates the middleware. */
  constructor(options: { backend: ResultBackend; storeResults?: boolean; resultTtl?: number }) {
    super();
    if (!options?.backend) {
      throw new TypeError(
        "Results needs a backend: new Results({ backend: new MemoryResultBackend() }).",
      );
    }
    this.backend = options.backend;
    this.storeResults = options.storeResults ?? false;
    this.resultTtl = options.resultTtl ?? 600_000;
  }

  /** The actor options this middleware adds. */
  override get actorOptions(): readonly string[] {
    return ["storeResults", "resultTtl"];
  }

  #options(
    broker: Broker,
    message: MessageProxy,
  ): { store: boolean; ttl: number; actor: DeclaredActor | undefined } {
    const actor = broker.hasActor(message.actorName)
      ? broker.getActor(message.actorName)
      : undefined;
    return {
      store: getOption(message, actor, "storeResults", this.storeResults),
      ttl: getOption(message, actor, "resultTtl", this.resultTtl),
      actor,
    };
  }

  /** Runs after the actor, with its result or error. */
  override async afterProcessMessage(
    broker: Broker,
    message: MessageProxy,
    { result, error }: ProcessOutcome,
  ): Promise<void> {
    if (error instanceof Cancelled && !message.failed) {
      // Acked, not dead-lettered: the reader gets a ResultFailure named Cancelled.
      const { store, ttl } = this.#options(broker, message);
      if (store) await this.backend.storeFailure(message, error, ttl);
      return;
    }
    if (error !== undefined || message.failed) return; // a failure is stored by afterNack
    const { store, ttl, actor } = this.#options(broker, message);
    if (!store) {
      if (
        result !== undefined && !this.#warned.has(message.actorName) &&
        !resultPassedOn(message, actor)
      ) {
        this.#warned.add(message.actorName);
        logger.warning(
          `Actor ${JSON.stringify(message.actorName)} returned a value, but its \`storeResults\` ` +
            `option is not true, so the value has been discarded. Set storeResults: true on ` +
            `the actor (or the message) to keep it. (Logged once per actor.)`,
        );
      }
      return;
    }
    let value;
    try {
      value = resultToJson(message.actorName, result);
    } catch (e) {
      // A result that cannot be stored is reported to the reader rather than lost.
      return await this.backend.storeFailure(message, e, ttl);
    }
    await this.backend.storeResult(message, value, ttl);
  }

  /** @internal Stores the `Cancelled` failure of a message cancelled before it ran. */
  async _storeCancelled(broker: Broker, message: Message): Promise<void> {
    const { store, ttl } = this.#options(broker, message as MessageProxy);
    if (!store) return;
    const error = new Cancelled(`Message ${message.messageId} was cancelled.`);
    await this.backend.storeFailure(message, error, ttl);
  }

  /** Runs after a message was skipped. */
  override async afterSkipMessage(broker: Broker, message: MessageProxy): Promise<void> {
    if (message.failed) return; // stored by afterNack
    const { store, ttl } = this.#options(broker, message);
    if (store) await this.backend.storeResult(message, null, ttl);
  }

  /** Runs after a message was dead-lettered. */
  override async afterNack(broker: Broker, message: MessageProxy): Promise<void> {
    if (!broker.hasActor(message.actorName)) return;
    const { store, ttl } = this.#options(broker, message);
    if (!store) return;
    const error = message.error ?? new Error("A middleware marked the message failed.");
    await this.backend.storeFailure(message, error, ttl);
  }
}

_registerResultsClass(Results);

_setResultLookup((message, options) => {
  const broker = options.broker ?? brokerOf(message) ?? getBroker();
  const results = broker.middleware.find((m) => m instanceof Results) as Results | undefined;
  if (!results) {
    return Promise.reject(
      new TypeError(
        "getResult(): the broker has no Results middleware. Add one: " +
          "broker.addMiddleware(new Results({ backend })).",
      ),
    );
  }
  return results.backend.getResult(message, options);
});

_setCancelledHook(async (message, opsBroker) => {
  const broker = opsBroker as Broker;
  if (!Array.isArray(broker.middleware)) return;
  const results = broker.middleware.find((m) => m instanceof Results) as Results | undefined;
  await results?._storeCancelled(broker, message);
});
