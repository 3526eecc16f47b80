// The AMQP 0-9-1 codec, without a server: every field type and every method round-trips (and a
// few are pinned to exact bytes, as pika writes them); a stream of every kind of frame parses to
// the same messages however it is split (at every byte boundary, in 3 parts at every pair of
// boundaries, one byte at a time); malformed input is rejected with AmqpProtocolError.
// Runs on both `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ByteReader, ByteWriter } from "../broker/amqp/_bytes.ts";
import {
  type FieldTable,
  type FieldValue,
  readField,
  readTable,
  typed,
  writeField,
  writeTable,
} from "../broker/amqp/_table.ts";
import {
  type AmqpProperties,
  methodSpecs,
  readMethod,
  readProperties,
  writeBody,
  writeHeader,
  writeMethod,
  writeProperties,
  writePublish,
} from "../broker/amqp/_methods.ts";
import {
  beginFrame,
  endFrame,
  FRAME_BODY,
  FRAME_HEADER,
  FRAME_METHOD,
  FrameReader,
  writeHeartbeat,
} from "../broker/amqp/_frame.ts";
import { Demux } from "../broker/amqp/_demux.ts";
import { AmqpProtocolError } from "../broker/amqp/errors.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

function fieldBytes(v: FieldValue): Uint8Array {
  const w = new ByteWriter(8);
  writeField(w, v);
  return w.take();
}

function roundTripField(v: FieldValue): FieldValue {
  const b = fieldBytes(v);
  const r = new ByteReader(b);
  const out = readField(r);
  assert.equal(r.remaining, 0, `trailing bytes after ${hex(b)}`);
  return out;
}

test("amqp codec: every field type round-trips with its exact type letter", () => {
  const cases: [FieldValue, string, FieldValue][] = [
    [true, "74 01", true],
    [false, "74 00", false],
    [typed("b", -5), "62 fb", -5],
    [typed("B", 250), "42 fa", 250],
    [typed("s", -300), "73 fe d4", -300],
    [typed("u", 60000), "75 ea 60", 60000],
    [10, "49 00 00 00 0a", 10], // pika writes a Python int as I: x-max-priority 10
    [-2, "49 ff ff ff fe", -2],
    [typed("i", 4_000_000_000), "69 ee 6b 28 00", 4_000_000_000],
    [604_800_000, "49 24 0c 84 00", 604_800_000], // the XQ x-message-ttl
    [2 ** 40, "6c 00 00 01 00 00 00 00 00", 2 ** 40],
    [-(2n ** 62n), "6c c0 00 00 00 00 00 00 00", -(2n ** 62n)],
    [typed("f", 0.5), "66 3f 00 00 00", 0.5],
    [1.25, "64 3f f4 00 00 00 00 00 00", 1.25],
    [{ scale: 2, value: 1999 }, "44 02 00 00 07 cf", { scale: 2, value: 1999 }],
    ["", "53 00 00 00 00", ""],
    ["é", "53 00 00 00 02 c3 a9", "é"],
    [new Uint8Array([0, 255]), "78 00 00 00 02 00 ff", new Uint8Array([0, 255])],
    [
      typed("S", new Uint8Array([0xff, 0xfe])),
      "53 00 00 00 02 ff fe",
      new Uint8Array([0xff, 0xfe]),
    ],
    [new Date(1_700_000_000_000), "54 00 00 00 00 65 53 f1 00", new Date(1_700_000_000_000)],
    [null, "56", null],
    [[1, "a"], "41 00 00 00 0b 49 00 00 00 01 53 00 00 00 01 61", [1, "a"]],
    [{ k: true }, "46 00 00 00 04 01 6b 74 01", { k: true }],
  ];
  for (const [value, bytes, back] of cases) {
    assert.equal(hex(fieldBytes(value)), bytes, `encoding of ${String(value)}`);
    assert.deepEqual(roundTripField(value), back, `decoding of ${bytes}`);
  }
});

test("amqp codec: nested tables and arrays round-trip, and the x-death header shape", () => {
  const table: FieldTable = {
    "x-death": [{
      count: 1,
      reason: "rejected",
      queue: "default",
      time: new Date(1_700_000_000_000),
      exchange: "",
      "routing-keys": ["default"],
    }],
    "x-first-death-reason": "rejected",
    nested: { deeper: { list: [[], {}, null, typed("B", 1)] } },
    big: 2n ** 63n - 1n,
  };
  const w = new ByteWriter(4);
  writeTable(w, table);
  const r = new ByteReader(w.take());
  const back = readTable(r);
  assert.equal(r.remaining, 0);
  assert.deepEqual(back, { ...table, nested: { deeper: { list: [[], {}, null, 1] } } });
});

test("amqp codec: a field rejects values its type cannot hold", () => {
  for (const v of [typed("B", 256), typed("b", 1.5), typed("u", -1), typed("t", 1 as never)]) {
    assert.throws(() => fieldBytes(v), TypeError);
  }
  assert.throws(() => fieldBytes(2n ** 64n), TypeError);
  const w = new ByteWriter();
  assert.throws(() => w.shortstr("x".repeat(256)), /at most 255 bytes/);
  assert.equal(w.pos, 0, "a failed short string leaves nothing behind");
});

/** A sample value for each argument type. */
function sampleArgs(args: [string, string][], flip: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let i = 0;
  for (const [name, type] of args) {
    i++;
    switch (type) {
      case "octet":
        out[name] = 7 + i;
        break;
      case "short":
        out[name] = 300 + i;
        break;
      case "long":
        out[name] = 70_000 + i;
        break;
      case "longlong":
        out[name] = 2 ** 40 + i;
        break;
      case "shortstr":
        out[name] = `näme-${i}`;
        break;
      case "longstr":
        out[name] = `long ✓ ${i}`;
        break;
      case "bit":
        out[name] = (i % 2 === 0) !== flip;
        break;
      case "table":
        out[name] = { a: i, s: "x" };
        break;
    }
  }
  return out;
}

test("amqp codec: every method round-trips, bits packed into shared octets", () => {
  const specs = methodSpecs();
  assert.equal(specs.length, 43, "the method table changed: review this test");
  for (const { name, args } of specs) {
    for (const flip of [false, true]) {
      const values = sampleArgs(args, flip);
      const w = new ByteWriter(4);
      writeMethod(w, 3, name, values);
      const frame = w.take();
      const frames: [number, number, Uint8Array][] = [];
      new FrameReader().feed(frame, (t, c, p) => frames.push([t, c, p.slice()]));
      assert.equal(frames.length, 1);
      assert.equal(frames[0][0], FRAME_METHOD);
      assert.equal(frames[0][1], 3);
      const m = readMethod(frames[0][2]);
      assert.equal(m.name, name);
      assert.deepEqual(m.args, values, name);
    }
  }
  // queue.declare's five flags share one octet: passive, durable, exclusive, autoDelete, nowait.
  const w = new ByteWriter();
  writeMethod(w, 1, "queue.declare", { queue: "q", durable: true, nowait: true, arguments: {} });
  assert.equal(
    hex(w.take()),
    "01 00 01 00 00 00 0d 00 32 00 0a 00 00 01 71 12 00 00 00 00 ce",
  );
});

test("amqp codec: every property round-trips, and the flags say which are present", () => {
  const all: AmqpProperties = {
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { "x-retries": 2 },
    deliveryMode: 2,
    priority: 9,
    correlationId: "c-1",
    replyTo: "amq.rabbitmq.reply-to",
    expiration: "60000",
    messageId: "m-1",
    timestamp: 1_700_000_000,
    type: "t",
    userId: "guest",
    appId: "app",
    clusterId: "",
  };
  const keys = Object.keys(all) as (keyof AmqpProperties)[];
  for (let mask = 0; mask < 64; mask++) {
    // All single properties, all of them, and a spread of subsets.
    const props: AmqpProperties = {};
    keys.forEach((k, i) => {
      if (mask === 63 || (mask < keys.length ? i === mask : (i * 7 + mask) % 3 === 0)) {
        (props as Record<string, unknown>)[k] = all[k];
      }
    });
    const w = new ByteWriter(4);
    writeProperties(w, props);
    const r = new ByteReader(w.take());
    assert.deepEqual(readProperties(r), props);
    assert.equal(r.remaining, 0);
  }
  const w = new ByteWriter();
  writeProperties(w, { deliveryMode: 2, priority: 5 }); // what Dramatiq sends
  assert.equal(hex(w.take()), "18 00 02 05");
  assert.throws(() => writeProperties(new ByteWriter(), { priority: 256 }), TypeError);
});

test("amqp codec: a publish is method + header + body frames in one buffer", () => {
  for (const body of ["", "hello", "ü".repeat(70), new Uint8Array(300_000).fill(7)]) {
    const w = new ByteWriter();
    writePublish(w, 5, 4096, "", "default", body, { deliveryMode: 2 }, true);
    const got: { method?: string; props?: AmqpProperties; body?: Uint8Array } = {};
    const demux = new Demux({
      heartbeat: () => assert.fail("no heartbeat"),
      method: () => assert.fail("content expected"),
      content: (ch, m, props, b) => {
        assert.equal(ch, 5);
        Object.assign(got, { method: m.name, props, body: b });
        assert.deepEqual(m.args, {
          reserved1: 0,
          exchange: "",
          routingKey: "default",
          mandatory: true,
          immediate: false,
        });
      },
    });
    const reader = new FrameReader(4096);
    let frames = 0;
    reader.feed(w.take(), (t, c, p) => {
      frames++;
      assert.ok(p.length + 8 <= 4096, "a frame is larger than frame_max");
      demux.frame(t, c, p);
    });
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    assert.equal(got.method, "basic.publish");
    assert.deepEqual(got.props, { deliveryMode: 2 });
    assert.deepEqual(got.body, bytes);
    assert.equal(frames, 2 + Math.ceil(bytes.length / (4096 - 8)));
  }
});

/** Properties as a string, keys sorted. */
function describe(props: AmqpProperties): string {
  return JSON.stringify(Object.fromEntries(Object.entries(props).sort()));
}

/** One frame of each kind the client reads, plus content split over several body frames. */
function sampleStream(): { bytes: Uint8Array; expected: string[] } {
  const w = new ByteWriter();
  const expected: string[] = [];
  writeMethod(w, 0, "connection.start", {
    versionMajor: 0,
    versionMinor: 9,
    serverProperties: { product: "RabbitMQ", capabilities: { publisher_confirms: true } },
    mechanisms: "PLAIN AMQPLAIN",
    locales: "en_US",
  });
  expected.push("0 connection.start");
  writeHeartbeat(w);
  expected.push("heartbeat");
  writeMethod(w, 0, "connection.tune", { channelMax: 2047, frameMax: 131072, heartbeat: 60 });
  expected.push("0 connection.tune");
  writeMethod(w, 1, "queue.declare-ok", { queue: "default", messageCount: 3, consumerCount: 1 });
  expected.push("1 queue.declare-ok");
  const deliver = (channel: number, tag: number, body: Uint8Array, props: AmqpProperties) => {
    writeMethod(w, channel, "basic.deliver", {
      consumerTag: "ctag",
      deliveryTag: tag,
      redelivered: tag % 2 === 0,
      exchange: "",
      routingKey: "default",
    });
    writeHeader(w, channel, body.length, props);
    writeBody(w, channel, body, 32);
    expected.push(`${channel} basic.deliver ${tag} ${body.length} ${describe(props)}`);
  };
  deliver(2, 1, new TextEncoder().encode('{"queue_name":"default"}'), { deliveryMode: 2 });
  writeMethod(w, 1, "basic.ack", { deliveryTag: 7, multiple: true });
  expected.push("1 basic.ack");
  deliver(3, 2, new Uint8Array(0), { priority: 4, headers: { "x-death": [{ count: 1 }] } });
  deliver(2, 3, new Uint8Array(100).map((_, i) => i), {});
  writeMethod(w, 0, "connection.close", { replyCode: 320, replyText: "CONNECTION_FORCED" });
  expected.push("0 connection.close");
  return { bytes: w.take(), expected };
}

/** Feeds `parts` in order and describes what came out. */
function parse(parts: Uint8Array[]): string[] {
  const out: string[] = [];
  const demux = new Demux({
    heartbeat: () => out.push("heartbeat"),
    method: (ch, m) => out.push(`${ch} ${m.name}`),
    content: (ch, m, props, body) => {
      assert.deepEqual(body, body.slice()); // a real, complete copy
      out.push(
        `${ch} ${m.name} ${m.args.deliveryTag} ${body.length} ${describe(props)}` +
          (body.length === 100 && body[99] !== 99 ? " CORRUPT" : ""),
      );
    },
  });
  const reader = new FrameReader();
  for (const p of parts) reader.feed(p, demux.frame);
  assert.equal(reader.buffered, 0, "bytes left over");
  return out;
}

test("amqp codec: a stream parses the same when split at every byte boundary", () => {
  const { bytes, expected } = sampleStream();
  assert.deepEqual(parse([bytes]), expected);
  for (let k = 0; k <= bytes.length; k++) {
    assert.deepEqual(parse([bytes.subarray(0, k), bytes.subarray(k)]), expected, `split at ${k}`);
  }
  assert.deepEqual(parse(Array.from(bytes, (b) => new Uint8Array([b]))), expected, "1 byte each");
});

test("amqp codec: a stream parses the same in three parts, at every pair of boundaries", () => {
  const w = new ByteWriter();
  writeMethod(w, 1, "basic.ack", { deliveryTag: 1 });
  writeMethod(w, 2, "basic.deliver", { consumerTag: "t", deliveryTag: 2, routingKey: "q" });
  writeHeader(w, 2, 5, { deliveryMode: 2 });
  writeBody(w, 2, new TextEncoder().encode("hello"), 11); // body frames of 3 and 2 bytes
  writeHeartbeat(w);
  const bytes = w.take();
  const expected = parse([bytes]);
  assert.deepEqual(expected, [
    "1 basic.ack",
    '2 basic.deliver 2 5 {"deliveryMode":2}',
    "heartbeat",
  ]);
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) {
      const parts = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)];
      assert.deepEqual(parse(parts), expected, `split at ${i} and ${j}`);
    }
  }
});

test("amqp codec: random splits of a long stream, in chunks that reuse one buffer", () => {
  const { bytes, expected } = sampleStream();
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 200; round++) {
    const parts: Uint8Array[] = [];
    for (let at = 0; at < bytes.length;) {
      const n = 1 + Math.floor(rand() * 40);
      // A socket may hand out views into a larger, offset buffer (amqp-client.js issue 256).
      const big = new Uint8Array(n + 16);
      big.set(bytes.subarray(at, at + n), 8);
      parts.push(big.subarray(8, 8 + Math.min(n, bytes.length - at)));
      at += n;
    }
    assert.deepEqual(parse(parts), expected, `round ${round}`);
  }
});

/** A frame of `type` on `channel` with this payload. */
function frame(type: number, channel: number, payload: number[] | Uint8Array): Uint8Array {
  const w = new ByteWriter();
  const at = beginFrame(w, type, channel);
  w.bytes(payload instanceof Uint8Array ? payload : new Uint8Array(payload));
  endFrame(w, at);
  return w.take();
}

function method(name: string, args: Record<string, unknown> = {}, channel = 1): Uint8Array {
  const w = new ByteWriter();
  writeMethod(w, channel, name, args);
  return w.take();
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test("amqp codec: malformed input is rejected with an error, never a wrong value", () => {
  const ack = method("basic.ack", { deliveryTag: 1 });
  const header = (() => {
    const w = new ByteWriter();
    writeHeader(w, 1, 3, {});
    return w.take();
  })();
  const deliver = method("basic.deliver", { consumerTag: "t", deliveryTag: 1, routingKey: "q" });
  const payloadOf = (f: Uint8Array) => f.subarray(7, f.length - 1);
  const cases: [string, Uint8Array, RegExp][] = [
    ["bad frame end", concat(ack.subarray(0, -1), new Uint8Array([0])), /frame end octet/],
    ["unknown frame type", frame(5, 0, []), /unknown frame type 5/],
    [
      "frame larger than frame_max",
      new Uint8Array([1, 0, 1, 0, 0x10, 0, 0]),
      /larger than frame_max/,
    ],
    ["truncated method", frame(FRAME_METHOD, 1, payloadOf(ack).subarray(0, 8)), /truncated/],
    ["unknown method", frame(FRAME_METHOD, 1, [0, 60, 0, 99]), /unknown method 60.99/],
    ["trailing bytes", frame(FRAME_METHOD, 1, [...payloadOf(ack), 0]), /trailing/],
    ["header without content method", header, /without a method announcing content/],
    ["body without content method", frame(FRAME_BODY, 1, [1]), /without a method/],
    ["body before header", concat(deliver, frame(FRAME_BODY, 1, [1])), /before its content header/],
    [
      "method while content is expected",
      concat(deliver, ack),
      /method frame on channel 1 while content/,
    ],
    [
      "body longer than the header says",
      concat(deliver, header, frame(FRAME_BODY, 1, [1, 2, 3, 4])),
      /header said 3/,
    ],
    ["second header", concat(deliver, header, header), /second content header/],
    [
      "header of another class",
      concat(deliver, frame(FRAME_HEADER, 1, [0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
      /class 50/,
    ],
    [
      "header with a weight",
      concat(deliver, frame(FRAME_HEADER, 1, [0, 60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
      /weight/,
    ],
    [
      "reserved property flags",
      concat(deliver, frame(FRAME_HEADER, 1, [0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
      /reserved bits/,
    ],
    [
      "body size beyond 2^53",
      concat(deliver, frame(FRAME_HEADER, 1, [0, 60, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
      /beyond 2\^53/,
    ],
    [
      "a header frame cut short",
      concat(deliver, frame(FRAME_HEADER, 1, [0, 60, 0, 0, 0, 0])),
      /truncated/,
    ],
    ["heartbeat on a channel", frame(8, 1, []), /heartbeat frame on channel 1/],
    ["heartbeat with a payload", frame(8, 0, [1]), /with 1 byte/],
    ["content method on channel 0", method("basic.deliver", {}, 0), /on channel 0/],
    [
      "not AMQP (HTTP)",
      new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n"),
      /unknown frame type 72/,
    ],
    [
      "another protocol version",
      new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]),
      /protocol header AMQP 1-0/,
    ],
  ];
  const table = (bytes: number[]) =>
    frame(FRAME_METHOD, 1, [0, 50, 0, 10, 0, 0, 1, 0x71, 0, ...bytes]);
  cases.push(
    ["unknown field type", table([0, 0, 0, 3, 1, 0x6b, 0x5a]), /unknown field type 0x5a/],
    [
      "table longer than the frame",
      table([0, 0, 0, 99, 1, 0x6b, 0x74, 1]),
      /truncated field table/,
    ],
    ["short string past the end", table([0, 0, 0, 2, 9, 0x6b]), /truncated/],
    [
      "invalid UTF-8 name",
      frame(FRAME_METHOD, 1, [0, 60, 0, 21, 2, 0xc3, 0x28]),
      /not valid UTF-8/,
    ],
    ["field value past the table", table([0, 0, 0, 4, 1, 0x6b, 0x49, 0]), /truncated/],
  );
  for (const [what, bytes, message] of cases) {
    // However the bad bytes are split, the reader throws (and never calls back a wrong value).
    for (const split of [bytes.length, 1, Math.floor(bytes.length / 2)]) {
      const seen: string[] = [];
      const demux = new Demux({
        heartbeat: () => seen.push("heartbeat"),
        method: (_, m) => seen.push(m.name),
        content: (_, m) => seen.push(`content ${m.name}`),
      });
      const reader = new FrameReader(4096);
      assert.throws(
        () => {
          reader.feed(bytes.subarray(0, split), demux.frame);
          reader.feed(bytes.subarray(split), demux.frame);
        },
        (e: unknown) => e instanceof AmqpProtocolError && message.test(e.message),
        `${what} (split at ${split})`,
      );
      assert.ok(!seen.some((s) => s.startsWith("content")), `${what}: delivered content`);
    }
  }
});
