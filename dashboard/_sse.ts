// /api/events: the live updates as server-sent events. One hub per dashboardHandler() serves every
// open page with one subscription to the source's events (`broker.events()`: completed, failed,
// retried, dead-lettered, cancelled, from every process) and one timer: each page gets the counts
// and chart points (`event: live`, what /api/live answers) at once, every `refreshMs`, and soon
// after events arrive (at most every MIN_GAP_MS), and the events themselves in batches
// (`event: events`). The subscription and the timer run only while a page is connected: the last
// disconnect (the stream cancelled, or the request's signal aborted) stops both. A source without
// events answers 204, and the page polls /api/live instead. `options.signal` ends every stream
// (a server's graceful shutdown waits for the open responses).
import type { BrokerEvent } from "../broker/ops.ts";
import { formatError, getLogger } from "../util/log.ts";
import type { Dash, Req } from "./_handler_types.ts";
import { liveBase, liveFor } from "./_pages.ts";
import { finish } from "./_respond.ts";

const logger = getLogger("dramatis.dashboard");
const encoder = new TextEncoder();

/** Events arriving closer together than this share one update of the counts. */
const MIN_GAP_MS = 200;
/** At most this many events are kept for the next batch (the newest). */
const MAX_BATCH = 500;
/** A page that has this many frames unread is disconnected (it polls, or reconnects). */
const MAX_QUEUED = 256;

/**
 * What the hubs of this process run now: open streams, event subscriptions and timers. Tests read
 * it to check that disconnects leave nothing running.
 */
export const sseStats = { streams: 0, subscriptions: 0, timers: 0 };

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** The newest chart point sent to it. */
  since: number;
  /** The message its page shows, if any. */
  id: string | null;
}

/** The live updates of one dashboard, pushed to every page connected to /api/events. */
export class LiveHub {
  readonly #clients = new Set<Client>();
  #stop: AbortController | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #soon: ReturnType<typeof setTimeout> | undefined;
  #pending: BrokerEvent[] = [];
  #last = 0;
  #refreshing: Promise<void> | undefined;
  #again = false;

  constructor(private readonly h: Dash) {
    h.options.signal?.addEventListener("abort", () => {
      for (const c of [...this.#clients]) this.#drop(c);
    }, { once: true });
  }

  /** True when the source has events to push (else the pages poll). */
  get enabled(): boolean {
    return typeof this.h.source.events === "function";
  }

  /** Answers GET /api/events: a stream of events for this page, until it disconnects. */
  open(r: Req): Response {
    const headers = {
      "content-type": "text/event-stream; charset=utf-8",
      "x-accel-buffering": "no",
    };
    if (!this.enabled || this.h.options.signal?.aborted) {
      return finish(r, new Response(null, { status: 204 }));
    }
    if (r.req.method === "HEAD") return finish(r, new Response(null, { headers }));
    const client: Client = {
      controller: undefined!,
      since: Number(r.url.searchParams.get("since") ?? 0) || 0,
      id: r.url.searchParams.get("id"),
    };
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        client.controller = controller;
      },
      cancel: () => this.#drop(client),
    }, { highWaterMark: MAX_QUEUED });
    this.#clients.add(client);
    sseStats.streams++;
    if (this.#clients.size === 1) this.#start();
    this.#send(client, "retry: 3000\n\n");
    void this.#refresh([client]);
    return finish(r, new Response(body, { headers }));
  }

  #start(): void {
    this.#timer = setInterval(() => void this.#refresh([...this.#clients]), this.h.refreshMs);
    sseStats.timers++;
    const stop = this.#stop = new AbortController();
    sseStats.subscriptions++;
    void this.#follow(stop.signal).finally(() => sseStats.subscriptions--);
  }

  async #follow(signal: AbortSignal): Promise<void> {
    try {
      for await (const e of this.h.source.events!(signal)) {
        if (signal.aborted) return;
        this.#pending.push(e);
        if (this.#pending.length > 2 * MAX_BATCH) this.#pending.splice(0, MAX_BATCH);
        this.#schedule();
      }
    } catch (e) {
      if (!signal.aborted) {
        logger.warning(`The live updates lost the broker's events: ${formatError(e)}`);
        for (const c of [...this.#clients]) this.#drop(c); // the pages fall back to polling
      }
    }
  }

  /** After an event: one update of every page, MIN_GAP_MS after the last one at the earliest. */
  #schedule(): void {
    if (this.#soon !== undefined || this.#clients.size === 0) return;
    const wait = Math.max(0, this.#last + MIN_GAP_MS - Date.now());
    sseStats.timers++;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      sseStats.timers--;
      const events = this.#pending.splice(0).slice(-MAX_BATCH);
      if (events.length > 0) {
        const frame = `event: events\ndata: ${JSON.stringify(events)}\n\n`;
        for (const c of [...this.#clients]) this.#send(c, frame);
      }
      void this.#refresh([...this.#clients]);
    }, wait);
  }

  /** Sends `clients` the counts now (one read of the source for all of them). */
  #refresh(clients: Client[]): Promise<void> {
    if (this.#refreshing) {
      this.#again = true; // one more round once this one is done, for every page
      return this.#refreshing;
    }
    this.#refreshing = (async () => {
      try {
        this.#last = Date.now();
        const base = await liveBase(this.h, this.#last);
        for (const c of clients) {
          if (!this.#clients.has(c)) continue;
          const payload = await liveFor(this.h, base, c.since, c.id);
          const points = payload.points as { t: number }[];
          if (points.length > 0) c.since = points[points.length - 1]!.t;
          this.#send(c, `event: live\ndata: ${JSON.stringify(payload)}\n\n`);
        }
      } catch (e) {
        logger.debug(`A live update failed: ${formatError(e)}`);
      } finally {
        this.#refreshing = undefined;
      }
      if (this.#again && this.#clients.size > 0) {
        this.#again = false;
        await this.#refresh([...this.#clients]);
      }
    })();
    return this.#refreshing;
  }

  #send(c: Client, frame: string): void {
    if (!this.#clients.has(c)) return;
    const size = c.controller.desiredSize;
    if (size !== null && size <= 0) {
      logger.debug(`A live page reads too slowly (${MAX_QUEUED} updates unread): disconnected.`);
      return this.#drop(c);
    }
    try {
      c.controller.enqueue(encoder.encode(frame));
    } catch {
      this.#drop(c);
    }
  }

  /** Forgets a page; the last one stops the subscription and the timers. */
  #drop(c: Client): void {
    if (!this.#clients.delete(c)) return;
    sseStats.streams--;
    try {
      c.controller.close();
    } catch { /* already closed or cancelled */ }
    if (this.#clients.size > 0) return;
    if (this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      sseStats.timers--;
    }
    if (this.#soon !== undefined) {
      clearTimeout(this.#soon);
      this.#soon = undefined;
      sseStats.timers--;
    }
    this.#stop?.abort();
    this.#stop = undefined;
    this.#pending = [];
  }
}
