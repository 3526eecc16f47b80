// The dashboard's live updates over server-sent events (/api/events), read with fetch from a real
// HTTP server: the counts at once, then an `events` frame for a message a real Worker completes
// (FileBroker, and Redis); the token refused; a source without events answers 204; N pages that
// connect and disconnect leave no subscription, stream or timer running (one subscription however
// many pages are open); `options.signal` ends the open streams.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { actor } from "../actor.ts";
import type { Broker } from "../broker/broker.ts";
import { FileBroker } from "../broker/file/broker.ts";
import { RedisBroker } from "../broker/redis/broker.ts";
import type { BrokerEvent } from "../broker/ops.ts";
import {
  dashboardHandler,
  type DashboardOptions,
  MemoryDashboardSource,
} from "../dashboard/mod.ts";
import { sseStats } from "../dashboard/_sse.ts";
import { Worker } from "../worker/worker.ts";
import { serve } from "./_dashboard.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";

interface Frame {
  event: string;
  data: unknown;
}

/** An open /api/events stream: its frames as they come. */
class Stream {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buf = "";
  constructor(readonly res: Response, readonly abort: AbortController) {
    this.#reader = res.body!.getReader();
  }

  /** Cancels the reader. */
  cancel(): Promise<void> {
    return this.#reader.cancel().catch(() => {});
  }

  /** The next frame with data (comments and `retry:` lines skipped). */
  async next(): Promise<Frame> {
    for (;;) {
      const end = this.#buf.indexOf("\n\n");
      if (end >= 0) {
        const block = this.#buf.slice(0, end);
        this.#buf = this.#buf.slice(end + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) return { event, data: JSON.parse(data) };
        continue;
      }
      const { value, done } = await this.#reader.read();
      if (done) throw new Error(`the stream ended (${JSON.stringify(this.#buf)})`);
      this.#buf += this.#decoder.decode(value, { stream: true });
    }
  }

  /** Reads frames until `match` returns true for one (at most 30 s). */
  async until(what: string, match: (f: Frame) => boolean): Promise<Frame> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const f = await Promise.race([
        this.next(),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 30_000)
        ),
      ]);
      if (match(f)) return f;
    }
    throw new Error(`timed out waiting for ${what}`);
  }
}

async function open(url: string, headers: Record<string, string> = {}): Promise<Stream> {
  const abort = new AbortController();
  const res = await fetch(`${url}/api/events`, { headers, signal: abort.signal });
  return new Stream(res, abort);
}

/** Waits until nothing of the hubs runs any more (the disconnects reach the server). */
async function nothingRunning(): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (sseStats.streams + sseStats.subscriptions + sseStats.timers > 0) {
    if (Date.now() > deadline) {
      assert.fail(`still running after the disconnects: ${JSON.stringify(sseStats)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function withServer(
  broker: Broker | MemoryDashboardSource,
  options: DashboardOptions,
  fn: (url: string) => Promise<void>,
): Promise<void> {
  const server = await serve(dashboardHandler(broker, { refreshMs: 200, ...options }));
  try {
    await fn(server.url);
  } finally {
    await server.stop();
  }
}

async function completedEvent(broker: Broker, queue: string): Promise<void> {
  const job = actor(function sse_job(n: number) {
    return n * 2;
  }, { broker, queueName: queue, actorName: `sse_job_${queue}` });
  const worker = new Worker(broker, { queues: [queue], workerTimeout: 50 });
  await worker.start();
  try {
    await withServer(broker, {}, async (url) => {
      const s = await open(url);
      assert.equal(s.res.status, 200);
      assert.equal(s.res.headers.get("content-type"), "text/event-stream; charset=utf-8");
      const first = await s.next(); // the counts, at once
      assert.equal(first.event, "live");
      assert.ok(Array.isArray((first.data as { queues: unknown[] }).queues));
      const m = await job.send(21);
      const got = await s.until("the completed event", (f) =>
        f.event === "events" &&
        (f.data as BrokerEvent[]).some((e) =>
          e.messageId === m.messageId && e.type === "completed"
        ));
      const e = (got.data as BrokerEvent[]).find((x) => x.messageId === m.messageId)!;
      assert.equal(e.queueName, queue);
      assert.equal(e.actorName, `sse_job_${queue}`);
      // The counts follow the event: a live frame after it.
      assert.equal(
        (await s.until("counts after the event", (f) => f.event === "live")).event,
        "live",
      );
      s.abort.abort();
      await nothingRunning();
    });
  } finally {
    await worker.stop({ timeout: 2_000 });
  }
}

test("SSE on a FileBroker: the counts at once, then the event of a message a Worker completed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-sse-"));
  const broker = new FileBroker({ dir });
  try {
    await completedEvent(broker, "sse_file");
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

let redisSkip: string | false = false;
try {
  await new RedisBroker({ url: SHARED_URL, namespace: randomNamespace("sseprobe") }).close();
} catch (e) {
  redisSkip = `no Redis: ${(e as Error).message}`;
}

test("SSE on Redis: the same", { skip: redisSkip }, async () => {
  const namespace = randomNamespace("sse");
  const broker = new RedisBroker({ url: SHARED_URL, namespace });
  try {
    await completedEvent(broker, "sse_redis");
  } finally {
    await broker.close();
    await deleteKeys(`${namespace}:`);
  }
});

test("SSE: N pages connect and disconnect; one subscription; nothing left running", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-sse-"));
  const broker = new FileBroker({ dir });
  try {
    await withServer(broker, {}, async (url) => {
      for (let round = 0; round < 3; round++) {
        const streams = await Promise.all(Array.from({ length: 5 }, () => open(url)));
        for (const s of streams) assert.equal((await s.next()).event, "live");
        assert.equal(sseStats.streams, 5);
        assert.equal(sseStats.subscriptions, 1, "one subscription for every page");
        assert.equal(sseStats.timers >= 1, true);
        // The pages go away (the connection closes): some after cancelling their reader.
        for (const [i, s] of streams.entries()) {
          if (i % 2 === 1) await s.cancel();
          s.abort.abort();
        }
        await nothingRunning();
      }
    });
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("SSE: the token is required; a source without events answers 204; the signal ends streams", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-sse-"));
  const broker = new FileBroker({ dir });
  const token = "sse-token-0123456789abcdef";
  const stop = new AbortController();
  try {
    await withServer(broker, { token, signal: stop.signal }, async (url) => {
      const refused = await fetch(`${url}/api/events`);
      assert.equal(refused.status, 401);
      assert.match(await refused.text(), /A token is required/);
      const wrong = await fetch(`${url}/api/events`, { headers: { authorization: "Bearer nope" } });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      assert.equal(sseStats.streams, 0);
      const html = await (await fetch(`${url}/`, { headers: { authorization: `Bearer ${token}` } }))
        .text();
      assert.match(html, /data-events="\/api\/events"/);
      const s = await open(url, { authorization: `Bearer ${token}` });
      assert.equal(s.res.status, 200);
      assert.equal((await s.next()).event, "live");
      stop.abort(); // as the CLI does before it shuts the server down
      await assert.rejects(s.until("the end", () => false), /the stream ended/);
      await nothingRunning();
      const after = await fetch(`${url}/api/events`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(after.status, 204);
    });
    await withServer(new MemoryDashboardSource(), {}, async (url) => {
      const res = await fetch(`${url}/api/events`);
      assert.equal(res.status, 204);
      assert.doesNotMatch(await (await fetch(`${url}/`)).text(), /data-events/);
      assert.equal(sseStats.streams, 0);
    });
  } finally {
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
