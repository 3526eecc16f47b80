// A web app that hands work to dramatis workers. POST /greet {"name": "Ada"} enqueues
// greet("Ada") from tasks.ts and answers 202 with the message id; `dramatis worker
// examples/tasks.ts`, in another process, runs it. Deno.serve on Deno, Bun.serve on Bun.
// On SIGTERM or SIGINT it stops taking requests, lets the ones in progress finish (their
// messages are enqueued), then closes the broker, which releases its files or connections.
//   npx deno run -A examples/web_app.ts            (or: npx bun examples/web_app.ts)
//   curl -d '{"name": "Ada"}' http://127.0.0.1:8000/greet
// PORT and HOST choose where it listens (default 127.0.0.1:8000); the broker is the default one:
// DRAMATIS_BROKER, else a file broker in ./.dramatis.
import process from "node:process";
import { getBroker } from "@dramatis/dramatis";
import { greet } from "./tasks.ts";

async function handle(request: Request): Promise<Response> {
  if (new URL(request.url).pathname !== "/greet") {
    return new Response("Not found\n", { status: 404 });
  }
  if (request.method !== "POST") return new Response("Use POST\n", { status: 405 });
  const body = await request.json().catch(() => null) as { name?: unknown } | null;
  if (typeof body?.name !== "string") {
    return Response.json({ error: 'Send a JSON body like {"name": "Ada"}.' }, { status: 400 });
  }
  const message = await greet.send(body.name); // resolves once the broker has stored it
  return Response.json({ messageId: message.messageId }, { status: 202 });
}

/** What this app needs from either runtime's HTTP server. */
interface Server {
  url: string;
  /** Stops accepting connections; resolves when the requests in progress are answered. */
  stop(): Promise<void>;
}

/** Bun's server API, as far as it is used here (Deno's types come with Deno). */
interface BunServe {
  serve(options: {
    port: number;
    hostname: string;
    fetch(request: Request): Promise<Response>;
  }): { port: number; stop(): Promise<void> };
}

function serve(port: number, hostname: string): Server {
  const bun = (globalThis as { Bun?: BunServe }).Bun;
  if (bun) {
    const server = bun.serve({ port, hostname, fetch: handle });
    return { url: `http://${hostname}:${server.port}/`, stop: () => server.stop() };
  }
  const server = Deno.serve({ port, hostname, onListen() {} }, handle);
  return { url: `http://${hostname}:${server.addr.port}/`, stop: () => server.shutdown() };
}

const server = serve(Number(process.env.PORT ?? 8000), process.env.HOST ?? "127.0.0.1");
console.log(`Listening on ${server.url}`);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    if (stopping) process.exit(1); // a second signal: stop at once
    stopping = true;
    console.log(`${signal}: finishing the requests in progress, then closing the broker.`);
    await server.stop();
    await getBroker().close();
    console.log("Stopped.");
    process.exit(0);
  });
}
