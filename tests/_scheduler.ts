// The scheduler tests' helpers: `cli.ts worker` processes running the schedules of
// tests/fixtures/schedules.ts, and the ticks they enqueued, read back from the broker.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { brokerFromUrl, SCHEDULE_OPTION, SCHEDULE_TICK_OPTION } from "../mod.ts";
import { cli, descendants, type Env, root, sleep, until } from "./_cli.ts";

export const bin = (name: string) => join(root, "node_modules", ".bin", name);

export interface Proc {
  proc: ChildProcess;
  log: () => string;
  exited: Promise<unknown>;
  /** When its scheduler started: ticks from then on are on time (its log line says, in ms). */
  since: () => Promise<number>;
}

/** Starts `cli.ts worker <fixture> -Q idle -t 1` on `runtime`. */
export function worker(e: Env, runtime: "deno" | "bun", env: Record<string, string>): Proc {
  const args = runtime === "deno" ? [bin("deno"), "run", "-A", cli] : [bin("bun"), cli];
  const proc = spawn(args[0]!, [...args.slice(1), "worker", e.tasks, "-Q", "idle", "-t", "1"], {
    env: { ...process.env, ...e.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  e.running.push(proc);
  let log = "";
  proc.stdout!.on("data", (d) => log += d);
  proc.stderr!.on("data", (d) => log += d);
  const exited = new Promise((r) => proc.on("exit", r));
  const onTime = /ticks on time from (\S+Z)\./;
  return {
    proc,
    log: () => log,
    exited,
    since: async () => {
      await until(`${runtime} worker's scheduler`, () => onTime.test(log), 30_000, () => log);
      return Date.parse(onTime.exec(log)![1]!);
    },
  };
}

/** SIGKILLs a `cli.ts worker` with its worker process (a machine gone). */
export function killTree(p: Proc): void {
  for (const pid of [...descendants(p.proc.pid!), p.proc.pid!]) {
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

export async function stop(p: Proc): Promise<void> {
  process.kill(p.proc.pid!, "SIGTERM");
  await p.exited;
}

/** Sleeps until `ms` past the second after `at` (mid-second: clear of any tick). */
export async function untilMidSecond(at: number, ms = 500): Promise<number> {
  const target = Math.ceil(at / 1000) * 1000 + ms;
  await sleep(Math.max(0, target - Date.now()));
  return target;
}

/** The ticks of `[from, to)`, every second. */
export function secondsIn(from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = Math.ceil(from / 1000) * 1000; t < to; t += 1000) out.push(t);
  return out;
}

/**
 * The last tick enqueued before a stop signal sent at `stoppedAt` (mid-second) to processes that
 * exited by `exitedAt`: the tick before the signal, or, on a loaded box where a timer may fire
 * before the signal is handled, the next one.
 */
export function lastBeforeStop(list: number[], stoppedAt: number, exitedAt: number): number {
  const last = Math.max(...list.filter((t) => t < exitedAt));
  const expected = Math.floor(stoppedAt / 1000) * 1000;
  assert.ok(last >= expected, `no tick ${iso(expected)} before the stop: last ${iso(last)}`);
  assert.ok(last <= expected + 1000, `ticks went on after the stop: ${iso(last)}`);
  return last;
}

export interface Tick {
  tick: number;
  /** How long after its tick it was enqueued (ms). */
  lag: number;
}

/** Every message of `queue` (consumed), as ticks of schedule `name`, sorted. */
export async function ticksOf(url: string, queue: string, name: string): Promise<Tick[]> {
  const broker = brokerFromUrl(url);
  try {
    broker.declareQueue(queue);
    const c = broker.consume(queue);
    const out: Tick[] = [];
    for (;;) {
      const batch = await c.receive(500, { timeout: 300 });
      if (batch.length === 0) break;
      for (const m of batch) {
        assert.equal(m.options[SCHEDULE_OPTION], name);
        const tick = m.options[SCHEDULE_TICK_OPTION] as number;
        out.push({ tick, lag: m.messageTimestamp - tick });
        await c.ack(m);
      }
    }
    await c.close();
    return out.sort((a, b) => a.tick - b.tick);
  } finally {
    await broker.close();
  }
}

export function noDuplicates(ticks: Tick[], what: string): number[] {
  const list = ticks.map((t) => t.tick);
  const dups = list.filter((t, i) => list.indexOf(t) !== i);
  assert.deepEqual(dups.map(iso), [], `${what}: ticks enqueued more than once`);
  return list;
}

export const iso = (t: number) => new Date(t).toISOString();
