import { test } from "node:test";
import assert from "node:assert/strict";
import { DecodeError, Message } from "../mod.ts";
import { findNonJson } from "../message.ts";

test("Message encodes Dramatiq's seven snake_case keys in order", () => {
  const m = new Message({
    queueName: "default",
    actorName: "add",
    args: [1, 2],
    options: { max_retries: 3 },
    messageId: "7c1e9a44-2f0b-4b7a-8f3e-5a6d0c9b2e11",
    messageTimestamp: 1700000000000,
  });
  assert.equal(
    new TextDecoder().decode(m.encode()),
    '{"queue_name":"default","actor_name":"add","args":[1,2],"kwargs":{},"options":{"max_retries":3},' +
      '"message_id":"7c1e9a44-2f0b-4b7a-8f3e-5a6d0c9b2e11","message_timestamp":1700000000000}',
  );
});

test("Message.decode reads what Python Dramatiq writes, NaN/Infinity tokens included", () => {
  const py = '{"queue_name":"default","actor_name":"count_words","args":["http://x"],' +
    '"kwargs":{"a":1},"options":{"time_limit":Infinity,"x":NaN},' +
    '"message_id":"8cdcae57-af36-40ba-9616-849a336a4316","message_timestamp":1498557015410}';
  const m = Message.decode(new TextEncoder().encode(py));
  assert.equal(m.actorName, "count_words");
  assert.deepEqual(m.args, ["http://x"]);
  assert.deepEqual(m.kwargs, { a: 1 });
  assert.equal(m.options.time_limit, null);
  assert.equal(m.messageTimestamp, 1498557015410);
});

test("Message.decode gives a DecodeError naming the problem", () => {
  assert.throws(() => Message.decode("not json"), DecodeError);
  assert.throws(() => Message.decode(new Uint8Array([0xff, 0xfe])), /not valid UTF-8/);
  assert.throws(
    () => Message.decode('{"queue_name":"q","actor_name":"a","args":"x","kwargs":{},"options":{}}'),
    /"args" must be an array/,
  );
  assert.throws(
    () => Message.decode('{"queue_name":"q","actor_name":"a","args":[],"kwargs":{}}'),
    /"options" must be an object/,
  );
});

test("Message defaults: a UUID and the current time; copy keeps the id", () => {
  const before = Date.now();
  const m = new Message({ queueName: "q", actorName: "a" });
  assert.match(
    m.messageId,
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  assert.ok(m.messageTimestamp >= before && m.messageTimestamp <= Date.now());
  const c = m.copy({ queueName: "q.DQ", options: { eta: 5 } });
  assert.equal(c.messageId, m.messageId);
  assert.equal(c.queueName, "q.DQ");
  assert.deepEqual(m.options, {});
  assert.equal(
    String(new Message({ queueName: "q", actorName: "add", args: [1, "x"] })),
    'add(1, "x")',
  );
});

test("findNonJson names the path of the first non-JSON value", () => {
  const cyc: Record<string, unknown> = {};
  cyc.self = cyc;
  const cases: [unknown, string, RegExp][] = [
    [[1, undefined], "[1]", /undefined/],
    [{ a: { b: [0, () => 1] } }, ".a.b[1]", /function/],
    [[1n], "[0]", /BigInt/],
    [[NaN], "[0]", /NaN/],
    [[Infinity], "[0]", /Infinity/],
    [[new Date()], "[0]", /instance of Date/],
    [[new Map()], "[0]", /instance of Map/],
    [cyc, ".self", /cycle/],
    [{ "odd key": Symbol() }, '["odd key"]', /symbol/],
    [["\uD800"], "[0]", /lone surrogate/],
  ];
  for (const [value, path, problem] of cases) {
    const bad = findNonJson(value);
    assert.ok(bad, `expected a problem in ${path}`);
    assert.equal(bad.path, path);
    assert.match(bad.problem, problem);
  }
  assert.equal(findNonJson({ a: [1, "x", null, true, { b: Object.create(null) }] }), undefined);
  const shared = { x: 1 };
  assert.equal(findNonJson([shared, shared]), undefined, "a shared (non-cyclic) object is fine");
});
