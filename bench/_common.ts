// Helpers the benchmark scripts share: medians and percentiles, a clock comparable across
// processes, unbuffered stdout for child processes, and a paced sender.
import * as fs from "node:fs";

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
