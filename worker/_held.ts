// What the broker operations of a worker process (worker/_process_ops.ts) see of the messages it
// holds: the ids to poll for cancels, cancelling them, and those running (for its record).
//
// One not delivered yet is settled here as cancelled; one a Web Worker holds is cancelled there
// (CancelMessage). If that Web Worker has not handled the CancelMessage `grace` ms later while
// the actor runs, it is stuck in it: the watchdog (worker/_watchdog.ts) replaces it.
import type { RunningMessage } from "../broker/ops.ts";
import { qName } from "../broker/queue_name.ts";
import type { Logger } from "../util/log.ts";
import { MessageState, type ToWebWorker } from "./_protocol.ts";
import type { Feeder } from "./_feeder.ts";
import { cancelledError, type Settler } from "./_settle.ts";
import { cellOf, idOf, type Received, WATCHED, wireOf } from "./_slot.ts";

/** The held messages, as the broker operations see them. */
export class HeldMessages {
  readonly #feeder: Feeder;
  readonly #settler: Settler;
  readonly #logger: Logger;
  #polls = 0;
  #cancelSeq = 0;

  constructor(parts: { feeder: Feeder; settler: Settler; logger: Logger }) {
    this.#feeder = parts.feeder;
    this.#settler = parts.settler;
    this.#logger = parts.logger;
  }

  /**
   * The ids to poll: of the messages held since the poll before this one at least. Most
   * messages are settled sooner, and so are never parsed here (the Web Workers parse them); a
   * long one is polled from its second poll on (50-100 ms after it arrived).
   */
  heldIds(): string[] {
    const poll = ++this.#polls;
    const ids: string[] = [];
    const add = (r: Received) => {
      if ((r.polled ??= poll) === poll) return;
      const w = wireOf(r);
      if (w) ids.push(w.id);
    };
    for (const r of this.#feeder.pending) add(r);
    for (const slot of this.#feeder.slots) {
      if (slot) { for (const h of slot.held.values()) add(h); }
    }
    return ids;
  }

  /** Cancels the held messages of `ids`. */
  cancel(ids: Set<string>): void {
    const now = Date.now();
    const { pending, slots } = this.#feeder;
    const here = pending.filter((r) => ids.has(wireOf(r)?.id!));
    if (here.length > 0) {
      pending.splice(0, pending.length, ...pending.filter((r) => !here.includes(r)));
      for (const r of here) {
        this.#logger.info(`Message ${wireOf(r)!.id} (${wireOf(r)!.actor}) was cancelled.`);
        void this.#settler.settle(
          () => `cancel message ${idOf(r)}`,
          () => this.#settler.failHere(r, cancelledError),
        );
      }
      this.#feeder.pump();
    }
    for (const slot of slots) {
      if (!slot || !WATCHED.has(slot.state)) continue;
      const told: string[] = [];
      const seq = this.#cancelSeq + 1;
      for (const [tag, h] of slot.held) {
        const w = wireOf(h);
        if (!w || !ids.has(w.id)) continue;
        const state = Atomics.load(slot.states, cellOf(slot, tag));
        if (state === MessageState.ACKED || state === MessageState.NACKED) continue;
        told.push(w.id);
        // Told again every poll while held. The first time it is told while it runs is the one
        // watched: a Web Worker that has not handled that one `grace` ms later is stuck.
        if (state === MessageState.STARTED && h.cancelSeq === undefined) {
          h.cancelSeq = seq;
          h.cancelledAt = now;
        }
      }
      if (told.length === 0) continue;
      this.#cancelSeq = seq;
      const cancel: ToWebWorker = { type: "cancel", ids: told, seq };
      slot.worker.postMessage(cancel);
    }
  }

  /** The messages whose actor runs now. */
  running(): RunningMessage[] {
    const out: RunningMessage[] = [];
    const now = Date.now();
    for (const slot of this.#feeder.slots) {
      if (!slot || !WATCHED.has(slot.state)) continue;
      for (const [tag, h] of slot.held) {
        if (Atomics.load(slot.states, cellOf(slot, tag)) !== MessageState.STARTED) continue;
        const w = wireOf(h);
        if (!w) continue;
        out.push({
          messageId: w.id,
          actorName: w.actor,
          queueName: qName(h.queue),
          since: h.startedAt ??= now,
          ...(h.progress !== undefined ? { progress: h.progress } : {}),
        });
      }
    }
    return out;
  }
}
