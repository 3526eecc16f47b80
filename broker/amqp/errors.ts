/**
 * Errors of the AMQP 0-9-1 client: {@linkcode AmqpError} carries RabbitMQ's reply code and text
 * (a channel or connection closed by the server, a returned or refused publish), and
 * {@linkcode AmqpProtocolError} is raised for bytes that are not valid AMQP.
 *
 * @example
 * ```ts
 * import { AmqpError, REPLY } from "./errors.ts";
 * const e = new AmqpError("channel closed", { code: REPLY.NOT_FOUND, text: "NOT_FOUND - no queue 'x'" });
 * console.log(e.code); // 404
 * ```
 * @module
 */
import { BrokerError } from "../../errors.ts";

/**
 * AMQP 0-9-1 reply codes (the ones RabbitMQ uses).
 *
 * @example
 * ```ts
 * import { REPLY } from "./errors.ts";
 * console.log(REPLY.PRECONDITION_FAILED); // 406
 * ```
 */
export const REPLY = {
  SUCCESS: 200,
  CONTENT_TOO_LARGE: 311,
  NO_ROUTE: 312,
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const;

/**
 * What the server said when it closed a channel or the connection, or returned or refused a
 * published message: its reply code (`404`, `406`, `312`, ...), its reply text, and the method
 * that caused it (class and method ids, 0 when none).
 *
 * @example
 * ```ts
 * import { AmqpError } from "./errors.ts";
 * const e = new AmqpError("RabbitMQ closed the channel", {
 *   code: 406,
 *   text: "PRECONDITION_FAILED - inequivalent arg 'x-max-priority'",
 *   classId: 50,
 *   methodId: 10,
 * });
 * console.log(e.code, e.replyText);
 * ```
 */
export class AmqpError extends BrokerError {
  /** The AMQP reply code. */
  readonly code: number;
  /** The server's reply text (for RabbitMQ: `NAME - details`). */
  readonly replyText: string;
  /** The class id of the method that failed (50 = queue, 60 = basic), or 0. */
  readonly classId: number;
  /** The method id of the method that failed, or 0. */
  readonly methodId: number;
  /** True when the whole connection was closed, false for one channel. */
  readonly connectionLevel: boolean;

  /** Creates the error. */
  constructor(
    message: string,
    reply: {
      code: number;
      text: string;
      classId?: number;
      methodId?: number;
      connectionLevel?: boolean;
    },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = reply.code;
    this.replyText = reply.text;
    this.classId = reply.classId ?? 0;
    this.methodId = reply.methodId ?? 0;
    this.connectionLevel = reply.connectionLevel ?? false;
  }
}

/**
 * Bytes that are not valid AMQP 0-9-1: a bad frame-end octet, a frame larger than the
 * negotiated maximum, a truncated field, an unknown method or field type.
 *
 * @example
 * ```ts
 * import { AmqpProtocolError } from "./errors.ts";
 * const e = new AmqpProtocolError("frame end octet is 0x00, expected 0xCE");
 * ```
 */
export class AmqpProtocolError extends BrokerError {
  /** The reply code the client sends when it closes the connection over this. */
  readonly code: number;
  /** Creates the error; `code` defaults to 501 (FRAME_ERROR). */
  constructor(message: string, code: number = REPLY.FRAME_ERROR) {
    super(message);
    this.code = code;
  }
}
