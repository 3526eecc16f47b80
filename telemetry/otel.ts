/**
 * The parts of `@opentelemetry/api` that dramatis uses, declared structurally so the library has
 * no dependency: a `Tracer` from `trace.getTracer("app")` fits `Tracer` here, and the module
 * namespace (`import * as api from "@opentelemetry/api"`) fits `OtelApi`.
 *
 * @example
 * ```ts
 * import { SpanKind, type Tracer } from "./otel.ts";
 * function sendSpan(tracer: Tracer) {
 *   return tracer.startSpan("send default", { kind: SpanKind.PRODUCER });
 * }
 * ```
 * @module
 */

/**
 * An OpenTelemetry context: opaque here (only the user's `@opentelemetry/api` builds one).
 *
 * @example
 * ```ts
 * import type { Context } from "./otel.ts";
 * const none: Context | undefined = undefined;
 * ```
 */
export type Context = unknown;

/**
 * A span attribute value, as OpenTelemetry allows it.
 *
 * @example
 * ```ts
 * import type { AttributeValue } from "./otel.ts";
 * const v: AttributeValue = "default";
 * ```
 */
export type AttributeValue = string | number | boolean | string[] | number[] | boolean[];

/**
 * Span attributes.
 *
 * @example
 * ```ts
 * import type { Attributes } from "./otel.ts";
 * const a: Attributes = { "messaging.system": "dramatis" };
 * ```
 */
export type Attributes = { [key: string]: AttributeValue | undefined };

/**
 * W3C `tracestate`, as OpenTelemetry's `TraceState` (immutable: `set` returns a new one).
 *
 * @example
 * ```ts
 * import type { TraceStateLike } from "./otel.ts";
 * function vendors(ts: TraceStateLike): string {
 *   return ts.serialize();
 * }
 * ```
 */
export interface TraceStateLike {
  /** The value of `key`, if present. */
  get(key: string): string | undefined;
  /** A copy with `key` set to `value` (moved to the front). */
  set(key: string, value: string): TraceStateLike;
  /** A copy without `key`. */
  unset(key: string): TraceStateLike;
  /** The `tracestate` header value. */
  serialize(): string;
}

/**
 * The identity of a span: what travels between processes.
 *
 * @example
 * ```ts
 * import type { SpanContext } from "./otel.ts";
 * const sc: SpanContext = {
 *   traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
 *   spanId: "00f067aa0ba902b7",
 *   traceFlags: 1,
 * };
 * ```
 */
export interface SpanContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero. */
  spanId: string;
  /** Bit 0: sampled. */
  traceFlags: number;
  /** True when it came from another process. */
  isRemote?: boolean;
  /** Vendor data (`tracestate`). */
  traceState?: TraceStateLike;
}

/**
 * A link from one span to another span's context.
 *
 * @example
 * ```ts
 * import type { Link, SpanContext } from "./otel.ts";
 * const link = (context: SpanContext): Link => ({ context });
 * ```
 */
export interface Link {
  /** The linked span. */
  context: SpanContext;
  /** Attributes of the link. */
  attributes?: Attributes;
}

/**
 * OpenTelemetry's span kinds, with `@opentelemetry/api`'s numbers.
 *
 * @example
 * ```ts
 * import { SpanKind } from "./otel.ts";
 * console.log(SpanKind.CONSUMER); // 4
 * ```
 */
export const SpanKind = {
  INTERNAL: 0,
  SERVER: 1,
  CLIENT: 2,
  PRODUCER: 3,
  CONSUMER: 4,
} as const;

/**
 * OpenTelemetry's span status codes, with `@opentelemetry/api`'s numbers.
 *
 * @example
 * ```ts
 * import { SpanStatusCode } from "./otel.ts";
 * console.log(SpanStatusCode.ERROR); // 2
 * ```
 */
export const SpanStatusCode = {
  UNSET: 0,
  OK: 1,
  ERROR: 2,
} as const;

/**
 * Options of `Tracer.startSpan`.
 *
 * @example
 * ```ts
 * import { SpanKind, type SpanOptions } from "./otel.ts";
 * const o: SpanOptions = { kind: SpanKind.PRODUCER, attributes: { "messaging.system": "dramatis" } };
 * ```
 */
export interface SpanOptions {
  /** One of `SpanKind`. */
  kind?: number;
  /** Attributes set at start (samplers see them). */
  attributes?: Attributes;
  /** Links to other spans. */
  links?: Link[];
  /** Start a new trace, ignoring the active context. */
  root?: boolean;
}

/**
 * A span, as `@opentelemetry/api` defines the methods dramatis calls.
 *
 * @example
 * ```ts
 * import { SpanStatusCode, type Span } from "./otel.ts";
 * function fail(span: Span, e: Error) {
 *   span.recordException(e);
 *   span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
 *   span.end();
 * }
 * ```
 */
export interface Span {
  /** Its identity. */
  spanContext(): SpanContext;
  /** Sets one attribute. */
  setAttribute(key: string, value: AttributeValue): unknown;
  /** Sets several attributes. */
  setAttributes(attributes: Attributes): unknown;
  /** Records an exception event. */
  recordException(exception: Error | string): void;
  /** Sets the status. */
  setStatus(status: { code: number; message?: string }): unknown;
  /** Ends the span. */
  end(): void;
}

/**
 * A tracer: `trace.getTracer("app")` from `@opentelemetry/api` fits.
 *
 * @example
 * ```ts
 * import type { Tracer } from "./otel.ts";
 * function named(tracer: Tracer) {
 *   tracer.startSpan("work").end();
 * }
 * ```
 */
export interface Tracer {
  /** Starts a span; without `context`, the active context is its parent. */
  startSpan(name: string, options?: SpanOptions, context?: Context): Span;
}

/**
 * What dramatis needs from the `@opentelemetry/api` module to make a span the parent of another
 * (a link needs nothing): pass the module itself, `import * as api from "@opentelemetry/api"`.
 *
 * @example
 * ```ts
 * import type { OtelApi } from "./otel.ts";
 * // import * as api from "@opentelemetry/api"; const otel: OtelApi = api;
 * const fake: OtelApi = { ROOT_CONTEXT: {}, trace: { setSpanContext: (c) => c } };
 * ```
 */
export interface OtelApi {
  /** The empty context. */
  ROOT_CONTEXT: Context;
  /** `api.trace`. */
  trace: {
    /** A context whose current span is `spanContext`. */
    setSpanContext(context: Context, spanContext: SpanContext): Context;
  };
}
