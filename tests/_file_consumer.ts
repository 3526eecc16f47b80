// A consumer process for tests/file_broker_test.ts:
//   _file_consumer.ts <dir> <work|yield|hang|spin> <stopFile> <leaseTimeout> <concurrency> [webWorkers]
//     [segmentSize] [compactEvery]
// Runs a Worker on queue "q" (in this isolate, or in N Web Workers) and prints every id it
// processes; stops cleanly when <stopFile> appears, then prints "stopped".
import { existsSync } from "node:fs";
import { emit, scriptArgs, startConsumer } from "./_file_lib.ts";

const [dir, mode, stopFile, lease, concurrency, webWorkers, segmentSize, compactEvery] =
  scriptArgs();
const options = {
  dir,
  mode: mode as "work" | "yield" | "hang" | "spin",
  leaseTimeout: Number(lease),
  concurrency: Number(concurrency),
  segmentSize: segmentSize ? Number(segmentSize) : undefined,
  compactEvery: compactEvery ? Number(compactEvery) : undefined,
};
const stops: (() => Promise<void>)[] = [];
const threads = Number(webWorkers ?? 0);
if (threads > 0) {
  for (let i = 0; i < threads; i++) {
    const w = new Worker(new URL("./_file_web_consumer.ts", import.meta.url).href, {
      type: "module",
    });
    const stopped = Promise.withResolvers<void>();
    const started = Promise.withResolvers<void>();
    w.onmessage = (e: MessageEvent) => {
      const d = e.data as { lines?: string; started?: boolean; stopped?: boolean };
      if (d.lines) emit(d.lines);
      if (d.started) started.resolve();
      if (d.stopped) stopped.resolve();
    };
    w.postMessage({ start: options });
    await started.promise;
    stops.push(async () => {
      w.postMessage({ stop: true });
      await stopped.promise;
      w.terminate();
    });
  }
} else {
  stops.push(await startConsumer({ ...options, out: emit }));
}
emit("ready\n");
while (!existsSync(stopFile)) await new Promise((r) => setTimeout(r, 20));
await Promise.all(stops.map((s) => s()));
emit("stopped\n");
