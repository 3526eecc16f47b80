// A small in-memory OpenTelemetry tracer for tests: records every span with its kind, parent,
// links, attributes, events and status. Contexts are plain objects `{ span?: SpanContext }`, and
// `otelApi` builds them as `@opentelemetry/api`'s `trace.setSpanContext` would.
import type {
  Attributes,
  AttributeValue,
  Context,
  Link,
  OtelApi,
  Span,
  SpanContext,
  SpanOptions,
  Tracer,
} from "../telemetry/otel.ts";

export interface RecordedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, AttributeValue>;
  exceptions: string[];
  status: { code: number; message?: string };
  ended: boolean;
}

interface TestContext {
  span?: SpanContext;
}

function hex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** The stand-in for the `@opentelemetry/api` module that `Tracing({ otel })` takes. */
export const otelApi: OtelApi = {
  ROOT_CONTEXT: {} as TestContext,
  trace: {
    setSpanContext: (context: Context, span: SpanContext): Context => ({
      ...(context as TestContext),
      span,
    }),
  },
};

export class RecordingTracer implements Tracer {
  spans: RecordedSpan[] = [];
  /** The context used when `startSpan` gets none (the "active" one). */
  active: TestContext = {};

  startSpan(name: string, options: SpanOptions = {}, context?: Context): Span {
    const ctx = (context ?? this.active) as TestContext;
    const parent = options.root ? undefined : ctx.span;
    const rec: RecordedSpan = {
      name,
      kind: options.kind ?? 0,
      traceId: parent?.traceId ?? hex(16),
      spanId: hex(8),
      parentSpanId: parent?.spanId,
      links: (options.links ?? []).map((l: Link) => ({
        traceId: l.context.traceId,
        spanId: l.context.spanId,
      })),
      attributes: clean(options.attributes ?? {}),
      exceptions: [],
      status: { code: 0 },
      ended: false,
    };
    this.spans.push(rec);
    const sc: SpanContext = { traceId: rec.traceId, spanId: rec.spanId, traceFlags: 1 };
    const span: Span = {
      spanContext: () => sc,
      setAttribute(key, value) {
        rec.attributes[key] = value;
        return span;
      },
      setAttributes(attributes) {
        Object.assign(rec.attributes, clean(attributes));
        return span;
      },
      recordException(e) {
        rec.exceptions.push(typeof e === "string" ? e : `${e.name}: ${e.message}`);
      },
      setStatus(status) {
        rec.status = status;
        return span;
      },
      end() {
        if (rec.ended) throw new Error(`span ${name} ended twice`);
        rec.ended = true;
      },
    };
    return span;
  }

  named(name: string): RecordedSpan[] {
    return this.spans.filter((s) => s.name === name);
  }
}

function clean(a: Attributes): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = v;
  return out;
}

/** A tracer whose every span has `spanContext` and records nothing (no-op or cheap tracers). */
export function constantTracer(spanContext: SpanContext): Tracer {
  const span: Span = {
    spanContext: () => spanContext,
    setAttribute: () => span,
    setAttributes: () => span,
    recordException: () => {},
    setStatus: () => span,
    end: () => {},
  };
  return { startSpan: () => span };
}
