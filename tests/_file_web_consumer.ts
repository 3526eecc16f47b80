// A Web Worker body for tests/_file_consumer.ts and tests/file_broker_test.ts: runs
// startConsumer() and posts the lines it reports; {stop: true} stops it cleanly.
import { type ConsumerOptions, startConsumer } from "./_file_lib.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(data: unknown): void;
};
let stop: (() => Promise<void>) | undefined;
scope.onmessage = async (e: MessageEvent) => {
  const d = e.data as { start?: Omit<ConsumerOptions, "out">; stop?: boolean };
  if (d.start) {
    stop = await startConsumer({ ...d.start, out: (lines) => scope.postMessage({ lines }) });
    scope.postMessage({ started: true });
  }
  if (d.stop) {
    await stop?.();
    scope.postMessage({ stopped: true });
  }
};
