// Frames to messages: decodes method frames and assembles content (a method announcing it, one
// content header, then body frames adding up to the header's body size) per channel. Anything
// out of order or inconsistent is an AmqpProtocolError.
import { AmqpProtocolError, REPLY } from "./errors.ts";
import { FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD } from "./_frame.ts";
import {
  type AmqpProperties,
  hasContent,
  type Method,
  readHeader,
  readMethod,
} from "./_methods.ts";

/** What the demultiplexer produces. */
export interface DemuxEvents {
  method(channel: number, method: Method): void;
  content(channel: number, method: Method, properties: AmqpProperties, body: Uint8Array): void;
  heartbeat(): void;
}

interface Incoming {
  method: Method;
  properties?: AmqpProperties;
  size: number;
  parts: Uint8Array[];
  received: number;
}

/** Feeds on frames (from a FrameReader) and calls `events` per method or whole message. */
export class Demux {
  #incoming = new Map<number, Incoming>();

  constructor(private readonly events: DemuxEvents) {}

  /** Forgets a channel's partial content (the channel was closed). */
  reset(channel?: number): void {
    if (channel === undefined) this.#incoming.clear();
    else this.#incoming.delete(channel);
  }

  frame = (type: number, channel: number, payload: Uint8Array): void => {
    if (type === FRAME_HEARTBEAT) {
      if (channel !== 0 || payload.length !== 0) {
        throw new AmqpProtocolError(
          `heartbeat frame on channel ${channel} with ${payload.length} byte(s)`,
          REPLY.COMMAND_INVALID,
        );
      }
      return this.events.heartbeat();
    }
    const incoming = this.#incoming.get(channel);
    if (type === FRAME_METHOD) {
      if (incoming) {
        throw new AmqpProtocolError(
          `method frame on channel ${channel} while content of ${incoming.method.name} was expected`,
          REPLY.UNEXPECTED_FRAME,
        );
      }
      const method = readMethod(payload);
      if (hasContent(method.id)) {
        if (channel === 0) {
          throw new AmqpProtocolError(`${method.name} on channel 0`, REPLY.COMMAND_INVALID);
        }
        this.#incoming.set(channel, { method, size: -1, parts: [], received: 0 });
        return;
      }
      return this.events.method(channel, method);
    }
    const what = type === FRAME_HEADER ? "content header" : "body";
    if (!incoming) {
      throw new AmqpProtocolError(
        `${what} frame on channel ${channel} without a method announcing content`,
        REPLY.UNEXPECTED_FRAME,
      );
    }
    if (type === FRAME_HEADER) {
      if (incoming.properties) {
        throw new AmqpProtocolError(
          `second content header on channel ${channel}`,
          REPLY.UNEXPECTED_FRAME,
        );
      }
      const header = readHeader(payload);
      incoming.properties = header.properties;
      incoming.size = header.bodySize;
      if (header.bodySize === 0) this.#deliver(channel, incoming);
      return;
    }
    if (type !== FRAME_BODY) throw new AmqpProtocolError(`unexpected frame type ${type}`);
    if (!incoming.properties) {
      throw new AmqpProtocolError(
        `body frame on channel ${channel} before its content header`,
        REPLY.UNEXPECTED_FRAME,
      );
    }
    incoming.received += payload.length;
    if (incoming.received > incoming.size) {
      throw new AmqpProtocolError(
        `body of ${incoming.received} bytes on channel ${channel}, its header said ${incoming.size}`,
      );
    }
    // Copied: a message held for long must not keep the socket's whole read buffer alive.
    incoming.parts.push(payload.slice());
    if (incoming.received === incoming.size) this.#deliver(channel, incoming);
  };

  #deliver(channel: number, incoming: Incoming): void {
    this.#incoming.delete(channel);
    const parts = incoming.parts;
    let body: Uint8Array;
    if (parts.length === 1) body = parts[0]!;
    else {
      body = new Uint8Array(incoming.size);
      let at = 0;
      for (const p of parts) {
        body.set(p, at);
        at += p.length;
      }
    }
    this.events.content(channel, incoming.method, incoming.properties!, body);
  }
}
