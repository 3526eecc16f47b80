// Quick start: declare actors, send messages, run a worker, read results.
//   npx deno run -A examples/quickstart.ts     (or: npx bun examples/quickstart.ts)
import {
  actor,
  MemoryResultBackend,
  pipeline,
  Results,
  setBroker,
  StubBroker,
  Worker,
} from "@dramatis/dramatis";

// An in-memory broker keeps this example self-contained. Leave setBroker() out to use the
// default broker: the durable, embedded one in ./.dramatis.
const broker = setBroker(new StubBroker());
broker.addMiddleware(new Results({ backend: new MemoryResultBackend() }));

const countWords = actor(function countWords(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}, { storeResults: true, maxRetries: 3 });

const report = actor(function report(count: number): string {
  const line = `The text has ${count} words.`;
  console.log(line);
  return line;
}, { storeResults: true });

const msg = await countWords.send("the quick brown fox");
const chain = await pipeline([countWords.message("jumps over the lazy dog"), report.message()])
  .run();

const worker = new Worker(broker, { concurrency: 8 });
await worker.start();
console.log("countWords ->", await msg.getResult({ block: true, timeout: 5_000 }));
console.log("pipeline ->", await chain.getResult({ block: true, timeout: 5_000 }));
await worker.stop();
