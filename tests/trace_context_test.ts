import { test } from "node:test";
import assert from "node:assert/strict";
import {
  extractTraceContext,
  formatTraceparent,
  injectTraceContext,
  isValidSpanContext,
  parseTraceparent,
  TraceState,
} from "../telemetry/mod.ts";
import type { JsonObject } from "../mod.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

test("parseTraceparent accepts valid headers (version 00 and later versions)", () => {
  assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), {
    traceId: TRACE,
    spanId: SPAN,
    traceFlags: 1,
  });
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.traceFlags, 0);
  assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.traceFlags, 3); // random-id flag
  assert.equal(parseTraceparent(`  00-${TRACE}-${SPAN}-01\t`)?.spanId, SPAN); // OWS trimmed
  // A later version may append fields after a dash; they are ignored.
  assert.equal(parseTraceparent(`01-${TRACE}-${SPAN}-01-what-ever`)?.traceId, TRACE);
  assert.equal(parseTraceparent(`cc-${TRACE}-${SPAN}-01`)?.traceId, TRACE);
});

test("parseTraceparent rejects every malformed header", () => {
  const bad = [
    "",
    `ff-${TRACE}-${SPAN}-01`, // version ff is forbidden
    `0-${TRACE}-${SPAN}-01`,
    `0g-${TRACE}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-01-extra`, // version 00 has exactly four fields
    `01-${TRACE}-${SPAN}-01x`, // later versions need a dash before more fields
    `00-${TRACE.toUpperCase()}-${SPAN}-01`, // lowercase only
    `00-${TRACE}-${SPAN.toUpperCase()}-01`,
    `00-${"0".repeat(32)}-${SPAN}-01`, // all-zero trace id
    `00-${TRACE}-${"0".repeat(16)}-01`, // all-zero parent id
    `00-${TRACE.slice(1)}-${SPAN}0-01`, // wrong lengths
    `00-${TRACE}-${SPAN}-1`,
    `00-${TRACE}-${SPAN}-0x`,
    `00_${TRACE}_${SPAN}_01`,
  ];
  for (const h of bad) assert.equal(parseTraceparent(h), undefined, h);
  assert.equal(parseTraceparent(42 as unknown as string), undefined);
});

test("formatTraceparent round-trips and names the bad field", () => {
  const h = formatTraceparent({ traceId: TRACE, spanId: SPAN, traceFlags: 1 });
  assert.equal(h, `00-${TRACE}-${SPAN}-01`);
  assert.deepEqual(parseTraceparent(h), { traceId: TRACE, spanId: SPAN, traceFlags: 1 });
  assert.equal(
    formatTraceparent({ traceId: TRACE, spanId: SPAN, traceFlags: 255 }).slice(-2),
    "ff",
  );
  assert.throws(
    () => formatTraceparent({ traceId: "0".repeat(32), spanId: SPAN, traceFlags: 1 }),
    /invalid traceId .*32 lowercase hex digits, not all zero/,
  );
  assert.throws(
    () => formatTraceparent({ traceId: TRACE, spanId: "xyz", traceFlags: 1 }),
    /invalid spanId "xyz"/,
  );
  assert.throws(
    () => formatTraceparent({ traceId: TRACE, spanId: SPAN, traceFlags: 256 }),
    /invalid traceFlags 256/,
  );
  assert.equal(isValidSpanContext({ traceId: TRACE, spanId: SPAN, traceFlags: 1.5 }), false);
});

test("TraceState parses, updates (newest first) and serializes per W3C", () => {
  const ts = TraceState.parse("rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE,,tenant@vendor=x y")!;
  assert.equal(ts.get("congo"), "t61rcWkgMzE");
  assert.equal(ts.get("tenant@vendor"), "x y");
  assert.equal(ts.serialize(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,tenant@vendor=x y");
  assert.equal(ts.set("congo", "2").serialize(), "congo=2,rojo=00f067aa0ba902b7,tenant@vendor=x y");
  assert.equal(ts.unset("rojo").serialize(), "congo=t61rcWkgMzE,tenant@vendor=x y");
  assert.equal(TraceState.parse("")?.serialize(), "");
  for (const bad of ["Upper=1", "a=1,a=2", "a", "=1", "a=b=c", "a=,b=1", "1a=x"]) {
    assert.equal(TraceState.parse(bad), undefined, bad);
  }
  const many = Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(",");
  assert.equal(TraceState.parse(many), undefined);
  // Adding a 33rd member drops the oldest.
  const full = TraceState.parse(many.split(",").slice(0, 32).join(","))!;
  const more = full.set("new", "1").serialize().split(",");
  assert.equal(more.length, 32);
  assert.equal(more[0], "new=1");
  assert.ok(!more.includes("k31=v"));
  assert.throws(() => new TraceState([["Bad", "1"]]), /invalid member "Bad=1"/);
  assert.throws(() => new TraceState([["a", "x "]]), /invalid member/); // no trailing space
  assert.equal(TraceState.parse("a=x ")?.get("a"), "x"); // spaces around a member are OWS
});

test("inject / extract carry the context in options.trace_ctx; invalid ones are ignored", () => {
  const options: JsonObject = { retries: 1 };
  const ok = injectTraceContext(options, {
    traceId: TRACE,
    spanId: SPAN,
    traceFlags: 1,
    traceState: TraceState.parse("vendor=abc"),
  });
  assert.equal(ok, true);
  assert.deepEqual(options.trace_ctx, {
    traceparent: `00-${TRACE}-${SPAN}-01`,
    tracestate: "vendor=abc",
  });
  const back = extractTraceContext(JSON.parse(JSON.stringify(options)))!;
  assert.equal(back.traceId, TRACE);
  assert.equal(back.spanId, SPAN);
  assert.equal(back.isRemote, true);
  assert.equal(back.traceState?.get("vendor"), "abc");
  // A no-op tracer's context (all zeros) is not injected.
  const none: JsonObject = {};
  assert.equal(
    injectTraceContext(none, { traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 }),
    false,
  );
  assert.deepEqual(none, {});
  for (const carrier of [null, "x", [], {}, { traceparent: "garbage" }, { traceparent: 1 }]) {
    assert.equal(extractTraceContext({ trace_ctx: carrier as never }), undefined);
  }
  // A bad tracestate is dropped, the traceparent still counts.
  const partial = extractTraceContext({
    trace_ctx: { traceparent: `00-${TRACE}-${SPAN}-00`, tracestate: "BAD" },
  });
  assert.equal(partial?.traceState, undefined);
  assert.equal(partial?.traceFlags, 0);
});
