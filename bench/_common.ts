// Helpers the benchmark scripts share: medians and percentiles, a clock comparable across
// processes, unbuffered stdout for child processes, and a paced sender.
import * as fs from "node:fs";
import type { Broker } from "../broker/broker.ts";
import { Message } from "../message.ts";

/** Epoch ms with sub-millisecond precision, comparable between processes. */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

/** Writes to stdout at once (a child's output read line by line by its parent). */
export function write(text: string): void {
  const b = new TextEncoder().encode(text);
  let n = 0;
  while (n < b.length) n += fs.writeSync(1, b, n, b.length - n);
}

/** Sends `n` messages at `perSecond`; each carries its send time. */
export async function paced(
  n: number,
  perSecond: number,
  send: (sentAt: number) => Promise<unknown>,
): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const due = start + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0.5) await sleep(wait);
    await send(now());
  }
}

/**
 * Messages/s of `n` sends by `senders` concurrent senders, each awaiting its send: message i
 * goes to `queueName` with `options(i)`.
 */
export async function sendRate(
  broker: Broker,
  n: number,
  options: (i: number) => Record<string, string>,
  { senders = 64, queueName = "q" }: { senders?: number; queueName?: string } = {},
): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: senders }, async () => {
    while (next < n) {
      const i = next++;
      await broker.enqueue(
        new Message({ queueName, actorName: "t", args: [i], options: options(i) }),
      );
    }
  }));
  return n / ((performance.now() - start) / 1000);
}

/** `n` rounded, with thousands separators. */
export function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/**
 * Runs `runs` interleaved rounds of `rate` for plain sends, a distinct `unique_key` per send, and
 * 16 shared keys, and prints their medians and the median of each round's unique / plain.
 */
export async function uniqueVsPlain(
  header: string,
  runs: number,
  rate: (options: (i: number) => Record<string, string>) => Promise<number>,
): Promise<void> {
  const plain: number[] = [], unique: number[] = [], shared: number[] = [];
  for (let r = 0; r < runs; r++) {
    // Interleaved, so that the machine's drift hits all three alike.
    plain.push(await rate(() => ({})));
    unique.push(await rate((i) => ({ unique_key: `key-${i}` })));
    shared.push(await rate((i) => ({ unique_key: `key-${i % 16}` })));
  }
  console.log(`${header}, median of ${runs}`);
  console.log(`  plain:                 ${fmt(median(plain))}/s   (${plain.map(fmt).join(", ")})`);
  // The ratio: the median of each run's unique / plain (the runs are interleaved, so each pair saw
  // about the same load; the machine's drift between runs cancels out).
  const ratio = median(unique.map((u, i) => u / plain[i]!));
  console.log(
    `  unique_key, distinct:  ${fmt(median(unique))}/s; unique / plain per run, median: ${
      (100 * ratio).toFixed(0)
    }%   (${unique.map(fmt).join(", ")})`,
  );
  console.log(
    `  unique_key, 16 keys:   ${fmt(median(shared))}/s   (${shared.map(fmt).join(", ")})`,
  );
}

/** Prints `label: p50 … ms, p99 … ms`. */
export function printLatency(label: string, [p50, p99]: [number, number]): void {
  console.log(`  ${label}: p50 ${p50.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms`);
}

/**
 * The text of a script that sends `n` messages to `actorName` of the module `tasks` (1,000 at a
 * time), closes its broker and exits: a pre-filled queue for the CLI benchmarks.
 */
export function fillScript(tasks: string, actorName: string, n: number): string {
  return `import { ${actorName} } from ${JSON.stringify(tasks)};\n` +
    `const ps = [];\n` +
    `for (let i = 0; i < ${n}; i++) { ps.push(${actorName}.send()); if (ps.length >= 1000) { await Promise.all(ps); ps.length = 0; } }\n` +
    `await Promise.all(ps);\nawait ${actorName}.broker.close();\nprocess.exit(0);\n`;
}

/**
 * Cancel round trip: `a.cancel()` of a message `a` delivered (running) until `b`'s `cancelled()`
 * lists it; `rounds` times on queue `q`; the median and p99 in ms.
 */
export async function cancelRoundTrip(
  a: Broker,
  b: Broker,
  rounds: number,
): Promise<[number, number]> {
  const c = a.consume("q");
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    await a.enqueue(new Message({ queueName: "q", actorName: "t" }));
    const [m] = await c.receive(1, { timeout: 1000 });
    const t0 = performance.now();
    if (await a.cancel(m!.messageId) !== "running") throw new Error("not running");
    while (!(await b.cancelled([m!.messageId])).has(m!.messageId)) await sleep(1);
    times.push(performance.now() - t0);
    await c.ack(m!);
  }
  await c.close();
  return [median(times), percentile(times, 0.99)];
}
