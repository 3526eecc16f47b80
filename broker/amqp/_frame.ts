// AMQP 0-9-1 framing: `type:u8 | channel:u16 | size:u32 | payload | 0xCE`. The FrameReader
// reassembles frames from a byte stream split in any way (one byte at a time included) and
// rejects malformed ones; frame writers put a frame's header and end octet around a payload.
import { AmqpProtocolError, REPLY } from "./errors.ts";
import type { ByteWriter } from "./_bytes.ts";

export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_HEARTBEAT = 8;
export const FRAME_END = 0xce;
/** Type, channel and size. */
export const FRAME_HEADER_SIZE = 7;
/** Header plus end octet: what a frame adds to its payload. */
export const FRAME_OVERHEAD = 8;
/** The smallest frame_max a peer may set (the spec's frame-min-size). */
export const FRAME_MIN_SIZE = 4096;
/** The client writes this first: "AMQP", 0, 0, 9, 1. */
export const PROTOCOL_HEADER = new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);

/** Called with each complete frame; `payload` is only valid during the call unless copied. */
export type FrameHandler = (type: number, channel: number, payload: Uint8Array) => void;

/**
 * Reassembles frames from socket chunks. `feed` calls `onFrame` for each complete frame and
 * keeps the rest for the next chunk; a frame is copied only when it spans chunks.
 */
export class FrameReader {
  /** Largest frame accepted, header and end octet included (frame_max once tuned). */
  maxFrameSize: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;

  constructor(maxFrameSize = 131_072) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes held from a frame not complete yet. */
  get buffered(): number {
    return this.#buffered;
  }

  feed(chunk: Uint8Array, onFrame: FrameHandler): void {
    if (this.#buffered === 0) {
      const used = this.#parse(chunk, onFrame);
      if (used < chunk.length) this.#keep(chunk.subarray(used));
      return;
    }
    this.#keep(chunk);
    for (;;) {
      if (this.#buffered < FRAME_HEADER_SIZE) return;
      const head = this.#peek(FRAME_HEADER_SIZE);
      const size = this.#check(head, 0);
      const total = size + FRAME_OVERHEAD;
      if (this.#buffered < total) return;
      const frame = this.#consume(total);
      const used = this.#parse(frame, onFrame);
      if (used !== total) throw new Error("unreachable: a whole frame was not parsed");
      if (this.#buffered === 0) return;
      // The rest may hold many whole frames: parse them in place.
      if (this.#chunks.length === 1) {
        const rest = this.#chunks[0]!;
        this.#chunks = [];
        this.#buffered = 0;
        const n = this.#parse(rest, onFrame);
        if (n < rest.length) this.#keep(rest.subarray(n));
        return;
      }
    }
  }

  /** Parses whole frames from `b`; returns how many bytes they took. */
  #parse(b: Uint8Array, onFrame: FrameHandler): number {
    let pos = 0;
    while (b.length - pos >= FRAME_HEADER_SIZE) {
      const size = this.#check(b, pos);
      const end = pos + FRAME_HEADER_SIZE + size;
      if (end + 1 > b.length) break;
      if (b[end] !== FRAME_END) {
        throw new AmqpProtocolError(
          `frame end octet is 0x${b[end]!.toString(16).padStart(2, "0")}, expected 0xCE ` +
            `(frame type ${b[pos]}, channel ${(b[pos + 1]! << 8) | b[pos + 2]!}, size ${size})`,
        );
      }
      onFrame(b[pos]!, (b[pos + 1]! << 8) | b[pos + 2]!, b.subarray(pos + FRAME_HEADER_SIZE, end));
      pos = end + 1;
    }
    return pos;
  }

  /** Checks the frame header at `b[at]` and returns the payload size. */
  #check(b: Uint8Array, at: number): number {
    const type = b[at];
    if (type !== FRAME_METHOD && type !== FRAME_HEADER && type !== FRAME_BODY) {
      if (type === 0x41 && b[at + 1] === 0x4d && b[at + 2] === 0x51 && b[at + 3] === 0x50) {
        // "AMQP" and a version: the server refused our protocol header and sent its own.
        throw new AmqpProtocolError(
          `the server does not accept AMQP 0-9-1 (it answered with protocol header AMQP ` +
            `${b[at + 5]}-${b[at + 6]})`,
          REPLY.NOT_IMPLEMENTED,
        );
      }
      if (type !== FRAME_HEARTBEAT) throw new AmqpProtocolError(`unknown frame type ${type}`);
    }
    const size = ((b[at + 3]! << 24) >>> 0) + (b[at + 4]! << 16) + (b[at + 5]! << 8) + b[at + 6]!;
    if (size + FRAME_OVERHEAD > this.maxFrameSize) {
      throw new AmqpProtocolError(
        `frame of ${size + FRAME_OVERHEAD} bytes is larger than frame_max ${this.maxFrameSize}`,
      );
    }
    return size;
  }

  #keep(b: Uint8Array): void {
    this.#chunks.push(b.slice());
    this.#buffered += b.length;
  }

  /** The first `n` buffered bytes (n <= buffered), copied only if they span chunks. */
  #peek(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first;
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.#chunks) {
      const take = Math.min(c.length, n - at);
      out.set(c.subarray(0, take), at);
      at += take;
      if (at === n) break;
    }
    return out;
  }

  /** Removes and returns the first `n` buffered bytes. */
  #consume(n: number): Uint8Array {
    const out = this.#peek(n);
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0]!;
      if (c.length <= left) {
        this.#chunks.shift();
        left -= c.length;
      } else {
        this.#chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.#buffered -= n;
    return out.length === n ? out : out.subarray(0, n);
  }
}

/**
 * Starts a frame of `type` on `channel`; returns the offset to pass to `endFrame` once the
 * payload is written.
 */
export function beginFrame(w: ByteWriter, type: number, channel: number): number {
  w.ensure(FRAME_HEADER_SIZE);
  const at = w.pos;
  w.buf[at] = type;
  w.view.setUint16(at + 1, channel);
  w.pos += FRAME_HEADER_SIZE;
  return at;
}

/** Writes the payload size of the frame begun at `at`, and its end octet. */
export function endFrame(w: ByteWriter, at: number): void {
  w.view.setUint32(at + 3, w.pos - at - FRAME_HEADER_SIZE);
  w.u8(FRAME_END);
}

/** A heartbeat frame (channel 0, empty payload). */
export function writeHeartbeat(w: ByteWriter): void {
  endFrame(w, beginFrame(w, FRAME_HEARTBEAT, 0));
}
