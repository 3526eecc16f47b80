// Exit codes of the CLI (the first four are Dramatiq's).
export const EXIT = {
  /** Stopped normally. */
  OK: 0,
  /** Stopped at once by a second INT/TERM (unacked messages are recovered by the broker). */
  KILLED: 1,
  /** A task module could not be imported. */
  IMPORT: 2,
  /** The broker could not be reached or set up. */
  CONNECT: 3,
  /** The pid file exists and names a running process, or cannot be written. */
  PIDFILE: 4,
  /** `dramatis cancel`: a message was not found (unknown id) or had already finished. */
  NOT_FOUND: 5,
  /** Bad command-line arguments. */
  USAGE: 64,
  /** An internal error of the CLI (a bug: reported with its stack). */
  INTERNAL: 70,
  /** Internal: a worker process asks to be replaced (a Web Worker was stuck). */
  RECYCLE: 75,
} as const;
