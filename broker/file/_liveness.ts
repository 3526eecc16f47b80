// Liveness files: how a consumer learns, within milliseconds, that another one died.
//
// Each FileBroker instance that claims messages (an _owner_) creates `<dir>/<owner>.owner` and
// holds an exclusive `flock` on it for as long as it lives. A `flock` belongs to an open file
// description and the kernel drops it when the last descriptor to it closes: when the process
// dies (SIGKILL, OOM, a crash), and, on Deno, when a Web Worker is terminated (Deno closes its
// files). Any other instance can then take the lock: `flock(LOCK_EX | LOCK_NB)` on its own
// descriptor succeeds, which means the owner is gone, and its messages are handed out again at
// once instead of after `leaseTimeout`. An owner that is alive but stuck (an event loop blocked
// by a synchronous actor) keeps its lock: the lease still covers that case.
//
// Because the lock is per open file description, two Web Workers of one process (each with its
// own FileBroker, so its own descriptor) exclude each other exactly like two processes. On Bun a
// terminated Web Worker's files stay open (see _fs.ts), so its lock lives on until its process
// exits: its messages come back after `leaseTimeout`, as before.
//
// The owner creates its file (under the broker lock) before it writes its first CLAIM, so a
// consumer that learns of an owner from a CLAIM finds its file; a missing file means an owner
// of an older version, or one that closed: the lease decides.
import { listDir, openFile, type RawFile, removeFile, tryOpenFile } from "../../runtime/fs.ts";

/** The liveness file of `owner` in `dir`. */
export function livenessPath(dir: string, owner: number): string {
  return `${dir}/${owner.toString(16).padStart(14, "0")}.owner`;
}

/** The owner whose liveness file is called `name`, or -1. */
function ownerOf(name: string): number {
  return /^[0-9a-f]{14}\.owner$/.test(name) ? parseInt(name.slice(0, 14), 16) : -1;
}

interface Probe {
  /** A read-only descriptor on the owner's file; undefined when it has none. */
  file: RawFile | undefined;
  /** When the lock was last tried (performance.now()). */
  at: number;
  /** The lock was free, and is now held by this instance: the owner is gone. */
  dead: boolean;
}

/** This instance's liveness file, and what it knows of the other owners'. */
export class Liveness {
  #mine: RawFile | undefined;
  #probes = new Map<number, Probe>();

  constructor(readonly dir: string, readonly mode: number) {}

  /**
   * Creates this owner's file and locks it (under the broker lock, before its first CLAIM).
   * Throws when that is not possible; the lease still covers this owner then.
   */
  hold(owner: number): void {
    if (this.#mine) return;
    const file = openFile(livenessPath(this.dir, owner), { create: true, mode: this.mode });
    if (!file.tryLock()) {
      file.close();
      throw new Error(`${livenessPath(this.dir, owner)} is locked by another process`);
    }
    this.#mine = file;
  }

  /** True once this owner holds its file. */
  get holding(): boolean {
    return this.#mine !== undefined;
  }

  /**
   * True when `owner` has a liveness file and nobody holds its lock: it is gone. The lock is
   * then kept (so that no other instance concludes the same) until `bury`. A result younger
   * than `maxAge` ms is reused, to keep busy paths to one `flock` per owner every few ms.
   */
  isDead(owner: number, maxAge = 0): boolean {
    let p = this.#probes.get(owner);
    if (!p) {
      p = {
        file: tryOpenFile(livenessPath(this.dir, owner), { readOnly: true }),
        at: -1e9,
        dead: false,
      };
      this.#probes.set(owner, p);
    }
    if (p.dead) return true;
    if (!p.file) return false;
    const now = performance.now();
    if (now - p.at < maxAge) return false;
    p.at = now;
    return p.dead = p.file.tryLock();
  }

  /** True when `owner` has a liveness file (so its death is seen at once). */
  watched(owner: number): boolean {
    return this.#probes.get(owner)?.file !== undefined;
  }

  /** The messages of `owner`, gone, were handed out again: delete its file. */
  bury(owner: number): void {
    const p = this.#probes.get(owner);
    this.#probes.delete(owner);
    removeFile(livenessPath(this.dir, owner));
    p?.file?.close();
  }

  /**
   * Under the broker lock: finds the owners that are gone (any liveness file whose lock is
   * free), and forgets the probes of owners that hold nothing. `holds(owner)` says whether an
   * owner still holds messages; returns the gone owners that do, for the caller to expire and
   * then `bury`. Gone owners that hold nothing are buried here.
   */
  sweep(me: number, holds: (owner: number) => boolean): number[] {
    const gone: number[] = [];
    for (const name of listDir(this.dir)) {
      const owner = ownerOf(name);
      if (owner < 0 || owner === me) continue;
      if (!this.isDead(owner)) continue;
      if (holds(owner)) gone.push(owner);
      else this.bury(owner);
    }
    for (const [owner, p] of this.#probes) {
      if (gone.includes(owner) || holds(owner)) continue;
      if (p.dead) {
        this.bury(owner);
      } else {
        p.file?.close();
        this.#probes.delete(owner);
      }
    }
    return gone;
  }

  /** This owner is closing (its messages were handed back): delete its file, drop its lock. */
  release(owner: number): void {
    if (this.#mine) {
      removeFile(livenessPath(this.dir, owner));
      this.#mine.close();
      this.#mine = undefined;
    }
    for (const p of this.#probes.values()) p.file?.close();
    this.#probes.clear();
  }
}
