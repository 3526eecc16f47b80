// The dashboard's live updates: server-sent events (/api/events) against the poll (/api/live).
// `deno run -A bench/dashboard_live.ts` or `bun bench/dashboard_live.ts`. A FileBroker and a Worker
// in this process; the dashboard served on 127.0.0.1 with refreshMs 2000.
// 1. Latency: from send() of a message until an open page's stream carries its `completed` event
//    (median and p95 of 40; a polled page learns of it at its next poll: up to refreshMs later).
// 2. Cost with 10 open pages for 10 s, SSE and poll interleaved (3 rounds each): the source's
//    queues() reads and this process's CPU time (user + system, from process.cpuUsage()).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { actor } from "../actor.ts";
import { FileBroker } from "../broker/file/broker.ts";
import { brokerSource } from "../dashboard/broker_source.ts";
import { dashboardHandler } from "../dashboard/handler.ts";
import { sseStats } from "../dashboard/_sse.ts";
import type { DashboardSource } from "../dashboard/source.ts";
import { runtimeVersion, serveHttp } from "../runtime/process.ts";
import { Worker } from "../worker/worker.ts";

const PAGES = 10, SECONDS = Number(process.env.SECONDS ?? 10), ROUNDS = 3, SENDS = 40;
const dir = mkdtempSync(join(tmpdir(), "dramatis-live-bench-"));
const broker = new FileBroker({ dir });
let reads = 0, polls = 0;
const inner = brokerSource(broker);
const source: DashboardSource = { // the broker's source, counting its queues() reads
  name: inner.name,
  queues: () => (reads++, inner.queues()),
  metrics: () => inner.metrics!(),
  message: (id) => inner.message!(id),
  events: inner.events,
};
const stop = new AbortController();
const server = await serveHttp(
  "127.0.0.1",
  0,
  dashboardHandler(source, { refreshMs: 2000, signal: stop.signal }),
);
const url = `http://127.0.0.1:${server.port}`;
const job = actor(function live_bench() {}, { broker, queueName: "live_bench" });
const worker = new Worker(broker, { queues: ["live_bench"], workerTimeout: 50 });
await worker.start();
const decoder = new TextDecoder();

/** Opens a stream; `seen(id)` resolves when an events frame names message `id`. */
async function stream() {
  const abort = new AbortController();
  const res = await fetch(`${url}/api/events`, { signal: abort.signal });
  const waiting = new Map<string, () => void>();
  const reader = res.body!.getReader();
  let buf = "";
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += decoder.decode(value, { stream: true });
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (!block.startsWith("event: events")) continue;
          for (const e of JSON.parse(block.slice(block.indexOf("data: ") + 6))) {
            waiting.get(e.messageId)?.();
          }
        }
      }
    } catch { /* aborted */ }
  })();
  return {
    seen: (id: string) => new Promise<void>((r) => waiting.set(id, r)),
    close: () => { // (Deno's fetch keeps the socket of an aborted read open: cancel it first)
      void reader.cancel().catch(() => {});
      abort.abort();
    },
  };
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

const s = await stream();
const lat: number[] = [];
for (let i = 0; i < SENDS; i++) {
  const t0 = performance.now();
  const m = await job.send();
  await s.seen(m.messageId);
  lat.push(performance.now() - t0);
  await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
}
s.close();
console.log(
  `latency send -> completed event on the page: median ${pct(lat, 0.5).toFixed(0)} ms, ` +
    `p95 ${pct(lat, 0.95).toFixed(0)} ms (${SENDS} messages; a polled page: up to 2000 ms more)`,
);

async function round(kind: "sse" | "poll"): Promise<{ reads: number; cpuMs: number }> {
  reads = 0;
  polls = 0;
  const cpu0 = process.cpuUsage();
  const end = Date.now() + SECONDS * 1000;
  const pages: Promise<void>[] = [];
  const streams: { close(): void }[] = [];
  for (let p = 0; p < PAGES; p++) {
    if (kind === "sse") streams.push(await stream());
    else {
      pages.push((async () => {
        await new Promise((r) => setTimeout(r, Math.random() * 2000)); // each page its own phase
        while (Date.now() < end) {
          polls++;
          await (await fetch(`${url}/api/live`)).arrayBuffer();
          await new Promise((r) => setTimeout(r, 2000));
        }
      })());
    }
  }
  const sends = (async () => { // some work meanwhile: 20 messages a second
    while (Date.now() < end) {
      await job.send();
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await new Promise((r) => setTimeout(r, end - Date.now()));
  for (const st of streams) st.close();
  await Promise.all([...pages, sends]);
  const cpu = process.cpuUsage(cpu0);
  if (kind === "poll") {
    console.log(`  (poll round: ${polls} polls; hubs running: ${JSON.stringify(sseStats)})`);
  }
  return { reads, cpuMs: (cpu.user + cpu.system) / 1000 };
}

const results: Record<string, { reads: number; cpuMs: number }[]> = { sse: [], poll: [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const kind of r % 2 === 0 ? ["sse", "poll"] as const : ["poll", "sse"] as const) {
    results[kind]!.push(await round(kind));
  }
}
const med = (xs: number[]) => pct(xs, 0.5);
for (const kind of ["sse", "poll"]) {
  const rs = results[kind]!;
  console.log(
    `${kind}: ${PAGES} pages for ${SECONDS} s (20 msg/s running): queues() reads median ` +
      `${med(rs.map((x) => x.reads))}, process CPU median ${
        med(rs.map((x) => x.cpuMs)).toFixed(0)
      } ms (rounds: ${rs.map((x) => `${x.reads}/${x.cpuMs.toFixed(0)}ms`).join(", ")})`,
  );
}
console.log(`${runtimeVersion()}, ${new Date().toISOString()}`);
stop.abort();
await worker.stop({ timeout: 2000 });
await server.close();
await broker.close();
rmSync(dir, { recursive: true, force: true });
