// The broker operations in `cli.ts worker` processes, driven from other processes by the CLI:
// cancel (queued, delayed, running, and an actor that never yields), pause / resume across a
// worker restart, progress, and the registry (`workers`, one record per process). On the file
// broker, and on Redis once its broker has these operations (each test checks its capabilities).
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import type { BrokerEvent, WorkerRecord } from "../broker/ops.ts";
import type { Broker } from "../broker/broker.ts";
import { brokerFromUrl } from "../broker/url.ts";
import { scriptArgs } from "./_runtime.ts";
import { FileResultBackend, Message, ResultFailure } from "../mod.ts";
import {
  cleanup,
  e2e,
  type Env,
  events,
  fixtures,
  runCli,
  setup,
  signal,
  sleep,
  startWorker,
  until,
} from "./_cli.ts";

interface Backend {
  name: string;
  /** Sets the broker of `e`; returns why the test cannot run on it, if it cannot. */
  prepare(e: Env, needs: ("cancel" | "pause" | "progress" | "workers")[]): Promise<string | null>;
  done(e: Env): Promise<void>;
}

const file: Backend = {
  name: "file",
  prepare: () => Promise.resolve(null),
  done: () => Promise.resolve(),
};

const redisNamespaces = new Map<Env, string>();
const redis: Backend = {
  name: "Redis",
  async prepare(e, needs) {
    const { SHARED_URL } = await import("./_redis_server.ts");
    const ns = `cliops${crypto.randomUUID().slice(0, 8)}`;
    redisNamespaces.set(e, ns);
    e.env.DRAMATIS_BROKER = `${SHARED_URL}?namespace=${ns}`;
    const broker = brokerFromUrl(e.env.DRAMATIS_BROKER);
    try {
      const missing = needs.filter((n) => !broker.capabilities[n]);
      return missing.length ? `the Redis broker has no ${missing.join(", ")} yet` : null;
    } finally {
      await broker.close();
    }
  },
  async done(e) {
    const ns = redisNamespaces.get(e);
    if (!ns) return;
    const { deleteKeys } = await import("./_redis_server.ts");
    await deleteKeys(`${ns}:`);
  },
};

/** Runs `body` on a fresh env of the ops fixture, skipping when the broker lacks `needs`. */
function opsTest(
  name: string,
  needs: ("cancel" | "pause" | "progress" | "workers")[],
  body: (e: Env, t: { skip(why: string): void }) => Promise<void>,
): void {
  for (const backend of [file, redis]) {
    test(`cli ops (${backend.name}): ${name}`, e2e, async (t) => {
      const e = setup("ops_tasks.ts");
      try {
        const why = await backend.prepare(e, needs);
        if (why) return t.skip(why);
        await body(e, t);
      } finally {
        cleanup(e);
        await backend.done(e);
      }
    });
  }
}

/** Sends `[actor, args, options]` messages from one separate process; resolves with their ids. */
async function sendAll(
  e: Env,
  messages: [string, unknown[], { delay?: number }?][],
): Promise<string[]> {
  const script = join(e.dir, "ops_producer.ts");
  writeFileSync(
    script,
    `import * as tasks from ${JSON.stringify(e.tasks)};\n` +
      `import { getBroker } from ${JSON.stringify(join(fixtures, "..", "..", "mod.ts"))};\n` +
      `const actors = tasks as unknown as Record<string, {\n` +
      `  sendWithOptions(o: object): Promise<{ messageId: string }> }>;\n` +
      `const ids: string[] = [];\n` +
      `for (const [name, args, o] of ${
        JSON.stringify(messages)
      } as [string, unknown[], object?][]) {\n` +
      `  ids.push((await actors[name].sendWithOptions({ args, ...(o ?? {}) })).messageId);\n}\n` +
      `console.log(JSON.stringify(ids));\n` +
      `await getBroker().close();\n`,
  );
  let stdout = "";
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, scriptArgs(script), {
      env: { ...process.env, ...e.env },
      stdio: ["ignore", "pipe", "inherit"],
    });
    p.stdout!.on("data", (d) => stdout += d);
    p.on("exit", resolve);
  });
  assert.equal(code, 0, stdout);
  return JSON.parse(stdout.trim().split("\n").pop()!);
}

async function workers(e: Env): Promise<WorkerRecord[]> {
  const r = await runCli(e, ["workers", e.tasks, "--json"]);
  assert.equal(r.code, 0, r.out);
  return JSON.parse(r.stdout);
}

const of = (e: Env, event: string, id?: string) =>
  events(e).filter((x) => x.event === event && (id === undefined || x.id === id));

/** The error name of the failure stored for message `id` of `actorName`, or what went wrong. */
async function storedError(
  e: Env,
  actorName: string,
  id: string,
  queueName = "default",
): Promise<string> {
  const backend = new FileResultBackend({ dir: join(e.dir, "results") });
  const m = new Message({ queueName, actorName, messageId: id });
  try {
    return `a result: ${
      JSON.stringify(await backend.getResult(m, { block: true, timeout: 5000 }))
    }`;
  } catch (err) {
    return err instanceof ResultFailure ? err.errorName : String(err);
  }
}

/** Reads `broker.events()` from now on, in this process, until `stop()`. */
function collectEvents(e: Env): { events: BrokerEvent[]; stop(): Promise<void> } {
  const broker = brokerFromUrl(e.env.DRAMATIS_BROKER!);
  const events: BrokerEvent[] = [];
  const stop = new AbortController();
  const reading = (async () => {
    for await (const ev of broker.events({ signal: stop.signal })) events.push(ev);
  })();
  return {
    events,
    async stop() {
      stop.abort();
      await reading.catch(() => {});
      await broker.close();
    },
  };
}

async function withBroker<T>(e: Env, fn: (b: Broker) => Promise<T>): Promise<T> {
  const broker = brokerFromUrl(e.env.DRAMATIS_BROKER!);
  try {
    return await fn(broker);
  } finally {
    await broker.close();
  }
}

opsTest(
  "a queued, a delayed and a running message are cancelled from another process",
  ["cancel"],
  async (e) => {
    const seen = collectEvents(e);
    const w = startWorker(e, ["-Q", "default", "-t", "1", "-c", "1"]);
    await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
    const [running, held, delayed, queued] = await sendAll(e, [
      ["hold", []],
      ["hold", []], // prefetched by the worker: held, never started
      ["hold", [], { delay: 60_000 }],
      ["holdLater", []], // a queue nobody consumes: still in the broker
    ]);
    await until("the running one", () => of(e, "hold-start", running).length === 1, 20_000, w.log);
    await sleep(200); // the others reach the worker
    const t0 = Date.now();
    // The running one last: cancelled first, it would end and let the held one start.
    const r = await runCli(e, ["cancel", held!, delayed!, queued!, running!, e.tasks]);
    const t1 = Date.now();
    assert.equal(r.code, 0, r.out);
    assert.match(r.stdout, new RegExp(`^${running}: running \\(its worker is told`, "m"));
    assert.match(r.stdout, new RegExp(`^${queued}: cancelled \\(it was queued`, "m"));
    assert.match(r.stdout, new RegExp(`^${held}: (running|cancelled) `, "m"));
    assert.match(r.stdout, new RegExp(`^${delayed}: (running|cancelled) `, "m"));
    await until("the abort", () => of(e, "hold-aborted", running).length === 1, 5_000, w.log);
    const aborted = of(e, "hold-aborted", running)[0]!;
    assert.equal(aborted.reason, "Cancelled");
    const latency = (aborted.at as number) - t1;
    console.log(
      `cancel of a running message: aborted ${latency} ms after \`cancel\` exited ` +
        `(the command ran ${t1 - t0} ms)`,
    );
    assert.ok(latency < 1_000, `aborted ${latency} ms after the cancel`);

    // The same measured without a process start: the broker's cancel, from this process.
    const [second] = await sendAll(e, [["hold", []]]);
    await until("the second", () => of(e, "hold-start", second).length === 1, 20_000, w.log);
    const t2 = Date.now();
    assert.equal(await withBroker(e, (b) => b.cancel(second!)), "running");
    await until("its abort", () => of(e, "hold-aborted", second).length === 1, 5_000, w.log);
    const direct = (of(e, "hold-aborted", second)[0]!.at as number) - t2;
    console.log(`cancel of a running message: aborted ${direct} ms after broker.cancel()`);
    assert.ok(direct < 1_000, `aborted ${direct} ms after broker.cancel()`);

    // Nothing cancelled runs or is retried (hold has maxRetries 3 and a 10 ms backoff).
    await sleep(1_000);
    for (const id of [running, held, delayed, queued, second]) {
      assert.ok(of(e, "hold-start", id).length <= 1, `${id} ran again`);
    }
    for (const id of [held, delayed, queued]) {
      assert.equal(of(e, "hold-start", id).length, 0, `${id} ran:\n${w.log()}`);
    }
    // Not retried, and stored as failures named Cancelled: by the worker, or for the one still
    // queued by `cancel` itself (with the Results middleware of the module it was given).
    assert.equal(await storedError(e, "holdLater", queued!, "later"), "Cancelled");
    // The worker process published a cancelled event for each it held, as itself (the broker
    // cancelled the others: no worker saw them).
    const [record] = await workers(e);
    const told = [running, held, delayed].filter((id) =>
      new RegExp(`^${id}: running`, "m").test(r.stdout)
    );
    for (const id of [...told, second]) {
      await until(`the event of ${id}`, () => seen.events.some((x) => x.messageId === id));
      const ev = seen.events.filter((x) => x.messageId === id);
      assert.deepEqual(ev.map((x) => [x.type, x.workerId]), [["cancelled", record!.workerId]]);
    }
    await seen.stop();
    for (const id of [running, held, delayed, second]) {
      assert.equal(
        await storedError(e, "hold", id!),
        "Cancelled",
        `${id} of ${[running, held, delayed, second]}`,
      );
    }
    const stats = await withBroker(
      e,
      async (b) => [await b.stats("default"), await b.stats("later")],
    );
    for (const s of stats) assert.equal(s.ready + s.delayed + s.inFlight + s.dead, 0, `${s}`);
    // Once finished, a cancel says so, exiting 5 with one line on stderr.
    const again = await runCli(e, ["cancel", running!, "no-such-id", e.tasks]);
    assert.equal(again.code, 5, again.out);
    assert.match(again.stdout, /^no-such-id: unknown/m);
    assert.match(again.stderr, /^dramatis: 2 of 2 message\(s\) could not be cancelled/);
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0, w.log());
  },
);

opsTest(
  "messages a worker process holds are cancelled wherever they wait, none runs",
  ["cancel"],
  async (e) => {
    // -t 1 -c 1: one runs; the Web Worker holds a few more, the main thread some not delivered
    // yet (it settles those itself), the broker the rest.
    const w = startWorker(e, ["-Q", "default", "-t", "1", "-c", "1"]);
    await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
    const [first, ...rest] = await sendAll(e, Array.from({ length: 12 }, () => ["hold", []]));
    await until("the first", () => of(e, "hold-start", first).length === 1, 20_000, w.log);
    await sleep(300);
    const r = await runCli(e, ["cancel", ...rest, e.tasks]);
    assert.equal(r.code, 0, r.out);
    for (const id of rest) assert.match(r.stdout, new RegExp(`^${id}: (running|cancelled) `, "m"));
    await sleep(500);
    assert.equal((await runCli(e, ["cancel", first!, e.tasks])).code, 0);
    await until("the first's abort", () => of(e, "hold-aborted", first).length === 1);
    for (const id of rest) {
      assert.equal(await storedError(e, "hold", id!), "Cancelled", id);
    }
    await sleep(500);
    assert.deepEqual(of(e, "hold-start").map((x) => x.id), [first], w.log());
    const s = await withBroker(e, (b) => b.stats("default"));
    assert.equal(s.ready + s.delayed + s.inFlight + s.dead, 0, JSON.stringify(s));
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0, w.log());
  },
);

opsTest(
  "a cancelled actor in while (true) {} is stopped the hard way, not retried",
  ["cancel"],
  async (e) => {
    const seen = collectEvents(e);
    const w = startWorker(e, ["-t", "1", "-c", "2"]);
    await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
    const [spin] = await sendAll(e, [["forever", []]]);
    await until("the spin", () => of(e, "forever-start", spin).length === 1, 20_000, w.log);
    const r = await runCli(e, ["cancel", spin!, e.tasks]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.stdout, /: running /);
    await until(
      "the hard stop",
      () => /was cancelled and its actor did not yield/.test(w.log()),
      10_000,
      w.log,
    );
    // The worker goes on (Bun: a fresh Web Worker; Deno: a fresh process).
    const [after] = await sendAll(e, [["quick", [1]]]);
    await until("the next message", () => of(e, "quick", after).length === 1, 20_000, w.log);
    await sleep(500);
    assert.equal(of(e, "forever-start", spin).length, 1, `retried:\n${w.log()}`);
    assert.equal(await storedError(e, "forever", spin!), "Cancelled");
    await until("the events", () => seen.events.some((x) => x.messageId === after));
    assert.deepEqual(seen.events.map((x) => [x.messageId, x.type]), [
      [spin, "cancelled"],
      [after, "completed"],
    ]);
    await seen.stop();
    const s = await withBroker(e, (b) => b.stats("default"));
    assert.equal(s.ready + s.delayed + s.inFlight + s.dead, 0, JSON.stringify(s));
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0, w.log());
  },
);

opsTest("pause and resume stop and restart delivery, across a restart", ["pause"], async (e) => {
  const paused = await runCli(e, ["pause", "default", e.tasks]);
  assert.equal(paused.code, 0, paused.out);
  assert.match(paused.stdout, /^Paused default /);
  let w = startWorker(e, ["-t", "1"]);
  await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
  const [id] = await sendAll(e, [["quick", [1]]]);
  await sleep(1_500);
  assert.equal(of(e, "quick").length, 0, "delivered while paused");
  const q = await runCli(e, ["queues", e.tasks, "--json"]);
  const stats = JSON.parse(q.stdout).find((s: { queueName: string }) => s.queueName === "default");
  assert.equal(stats.paused, true, q.stdout);
  assert.equal(stats.ready, 1, q.stdout);
  const table = await runCli(e, ["queues", e.tasks]);
  assert.match(table.stdout, /^default .* paused$/m);
  // A restarted worker still takes nothing.
  signal(w, "SIGINT");
  assert.equal(await w.exited, 0, w.log());
  w = startWorker(e, ["-t", "1"]);
  await until("boot again", () => /ready for action/.test(w.log()), 20_000, w.log);
  await sleep(1_000);
  assert.equal(of(e, "quick").length, 0, "delivered after the restart while paused");
  const resumed = await runCli(e, ["resume", "default", e.tasks]);
  assert.equal(resumed.code, 0, resumed.out);
  assert.match(resumed.stdout, /^Resumed default /);
  await until("the message", () => of(e, "quick", id).length === 1, 20_000, w.log);
  signal(w, "SIGINT");
  assert.equal(await w.exited, 0, w.log());
});

opsTest(
  "progress shows in queues --running and in getProgress() of another process",
  ["progress", "workers"],
  async (e) => {
    const w = startWorker(e, ["-t", "2", "-c", "2"]);
    await until("boot", () => /ready for action/.test(w.log()), 20_000, w.log);
    const [id] = await sendAll(e, [["progress", [3, 30_000]]]);
    await until("the report", () => of(e, "progress-reported", id).length === 1, 20_000, w.log);
    type Row = { messageId: string; actorName: string; progress?: unknown; pid: number };
    let row: Row | undefined;
    await eventually("the running list", async () => {
      const r = await runCli(e, ["queues", "--running", "--json", e.tasks]);
      assert.equal(r.code, 0, r.out);
      row = (JSON.parse(r.stdout) as Row[]).find((x) => x.messageId === id);
      // (The first report is written at once, the last one 250 ms later: rate-limited.)
      return JSON.stringify(row?.progress) === JSON.stringify({ done: 3, of: 3 });
    });
    assert.equal(row!.actorName, "progress");
    assert.deepEqual(row!.progress, { done: 3, of: 3 });
    const text = await runCli(e, ["queues", "--running", e.tasks]);
    assert.match(text.stdout, new RegExp(`^${id}  progress  default .*\\{"done":3,"of":3\\}`, "m"));
    // (The heartbeat may show it while the Web Worker's write is still on its way.)
    let stored: unknown;
    await eventually("the stored progress", async () => {
      stored = (await withBroker(e, (b) => b.getProgress(id!)))?.value;
      return JSON.stringify(stored) === JSON.stringify({ done: 3, of: 3 });
    }, 5_000);
    assert.equal((await runCli(e, ["cancel", id!, e.tasks])).code, 0);
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0, w.log());
  },
);

opsTest(
  "workers --json lists each process of -p 2; a SIGKILLed one drops out within its TTL",
  ["workers"],
  async (e) => {
    e.env.METRICS = "1";
    const w = startWorker(e, ["-Q", "default", "-p", "2", "-t", "2", "-c", "3"]);
    let list: WorkerRecord[] = [];
    await eventually("two records", async () => (list = await workers(e)).length === 2);
    const runtime = "Bun" in globalThis ? /^bun / : /^deno /;
    assert.notEqual(list[0]!.pid, list[1]!.pid);
    for (const r of list) {
      assert.match(r.runtime, runtime);
      assert.equal(r.concurrency, 6);
      assert.deepEqual(r.queues, ["default"]);
      assert.ok(Date.now() - r.heartbeatAt < 5_000, JSON.stringify(r));
      assert.equal(r.metrics?.format, 1, "the Metrics snapshot");
    }
    // Counters summed over each process's Web Workers.
    const ids = await sendAll(e, Array.from({ length: 8 }, (_, n) => ["quick", [n]]));
    await until("the messages", () => of(e, "quick").length === 8, 20_000, w.log);
    await eventually("the counters", async () => {
      const total = (await workers(e)).flatMap((r) => r.metrics?.series ?? [])
        .filter((s) => s.actor === "quick").reduce((n, s) => n + s.succeeded, 0);
      return total === ids.length;
    });
    const table = await runCli(e, ["workers", e.tasks]);
    assert.match(
      table.stdout,
      new RegExp(`^\\S+ +${list[0]!.pid} +(deno|bun) \\S+ +default +6 +0 +[\\d.]+s ago$`, "m"),
    );
    // SIGKILL one: its record stays until its TTL (10 s), then drops out.
    const killed = list[0]!.pid;
    process.kill(killed, "SIGKILL");
    const t0 = Date.now();
    await eventually(
      "the killed process to drop out",
      async () => !(await workers(e)).some((r) => r.pid === killed),
      25_000,
    );
    const gone = Date.now() - t0;
    console.log(`a SIGKILLed worker process dropped out of the registry after ${gone} ms`);
    assert.ok(gone < 10_000 + 5_000, `${gone} ms`);
    // A graceful stop removes the records at once.
    signal(w, "SIGINT");
    assert.equal(await w.exited, 0, w.log());
    assert.deepEqual(await workers(e), []);
  },
);

/** Waits until `cond()` resolves true, or throws after `timeout` ms. */
async function eventually(
  what: string,
  cond: () => Promise<boolean>,
  timeout = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!await cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test("cli ops: cancel, pause and resume without their arguments are usage errors", async () => {
  const e = setup("ops_tasks.ts");
  try {
    const cases: [string[], RegExp][] = [
      [["cancel", e.tasks], /cancel needs message ids/],
      [["pause"], /pause needs a queue/],
      [["resume"], /resume needs a queue/],
      [["pause", "bad queue!"], /queue/i],
    ];
    for (const [args, line] of cases) {
      const r = await runCli(e, args);
      assert.equal(r.code, 64, `${args.join(" ")}: ${r.out}`);
      assert.match(r.stderr, line);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    }
  } finally {
    cleanup(e);
  }
});
