// Tests of the RESP2/RESP3 parser and the command encoder (broker/redis/_resp.ts).
// Runs on both `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type Arg,
  encodeCommand,
  PushReply,
  RedisError,
  type Reply,
  RespEncoder,
  RespParser,
  RespProtocolError,
} from "../broker/redis/_resp.ts";

const te = new TextEncoder();
const bytesOf = (s: string) => te.encode(s);

/** Deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Turns replies into plain data that `deepStrictEqual` compares well (errors, pushes). */
function plain(value: Reply | PushReply | undefined): unknown {
  if (value instanceof RedisError) return { error: value.message, code: value.code };
  if (value instanceof PushReply) return { push: value.data.map(plain) };
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [plain(k), plain(v)]));
  if (value instanceof Set) return new Set([...value].map(plain));
  return value;
}

/** Parses all replies from the given chunks. */
function parseChunks(chunks: Uint8Array[], bytes = false): unknown[] {
  const parser = new RespParser();
  const out: unknown[] = [];
  for (const chunk of chunks) {
    parser.feed(chunk);
    for (let r = parser.next(bytes); r !== undefined; r = parser.next(bytes)) out.push(plain(r));
  }
  parser.end();
  return out;
}

function parseOne(wire: string | Uint8Array, bytes = false): unknown {
  const out = parseChunks([typeof wire === "string" ? bytesOf(wire) : wire], bytes);
  assert.equal(out.length, 1, `expected one reply from ${JSON.stringify(wire)}`);
  return out[0];
}

// [wire, expected value (after plain())]
const CORPUS: [string, unknown][] = [
  ["+OK\r\n", "OK"],
  ["+\r\n", ""],
  ["+hello world\r\n", "hello world"],
  ["+héllo\r\n", "héllo"],
  ["-ERR unknown command 'FOO'\r\n", { error: "ERR unknown command 'FOO'", code: "ERR" }],
  [
    "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    {
      error: "WRONGTYPE Operation against a key holding the wrong kind of value",
      code: "WRONGTYPE",
    },
  ],
  [":0\r\n", 0],
  [":-1\r\n", -1],
  [":1234567890\r\n", 1234567890],
  [":9007199254740991\r\n", 9007199254740991],
  [":9223372036854775807\r\n", 9223372036854775807n],
  [":-9223372036854775808\r\n", -9223372036854775808n],
  [":000000000000000000042\r\n", 42],
  ["$0\r\n\r\n", ""],
  ["$5\r\nhello\r\n", "hello"],
  ["$4\r\na\r\nb\r\n", "a\r\nb"],
  ["$5\r\n€\r\n\r\n", "€\r\n"],
  ["$-1\r\n", null],
  ["*-1\r\n", null],
  ["*0\r\n", []],
  ["*3\r\n:1\r\n:2\r\n:3\r\n", [1, 2, 3]],
  ["*2\r\n*1\r\n$1\r\na\r\n*0\r\n", [["a"], []]],
  ["*3\r\n$-1\r\n_\r\n*-1\r\n", [null, null, null]],
  ["*2\r\n-ERR inner\r\n+OK\r\n", [{ error: "ERR inner", code: "ERR" }, "OK"]],
  ["_\r\n", null],
  ["#t\r\n", true],
  ["#f\r\n", false],
  [",1.5\r\n", 1.5],
  [",-0.25\r\n", -0.25],
  [",10\r\n", 10],
  [",1e+300\r\n", 1e300],
  [",inf\r\n", Infinity],
  [",-inf\r\n", -Infinity],
  [
    "(3492890328409238509324850943850943825024385\r\n",
    3492890328409238509324850943850943825024385n,
  ],
  ["(-1\r\n", -1n],
  ["!21\r\nSYNTAX invalid syntax\r\n", { error: "SYNTAX invalid syntax", code: "SYNTAX" }],
  ["=15\r\ntxt:Some string\r\n", "Some string"],
  ["=4\r\nmkd:\r\n", ""],
  ["%0\r\n", new Map()],
  ["%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n:2\r\n", new Map([["first", 1], ["second", 2]])],
  [
    "%1\r\n+nested\r\n%1\r\n+k\r\n*2\r\n#t\r\n_\r\n",
    new Map([["nested", new Map([["k", [true, null]]])]]),
  ],
  ["~0\r\n", new Set()],
  ["~3\r\n+a\r\n:1\r\n+a\r\n", new Set(["a", 1])],
  ["|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:42\r\n", 42],
  ["*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nx\r\n:7\r\n", ["x", 7]],
  ["|0\r\n+after empty attribute\r\n", "after empty attribute"],
  [">2\r\n+invalidate\r\n*1\r\n$3\r\nkey\r\n", { push: ["invalidate", ["key"]] }],
  [">0\r\n", { push: [] }],
  ["*1\r\n>1\r\n+nested push is an array\r\n", [["nested push is an array"]]],
  [
    "*4\r\n%1\r\n+m\r\n~1\r\n,2.5\r\n(7\r\n=7\r\ntxt:abc\r\n!3\r\nERR\r\n",
    [new Map([["m", new Set([2.5])]]), 7n, "abc", { error: "ERR", code: "ERR" }],
  ],
];

test("resp: parses every RESP2 and RESP3 type", () => {
  for (const [wire, expected] of CORPUS) {
    assert.deepStrictEqual(parseOne(wire), expected, JSON.stringify(wire));
  }
  const nan = parseOne(",nan\r\n");
  assert.ok(Number.isNaN(nan));
});

test("resp: bytes mode returns Uint8Array for bulk and verbatim strings only", () => {
  assert.deepStrictEqual(parseOne("$3\r\nabc\r\n", true), bytesOf("abc"));
  assert.deepStrictEqual(parseOne("=7\r\ntxt:abc\r\n", true), bytesOf("abc"));
  assert.equal(parseOne("+OK\r\n", true), "OK");
  assert.deepStrictEqual(
    parseOne("%1\r\n$1\r\nk\r\n$1\r\nv\r\n", true),
    new Map([[bytesOf("k"), bytesOf("v")]]),
  );
  const binary = new Uint8Array([0, 255, 13, 10, 128, 7]);
  const wire = new Uint8Array([...bytesOf("$6\r\n"), ...binary, 13, 10]);
  assert.deepStrictEqual(parseOne(wire, true), binary);
  // The mode is chosen when a reply starts and holds until it ends, across feeds.
  const parser = new RespParser();
  parser.feed(bytesOf("*2\r\n$1\r\na"));
  assert.equal(parser.next(true), undefined);
  parser.feed(bytesOf("\r\n$1\r\nb\r\n$1\r\nc\r\n"));
  assert.deepStrictEqual(parser.next(false), [bytesOf("a"), bytesOf("b")]);
  assert.equal(parser.next(false), "c");
});

test("resp: every corpus reply split at every byte boundary gives the same value", () => {
  for (const [wire, expected] of CORPUS) {
    const data = bytesOf(wire);
    for (let i = 0; i <= data.length; i++) {
      const out = parseChunks([data.subarray(0, i), data.subarray(i)]);
      assert.deepStrictEqual(out, [expected], `${JSON.stringify(wire)} split at ${i}`);
    }
    // Three pieces, at every pair of boundaries.
    for (let i = 1; i < data.length; i++) {
      for (let j = i; j < data.length; j++) {
        const out = parseChunks([data.subarray(0, i), data.subarray(i, j), data.subarray(j)]);
        assert.deepStrictEqual(out, [expected], `${JSON.stringify(wire)} split at ${i},${j}`);
      }
    }
    // One byte at a time.
    const oneByOne = parseChunks([...data].map((b) => new Uint8Array([b])));
    assert.deepStrictEqual(oneByOne, [expected], `${JSON.stringify(wire)} byte by byte`);
  }
});

test("resp: the whole corpus as one stream, split at every byte boundary", () => {
  const stream = bytesOf(CORPUS.map(([wire]) => wire).join(""));
  const expected = CORPUS.map(([, value]) => value);
  for (let i = 0; i <= stream.length; i++) {
    const out = parseChunks([stream.subarray(0, i), stream.subarray(i)]);
    assert.deepStrictEqual(out, expected, `split at ${i}`);
  }
});

test("resp: random fragmentation of a long stream of mixed replies (seeded)", () => {
  const random = prng(0xd1a7);
  const replies: [string, unknown][] = [];
  for (let i = 0; i < 5000; i++) {
    if (random() < 0.7) {
      replies.push(CORPUS[Math.floor(random() * CORPUS.length)]);
    } else {
      const n = Math.floor(random() * 2000);
      const s = "x".repeat(n);
      replies.push([`*2\r\n:${i}\r\n$${n}\r\n${s}\r\n`, [i, s]]);
    }
  }
  const stream = bytesOf(replies.map(([wire]) => wire).join(""));
  const expected = replies.map(([, value]) => value);
  for (const maxChunk of [1, 7, 100, 5000, 70_000]) {
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < stream.length;) {
      const size = maxChunk === 1 ? 1 : 1 + Math.floor(random() * maxChunk);
      chunks.push(stream.subarray(at, at + size));
      at += size;
    }
    assert.deepStrictEqual(parseChunks(chunks), expected, `chunks up to ${maxChunk} bytes`);
  }
});

test("resp: truncated input is incomplete, never a value, and end() reports it", () => {
  for (const [wire] of CORPUS) {
    const data = bytesOf(wire);
    for (let i = 1; i < data.length; i++) {
      const parser = new RespParser();
      parser.feed(data.subarray(0, i));
      assert.equal(parser.next(), undefined, `${JSON.stringify(wire)} cut at ${i}`);
      assert.throws(() => parser.end(), RespProtocolError, `${JSON.stringify(wire)} cut at ${i}`);
    }
  }
  const parser = new RespParser();
  parser.feed(bytesOf("|1\r\n+a\r\n+b\r\n")); // an attribute without the value it annotates
  assert.equal(parser.next(), undefined);
  assert.throws(() => parser.end(), RespProtocolError);
});

const MALFORMED = [
  "HTTP/1.1 400 Bad Request\r\n",
  "?\r\n",
  "\r\n",
  "+OK\n",
  "+O\rK\r\n",
  "+OK\rX",
  ":\r\n",
  ":-\r\n",
  ":12a\r\n",
  ": 1\r\n",
  ":1.5\r\n",
  ":99999999999999999999\r\n",
  "$\r\n",
  "$-2\r\n",
  "$abc\r\n",
  "$3\r\nabcd\r\n",
  "$3\r\nab\r\n\r\n",
  "$1\r\nab",
  "$99999999999999999999\r\n",
  "$?\r\n",
  "*-2\r\n",
  "*x\r\n",
  "*?\r\n",
  "*1\r\n?\r\n",
  "%-1\r\n",
  "~-1\r\n",
  "!-1\r\n",
  "#x\r\n",
  "#\r\n",
  "#tt\r\n",
  "_x\r\n",
  ",abc\r\n",
  ",1.2.3\r\n",
  ",\r\n",
  "(12x\r\n",
  "(\r\n",
  "=2\r\nab\r\n",
  "=5\r\ntxt-a\r\n",
  ":1\r\r\n",
  "*1\r\n:1\n",
];

test("resp: malformed input throws RespProtocolError, whole or byte by byte", () => {
  for (const wire of MALFORMED) {
    const data = bytesOf(wire);
    const whole = new RespParser();
    whole.feed(data);
    assert.throws(
      () => {
        while (whole.next() !== undefined) { /* keep reading */ }
      },
      RespProtocolError,
      `whole ${JSON.stringify(wire)}`,
    );
    const parser = new RespParser();
    assert.throws(
      () => {
        for (const b of data) {
          parser.feed(new Uint8Array([b]));
          while (parser.next() !== undefined) { /* keep reading */ }
        }
      },
      RespProtocolError,
      `byte by byte ${JSON.stringify(wire)}`,
    );
  }
});

test("resp: valid replies before a malformed one are returned, then the error", () => {
  const parser = new RespParser();
  parser.feed(bytesOf("+OK\r\n:1\r\nGARBAGE\r\n"));
  assert.equal(parser.next(), "OK");
  assert.equal(parser.next(), 1);
  assert.throws(() => parser.next(), (e: Error) => {
    assert.ok(e instanceof RespProtocolError);
    assert.match(e.message, /unexpected type byte 0x47 \("G"\) .*at byte 9|at byte 9.*0x47/);
    return true;
  });
});

test("resp: limits on bulk length, line length and nesting", () => {
  const small = new RespParser({ maxBulkLength: 10, maxLineLength: 8, maxDepth: 3 });
  small.feed(bytesOf("$11\r\n"));
  assert.throws(() => small.next(), /length too large/);

  const line = new RespParser({ maxLineLength: 8 });
  line.feed(bytesOf("+1234567890")); // no CRLF yet, already too long
  assert.throws(() => line.next(), /longer than 8 bytes/);

  const numeric = new RespParser();
  numeric.feed(bytesOf(":" + "1".repeat(40))); // a number line never gets that long
  assert.throws(() => numeric.next(), RespProtocolError);

  const deep = new RespParser({ maxDepth: 3 });
  deep.feed(bytesOf("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"));
  assert.throws(() => deep.next(), /nested deeper than 3/);
  const ok = new RespParser({ maxDepth: 3 });
  ok.feed(bytesOf("*1\r\n*1\r\n*1\r\n:1\r\n"));
  assert.deepStrictEqual(ok.next(), [[[1]]]);
});

test("resp: 1 MB bulk strings, binary, in any chunking, without quadratic copying", () => {
  const random = prng(42);
  const payload = new Uint8Array(1024 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(random() * 256);
  const header = bytesOf(`$${payload.length}\r\n`);
  const wire = new Uint8Array(header.length + payload.length + 2 + 5);
  wire.set(header);
  wire.set(payload, header.length);
  wire.set(bytesOf("\r\n+OK\r\n"), header.length + payload.length);

  for (const chunkSize of [wire.length, 65536, 1000, 333]) {
    const started = performance.now();
    const parser = new RespParser();
    const out: (Reply | PushReply)[] = [];
    for (let at = 0; at < wire.length; at += chunkSize) {
      parser.feed(wire.subarray(at, at + chunkSize));
      for (let r = parser.next(true); r !== undefined; r = parser.next(true)) out.push(r);
    }
    parser.end();
    assert.equal(out.length, 2);
    assert.ok(out[0] instanceof Uint8Array);
    assert.equal(out[0].length, payload.length);
    assert.ok(Buffer.from(out[0]).equals(Buffer.from(payload)), `chunks of ${chunkSize}`);
    assert.equal(out[1], "OK");
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 2000, `chunks of ${chunkSize} took ${elapsed} ms`);
  }

  // As a string, and inside an array next to small values.
  const text = "é".repeat(512 * 1024); // 1 MiB of UTF-8
  const arrayWire = bytesOf(`*3\r\n:1\r\n$${te.encode(text).length}\r\n${text}\r\n+end\r\n`);
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < arrayWire.length; at += 4093) {
    chunks.push(arrayWire.subarray(at, at + 4093));
  }
  assert.deepStrictEqual(parseChunks(chunks), [[1, text, "end"]]);
});

test("resp: bulk strings in bytes mode are plain Uint8Array copies, even from a Buffer", () => {
  const chunk = Buffer.from("$3\r\nabc\r\n");
  const parser = new RespParser();
  parser.feed(chunk);
  const value = parser.next(true);
  assert.ok(value instanceof Uint8Array);
  assert.equal(value.constructor, Uint8Array);
  chunk.fill(0);
  assert.deepStrictEqual(value, bytesOf("abc"));
});

test("resp: a huge reply does not keep a huge buffer afterwards", () => {
  const parser = new RespParser();
  const big = "a".repeat(3 * 1024 * 1024);
  const wire = bytesOf(`$${big.length}\r\n${big}\r\n`);
  for (let at = 0; at < wire.length; at += 65536) parser.feed(wire.subarray(at, at + 65536));
  assert.equal(parser.next(), big);
  assert.equal(parser.buffered, 0);
  parser.feed(bytesOf("+small\r\n"));
  assert.equal(parser.next(), "small");
});

test("encoder: commands are arrays of bulk strings, round-tripping through the parser", () => {
  assert.equal(new TextDecoder().decode(encodeCommand(["PING"])), "*1\r\n$4\r\nPING\r\n");
  assert.equal(
    new TextDecoder().decode(encodeCommand(["SET", "k", 42, -1.5, 10n])),
    "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n42\r\n$4\r\n-1.5\r\n$2\r\n10\r\n",
  );
  // Non-ASCII strings around the lengths where the header's digit count changes.
  const cases: Arg[][] = [];
  for (const unit of ["é", "€", "😀", "a"]) {
    for (const n of [0, 1, 2, 3, 4, 9, 10, 33, 34, 40, 64, 65, 333, 334, 3333, 3334, 100_000]) {
      cases.push(["ECHO", unit.repeat(n), "x" + unit.repeat(n) + "y"]);
    }
  }
  const enc = new RespEncoder(16);
  for (const args of cases) enc.encode(args);
  const out = parseChunks([enc.take()]);
  assert.deepStrictEqual(out, cases.map((args) => args.map(String)));
  assert.equal(enc.length, 0);

  const binary = new Uint8Array([0, 13, 10, 255]);
  assert.deepStrictEqual(parseOne(encodeCommand(["SET", binary]), true), [bytesOf("SET"), binary]);
});

test("encoder: bad arguments throw TypeError and leave earlier commands intact", () => {
  const enc = new RespEncoder();
  enc.encode(["GET", "a"]);
  assert.throws(() => enc.encode(["SET", "b", NaN]), TypeError);
  assert.throws(() => enc.encode(["SET", "b", Infinity]), TypeError);
  assert.throws(() => enc.encode(["SET", "b", null as unknown as string]), TypeError);
  assert.throws(() => enc.encode(["SET", "b", { x: 1 } as unknown as string]), TypeError);
  assert.throws(() => enc.encode([]), TypeError);
  assert.deepStrictEqual(parseChunks([enc.take()]), [["GET", "a"]]);
});
