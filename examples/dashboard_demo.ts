// The dashboard over an in-memory source with messages in every state and simulated workers.
//   npx deno run -A examples/dashboard_demo.ts     (or: npx bun examples/dashboard_demo.ts)
// then open http://127.0.0.1:8181/ . Flags: --port N, --read-only, --token T, --smoke (serve
// on a free port, fetch every page once, print their status and exit: what the tests run).
import { dashboardHandler, MemoryDashboardSource } from "@dramatis/dramatis/dashboard";

const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const value = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const smoke = flag("--smoke");

const source = new MemoryDashboardSource({ name: "demo (in memory)", maxDone: 5_000 });
const queues = ["default", "emails", "reports", "images"];
const actors: Record<string, string[]> = {
  default: ["add", "cleanup"],
  emails: ["send_email", "send_digest"],
  reports: ["build_report"],
  images: ["resize", "thumbnail"],
};
const people = ["alice@example.com", "bob@example.org", "carol@example.net", "dave@example.com"];
const errors = [
  "SMTPError: 550 mailbox unavailable",
  "TimeoutError: upstream took longer than 30 s",
  "TypeError: Cannot read properties of undefined (reading 'width')",
  "TimeLimitExceeded: the actor ran for more than 60000 ms",
];
let n = 0;
const pick = <T>(a: readonly T[]) => a[Math.floor(Math.random() * a.length)];

function newMessage(queue = pick(queues), timestamp?: number) {
  const actor = pick(actors[queue]);
  n++;
  const args = queue === "emails"
    ? [pick(people), `Invoice #${1000 + n}`]
    : queue === "images"
    ? [`uploads/${n}.jpg`, { width: 320 }]
    : queue === "reports"
    ? [{ month: "2026-11", customer: n % 40 }]
    : [n, n * 2];
  return {
    queue,
    actor,
    args,
    timestamp,
    options: { max_retries: 3 },
  } as const;
}

// History: an hour of finished messages, some dead letters, delayed messages and retries.
const now = Date.now();
for (let i = 0; i < 400; i++) {
  const t = now - 3_600_000 + i * 8_000;
  const m = newMessage(undefined, t);
  if (i % 23 === 0) {
    source.add({ ...m, options: { ...m.options, retries: 3 } }, {
      state: "dead",
      error: pick(errors),
    });
  } else if (i % 31 === 0) {
    source.add({ ...m, options: { ...m.options, retries: 1, traceback: pick(errors) } }, {
      state: "delayed",
      eta: now + 60_000 + i * 1000,
      error: pick(errors),
    });
  } else {
    source.add(m, { state: "done", result: i % 5 === 0 ? { ok: true, n: i } : null });
  }
}
for (let i = 0; i < 12; i++) {
  source.add(newMessage("reports"), { state: "delayed", eta: now + (i + 1) * 600_000 });
}
for (let i = 0; i < 40; i++) source.add(newMessage());

const workers = [
  { workerId: "web-1:4242", host: "web-1", pid: 4242, runtime: "deno 2.9.6" },
  { workerId: "web-2:5151", host: "web-2", pid: 5151, runtime: "bun 1.4.5" },
  { workerId: "py-1:777", host: "py-1", pid: 777, runtime: "python dramatiq 2.2" },
];
const startedAt = now - 7_200_000;
function beat() {
  for (const w of workers) {
    const s = source.registry.snapshot().series;
    source.setWorker({
      ...w,
      slots: 4,
      busy: 0,
      lastSeen: Date.now(),
      startedAt,
      queues: w.host === "py-1" ? ["reports"] : ["default", "emails", "images"],
      counters: { processed: s.reduce((a, x) => a + x.processed, 0) },
    });
  }
}
beat();
source.setSchedule({
  name: "nightly-report",
  actor: "build_report",
  queue: "reports",
  spec: "0 3 * * *",
  nextAt: now + 5 * 3_600_000,
  lastAt: now - 19 * 3_600_000,
  paused: false,
});
source.setSchedule({
  name: "digest",
  actor: "send_digest",
  queue: "emails",
  spec: "*/15 * * * *",
  nextAt: now + 420_000,
  lastAt: now - 480_000,
  paused: false,
});
source.setSchedule({
  name: "cleanup",
  actor: "cleanup",
  queue: "default",
  spec: "@hourly",
  timezone: "Europe/Paris",
  nextAt: null,
  lastAt: now - 7_200_000,
  paused: true,
});

// The simulated workers: claim, run for a while, succeed, retry or fail.
const running = new Map<string, { end: number; worker: string }>();
for (const w of workers.slice(0, 2)) {
  for (let i = 0; i < 2; i++) {
    const id = source.claim(undefined, w.workerId);
    if (id) {
      running.set(id, { end: Date.now() + 5_000 + Math.random() * 20_000, worker: w.workerId });
    }
  }
}
function tick() {
  const t = Date.now();
  for (let i = 0; i < 3; i++) source.add(newMessage());
  for (const [id, { end }] of running) {
    if (t < end) continue;
    running.delete(id);
    if (source.stateOf(id) !== "running") continue;
    const r = Math.random();
    if (r < 0.8) source.finish(id, "success", { result: { ok: true } });
    else if (r < 0.93) source.finish(id, "retry", { error: pick(errors), delay: 20_000 });
    else source.finish(id, "dead", { error: pick(errors) });
  }
  for (const w of workers) {
    let busy = [...running].filter(([id, r]) =>
      r.worker === w.workerId && source.stateOf(id) === "running"
    ).length;
    while (busy < 4) {
      const id = source.claim(w.host === "py-1" ? "reports" : undefined, w.workerId);
      if (!id) break;
      const end = t + 100 + Math.random() * (Math.random() < 0.1 ? 8_000 : 900);
      running.set(id, { end, worker: w.workerId });
      busy++;
    }
  }
  source.promoteDue(t);
  beat();
}

const handler = dashboardHandler(source, {
  readOnly: flag("--read-only"),
  token: value("--token"),
  refreshMs: 1000,
});

type Server = { port: number; stop(): Promise<void> };
function serve(port: number): Promise<Server> {
  const deno = (globalThis as {
    Deno?: {
      serve(
        o: { hostname: string; port: number; onListen(a: { port: number }): void },
        h: typeof handler,
      ): { shutdown(): Promise<void> };
    };
  }).Deno;
  if (deno) {
    return new Promise((resolve) => {
      const s = deno.serve({
        hostname: "127.0.0.1",
        port,
        onListen: (a) => resolve({ port: a.port, stop: () => s.shutdown() }),
      }, handler);
    });
  }
  const bun = (globalThis as unknown as {
    Bun: {
      serve(o: { hostname: string; port: number; fetch: typeof handler }): {
        port: number;
        stop(): Promise<void>;
      };
    };
  }).Bun;
  const s = bun.serve({ hostname: "127.0.0.1", port, fetch: handler });
  return Promise.resolve({ port: s.port, stop: () => s.stop() });
}

const server = await serve(smoke ? 0 : Number(value("--port") ?? 8181));
if (smoke) {
  tick();
  const dead = (await source.messages({ states: ["dead"], limit: 1 })).messages[0];
  for (const path of ["/", "/queues/emails", "/search?q=example.com", "/workers", "/schedules"]) {
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`);
    await res.body?.cancel();
    console.log(`dashboard_demo: GET ${path} ${res.status}`);
  }
  const res = await fetch(`http://127.0.0.1:${server.port}/messages/${dead.message.message_id}`);
  await res.body?.cancel();
  console.log(`dashboard_demo: GET /messages/{a dead letter} ${res.status}`);
  await server.stop();
} else {
  setInterval(tick, 500);
  console.log(`dramatis dashboard demo on http://127.0.0.1:${server.port}/ (Ctrl-C to stop)`);
}
