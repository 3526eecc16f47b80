/**
 * W3C Trace Context (`traceparent` / `tracestate`), parsed and formatted without a dependency,
 * and carried in a message's options under `trace_ctx` (the key Remoulade's OpenTelemetry
 * instrumentation uses; Python Dramatiq keeps options it does not know, so the context survives
 * a hop through a Python worker).
 *
 * @example
 * ```ts
 * import { formatTraceparent, parseTraceparent } from "./trace_context.ts";
 * const tp = parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
 * console.log(tp?.traceFlags); // 1
 * console.log(formatTraceparent(tp!)); // 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
 * ```
 * @module
 */
import type { JsonObject } from "../message.ts";
import type { SpanContext, TraceStateLike } from "./otel.ts";

/**
 * The message option that carries the trace context: `{ traceparent, tracestate? }`.
 *
 * @example
 * ```ts
 * import { TRACE_CONTEXT_OPTION } from "./trace_context.ts";
 * console.log(TRACE_CONTEXT_OPTION); // trace_ctx
 * ```
 */
export const TRACE_CONTEXT_OPTION = "trace_ctx";

/**
 * The fields of a `traceparent` header.
 *
 * @example
 * ```ts
 * import type { TraceParent } from "./trace_context.ts";
 * const tp: TraceParent = {
 *   traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
 *   spanId: "00f067aa0ba902b7",
 *   traceFlags: 1,
 * };
 * ```
 */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** The parent span: 16 lowercase hex digits, not all zero. */
  spanId: string;
  /** 0..255; bit 0 is "sampled". */
  traceFlags: number;
}

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const HEX2 = /^[0-9a-f]{2}$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/**
 * True when `traceId` and `spanId` are valid W3C ids (lowercase hex of the right length, not all
 * zeros) and `traceFlags` is an integer 0..255. A no-op tracer's span context is not valid.
 *
 * @example
 * ```ts
 * import { isValidSpanContext } from "./trace_context.ts";
 * console.log(isValidSpanContext({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 })); // false
 * ```
 */
export function isValidSpanContext(ctx: TraceParent): boolean {
  return typeof ctx?.traceId === "string" && TRACE_ID.test(ctx.traceId) &&
    ctx.traceId !== ZERO_TRACE && typeof ctx.spanId === "string" && SPAN_ID.test(ctx.spanId) &&
    ctx.spanId !== ZERO_SPAN && Number.isInteger(ctx.traceFlags) && ctx.traceFlags >= 0 &&
    ctx.traceFlags <= 255;
}

/**
 * Parses a `traceparent` header per W3C Trace Context: `version-traceid-parentid-flags`, all
 * lowercase hex. Version `ff` is invalid; version `00` must have exactly four fields; a later
 * version may add fields after a `-`, which are ignored. Ids of all zeros are invalid. Returns
 * `undefined` for anything invalid (the caller then starts a new trace).
 *
 * @example
 * ```ts
 * import { parseTraceparent } from "./trace_context.ts";
 * console.log(parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.spanId);
 * // 00f067aa0ba902b7
 * console.log(parseTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-00")); // undefined
 * ```
 */
export function parseTraceparent(header: string): TraceParent | undefined {
  if (typeof header !== "string") return undefined;
  const s = header.trim();
  if (s.length < 55) return undefined;
  const version = s.slice(0, 2);
  if (!HEX2.test(version) || version === "ff") return undefined;
  if (version === "00" && s.length !== 55) return undefined;
  if (s.length > 55 && s[55] !== "-") return undefined;
  if (s[2] !== "-" || s[35] !== "-" || s[52] !== "-") return undefined;
  const traceId = s.slice(3, 35), spanId = s.slice(36, 52), flags = s.slice(53, 55);
  if (!HEX2.test(flags)) return undefined;
  const tp = { traceId, spanId, traceFlags: parseInt(flags, 16) };
  return isValidSpanContext(tp) ? tp : undefined;
}

/**
 * Formats a version-00 `traceparent`. Throws a `TypeError` naming the bad field when the ids are
 * not valid W3C ids (check with `isValidSpanContext` first when they come from a tracer).
 *
 * @example
 * ```ts
 * import { formatTraceparent } from "./trace_context.ts";
 * const header = formatTraceparent({
 *   traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
 *   spanId: "00f067aa0ba902b7",
 *   traceFlags: 1,
 * });
 * console.log(header); // 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
 * ```
 */
export function formatTraceparent(ctx: TraceParent): string {
  if (!isValidSpanContext(ctx)) {
    const what = typeof ctx?.traceId !== "string" || !TRACE_ID.test(ctx.traceId) ||
        ctx.traceId === ZERO_TRACE
      ? `traceId ${JSON.stringify(ctx?.traceId)} (want 32 lowercase hex digits, not all zero)`
      : typeof ctx.spanId !== "string" || !SPAN_ID.test(ctx.spanId) || ctx.spanId === ZERO_SPAN
      ? `spanId ${JSON.stringify(ctx.spanId)} (want 16 lowercase hex digits, not all zero)`
      : `traceFlags ${JSON.stringify(ctx.traceFlags)} (want an integer 0..255)`;
    throw new TypeError(`formatTraceparent: invalid ${what}.`);
  }
  return `00-${ctx.traceId}-${ctx.spanId}-${ctx.traceFlags.toString(16).padStart(2, "0")}`;
}

const KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
// 1 to 256 printable ASCII characters except ',' and '=', the last one not a space.
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const MAX_MEMBERS = 32;

/**
 * A W3C `tracestate`: up to 32 `key=value` members, most recent first. Immutable; fits
 * OpenTelemetry's `TraceState` interface.
 *
 * @example
 * ```ts
 * import { TraceState } from "./trace_context.ts";
 * const ts = TraceState.parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")!;
 * console.log(ts.set("acme", "1").serialize()); // acme=1,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE
 * ```
 */
export class TraceState implements TraceStateLike {
  readonly #members: ReadonlyArray<readonly [string, string]>;

  /** A trace state with these members (most recent first); throws on an invalid one. */
  constructor(members: Iterable<readonly [string, string]> = []) {
    const list: [string, string][] = [];
    for (const [k, v] of members) {
      if (!validMember(k, v)) {
        throw new TypeError(`TraceState: invalid member ${JSON.stringify(`${k}=${v}`)}.`);
      }
      if (list.some(([key]) => key === k)) {
        throw new TypeError(`TraceState: duplicate key ${JSON.stringify(k)}.`);
      }
      list.push([k, v]);
    }
    this.#members = list.slice(0, MAX_MEMBERS);
  }

  /**
   * Parses a `tracestate` header. Empty members (`a=1,,b=2`) and spaces around commas are
   * allowed; an invalid or duplicate member, or more than 32 members, makes the whole header
   * invalid: `undefined` (W3C: discard it).
   */
  static parse(header: string): TraceState | undefined {
    if (typeof header !== "string") return undefined;
    const members: [string, string][] = [];
    for (const part of header.split(",")) {
      const item = part.replace(/^[ \t]+|[ \t]+$/g, "");
      if (item === "") continue;
      const eq = item.indexOf("=");
      if (eq <= 0) return undefined;
      const k = item.slice(0, eq), v = item.slice(eq + 1);
      if (!validMember(k, v) || members.some(([key]) => key === k)) return undefined;
      members.push([k, v]);
    }
    if (members.length > MAX_MEMBERS) return undefined;
    return new TraceState(members);
  }

  /** The value of `key`, if present. */
  get(key: string): string | undefined {
    return this.#members.find(([k]) => k === key)?.[1];
  }

  /** A copy with `key=value` first (replacing an older value of `key`). */
  set(key: string, value: string): TraceState {
    return new TraceState([[key, value], ...this.#members.filter(([k]) => k !== key)]);
  }

  /** A copy without `key`. */
  unset(key: string): TraceState {
    return new TraceState(this.#members.filter(([k]) => k !== key));
  }

  /** The header value: `k1=v1,k2=v2`. */
  serialize(): string {
    return this.#members.map(([k, v]) => `${k}=${v}`).join(",");
  }
}

function validMember(key: string, value: string): boolean {
  return typeof key === "string" && typeof value === "string" && KEY.test(key) &&
    VALUE.test(value);
}

/**
 * Writes `spanContext` into `options.trace_ctx` as `{ traceparent, tracestate? }`. Does nothing
 * (and returns false) when the span context is not valid, as a no-op tracer's is.
 *
 * @example
 * ```ts
 * import { injectTraceContext } from "./trace_context.ts";
 * const options = {};
 * injectTraceContext(options, {
 *   traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
 *   spanId: "00f067aa0ba902b7",
 *   traceFlags: 1,
 * });
 * console.log(options); // { trace_ctx: { traceparent: "00-4bf9...-01" } }
 * ```
 */
export function injectTraceContext(options: JsonObject, spanContext: SpanContext): boolean {
  if (!isValidSpanContext(spanContext)) return false;
  const carrier: JsonObject = { traceparent: formatTraceparent(spanContext) };
  const state = spanContext.traceState?.serialize();
  if (state) carrier.tracestate = state;
  options[TRACE_CONTEXT_OPTION] = carrier;
  return true;
}

/**
 * Reads the trace context a message carries in `options.trace_ctx` (a remote span context), or
 * `undefined` when there is none or its `traceparent` is invalid. An invalid `tracestate` is
 * dropped; the `traceparent` still counts.
 *
 * @example
 * ```ts
 * import { extractTraceContext } from "./trace_context.ts";
 * const sc = extractTraceContext({
 *   trace_ctx: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" },
 * });
 * console.log(sc?.isRemote); // true
 * ```
 */
export function extractTraceContext(options: JsonObject): SpanContext | undefined {
  const carrier = options[TRACE_CONTEXT_OPTION];
  if (carrier === null || typeof carrier !== "object" || Array.isArray(carrier)) return undefined;
  const tp = typeof carrier.traceparent === "string"
    ? parseTraceparent(carrier.traceparent)
    : undefined;
  if (!tp) return undefined;
  const ctx: SpanContext = { ...tp, isRemote: true };
  if (typeof carrier.tracestate === "string") {
    const state = TraceState.parse(carrier.tracestate);
    if (state) ctx.traceState = state;
  }
  return ctx;
}
