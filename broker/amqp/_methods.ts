// The AMQP 0-9-1 methods a RabbitMQ client needs, as a table of argument lists that drives one
// encoder and one decoder (both directions, so tests can round-trip what the server sends),
// plus the basic-class content header (message properties) and the one-write publish.
import { AmqpProtocolError, REPLY } from "./errors.ts";
import { ByteReader, type ByteWriter } from "./_bytes.ts";
import { type FieldTable, readTable, writeTable } from "./_table.ts";
import {
  beginFrame,
  endFrame,
  FRAME_BODY,
  FRAME_HEADER,
  FRAME_METHOD,
  FRAME_OVERHEAD,
} from "./_frame.ts";

type ArgType = "octet" | "short" | "long" | "longlong" | "shortstr" | "longstr" | "bit" | "table";

interface MethodSpec {
  readonly id: number;
  readonly name: string;
  readonly args: readonly (readonly [string, ArgType])[];
  /** Followed by a content header and body frames. */
  readonly content: boolean;
}

const CLOSE_ARGS = [
  ["replyCode", "short"],
  ["replyText", "shortstr"],
  ["classId", "short"],
  ["methodId", "short"],
] as const;

const SPEC: [number, number, string, (readonly [string, ArgType])[], boolean?][] = [
  [10, 10, "connection.start", [
    ["versionMajor", "octet"],
    ["versionMinor", "octet"],
    ["serverProperties", "table"],
    ["mechanisms", "longstr"],
    ["locales", "longstr"],
  ]],
  [10, 11, "connection.start-ok", [
    ["clientProperties", "table"],
    ["mechanism", "shortstr"],
    ["response", "longstr"],
    ["locale", "shortstr"],
  ]],
  [10, 20, "connection.secure", [["challenge", "longstr"]]],
  [10, 21, "connection.secure-ok", [["response", "longstr"]]],
  [10, 30, "connection.tune", [["channelMax", "short"], ["frameMax", "long"], [
    "heartbeat",
    "short",
  ]]],
  [10, 31, "connection.tune-ok", [
    ["channelMax", "short"],
    ["frameMax", "long"],
    ["heartbeat", "short"],
  ]],
  [10, 40, "connection.open", [["virtualHost", "shortstr"], ["reserved1", "shortstr"], [
    "reserved2",
    "bit",
  ]]],
  [10, 41, "connection.open-ok", [["reserved1", "shortstr"]]],
  [10, 50, "connection.close", [...CLOSE_ARGS]],
  [10, 51, "connection.close-ok", []],
  [10, 60, "connection.blocked", [["reason", "shortstr"]]],
  [10, 61, "connection.unblocked", []],
  [20, 10, "channel.open", [["reserved1", "shortstr"]]],
  [20, 11, "channel.open-ok", [["reserved1", "longstr"]]],
  [20, 20, "channel.flow", [["active", "bit"]]],
  [20, 21, "channel.flow-ok", [["active", "bit"]]],
  [20, 40, "channel.close", [...CLOSE_ARGS]],
  [20, 41, "channel.close-ok", []],
  [50, 10, "queue.declare", [
    ["reserved1", "short"],
    ["queue", "shortstr"],
    ["passive", "bit"],
    ["durable", "bit"],
    ["exclusive", "bit"],
    ["autoDelete", "bit"],
    ["nowait", "bit"],
    ["arguments", "table"],
  ]],
  [50, 11, "queue.declare-ok", [
    ["queue", "shortstr"],
    ["messageCount", "long"],
    ["consumerCount", "long"],
  ]],
  [50, 30, "queue.purge", [["reserved1", "short"], ["queue", "shortstr"], ["nowait", "bit"]]],
  [50, 31, "queue.purge-ok", [["messageCount", "long"]]],
  [50, 40, "queue.delete", [
    ["reserved1", "short"],
    ["queue", "shortstr"],
    ["ifUnused", "bit"],
    ["ifEmpty", "bit"],
    ["nowait", "bit"],
  ]],
  [50, 41, "queue.delete-ok", [["messageCount", "long"]]],
  [60, 10, "basic.qos", [["prefetchSize", "long"], ["prefetchCount", "short"], ["global", "bit"]]],
  [60, 11, "basic.qos-ok", []],
  [60, 20, "basic.consume", [
    ["reserved1", "short"],
    ["queue", "shortstr"],
    ["consumerTag", "shortstr"],
    ["noLocal", "bit"],
    ["noAck", "bit"],
    ["exclusive", "bit"],
    ["nowait", "bit"],
    ["arguments", "table"],
  ]],
  [60, 21, "basic.consume-ok", [["consumerTag", "shortstr"]]],
  [60, 30, "basic.cancel", [["consumerTag", "shortstr"], ["nowait", "bit"]]],
  [60, 31, "basic.cancel-ok", [["consumerTag", "shortstr"]]],
  [60, 40, "basic.publish", [
    ["reserved1", "short"],
    ["exchange", "shortstr"],
    ["routingKey", "shortstr"],
    ["mandatory", "bit"],
    ["immediate", "bit"],
  ], true],
  [60, 50, "basic.return", [
    ["replyCode", "short"],
    ["replyText", "shortstr"],
    ["exchange", "shortstr"],
    ["routingKey", "shortstr"],
  ], true],
  [60, 60, "basic.deliver", [
    ["consumerTag", "shortstr"],
    ["deliveryTag", "longlong"],
    ["redelivered", "bit"],
    ["exchange", "shortstr"],
    ["routingKey", "shortstr"],
  ], true],
  [60, 70, "basic.get", [["reserved1", "short"], ["queue", "shortstr"], ["noAck", "bit"]]],
  [60, 71, "basic.get-ok", [
    ["deliveryTag", "longlong"],
    ["redelivered", "bit"],
    ["exchange", "shortstr"],
    ["routingKey", "shortstr"],
    ["messageCount", "long"],
  ], true],
  [60, 72, "basic.get-empty", [["reserved1", "shortstr"]]],
  [60, 80, "basic.ack", [["deliveryTag", "longlong"], ["multiple", "bit"]]],
  [60, 90, "basic.reject", [["deliveryTag", "longlong"], ["requeue", "bit"]]],
  [60, 110, "basic.recover", [["requeue", "bit"]]],
  [60, 111, "basic.recover-ok", []],
  [60, 120, "basic.nack", [["deliveryTag", "longlong"], ["multiple", "bit"], ["requeue", "bit"]]],
  [85, 10, "confirm.select", [["nowait", "bit"]]],
  [85, 11, "confirm.select-ok", []],
];

const byId = new Map<number, MethodSpec>();
const byName = new Map<string, MethodSpec>();
for (const [classId, methodId, name, args, content] of SPEC) {
  const spec: MethodSpec = { id: (classId << 16) | methodId, name, args, content: !!content };
  byId.set(spec.id, spec);
  byName.set(name, spec);
}

/** A method's name, `class.method` (`basic.publish`). */
export type MethodName = string;

/** Every method the codec knows, with its argument names and types (for tests and tools). */
export function methodSpecs(): { name: string; args: [string, ArgType][]; content: boolean }[] {
  return [...byId.values()].map((s) => ({
    name: s.name,
    args: s.args.map(([n, t]) => [n, t] as [string, ArgType]),
    content: s.content,
  }));
}

/** The id of a method: `classId << 16 | methodId`. */
export function methodId(name: MethodName): number {
  const spec = byName.get(name);
  if (!spec) throw new TypeError(`Unknown AMQP method ${JSON.stringify(name)}.`);
  return spec.id;
}

/** The name of method `id`, or `class.method` numbers when unknown. */
export function methodName(id: number): string {
  return byId.get(id)?.name ?? `${id >>> 16}.${id & 0xffff}`;
}

/** True when method `id` carries content (publish, deliver, get-ok, return). */
export function hasContent(id: number): boolean {
  return byId.get(id)?.content ?? false;
}

/** A decoded method frame. */
export interface Method {
  id: number;
  name: string;
  // deno-lint-ignore no-explicit-any
  args: Record<string, any>;
}

/** Writes the arguments of `spec` from `args` (missing ones are zero / empty / false). */
function writeArgs(w: ByteWriter, spec: MethodSpec, args: Record<string, unknown>): void {
  let bitAt = -1, bit = 0;
  for (const [name, type] of spec.args) {
    const v = args[name];
    if (type === "bit") {
      if (bitAt < 0 || bit === 8) {
        bitAt = w.pos;
        w.u8(0);
        bit = 0;
      }
      if (v) w.buf[bitAt]! |= 1 << bit;
      bit++;
      continue;
    }
    bitAt = -1;
    switch (type) {
      case "octet":
        w.u8((v as number) ?? 0);
        break;
      case "short":
        w.u16((v as number) ?? 0);
        break;
      case "long":
        w.u32((v as number) ?? 0);
        break;
      case "longlong":
        w.u64((v as number) ?? 0);
        break;
      case "shortstr":
        w.shortstr((v as string) ?? "");
        break;
      case "longstr":
        w.longstr((v as string | Uint8Array) ?? "");
        break;
      case "table":
        writeTable(w, (v as FieldTable) ?? {});
        break;
    }
  }
}

/** Writes a whole method frame. */
export function writeMethod(
  w: ByteWriter,
  channel: number,
  name: MethodName,
  args: Record<string, unknown> = {},
): void {
  const spec = byName.get(name);
  if (!spec) throw new TypeError(`Unknown AMQP method ${JSON.stringify(name)}.`);
  const at = beginFrame(w, FRAME_METHOD, channel);
  w.u32(spec.id);
  writeArgs(w, spec, args);
  endFrame(w, at);
}

/** Decodes a method frame's payload. Unknown methods and trailing bytes are errors. */
export function readMethod(payload: Uint8Array): Method {
  const r = new ByteReader(payload);
  const id = r.u32("method id");
  const spec = byId.get(id);
  if (!spec) {
    throw new AmqpProtocolError(
      `unknown method ${id >>> 16}.${id & 0xffff}`,
      REPLY.COMMAND_INVALID,
    );
  }
  const args: Record<string, unknown> = {};
  let bits = 0, bit = 8;
  for (const [name, type] of spec.args) {
    if (type === "bit") {
      if (bit === 8) {
        bits = r.u8(`${spec.name} flags`);
        bit = 0;
      }
      args[name] = (bits & (1 << bit++)) !== 0;
      continue;
    }
    bit = 8;
    switch (type) {
      case "octet":
        args[name] = r.u8(`${spec.name} ${name}`);
        break;
      case "short":
        args[name] = r.u16(`${spec.name} ${name}`);
        break;
      case "long":
        args[name] = r.u32(`${spec.name} ${name}`);
        break;
      case "longlong":
        args[name] = r.u64(`${spec.name} ${name}`);
        break;
      case "shortstr":
        args[name] = r.shortstr(`${spec.name} ${name}`);
        break;
      case "longstr":
        args[name] = r.longstr(`${spec.name} ${name}`);
        break;
      case "table":
        args[name] = readTable(r);
        break;
    }
  }
  if (r.remaining !== 0) {
    throw new AmqpProtocolError(`${spec.name} has ${r.remaining} unexpected trailing byte(s)`);
  }
  return { id, name: spec.name, args };
}

/**
 * Message properties (the basic class's content header).
 *
 * @example
 * ```ts
 * import type { AmqpProperties } from "./_methods.ts";
 * const p: AmqpProperties = { deliveryMode: 2, priority: 5, headers: { "x-source": "app" } };
 * ```
 */
export interface AmqpProperties {
  /** MIME type of the body. */
  contentType?: string;
  /** Encoding of the body (`gzip`, ...). */
  contentEncoding?: string;
  /** Application headers (RabbitMQ adds `x-death` to dead letters). */
  headers?: FieldTable;
  /** 1 transient, 2 persistent. */
  deliveryMode?: number;
  /** 0 to 255; only queues with `x-max-priority` use it. */
  priority?: number;
  /** Correlates replies with requests. */
  correlationId?: string;
  /** Where to send a reply. */
  replyTo?: string;
  /** Per-message TTL in ms, as a string. */
  expiration?: string;
  /** An application message id. */
  messageId?: string;
  /** Seconds since the epoch. */
  timestamp?: number;
  /** An application message type. */
  type?: string;
  /** The publishing user (RabbitMQ checks it). */
  userId?: string;
  /** The publishing application. */
  appId?: string;
  /** Reserved (AMQP 0-9-1 deprecates it). */
  clusterId?: string;
}

const PROPS: [keyof AmqpProperties, number, "shortstr" | "table" | "octet" | "longlong"][] = [
  ["contentType", 0x8000, "shortstr"],
  ["contentEncoding", 0x4000, "shortstr"],
  ["headers", 0x2000, "table"],
  ["deliveryMode", 0x1000, "octet"],
  ["priority", 0x0800, "octet"],
  ["correlationId", 0x0400, "shortstr"],
  ["replyTo", 0x0200, "shortstr"],
  ["expiration", 0x0100, "shortstr"],
  ["messageId", 0x0080, "shortstr"],
  ["timestamp", 0x0040, "longlong"],
  ["type", 0x0020, "shortstr"],
  ["userId", 0x0010, "shortstr"],
  ["appId", 0x0008, "shortstr"],
  ["clusterId", 0x0004, "shortstr"],
];

/** Writes property flags and the properties that are set. */
export function writeProperties(w: ByteWriter, props: AmqpProperties): void {
  const at = w.pos;
  w.u16(0);
  let flags = 0;
  for (const [key, flag, type] of PROPS) {
    const v = props[key];
    if (v === undefined) continue;
    flags |= flag;
    if (type === "shortstr") w.shortstr(v as string);
    else if (type === "table") writeTable(w, v as FieldTable);
    else if (type === "octet") {
      if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 255) {
        throw new TypeError(`AMQP property ${key} must be an integer from 0 to 255, got ${v}.`);
      }
      w.u8(v as number);
    } else w.u64(v as number);
  }
  w.view.setUint16(at, flags);
}

/** Reads property flags and the properties they announce. */
export function readProperties(r: ByteReader): AmqpProperties {
  const flags = r.u16("property flags");
  if (flags & 0x0003) {
    throw new AmqpProtocolError(
      `property flags 0x${flags.toString(16)} use reserved bits (0-9-1 has no more properties)`,
    );
  }
  const props: AmqpProperties = {};
  for (const [key, flag, type] of PROPS) {
    if (!(flags & flag)) continue;
    const p = props as Record<string, unknown>;
    if (type === "shortstr") p[key] = r.shortstr(`property ${key}`);
    else if (type === "table") p[key] = readTable(r);
    else if (type === "octet") p[key] = r.u8(`property ${key}`);
    else p[key] = r.u64(`property ${key}`);
  }
  return props;
}

/** A decoded content header. */
export interface ContentHeader {
  classId: number;
  bodySize: number;
  properties: AmqpProperties;
}

/** Writes a content header frame. */
export function writeHeader(
  w: ByteWriter,
  channel: number,
  bodySize: number,
  props: AmqpProperties,
): void {
  const at = beginFrame(w, FRAME_HEADER, channel);
  w.u16(60);
  w.u16(0);
  w.u64(bodySize);
  writeProperties(w, props);
  endFrame(w, at);
}

/** Decodes a content header frame's payload. */
export function readHeader(payload: Uint8Array): ContentHeader {
  const r = new ByteReader(payload);
  const classId = r.u16("content class");
  if (classId !== 60) {
    throw new AmqpProtocolError(`content header of class ${classId}; only basic (60) has content`);
  }
  const weight = r.u16("content weight");
  if (weight !== 0) throw new AmqpProtocolError(`content header weight ${weight}, must be 0`);
  const bodySize = r.u64("body size");
  const properties = readProperties(r);
  if (r.remaining !== 0) {
    throw new AmqpProtocolError(`content header has ${r.remaining} unexpected trailing byte(s)`);
  }
  return { classId, bodySize, properties };
}

/** Writes body frames of at most `frameMax - 8` bytes each. */
export function writeBody(w: ByteWriter, channel: number, body: Uint8Array, frameMax: number) {
  const max = frameMax - FRAME_OVERHEAD;
  for (let i = 0; i < body.length; i += max) {
    const at = beginFrame(w, FRAME_BODY, channel);
    w.bytes(body.subarray(i, i + max));
    endFrame(w, at);
  }
}

/**
 * Writes a whole `basic.publish`: method, header and body frames, into one buffer (one socket
 * write). A string body is encoded straight into the buffer.
 */
export function writePublish(
  w: ByteWriter,
  channel: number,
  frameMax: number,
  exchange: string,
  routingKey: string,
  body: string | Uint8Array,
  props: AmqpProperties,
  mandatory: boolean,
): void {
  let at = beginFrame(w, FRAME_METHOD, channel);
  w.u32((60 << 16) | 40);
  w.u16(0);
  w.shortstr(exchange);
  w.shortstr(routingKey);
  w.u8(mandatory ? 1 : 0);
  endFrame(w, at);
  const max = frameMax - FRAME_OVERHEAD;
  if (typeof body === "string" && body.length * 3 <= max) {
    // Header with a size to patch, then the body encoded in place.
    const header = w.pos;
    writeHeader(w, channel, 0, props);
    at = beginFrame(w, FRAME_BODY, channel);
    const n = w.utf8(body);
    endFrame(w, at);
    if (n === 0) w.pos = at; // an empty body has no body frame
    w.view.setUint32(header + 7 + 4 + 4, n); // body size, low 32 bits (high ones are 0)
    return;
  }
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  writeHeader(w, channel, bytes.length, props);
  writeBody(w, channel, bytes, frameMax);
}
