// The FileBroker engine: the write buffer and group commit, the replica and its catch-up,
// claims, acks, leases, waiting for changes, and compaction. `broker.ts` is the public face.
//
// A message's path through this file: `enqueue()` encodes an ENQ record into `#out` ->
// `#flushTick()` (end of the macrotask) -> `#flushLocked()` appends `#out` to the log under the
// lock -> `#startSync()` fdatasyncs and resolves the senders. A consumer's `receive()` ->
// `#catchUp()` reads new records into the replica -> `#claim()` takes the lock, appends a CLAIM,
// reads it back -> `#load()` reads the messages' JSON. `ack()` queues the id; the next flush
// writes one ACK record for all the ids queued.
import { MessageProxy, type RawDelivery } from "../broker.ts";
import { BrokerError, QueueJoinTimeout } from "../../errors.ts";
import { Message } from "../../message.ts";
import { undecodableLetter } from "../_undecodable.ts";
import { formatError, getLogger } from "../../util/log.ts";
import { Kind, RecordWriter } from "./_format.ts";
import {
  type FileAccess,
  type RawFile,
  setImmediate,
  unrefTimer,
  watchDir,
  type Watcher,
} from "../../runtime/fs.ts";
import { type ApplyFn, GapError, Log, LogReader, type Seg } from "./_segments.ts";
import { Liveness, livenessPath } from "./_liveness.ts";
import { dropSends, heldError, heldSends, isWriteError, listIds, writeError } from "./_outage.ts";
import { DEAD, INFLIGHT, type Msg, type QueueState, READY, State } from "./_state.ts";
import { applyWith, type EngineExtension, type MessageState } from "./_ops_hooks.ts";

const logger = getLogger("dramatis.broker.FileBroker");

/**
 * When a FileBroker's `send()` resolves: `"always"` after `fdatasync`, `"batch"` at once with an
 * `fdatasync` at most every `flushInterval` ms, `"none"` at once without `fdatasync`. See
 * docs/file-broker.md.
 *
 * @example
 * ```ts
 * import type { Durability } from "./broker.ts";
 * const d: Durability = "batch";
 * ```
 */
export type Durability = "always" | "batch" | "none";

/** Settings of an engine (validated by FileBroker). */
export interface EngineOptions {
  dir: string;
  durability: Durability;
  flushInterval: number;
  leaseTimeout: number;
  deadMessageTtl: number;
  segmentSize: number;
  /** Who may read the directory and its files. */
  access: FileAccess;
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

const RESOLVED = Promise.resolve();
/** Buffered bytes that make `batch`/`none` sends write at once instead of at the end of the tick. */
const INLINE_FLUSH_BYTES = 256 * 1024;
/** Buffered age (ms) that does the same, for a sender that never yields to the event loop. */
const INLINE_FLUSH_MS = 1;
/** A waiting consumer re-reads the log at least this often, in case a file event is missed. */
const POLL_MS = 1000;
/**
 * A waiting consumer tries the liveness locks of the other owners holding messages of its queue
 * at least this often (on Deno the death of a process also wakes it at once, through the watch).
 */
const LIVENESS_POLL_MS = 20;
/** In busy paths, a liveness result younger than this is reused. */
const LIVENESS_REUSE_MS = 10;
/** Compaction: how often a replica holder checks whether there is something to reclaim. */
const COMPACT_EVERY_MS = 5000;
/** Compaction: the newest segment is sealed early when this big and at most 1/4 live. */
const SEAL_IDLE_BYTES = 256 * 1024;
/** Compaction: most live bytes copied forward in one pass. */
const MAX_COPY_BYTES = 16 * 1024 * 1024;
/** Compaction: the pause between two slices of a pass's copy (each about SPAN_BYTES), in ms. */
const COMPACT_GAP_MS = 20;
/** Payloads closer than this are read with one `pread`. */
const SPAN_BYTES = 1024 * 1024;
/** Replay: the fewest log bytes per message assumed when making room in the index. */
const RESERVE_BYTES_PER_MESSAGE = 128;
/**
 * Replay: the most slots reserved up front (~170 MB of address space, untouched until used; past
 * it the columns grow as they fill), so that a huge log cannot ask for more than a system that
 * does not overcommit memory would give.
 */
const RESERVE_MAX_SLOTS = 4 * 1024 * 1024;
/** After a failed write: how often held records are tried again (by a timer; sends try too). */
const RETRY_MS = 1000;
/** After a failed write: the shortest time between two tries made by sends. */
const RETRY_MIN_MS = 50;

function randomOwnerId(): number {
  const r = crypto.getRandomValues(new Uint32Array(2));
  return (r[0]! & 0x1fffff) * 2 ** 32 + r[1]! + 1;
}

/** Everything a FileBroker does with its directory. */
/** What a FileBroker consumer puts in `MessageProxy.receipt`: structured-cloneable. */
export interface FileReceipt {
  /** The message's log id. */
  id: number;
  /** The instance holding it. */
  owner: number;
}

export class Engine {
  /** This instance's owner id in CLAIM, ACK, HEARTBEAT records. */
  readonly owner: number = randomOwnerId();
  #log: Log | undefined;
  #out = new RecordWriter();
  #outSince = 0;
  #acks: number[] = [];
  #flushScheduled = false;
  #durable: Waiter[] = [];
  #unsynced: Waiter[] = [];
  #dirty = new Set<RawFile>();
  /** True when `#out` holds records that must reach the disk (sends, admin records, SNAPs). */
  #needsSync = false;
  #syncing = false;
  /** `batch` mode: the fdatasyncs running now (a sender that never yields may start several). */
  #batchSyncs = new Set<Promise<void>>();
  #lastSync = 0;
  /** Records buffered since the clock was last read (see `enqueue`). */
  #sinceClock = 0;
  #syncTimer: ReturnType<typeof setTimeout> | undefined;
  #state: State | undefined;
  #reader: LogReader | undefined;
  #waiters = new Set<() => void>();
  #watcher: Watcher | undefined;
  #held = 0;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #compactTimer: ReturnType<typeof setInterval> | undefined;
  /** The compaction pass in progress, if any. */
  #compacting: Promise<number> | undefined;
  #closed = false;
  /** Incremented each time the replica is rebuilt from scratch. */
  #generation = 0;
  /** Set from a failed write until a write succeeds again (see `_outage.ts`). */
  #writeError: Error | undefined;
  /** `batch` / `none`: how many resolved sends the failed write left in `#out`. */
  #heldCount = 0;
  #lastTry = 0;
  #retryTimer: ReturnType<typeof setInterval> | undefined;
  #liveness: Liveness | undefined;
  /** Set when this owner could not create its liveness file (the lease covers it then). */
  #noLiveness = false;

  /** The operations' records (`_ops_state.ts`): applied, compacted and asked about pauses here. */
  extension: EngineExtension | undefined;

  constructor(readonly options: EngineOptions) {}

  get closed(): boolean {
    return this.#closed;
  }

  #open(): Log {
    if (this.#log) return this.#log;
    if (this.#closed) throw new TypeError("This FileBroker is closed: create a new one.");
    const log = new Log(this.options.dir, this.options.segmentSize, this.options.access);
    try {
      log.open();
    } catch (e) {
      log.close();
      throw new BrokerError(
        `Cannot open the FileBroker directory ${this.options.dir}: ${(e as Error).message}. ` +
          `Check that it is writable, or pass another { dir }.`,
        { cause: e },
      );
    }
    return this.#log = log;
  }

  // -------------------------------------------------------------------------------------------
  // Write path

  /** Appends an ENQ record. Resolves per the durability mode. */
  enqueue(queueName: string, priority: number, eta: number, json: string): Promise<void> {
    if (this.#closed) {
      throw new TypeError("This FileBroker is closed: create a new one to enqueue.");
    }
    this.#open();
    const out = this.#out;
    if (
      this.#writeError && out.length > 0 && this.options.durability !== "always" && !this.#retry()
    ) {
      // Sends that resolved are held in memory, unwritten: refuse more until a write works.
      return Promise.reject(
        heldError(this.options.dir, this.#writeError as BrokerError, this.#heldCount),
      );
    }
    if (out.length === 0) this.#outSince = performance.now();
    this.#needsSync = true;
    out.begin(Kind.ENQ);
    try {
      out.queue(queueName);
      out.f64(priority);
      out.f64(eta);
      out.text(json);
      out.end();
    } catch (e) {
      out.abort();
      throw e;
    }
    if (this.options.durability === "always") {
      const p = new Promise<void>((resolve, reject) => this.#durable.push({ resolve, reject }));
      if (out.length >= 4 * INLINE_FLUSH_BYTES) this.#flushQuietly();
      else this.#scheduleFlush();
      return p;
    }
    this.#scheduleFlush();
    // The clock is read once every 16 records: a sender that never yields is still written out
    // within about INLINE_FLUSH_MS.
    if (
      out.length >= INLINE_FLUSH_BYTES ||
      ((++this.#sinceClock & 15) === 0 && performance.now() - this.#outSince >= INLINE_FLUSH_MS)
    ) {
      // This send resolves either way: if the write fails, its record is held with the others.
      this.#flushQuietly();
      if (
        this.options.durability === "batch" &&
        performance.now() - this.#lastSync >= this.options.flushInterval
      ) {
        // Off this thread: a sender that never yields still gets its records synced on time.
        this.#startBatchSync();
      }
    }
    return RESOLVED;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flushTick);
  }

  #flushTick = (): void => {
    this.#flushScheduled = false;
    // Open the log if needed: an instance that only acks or requeues (the CLI settling the
    // messages of a replaced Web Worker) has not opened it yet.
    if (!this.#closed) this.#flushQuietly();
  };

  /** `flush()`, logging a failure (whose waiters were rejected) instead of throwing it. */
  #flushQuietly(): void {
    try {
      this.flush();
    } catch (e) {
      if (!isWriteError(e)) {
        logger.error(`FileBroker failed to write to ${this.options.dir}: ${formatError(e)}`);
      }
    }
  }

  /** After a failed write: tries the held records again now (not too often). True if written. */
  #retry(): boolean {
    const now = performance.now();
    if (now - this.#lastTry < RETRY_MIN_MS) return false;
    this.#flushQuietly();
    return this.#writeError === undefined;
  }

  /** Writes the buffered records now (synchronously, under the lock). */
  flush(): void {
    if (this.#out.length === 0 && this.#acks.length === 0) return;
    const log = this.#open();
    try {
      log.withLock(() => this.#flushLocked());
    } finally {
      this.#afterWrite();
    }
  }

  /** Moves the queued acks into one ACK record in `#out`. */
  #encodeAcks(): void {
    if (this.#acks.length === 0) return;
    const out = this.#out;
    out.begin(Kind.ACK);
    out.f64(this.owner);
    out.u32(this.#acks.length);
    for (const id of this.#acks) out.f64(id);
    out.end();
    this.#acks = [];
  }

  /**
   * Appends the buffered records and queued acks. Must hold the lock. If the write fails, the
   * records from `ownFrom` on (those of the operation under way) are dropped, the others kept or
   * dropped as `#writeFailed` says.
   */
  #flushLocked(ownFrom = -1): void {
    const out = this.#out;
    if (ownFrom < 0) this.#encodeAcks();
    if (out.length === 0) return;
    const waiters = this.#durable;
    this.#durable = [];
    let file: RawFile;
    try {
      file = this.#log!.append(out.view());
    } catch (e) {
      if (ownFrom >= 0) out.length = ownFrom;
      throw this.#writeFailed(e, waiters);
    }
    if (this.#writeError) this.#writeWorks(out);
    out.reset();
    if (this.#needsSync && this.options.durability !== "none") this.#dirty.add(file);
    this.#needsSync = false;
    for (const w of waiters) this.#unsynced.push(w);
  }

  /**
   * A write failed (see `_outage.ts`): `always` senders are rejected and their records dropped;
   * in `batch` and `none` the records stay in `#out` and are written by a later flush. Logs the
   * first failure of a run. Returns the error to throw.
   */
  #writeFailed(e: unknown, waiters: Waiter[]): Error {
    this.#lastTry = performance.now();
    const err = writeError(this.options.dir, e, this.options.durability);
    for (const w of waiters) w.reject(err);
    const first = this.#writeError === undefined;
    this.#writeError = err;
    if (this.options.durability === "always") {
      const dropped = dropSends(this.#out);
      if (first) {
        logger.error(`${err.message} (${dropped} send(s) rejected.)`);
      }
    } else if (first) {
      const held = heldSends(this.#out);
      this.#heldCount = held.count;
      logger.error(
        `${err.message} ${held.count} message(s) whose send() had resolved (durability ` +
          `"${this.options.durability}") are held in memory and written as soon as a write ` +
          `succeeds; they are lost if this process stops first. Held: ${
            listIds(held.ids, held.count)
          }.`,
      );
    }
    if (!this.#retryTimer) {
      this.#retryTimer = setInterval(() => {
        if (this.#out.length > 0 || this.#acks.length > 0) this.#flushQuietly();
      }, RETRY_MS);
      unrefTimer(this.#retryTimer);
    }
    return err;
  }

  /** The first write that works after failed ones (it is about to be applied). */
  #writeWorks(out: RecordWriter): void {
    const held = this.options.durability === "always" ? 0 : heldSends(out).count;
    logger.warning(
      `Writing to ${this.options.dir} works again` +
        (held > 0 ? `: the ${held} held message(s) are stored.` : "."),
    );
    this.#writeError = undefined;
    clearInterval(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  /** After a write: wake local waiters, start the fdatasync that senders wait for. */
  #afterWrite(): void {
    this.#notify();
    if (this.options.durability === "always") this.#startSync();
    else if (this.options.durability === "batch" && this.#dirty.size > 0 && !this.#syncTimer) {
      this.#syncTimer = setTimeout(() => {
        this.#syncTimer = undefined;
        this.#startBatchSync();
      }, this.options.flushInterval);
      unrefTimer(this.#syncTimer);
    }
    this.#closeRetired();
  }

  /** Group commit: one fdatasync at a time covers every record written before it started. */
  #startSync(): void {
    if (this.#syncing || this.#unsynced.length === 0) return;
    this.#syncing = true;
    const waiters = this.#unsynced;
    this.#unsynced = [];
    this.#syncDirty().then(
      () => {
        for (const w of waiters) w.resolve();
      },
      (e) => {
        const err = new BrokerError(
          `fdatasync in ${this.options.dir} failed: ${(e as Error).message}. The messages were ` +
            `written but may not survive a power loss, and they may still be delivered: check ` +
            `before you send them again.`,
          { cause: e },
        );
        for (const w of waiters) w.reject(err);
      },
    ).finally(() => {
      this.#syncing = false;
      this.#closeRetired();
      this.#startSync();
    });
  }

  /** `batch` mode: fdatasyncs what was written, in the background. */
  #startBatchSync(): void {
    this.#lastSync = performance.now();
    const p: Promise<void> = this.#syncDirty().catch((e) =>
      logger.error(`fdatasync in ${this.options.dir} failed: ${formatError(e)}`)
    ).finally(() => {
      this.#batchSyncs.delete(p);
      this.#closeRetired();
    });
    this.#batchSyncs.add(p);
  }

  async #syncDirty(): Promise<void> {
    const files = [...this.#dirty];
    this.#dirty.clear();
    if (files.length > 0) await Promise.all(files.map((f) => f.syncData()));
    this.#lastSync = performance.now();
  }

  #syncDirtySync(): void {
    for (const f of this.#dirty) f.syncDataSync();
    this.#dirty.clear();
    this.#lastSync = performance.now();
    this.#closeRetired();
  }

  /** Closes writer files of sealed segments once no sync can still need them. */
  #closeRetired(): void {
    const retired = this.#log?.retired;
    if (!retired || retired.length === 0 || this.#syncing || this.#batchSyncs.size > 0) return;
    const keep = retired.filter((f) => this.#dirty.has(f));
    for (const f of retired) if (!this.#dirty.has(f)) f.close();
    retired.splice(0, retired.length, ...keep);
  }

  /**
   * Under the lock: writes what is buffered and the records `encode` appends. If the write fails,
   * those records are dropped (the caller is told), never written later.
   */
  #writeOwn(encode: () => void): void {
    this.#encodeAcks();
    const mark = this.#out.length;
    encode();
    this.#flushLocked(mark);
  }

  /** Writes the buffer and resolves when it is as durable as the mode promises. */
  #commit(): Promise<void> {
    this.#needsSync = true;
    if (this.options.durability !== "always") {
      this.flush();
      return RESOLVED;
    }
    const p = new Promise<void>((resolve, reject) => this.#durable.push({ resolve, reject }));
    if (this.#out.length === 0 && this.#acks.length === 0) {
      // Nothing new to write: wait for a sync that covers what was written before.
      for (const w of this.#durable.splice(0)) this.#unsynced.push(w);
      this.#startSync();
    } else {
      this.#flushQuietly();
    }
    return p;
  }

  // -------------------------------------------------------------------------------------------
  // The replica

  /** The replica, built on first use by reading the whole log. */
  #replica(): State {
    if (this.#state) return this.#state;
    const log = this.#open();
    const state = new State({ deadMessageTtl: this.options.deadMessageTtl });
    const reader = new LogReader(log, this.#applier(state));
    this.#state = state;
    this.#reader = reader;
    try {
      reader.start();
    } catch (e) {
      if (!(e instanceof GapError)) throw e;
    }
    reserveFor(state, reader);
    this.#catchUp(false);
    this.#compactTimer ??= setInterval(() => this.#maybeCompact(), COMPACT_EVERY_MS);
    unrefTimer(this.#compactTimer);
    return this.#state!;
  }

  /** Applies records to `state`, and those of the operations to the extension. */
  #applier(state: State): ApplyFn {
    return applyWith(state.apply.bind(state), () => this.extension);
  }

  /** Applies the records appended since the last call. */
  #catchUp(locked: boolean): void {
    for (let attempt = 0;; attempt++) {
      try {
        this.#reader!.catchUp(locked);
        return;
      } catch (e) {
        if (!(e instanceof GapError) || attempt > 5) throw e;
        // Compaction removed a segment this replica had not read yet (or something else did, or
        // a failed write was cut off): read everything again, reporting a missing start.
        logger.info(`Re-reading the log of ${this.options.dir}: ${e.message}.`);
        this.#generation++;
        this.#reader!.close();
        this.#log!.withLock(() => this.#log!.checkTail());
        const state = new State({ deadMessageTtl: this.options.deadMessageTtl });
        this.#state = state;
        this.extension?.reset();
        this.#reader = new LogReader(this.#log!, this.#applier(state));
        try {
          this.#reader.start();
        } catch (e2) {
          if (!(e2 instanceof GapError)) throw e2;
        }
        reserveFor(state, this.#reader);
      }
    }
  }

  /** The queue `name` of an up-to-date replica (writes this instance's buffer first). */
  #fresh(name: string): QueueState {
    this.flush();
    this.#replica();
    this.#catchUp(false); // may replace the replica: read this.#state after it
    return this.#state!.queue(name);
  }

  // -------------------------------------------------------------------------------------------
  // Liveness (see _liveness.ts)

  #lv(): Liveness {
    return this.#liveness ??= new Liveness(this.options.dir, this.#open().modes.file);
  }

  /** Before the first CLAIM (locked): this owner's liveness file, so its death is seen at once. */
  #holdLiveness(): void {
    const lv = this.#lv();
    if (lv.holding || this.#noLiveness) return;
    try {
      lv.hold(this.owner);
    } catch (e) {
      this.#noLiveness = true;
      logger.warning(
        `Cannot hold ${livenessPath(this.options.dir, this.owner)} (${(e as Error).message}): ` +
          `if this process dies, its messages come back after leaseTimeout ` +
          `(${this.options.leaseTimeout} ms) instead of at once.`,
      );
    }
  }

  /** True when another owner holding messages of `q` is gone (its lock is free). */
  #someoneGone(q: QueueState): boolean {
    if (q.inflightBy.size === 0) return false;
    const lv = this.#lv();
    for (const id of q.inflightBy.keys()) if (id !== this.owner && lv.isDead(id)) return true;
    return false;
  }

  /** True when another owner holding messages of `q` has a liveness file to watch. */
  #watchesOthers(q: QueueState): boolean {
    for (const id of q.inflightBy.keys()) {
      if (id !== this.owner && this.#lv().watched(id)) return true;
    }
    return false;
  }

  /** Appends EXPIRE records for `owners` (locked), logs why, and buries those that are gone. */
  #expire(owners: number[]): void {
    const queues = (id: number) => {
      const names = new Set<string>();
      const state = this.#state!;
      for (const s of state.owners.get(id)?.msgs ?? []) names.add(state.queueOf(s).name);
      return [...names].join(", ") || "a queue";
    };
    const held = owners.map(queues);
    this.#writeOwn(() => {
      for (const id of owners) {
        this.#out.begin(Kind.EXPIRE);
        this.#out.f64(id);
        this.#out.f64(this.owner);
        this.#out.end();
      }
    });
    const lv = this.#lv();
    owners.forEach((id, i) => {
      if (lv.isDead(id, Infinity)) {
        logger.warning(
          `A consumer (owner ${id}) of ${held[i]} is gone (its process or Web Worker ended): ` +
            `its messages are delivered again now.`,
        );
        lv.bury(id);
      } else {
        logger.warning(
          `A consumer (owner ${id}) of ${held[i]} stopped renewing its lease: its messages ` +
            `are delivered again.`,
        );
      }
    });
  }

  /** Every few seconds (locked): expires owners that are gone, whatever queue they held. */
  #sweepOwners(): void {
    const log = this.#open();
    try {
      log.withLock(() => {
        this.#catchUp(true);
        const state = this.#state!;
        const gone = this.#lv().sweep(
          this.owner,
          (id) => (state.owners.get(id)?.msgs.size ?? 0) > 0,
        );
        if (gone.length === 0) return;
        this.#expire(gone);
        this.#catchUp(true);
      });
    } finally {
      this.#afterWrite();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Read path

  /** Waits up to `timeout` ms for messages of `queueName`, claims up to `max` and decodes them. */
  receive(
    queueName: string,
    max: number,
    options: { timeout: number; signal?: AbortSignal | undefined; closed: () => boolean },
  ): Promise<MessageProxy[]> {
    return this.#deliver(queueName, max, options, (m, bytes) => this.#decode(m, bytes));
  }

  /** `receive` without decoding: each message's JSON bytes, its receipt and a decoder. */
  receiveRaw(
    queueName: string,
    max: number,
    options: { timeout: number; signal?: AbortSignal | undefined; closed: () => boolean },
  ): Promise<RawDelivery[]> {
    return this.#deliver(queueName, max, options, (m, data) => {
      const receipt: FileReceipt = { id: m.id, owner: this.owner };
      return { receipt, data, decode: () => this.#decode(m, data) };
    });
  }

  /** Claims messages and turns each (with its JSON) into what `make` returns, if anything. */
  async #deliver<T>(
    queueName: string,
    max: number,
    options: { timeout: number; signal?: AbortSignal | undefined; closed: () => boolean },
    make: (m: Msg, bytes: Uint8Array) => T | undefined,
  ): Promise<T[]> {
    const out: T[] = [];
    this.#load(await this.#receive(queueName, max, options), (m, bytes) => {
      const x = make(m, bytes);
      if (x !== undefined) out.push(x);
    });
    return out;
  }

  /** Waits up to `timeout` ms for messages of `queueName` and claims up to `max` of them. */
  async #receive(
    queueName: string,
    max: number,
    options: { timeout: number; signal?: AbortSignal | undefined; closed: () => boolean },
  ): Promise<Msg[]> {
    const deadline = Date.now() + options.timeout;
    for (;;) {
      if (this.#closed) {
        throw new TypeError("This FileBroker is closed: stop its workers before closing it.");
      }
      if (options.closed() || options.signal?.aborted) return [];
      this.#replica();
      this.#catchUp(false);
      const state = this.#state!;
      const q = state.queue(queueName);
      const now = Date.now();
      const top = q.heap.peek();
      const headEta = top < 0 ? Infinity : state.index.key[top]!; // (eta on q.DQ)
      const due = top >= 0 && (!q.delayed || headEta <= now);
      if (this.#paused(q)) {
        // A paused queue: nothing is handed out; a resume (a record) wakes this wait.
        if (now >= deadline) return [];
        await this.#wait(Math.min(deadline - now, POLL_MS), options.signal);
        continue;
      }
      if (due || state.nextExpiry(q, this.owner) < now || this.#someoneGone(q)) {
        const msgs = this.#claim(queueName, max, now);
        if (msgs.length > 0) return msgs;
        continue;
      }
      if (now >= deadline) return [];
      let wakeAt = Math.min(deadline, state.nextExpiry(q, this.owner) + 1);
      if (q.delayed && top >= 0) wakeAt = Math.min(wakeAt, headEta);
      const poll = this.#watchesOthers(q) ? LIVENESS_POLL_MS : POLL_MS;
      await this.#wait(Math.min(Math.max(0, wakeAt - now), poll), options.signal);
    }
  }

  /**
   * Whether `q` hands out nothing: its queue is paused. A delay queue is paused with its queue
   * (a worker runs a due delayed message in place, as a message of `q`: `delaysUntilDue`).
   */
  #paused(q: { name: string; delayed: boolean }): boolean {
    const ext = this.extension;
    return ext !== undefined && ext.paused(q.delayed ? q.name.slice(0, -3) : q.name);
  }

  /** Under the lock: expires dead owners, pops up to `max` messages, appends a CLAIM. */
  #claim(queueName: string, max: number, now: number): Msg[] {
    const log = this.#open();
    let picked: number[] = [];
    const slots: number[] = [];
    try {
      log.withLock(() => {
        this.#catchUp(true);
        const state = this.#state!;
        let q = state.queue(queueName);
        const lv = this.#lv();
        const gone = (id: number) => lv.isDead(id, LIVENESS_REUSE_MS);
        const expired = state.expiredOwners(q, this.owner, now, gone);
        if (expired.length > 0) {
          this.#expire(expired);
          this.#catchUp(true);
          q = this.#state!.queue(queueName);
        }
        const x = this.#state!.index;
        while (picked.length < max && !this.#paused(q)) {
          const s = q.heap.peek();
          if (s < 0 || (q.delayed && x.key[s]! > now)) break; // (the key of q.DQ: eta)
          q.heap.pop();
          picked.push(x.id(s));
          slots.push(s);
        }
        if (picked.length === 0) return;
        this.#holdLiveness();
        const out = this.#out;
        try {
          this.#writeOwn(() => {
            out.begin(Kind.CLAIM);
            out.f64(this.owner);
            out.f64(now + this.options.leaseTimeout);
            out.u32(picked.length);
            for (const id of picked) out.f64(id);
            out.end();
          });
        } catch (e) {
          for (const s of slots) q.heap.push(s);
          picked = [];
          throw e;
        }
        this.#catchUp(true);
      });
    } finally {
      this.#afterWrite();
    }
    // Look the messages up again by id: a replica rebuilt meanwhile has other slots for them.
    const state = this.#state!;
    const mine: Msg[] = [];
    for (const id of picked) {
      const m = state.get(id);
      if (m && m.state === INFLIGHT && m.owner === this.owner) mine.push(m);
    }
    if (mine.length > 0) this.#hold(mine.length);
    return mine;
  }

  /**
   * Reads the JSON of claimed messages (one `pread` per run of nearby messages) and calls
   * `each` with every message and its bytes, in the order of `msgs`.
   */
  #load(msgs: Msg[], each: (m: Msg, bytes: Uint8Array) => void): void {
    const order = msgs.map((_, i) => i).sort((a, b) =>
      msgs[a]!.seg.base - msgs[b]!.seg.base || msgs[a]!.poff - msgs[b]!.poff
    );
    const bytes: Uint8Array[] = new Array(msgs.length);
    let i = 0;
    while (i < order.length) {
      const first = msgs[order[i]!]!;
      let j = i + 1;
      let end = first.poff + first.plen;
      while (j < order.length) {
        const m = msgs[order[j]!]!;
        if (m.seg !== first.seg || m.poff + m.plen - first.poff > SPAN_BYTES) break;
        end = Math.max(end, m.poff + m.plen);
        j++;
      }
      const span = readExactly(first.seg, first.poff, end - first.poff);
      for (let k = i; k < j; k++) {
        const o = order[k]!, m = msgs[o]!;
        bytes[o] = span.subarray(m.poff - first.poff, m.poff - first.poff + m.plen);
      }
      i = j;
    }
    for (let k = 0; k < msgs.length; k++) each(msgs[k]!, bytes[k]!);
    this.#state?.delivered(msgs.length);
  }

  #decode(m: Msg, bytes: Uint8Array): MessageProxy | undefined {
    try {
      const proxy = MessageProxy.decode(bytes) as MessageProxy;
      const receipt: FileReceipt = { id: m.id, owner: this.owner };
      proxy.receipt = receipt;
      return proxy;
    } catch (e) {
      // Not a message a worker can run: keep it as a dead letter rather than lose it.
      logger.error(
        `Message at ${m.seg.path}:${m.poff} cannot be decoded (${(e as Error).message}); ` +
          `moving it to the dead letters of ${m.q.name}.`,
      );
      this.#nackRaw(m.id, m.q.name, m.priority, bytes); // as they are: nothing is lost
      this.#release(1);
      return undefined;
    }
  }

  #hold(n: number): void {
    this.#held += n;
    if (this.#held > 0 && !this.#heartbeatTimer) {
      this.#heartbeatTimer = setInterval(() => this.#heartbeat(), this.options.leaseTimeout / 3);
    }
  }

  #release(n: number): void {
    this.#held = Math.max(0, this.#held - n);
    if (this.#held === 0 && this.#heartbeatTimer) {
      clearInterval(this.#heartbeatTimer);
      this.#heartbeatTimer = undefined;
    }
  }

  /** Renews the lease of every message this instance holds. */
  #heartbeat(): void {
    if (this.#closed) return;
    this.#out.begin(Kind.HEARTBEAT);
    this.#out.f64(this.owner);
    this.#out.f64(Date.now() + this.options.leaseTimeout);
    this.#out.end();
    try {
      this.flush();
    } catch (e) {
      if (!isWriteError(e)) logger.error(`FileBroker could not renew its lease: ${formatError(e)}`);
    }
  }

  /**
   * The message was processed: queue its id for the next ACK record. The receipt may come from
   * another instance (the CLI settles the messages of a Web Worker it replaced).
   */
  ack(receipt: FileReceipt): void {
    this.#acks.push(receipt.id);
    if (receipt.owner === this.owner) this.#release(1);
    this.#scheduleFlush();
  }

  /** The message failed for good: dead-letter it, as it is now (with its traceback). */
  nack(message: MessageProxy): void {
    const receipt = message.receipt as FileReceipt;
    const m = this.#state?.get(receipt.id);
    const json = JSON.stringify(message.asDict());
    this.#nackRaw(receipt.id, message.queueName, m?.priority ?? 0, json);
    if (receipt.owner === this.owner) this.#release(1);
  }

  #nackRaw(id: number, queueName: string, priority: number, json: string | Uint8Array): void {
    const out = this.#out;
    out.begin(Kind.NACK);
    out.f64(this.owner);
    out.f64(id);
    out.f64(Date.now());
    out.queue(queueName.endsWith(".DQ") ? queueName.slice(0, -3) : queueName);
    out.f64(priority);
    if (typeof json === "string") out.text(json);
    else out.bytes(json);
    out.end();
    this.#scheduleFlush();
  }

  /**
   * Hands messages back, in front of their priority level, in this order. Each REQUEUE record
   * names the owner that holds the messages (a requeue only applies while that owner still holds
   * them), so receipts of another instance work too.
   */
  requeue(receipts: FileReceipt[]): void {
    if (receipts.length === 0) return;
    const byOwner = new Map<number, number[]>();
    for (const r of receipts) {
      let ids = byOwner.get(r.owner);
      if (!ids) byOwner.set(r.owner, ids = []);
      ids.push(r.id);
    }
    const out = this.#out;
    for (const [owner, ids] of byOwner) {
      out.begin(Kind.REQUEUE);
      out.f64(owner);
      out.u32(ids.length);
      for (const id of ids) out.f64(id);
      out.end();
      if (owner === this.owner) this.#release(ids.length);
    }
    this.#scheduleFlush();
  }

  // -------------------------------------------------------------------------------------------
  // Waiting for changes

  #wait(ms: number, signal?: AbortSignal): Promise<void> {
    this.#watch();
    return new Promise((resolve) => {
      const waiters = this.#waiters;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done);
      waiters.add(done);
    });
  }

  /** Wakes every waiting `receive` and `join` of this instance (they re-check their state). */
  wake(): void {
    this.#notify();
  }

  #notify(): void {
    if (this.#waiters.size === 0) return;
    for (const w of [...this.#waiters]) w();
  }

  #watch(): void {
    if (this.#watcher || this.#closed) return;
    try {
      this.#watcher = watchDir(this.options.dir, () => this.#notify());
    } catch (e) {
      logger.warning(
        `Cannot watch ${this.options.dir} (${(e as Error).message}); polling every ${POLL_MS} ms.`,
      );
      this.#watcher = { close() {} };
    }
  }

  // -------------------------------------------------------------------------------------------
  // Queue-level operations

  /** Waits until `queueName` has no ready, delayed or in-flight message. */
  async join(
    queueName: string,
    options: { timeout?: number | undefined; failFast?: boolean },
  ): Promise<void> {
    const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout;
    const q = () => this.#state!.queue(queueName);
    const dq = () => this.#state!.queue(`${queueName}.DQ`);
    this.#fresh(queueName);
    let startSeq = q().deadSeq, generation = this.#generation;
    for (;;) {
      this.#fresh(queueName);
      if (generation !== this.#generation) {
        // The replica was rebuilt: its counter restarted.
        startSeq = q().deadSeq;
        generation = this.#generation;
      }
      if (options.failFast && q().deadSeq > startSeq) {
        throw this.#deadLetterError(q().name, q().lastDead!);
      }
      const a = q(), b = dq();
      if (a.heap.size + a.inflight + b.heap.size + b.inflight === 0) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new QueueJoinTimeout(queueName);
      if (this.#closed) throw new TypeError("This FileBroker was closed while joining.");
      await this.#wait(Math.min(left, POLL_MS));
    }
  }

  #deadLetterError(queueName: string, id: number): Error {
    let text = `message ${id}`;
    try {
      const m = this.#state!.get(id);
      if (!m) throw new Error("gone");
      const msg = Message.decode(readExactly(m.seg, m.poff, m.plen));
      const tb = typeof msg.options.traceback === "string" ? `\n${msg.options.traceback}` : "";
      text = `${msg.actorName} message ${msg.messageId}${tb}`;
    } catch { /* keep the short description */ }
    return new Error(`A message of queue ${queueName} failed and was dead-lettered: ${text}`);
  }

  /** The names of the queues in the log (canonical: `q` for `q` and `q.DQ`). */
  queueNames(): string[] {
    this.flush();
    this.#replica();
    this.#catchUp(false);
    const names = new Set<string>();
    for (const name of this.#state!.queues.keys()) {
      names.add(name.endsWith(".DQ") ? name.slice(0, -3) : name);
    }
    return [...names];
  }

  /** Counters of `queueName`. */
  stats(queueName: string): { ready: number; delayed: number; inFlight: number; dead: number } {
    const q = this.#fresh(queueName);
    const dq = this.#state!.queue(`${queueName}.DQ`);
    const limit = Date.now() - this.options.deadMessageTtl;
    let dead = q.dead.size;
    if (dead > 0 && this.#state!.index.key[q.dead.values().next().value!]! < limit) {
      this.#state!.sweep();
      dead = q.dead.size;
    }
    return {
      ready: q.heap.size,
      delayed: dq.heap.size,
      inFlight: q.inflight + dq.inflight,
      dead,
    };
  }

  /**
   * Dead letters of `queueName`, oldest first, with their log ids: every letter `stats()`
   * counts, those that cannot be decoded too (as a Message saying why; see `_undecodable.ts`).
   */
  deadLetters(queueName: string, limit = Infinity): { id: number; message: Message }[] {
    const q = this.#fresh(queueName);
    const oldest = Date.now() - this.options.deadMessageTtl;
    const state = this.#state!;
    const list = [...q.dead.values()].map((s) => state.ref(s)).filter((m) => m.deadAt >= oldest)
      .sort((a, b) => a.deadAt - b.deadAt || a.id - b.id);
    const out: { id: number; message: Message }[] = [];
    for (const m of list) {
      if (out.length >= limit) break;
      let bytes: Uint8Array = new Uint8Array();
      try {
        bytes = readExactly(m.seg, m.poff, m.plen);
        out.push({ id: m.id, message: Message.decode(bytes) });
      } catch (e) {
        const where = { queueName, messageId: `file-${m.id}`, deadAt: m.deadAt };
        out.push({ id: m.id, message: undecodableLetter(bytes, (e as Error).message, where) });
      }
    }
    return out;
  }

  /**
   * Re-enqueues dead letters on `queueName` and removes them from the dead letters, in one
   * write. Letters another process requeued meanwhile are skipped. Returns how many moved.
   */
  async requeueDead(
    queueName: string,
    letters: { id: number; message: Message; priority: number }[],
  ): Promise<number> {
    this.#replica();
    let moved = 0;
    const log = this.#open();
    try {
      log.withLock(() => {
        this.#flushLocked();
        this.#catchUp(true);
        const live = letters.filter((l) => this.#state!.get(l.id)?.state === DEAD);
        if (live.length === 0) return;
        const out = this.#out;
        this.#writeOwn(() => {
          for (const l of live) {
            out.begin(Kind.ENQ);
            out.queue(queueName);
            out.f64(l.priority);
            out.f64(0);
            out.text(JSON.stringify(l.message.asDict()));
            out.end();
          }
          out.begin(Kind.UNDEAD);
          out.u32(live.length);
          for (const l of live) out.f64(l.id);
          out.end();
          this.#needsSync = true;
        });
        moved = live.length;
        this.#catchUp(true);
      });
    } finally {
      this.#afterWrite();
    }
    await this.#commit();
    return moved;
  }

  /** Deletes the dead letters of `queueName`; returns how many. */
  async purge(queueName: string): Promise<number> {
    this.#replica();
    let n = 0;
    const log = this.#open();
    try {
      log.withLock(() => {
        this.#flushLocked();
        this.#catchUp(true);
        n = this.#state!.queue(queueName).dead.size;
        this.#writeOwn(() => {
          this.#out.begin(Kind.PURGE);
          this.#out.queue(queueName);
          this.#out.end();
          this.#needsSync = true;
        });
        this.#catchUp(true);
      });
    } finally {
      this.#afterWrite();
    }
    await this.#commit();
    return n;
  }

  /** Drops the ready and delayed messages of `queueName` (or of every queue, and dead letters). */
  flushQueue(queueName: string | undefined): Promise<void> {
    const log = this.#open();
    try {
      log.withLock(() =>
        this.#writeOwn(() => {
          if (queueName === undefined) {
            this.#out.begin(Kind.FLUSHALL);
          } else {
            this.#out.begin(Kind.FLUSH);
            this.#out.queue(queueName);
          }
          this.#out.end();
          this.#needsSync = true;
        })
      );
    } catch (e) {
      return Promise.reject(e);
    } finally {
      this.#afterWrite();
    }
    return this.#commit();
  }

  // -------------------------------------------------------------------------------------------
  // Hooks of the operations (_ops.ts): they reach the replica only through these.

  /**
   * Under the lock, on an up-to-date replica: runs `fn` and writes the records it encodes into
   * the writer (dropped, and the error thrown, if the write fails); the replica applies them at
   * its next catch-up, as every reader does first. Resolves with what `fn` returned once they are
   * as durable as the mode promises.
   */
  transact<T>(fn: (out: RecordWriter) => T): Promise<T> {
    let result!: T;
    let wrote = false;
    try {
      this.#replica();
      this.#open().withLock(() => {
        this.#flushLocked();
        this.#catchUp(true);
        this.#writeOwn(() => {
          const mark = this.#out.length;
          try {
            result = fn(this.#out);
          } catch (e) {
            this.#out.length = mark;
            throw e;
          }
          wrote = this.#out.length > mark;
          if (wrote) this.#needsSync = true;
        });
      });
    } catch (e) {
      return Promise.reject(e);
    } finally {
      this.#afterWrite();
    }
    return wrote ? this.#commit().then(() => result) : Promise.resolve(result);
  }

  /** Encodes records into the write buffer, written at the end of the tick (no sync awaited). */
  append(encode: (out: RecordWriter) => void): void {
    this.#open();
    const mark = this.#out.length;
    try {
      encode(this.#out);
    } catch (e) {
      this.#out.length = mark;
      throw e;
    }
    this.#scheduleFlush();
  }

  /** Runs `fn` holding the directory's lock (for side files). */
  withLock<T>(fn: () => T): T {
    return this.#open().withLock(fn);
  }

  /** Writes the buffer and reads what other processes appended (builds the replica if needed). */
  refresh(): void {
    this.flush();
    this.#replica();
    this.#catchUp(false);
  }

  /** True once the replica is built (the log read), so that later records only are applied. */
  get hasReplica(): boolean {
    return this.#state !== undefined;
  }

  /** True while the replica holds the message with log id `id` (no allocation: for scans). */
  isLive(id: number): boolean {
    return this.#state !== undefined && this.#state.find(id) >= 0;
  }

  /** Where the message with log id `id` is now, or undefined when it is gone. */
  messageState(id: number): MessageState | undefined {
    const m = this.#state?.get(id);
    if (!m) return undefined;
    const queue = m.q.delayed ? m.q.name.slice(0, -3) : m.q.name;
    const state = m.state === READY
      ? (m.q.delayed ? "delayed" : "ready")
      : m.state === INFLIGHT
      ? "running"
      : "dead";
    return { state, queue, priority: m.priority, eta: m.eta, deadAt: m.deadAt };
  }

  /** The JSON of a live message, or undefined when it is gone. */
  readJson(id: number): Uint8Array | undefined {
    const m = this.#state?.get(id);
    return m && readExactly(m.seg, m.poff, m.plen);
  }

  /** Calls `each` with the log id of every message of canonical `queueName` in `state`. */
  forEachId(queueName: string, state: MessageState["state"], each: (id: number) => void): void {
    const s = this.#state!;
    if (state === "dead") {
      for (const id of s.queue(queueName).dead.keys()) each(id);
    } else if (state !== "running") {
      // A copy (4 bytes a message): `each` may change the heap.
      const slots = s.queue(state === "ready" ? queueName : `${queueName}.DQ`).heap.items().slice();
      for (const slot of slots) each(s.index.id(slot));
    } else {
      for (const name of [queueName, `${queueName}.DQ`]) {
        const q = s.queue(name);
        for (const owner of q.inflightBy.keys()) {
          for (const slot of [...s.owners.get(owner)?.msgs ?? []]) {
            if (s.queueOf(slot) === q) each(s.index.id(slot));
          }
        }
      }
    }
  }

  /** The segment files of the log, oldest first (for scans by message id). */
  segmentPaths(): { base: number; path: string }[] {
    const log = this.#open();
    return log.listSegments().map((base) => ({ base, path: log.segmentPath(base) }));
  }

  // -------------------------------------------------------------------------------------------
  // Compaction

  #maybeCompact(): void {
    if (this.#closed || !this.#reader) return;
    if (this.#compacting) return; // the last pass is still copying
    this.#reader.closeUnused();
    this.compact().catch((e) => {
      if (!isWriteError(e) && !this.#closed) {
        logger.error(`Compaction of ${this.options.dir} failed: ${formatError(e)}`);
      }
    });
  }

  /**
   * Reclaims disk: hands back the messages of owners that are gone and deletes their liveness
   * files, seals a mostly-dead newest segment, copies the live messages of the oldest mostly-dead
   * segments forward (SNAP records), and deletes those segments. Resolves with how many segment
   * files were deleted. The copy goes in slices of about SPAN_BYTES, each under the lock,
   * COMPACT_GAP_MS apart, so that a pass never holds this thread (its timers, its deliveries) or
   * the other processes for long; the run of segments picked first is kept to the end. One pass
   * at a time per instance (a call during a pass runs after it).
   */
  compact(): Promise<number> {
    const previous = this.#compacting ?? Promise.resolve(0);
    const pass = previous.catch(() => 0).then(() => this.#compactPass());
    this.#compacting = pass;
    const clear = () => {
      if (this.#compacting === pass) this.#compacting = undefined;
    };
    pass.then(clear, clear);
    return pass;
  }

  async #compactPass(): Promise<number> {
    this.#replica();
    this.#sweepOwners();
    const cutBase = this.#locked(() => this.#pickRun());
    if (cutBase === undefined) return 0;
    while (this.#locked(() => this.#copySlice(cutBase))) {
      await new Promise((r) => setTimeout(r, COMPACT_GAP_MS));
      if (this.#closed) return 0;
    }
    // The copies reach the disk off the thread; the locked sync before the delete then has
    // little left to do. (#dirty stays as it is: the group commit's waiters count on it. A file
    // a group commit closed meanwhile fails here: the locked sync decides.)
    await Promise.all([...this.#dirty].map((f) => f.syncData().catch(() => {})));
    if (this.#closed) return 0;
    const deleted = this.#locked(() => this.#deleteRun(cutBase));
    // Outside the lock: closing a deleted segment frees its blocks (milliseconds each).
    this.#reader?.closeUnused();
    if (deleted > 0) {
      logger.debug(`Compaction deleted ${deleted} segment(s) of ${this.options.dir}.`);
    }
    return deleted;
  }

  /** Runs `fn` under the directory's lock, then what follows a write. */
  #locked<T>(fn: () => T): T {
    const log = this.#open();
    try {
      return log.withLock(fn);
    } finally {
      this.#afterWrite();
    }
  }

  /**
   * (Locked.) Seals the newest segment if it is big enough and mostly dead, and picks the longest
   * run of oldest sealed segments that is at most half live: returns the base that ends it, or
   * undefined when there is none.
   */
  #pickRun(): number | undefined {
    const log = this.#log!;
    this.#flushLocked();
    this.#catchUp(true);
    this.#state!.sweep();
    const headBase = log.readHead();
    const headSize = log.headSize();
    const headLive = this.#reader!.segs.get(headBase)?.liveBytes ?? 0;
    if (headSize >= SEAL_IDLE_BYTES && headLive * 4 <= headSize) {
      log.roll();
      this.#catchUp(true);
    }
    const head = log.readHead();
    const bases = log.listSegments().filter((b) => b < head);
    let cut = -1, size = 0, live = 0;
    for (let i = 0; i < bases.length; i++) {
      const base = bases[i]!;
      size += (bases[i + 1] ?? head) - base;
      live += this.#reader!.segs.get(base)?.liveBytes ?? 0;
      if (live > MAX_COPY_BYTES) break;
      if (live * 2 <= size) cut = i;
    }
    return cut < 0 ? undefined : bases[cut + 1] ?? head;
  }

  /**
   * (Locked.) Copies forward (SNAP) up to about SPAN_BYTES of the live messages still before
   * `cutBase`; true when some are left. A SNAP that failed to be written is dropped, never
   * written later (its message may be acked by then): the run is then left for the next pass.
   */
  #copySlice(cutBase: number): boolean {
    this.#catchUp(true);
    const movers = this.#slotsBefore(cutBase);
    if (movers.length === 0) return false;
    const state = this.#state!;
    const slice: Msg[] = [];
    for (let i = 0, bytes = 0; i < movers.length && bytes < SPAN_BYTES; i++) {
      const m = state.ref(movers[i]!);
      slice.push(m);
      bytes += m.plen;
    }
    // Their JSON is read a span at a time (#load), not with a pread each.
    this.#writeOwn(() => this.#load(slice, (m, payload) => this.#snap(m, payload)));
    this.#catchUp(true);
    return slice.length < movers.length;
  }

  /** (Locked.) Once nothing lives before `cutBase`: makes the copies durable, deletes the run. */
  #deleteRun(cutBase: number): number {
    const log = this.#log!;
    if (this.extension) this.#writeOwn(() => this.extension!.snapshot(cutBase, this.#out));
    this.#catchUp(true);
    const left = this.#slotsBefore(cutBase).length;
    if (left > 0) {
      logger.error(`Compaction left ${left} message(s) behind in ${log.dir}; not deleting.`);
      return 0;
    }
    this.#syncDirtySync();
    return log.deleteBefore(cutBase);
  }

  /** The slots of the live messages whose JSON lies before `cutBase`. */
  #slotsBefore(cutBase: number): number[] {
    const state = this.#state!;
    const out: number[] = [];
    state.forEachSlot((s) => {
      if (state.segOf(s).base < cutBase) out.push(s);
    });
    return out;
  }

  #snap(m: Msg, payload: Uint8Array): void {
    this.#needsSync = true;
    const owner = m.state === INFLIGHT ? this.#state!.owners.get(m.owner) : undefined;
    const out = this.#out;
    out.begin(Kind.SNAP);
    out.f64(m.id);
    out.u8(m.state);
    out.f64(m.k1);
    out.f64(m.k2);
    out.f64(m.owner);
    out.f64(owner?.leaseUntil ?? 0);
    out.f64(m.deadAt);
    out.f64(m.priority);
    out.f64(m.eta);
    out.queue(m.q.name);
    out.bytes(payload);
    out.end();
  }

  // -------------------------------------------------------------------------------------------

  /** Writes what is buffered, waits for its sync, releases files, watchers and timers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#log) {
      if (this.#held > 0) {
        // Messages handed out and never settled: let other consumers have them now.
        this.#out.begin(Kind.EXPIRE);
        this.#out.f64(this.owner);
        this.#out.f64(this.owner);
        this.#out.end();
      }
      try {
        await this.#commit();
        while (this.#syncing || this.#batchSyncs.size > 0) {
          await (this.#batchSyncs.values().next().value ?? new Promise((r) => setTimeout(r, 1)));
        }
        if (this.#dirty.size > 0) this.#syncDirtySync();
      } catch (e) {
        const lost = heldSends(this.#out);
        if (this.options.durability !== "always" && lost.count > 0) {
          logger.error(
            `FileBroker was closed while ${this.options.dir} could not be written ` +
              `(${((e as Error).cause as Error ?? e).message}): ${lost.count} message(s) whose ` +
              `send() had resolved are lost: ${listIds(lost.ids, lost.count, 100)}.`,
          );
        } else {
          logger.error(`FileBroker could not write its last records: ${formatError(e)}`);
        }
      }
    }
    this.#closed = true;
    clearInterval(this.#retryTimer);
    this.#retryTimer = undefined;
    clearInterval(this.#heartbeatTimer);
    clearInterval(this.#compactTimer);
    clearTimeout(this.#syncTimer);
    this.#heartbeatTimer = this.#compactTimer = this.#syncTimer = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#notify();
    this.#liveness?.release(this.owner);
    this.#liveness = undefined;
    this.#reader?.close();
    this.#log?.close();
    this.#reader = undefined;
    this.#state = undefined;
    this.#log = undefined;
  }
}

/**
 * Before a replay: room in the index for as many messages as the segments could hold (an ENQ of
 * a dramatis message takes well over 128 bytes), so that the columns are not copied as they fill.
 */
function reserveFor(state: State, reader: LogReader): void {
  let bytes = 0;
  for (const seg of reader.segs.values()) bytes += seg.file.size();
  state.index.reserve(Math.min(bytes / RESERVE_BYTES_PER_MESSAGE, RESERVE_MAX_SLOTS));
}

function readExactly(seg: Seg, pos: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  const n = seg.file.read(buf, pos);
  if (n < length) {
    throw new BrokerError(
      `${seg.path} ends at ${pos + n}, inside a message that should end at ${pos + length}; ` +
        `the file was truncated by something other than FileBroker.`,
    );
  }
  return buf;
}
