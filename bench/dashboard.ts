// The dashboard's response times over MemoryDashboardSource with 1,000,000 messages, and the
// page's bytes. Each figure is the median of RUNS requests through the handler (routing, the
// source's query, rendering and escaping; no socket).
//   npx deno run -A bench/dashboard.ts [N]      (or: npx bun bench/dashboard.ts [N])
// Targets for the brokers' sources (issue 17): search by id < 50 ms, by text < 1 s, overview
// < 100 ms.
import { dashboardHandler, MemoryDashboardSource } from "../dashboard/mod.ts";

const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const N = Number(argv[0] ?? 1_000_000);
const RUNS = 7;
const runtime = "Bun" in globalThis
  ? `bun ${(globalThis as unknown as { Bun: { version: string } }).Bun.version}`
  : `deno ${(globalThis as unknown as { Deno: { version: { deno: string } } }).Deno.version.deno}`;

const source = new MemoryDashboardSource({ name: "bench" });
const queues = ["default", "emails", "reports", "images", "billing"];
const t0 = performance.now();
const start = Date.now() - N * 10;
let needleId = "";
for (let i = 0; i < N; i++) {
  const r = i % 1000;
  const state = r < 900
    ? "done"
    : r < 950
    ? "ready"
    : r < 970
    ? "delayed"
    : r < 971
    ? "running"
    : "dead";
  const id = source.add({
    queue: queues[i % queues.length],
    actor: i % 2 ? "send_email" : "build_report",
    args: [`user${i % 50_000}@example.com`, i === N >> 1 ? "needle-42" : `Invoice ${i}`],
    options: { max_retries: 20 },
    timestamp: start + i * 10,
  }, {
    state,
    workerId: state === "running" ? "w1" : undefined,
    error: state === "dead" ? (i % 3 ? "TimeoutError: upstream" : "SMTPError: 550") : undefined,
  });
  if (i === N >> 1) needleId = id;
}
const loadMs = performance.now() - t0;
const handler = dashboardHandler(source);

async function measure(path: string): Promise<{ ms: number; bytes: number; status: number }> {
  const times: number[] = [];
  let bytes = 0, status = 0;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const res = await handler(new Request(`http://127.0.0.1:8181${path}`));
    const body = await res.text();
    times.push(performance.now() - t);
    bytes = new TextEncoder().encode(body).length;
    status = res.status;
  }
  times.sort((a, b) => a - b);
  return { ms: times[RUNS >> 1], bytes, status };
}

async function gzipSize(text: string): Promise<number> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

console.log(`# bench/dashboard.ts, ${runtime}, ${N.toLocaleString("en")} messages`);
console.log(`loaded in ${(loadMs / 1000).toFixed(1)} s`);
const cases: [string, string][] = [
  ["overview (HTML)", "/"],
  ["overview (JSON)", "/api/overview"],
  ["live poll (JSON)", "/api/live"],
  ["search by id", `/search?q=${needleId}`],
  ["message page", `/messages/${needleId}`],
  ["search by text, 1 match", "/search?q=needle-42"],
  ["search by text in args, 20 matches", "/search?q=user49999%40&in=all"],
  ["search by text in errors, 10k matches", "/search?q=smtperror&in=error"],
  ["queue page, dead (counted total)", "/queues/emails?state=dead"],
  ["search by actor + state + time range", `/search?actor=send_email&state=dead&from=${start}`],
];
for (const [name, path] of cases) {
  const r = await measure(path);
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}`);
  console.log(`${name.padEnd(42)} ${r.ms.toFixed(1).padStart(8)} ms   ${r.bytes} B`);
}
const page = await (await handler(new Request("http://127.0.0.1:8181/"))).text();
const js = await (await handler(new Request("http://127.0.0.1:8181/assets/app.js"))).text();
const css = await (await handler(new Request("http://127.0.0.1:8181/assets/app.css"))).text();
const list = await (await handler(new Request("http://127.0.0.1:8181/queues/emails?state=dead")))
  .text();
const b = (s: string) => new TextEncoder().encode(s).length;
console.log(
  `bytes: overview HTML ${b(page)} (gzip ${await gzipSize(page)}), queue page of 50 ${b(list)} ` +
    `(gzip ${await gzipSize(list)}), app.js ${b(js)} (gzip ${await gzipSize(js)}), app.css ${
      b(css)
    } (gzip ${await gzipSize(css)})`,
);
