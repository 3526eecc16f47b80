/**
 * `Tracing`: OpenTelemetry spans for sends and runs, following the messaging semantic
 * conventions, with the W3C trace context carried in the message (`options.trace_ctx`). It takes
 * a tracer shaped like `@opentelemetry/api`'s; dramatis depends on nothing.
 *
 * @example
 * ```ts
 * import { type Tracer, Tracing } from "../telemetry/mod.ts";
 * import { StubBroker } from "@dramatis/dramatis";
 * // The tracer: trace.getTracer("app") from @opentelemetry/api.
 * function traced(tracer: Tracer): StubBroker {
 *   const broker = new StubBroker();
 *   broker.addMiddleware(new Tracing({ tracer }));
 *   return broker;
 * }
 * ```
 * @module
 */
import { Middleware, type ProcessOutcome } from "./middleware.ts";
import type { Broker } from "../broker/broker.ts";
import { qName } from "../broker/queue_name.ts";
import type { MessageProxy } from "../message.ts";
import type { Message } from "../message.ts";
import { currentMessage } from "../worker/context.ts";
import {
  type Attributes,
  type Context,
  type Link,
  type OtelApi,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
} from "../telemetry/otel.ts";
import {
  extractTraceContext,
  injectTraceContext,
  isValidSpanContext,
} from "../telemetry/trace_context.ts";
import { type Classified, DeliveryTracker, type Tracked } from "../telemetry/_tracker.ts";

/**
 * Options of `new Tracing()`.
 *
 * @example
 * ```ts
 * import type { Tracer, TracingOptions } from "../telemetry/mod.ts";
 * const options = (tracer: Tracer): TracingOptions => ({ tracer, parentFromMessage: false });
 * ```
 */
export interface TracingOptions {
  /** The tracer: `trace.getTracer("app")` from `@opentelemetry/api`. */
  tracer: Tracer;
  /**
   * The `@opentelemetry/api` module (`import * as api from "@opentelemetry/api"`). Needed to make
   * one span the parent of another across a hop: the send spans of retries, pipeline steps and
   * sends from inside an actor then become children of the running process span, and with
   * `parentFromMessage` the process span a child of the send. Without it those are links.
   */
  otel?: OtelApi;
  /**
   * Make the creation context (the send span the message carries) the parent of the process span,
   * so that the send and the run are one trace. Needs `otel`. Default false: the process span
   * starts a new trace and links to the creation context (the messaging conventions' default).
   */
  parentFromMessage?: boolean;
  /**
   * `messaging.system`. Default: the broker's `messagingSystem` property if it has one, else
   * `rabbitmq` for a RabbitMQ broker, `dramatiq` for Redis (Dramatiq's wire protocol), and
   * `dramatis` for the file and stub brokers.
   */
  system?: string;
}

interface Run extends Tracked {
  span: Span;
  ended: boolean;
  error: boolean;
  skipped: boolean;
  retried: boolean;
  requeued: boolean;
}

const processSpans = new WeakMap<MessageProxy, Span>();

/**
 * The `process` span of the message the calling actor runs (or of `message`), to parent your own
 * spans on it: `context.with(trace.setSpan(context.active(), currentProcessSpan()!), fn)`.
 * Undefined outside an actor or without `Tracing`.
 *
 * @example
 * ```ts
 * import { currentProcessSpan } from "../telemetry/mod.ts";
 * function work() {
 *   currentProcessSpan()?.setAttribute("app.items", 3);
 * }
 * ```
 */
export function currentProcessSpan(message = currentMessage()): Span | undefined {
  return message ? processSpans.get(message) : undefined;
}

/**
 * Creates OpenTelemetry spans per the messaging semantic conventions:
 * - `send <queue>` (PRODUCER) for every enqueue, including retries, delayed-message releases,
 *   pipeline steps and group callbacks, told apart by `dramatis.send.reason` (`user`, `retry`,
 *   `requeue`, `delay_release`, `pipeline`, `group_callback`);
 * - `process <queue>` (CONSUMER) from just before the actor runs until the message is acked or
 *   dead-lettered, linked to the creation context (the first send's span), or its child with
 *   `parentFromMessage`; it records the exception, `error.type` and `dramatis.outcome`
 *   (`success`, `retry`, `requeued`, `failed`, `dead`, `skipped`).
 *
 * Attributes: `messaging.system`, `messaging.destination.name` (the canonical queue),
 * `messaging.operation.type` and `.name`, `messaging.message.id`, `messaging.message.conversation_id`
 * (a group's id), `dramatis.actor.name`, `dramatis.message.retries`, `dramatis.message.delay_ms`,
 * `dramatis.message.eta`.
 *
 * The creation context travels as W3C `traceparent` / `tracestate` in `options.trace_ctx`. It is
 * written once, by the first send of a message, and kept across retries and delays, so every
 * attempt links to the same creation context; a pipeline step or a group callback is a new
 * message and gets its own.
 *
 * @example
 * ```ts
 * import { actor, StubBroker } from "@dramatis/dramatis";
 * import { type Tracer, Tracing } from "../telemetry/mod.ts";
 *
 * // With import { trace } from "@opentelemetry/api": traced(trace.getTracer("app")).
 * function traced(tracer: Tracer) {
 *   const broker = new StubBroker();
 *   broker.addMiddleware(new Tracing({ tracer }));
 *   const hello = actor((name: string) => `hello ${name}`, { actorName: "hello", broker });
 *   return hello.send("ada"); // a "send default" span; the worker's run: "process default"
 * }
 * ```
 */
export class Tracing extends Middleware {
  /** The tracer spans are started with. */
  readonly tracer: Tracer;
  /** See `TracingOptions.parentFromMessage`. */
  readonly parentFromMessage: boolean;
  #otel: OtelApi | undefined;
  #system: string | undefined;
  #systems = new WeakMap<Broker, string>();
  #tracker = new DeliveryTracker<Run, true>();
  #sends = new WeakMap<Message, { span: Span; c: Classified<Run, true> }>();

  /** Creates the middleware. */
  constructor(options: TracingOptions) {
    super();
    if (typeof options?.tracer?.startSpan !== "function") {
      throw new TypeError(
        'Tracing needs a tracer: new Tracing({ tracer: trace.getTracer("app") }) with ' +
          "@opentelemetry/api, or any object with startSpan(name, options, context).",
      );
    }
    if (options.parentFromMessage && typeof options.otel?.trace?.setSpanContext !== "function") {
      throw new TypeError(
        "Tracing: parentFromMessage needs the @opentelemetry/api module to build a parent " +
          'context: import * as api from "@opentelemetry/api"; new Tracing({ tracer, otel: api, ' +
          "parentFromMessage: true }).",
      );
    }
    this.tracer = options.tracer;
    this.#otel = options.otel;
    this.parentFromMessage = options.parentFromMessage ?? false;
    this.#system = options.system;
  }

  #systemOf(broker: Broker): string {
    if (this.#system) return this.#system;
    let s = this.#systems.get(broker);
    if (!s) this.#systems.set(broker, s = messagingSystem(broker));
    return s;
  }

  /** A context whose span is `parent`, when the OpenTelemetry API was given. */
  #contextOf(parent: SpanContext): Context | undefined {
    return this.#otel?.trace.setSpanContext(this.#otel.ROOT_CONTEXT, parent);
  }

  /** Starts the send span and writes the creation context into the message if it has none. */
  override beforeEnqueue(broker: Broker, message: Message, delay: number | undefined): void {
    const c = this.#tracker.classify(message, delay, true);
    const q = qName(message.queueName);
    const attributes = this.#attributes(broker, message, "send");
    attributes["dramatis.send.reason"] = c.reason;
    if (delay !== undefined) attributes["dramatis.message.delay_ms"] = delay;
    if (typeof message.options.eta === "number") {
      attributes["dramatis.message.eta"] = message.options.eta;
    }
    // A retry, a pipeline step or a send from inside an actor comes from a running message; a
    // delay release continues the message's own creation context.
    const from = c.origin
      ? c.origin.span.spanContext()
      : c.reason === "delay_release"
      ? extractTraceContext(message.options)
      : undefined;
    let context: Context | undefined;
    const links: Link[] = [];
    if (from && isValidSpanContext(from)) {
      context = this.#contextOf(from);
      if (context === undefined) links.push({ context: from });
    }
    const span = this.tracer.startSpan(
      `send ${q}`,
      { kind: SpanKind.PRODUCER, attributes, links },
      context,
    );
    if (!extractTraceContext(message.options)) {
      injectTraceContext(message.options, span.spanContext());
    }
    this.#sends.set(message, { span, c });
  }

  /** Ends the send span. */
  override afterEnqueue(_broker: Broker, message: Message): void {
    const send = this.#sends.get(message);
    if (!send) return;
    this.#sends.delete(message);
    send.span.end();
    const { reason, origin } = send.c;
    if (reason === "retry") origin!.retried = true;
    else if (reason === "requeue") origin!.requeued = true;
    else if (reason === "delay_release") this.#tracker.release(message.messageId);
  }

  /** Notes a delayed message held until its eta (its release is a send with that reason). */
  override beforeDelayMessage(_broker: Broker, message: MessageProxy): void {
    this.#tracker.hold(message.messageId, true);
  }

  /** Starts the process span. */
  override beforeProcessMessage(broker: Broker, message: MessageProxy): void {
    this.#tracker.release(message.messageId);
    const q = qName(message.queueName);
    const creation = extractTraceContext(message.options);
    const links: Link[] = creation ? [{ context: creation }] : [];
    const parent = creation && this.parentFromMessage ? this.#contextOf(creation) : undefined;
    const span = this.tracer.startSpan(`process ${q}`, {
      kind: SpanKind.CONSUMER,
      attributes: this.#attributes(broker, message, "process"),
      links,
      root: parent === undefined,
    }, parent);
    processSpans.set(message, span);
    const retries = message.options.retries;
    this.#tracker.begin({
      message,
      retries: typeof retries === "number" ? retries : 0,
      span,
      ended: false,
      error: false,
      skipped: false,
      retried: false,
      requeued: false,
    });
    this.#tracker.sweep(this.#dropped);
  }

  /** Records the error, if the actor failed. */
  override afterProcessMessage(
    _broker: Broker,
    message: MessageProxy,
    { error }: ProcessOutcome,
  ): void {
    const run = this.#tracker.get(message);
    if (!run || run.ended) return;
    run.ended = true;
    if (error === undefined) return;
    run.error = true;
    const span = run.span;
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
    span.setAttribute("error.type", errorType(error));
  }

  /** Notes the skip. */
  override afterSkipMessage(_broker: Broker, message: MessageProxy): void {
    const run = this.#tracker.get(message);
    if (!run) return;
    run.ended = true;
    run.skipped = true;
  }

  /** Ends the process span with its outcome. */
  override afterAck(_broker: Broker, message: MessageProxy): void {
    const run = this.#tracker.end(message);
    if (!run) return;
    const outcome = run.skipped
      ? "skipped"
      : !run.error
      ? "success"
      : run.retried
      ? "retry"
      : run.requeued
      ? "requeued"
      : "failed";
    finish(run, outcome);
  }

  /** Ends the process span: the message was dead-lettered. */
  override afterNack(_broker: Broker, message: MessageProxy): void {
    const run = this.#tracker.end(message);
    if (run) finish(run, "dead");
  }

  /** Ends the spans of deliveries the worker handed back. */
  override afterWorkerShutdown(): void {
    this.#tracker.releaseAll();
    this.#tracker.sweep(this.#dropped, true);
  }

  #dropped = (run: Run): void => finish(run, run.ended ? undefined : "requeued");

  #attributes(broker: Broker, message: Message, operation: "send" | "process"): Attributes {
    const a: Attributes = {
      "messaging.system": this.#systemOf(broker),
      "messaging.destination.name": qName(message.queueName),
      "messaging.operation.type": operation,
      "messaging.operation.name": operation,
      "messaging.message.id": message.messageId,
      "dramatis.actor.name": message.actorName,
    };
    const { retries, group_completion_uuid: group } = message.options;
    if (typeof retries === "number") a["dramatis.message.retries"] = retries;
    if (typeof group === "string") a["messaging.message.conversation_id"] = group;
    return a;
  }
}

function finish(run: Run, outcome: string | undefined): void {
  processSpans.delete(run.message);
  if (outcome) run.span.setAttribute("dramatis.outcome", outcome);
  run.span.end();
}

/** `error.type`: the error's class name (low cardinality), `_OTHER` for a non-Error. */
function errorType(error: unknown): string {
  if (!(error instanceof Error)) return "_OTHER";
  const ctor = (error.constructor as { name?: string } | undefined)?.name;
  return ctor && ctor !== "Error" ? ctor : error.name || "Error";
}

/**
 * The `messaging.system` of a broker: its `messagingSystem` property if it has one, else
 * `rabbitmq` for a RabbitMQ broker (the conventions require it), `dramatiq` for a Redis broker
 * (Dramatiq's protocol, shared with Python workers), `dramatis` for the others.
 *
 * @example
 * ```ts
 * import { messagingSystem } from "../telemetry/mod.ts";
 * import { StubBroker } from "@dramatis/dramatis";
 * console.log(messagingSystem(new StubBroker())); // dramatis
 * ```
 */
export function messagingSystem(broker: Broker): string {
  const own = (broker as unknown as { messagingSystem?: unknown }).messagingSystem;
  if (typeof own === "string" && own) return own;
  const name = broker.constructor?.name ?? "";
  if (/rabbit|amqp/i.test(name)) return "rabbitmq";
  if (/redis/i.test(name)) return "dramatiq";
  return "dramatis";
}
