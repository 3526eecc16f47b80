// Helpers for the Redis tests: key cleanup on the shared server (127.0.0.1:6379) and private
// redis-server processes on free ports (for tests that stop, break or watch the server).
import net from "node:net";
import { type ChildProcess, spawn } from "node:child_process";
import { RedisClient } from "../broker/redis/client.ts";

export const SHARED_URL = "redis://127.0.0.1:6379/0";

/** A fresh namespace for one test (keys `<ns>:...`). */
export function randomNamespace(prefix = "t"): string {
  return `${prefix}${crypto.randomUUID().slice(0, 8)}`;
}

/** Deletes every key under `prefix` (e.g. `ns:`) on the server at `url`. */
export async function deleteKeys(prefix: string, url = SHARED_URL): Promise<void> {
  const redis = await RedisClient.connect(url);
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.send<[string, string[]]>(
        ["SCAN", cursor, "MATCH", `${prefix}*`, "COUNT", 1000],
      );
      if (keys.length > 0) await redis.send(["DEL", ...keys]);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    await redis.close();
  }
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A private redis-server (no persistence unless `args` asks for it), killed by pid. */
export class TestRedis {
  #proc: ChildProcess | undefined;
  constructor(readonly port: number, readonly args: string[] = []) {}

  /** Starts a server on a free port. */
  static async start(args: string[] = []): Promise<TestRedis> {
    const server = new TestRedis(await freePort(), args);
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** Starts (or restarts) the server on its port. */
  async start(): Promise<void> {
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", ""];
    if (!this.args.includes("--appendonly")) args.push("--appendonly", "no");
    args.push(...this.args);
    const proc = spawn("redis-server", args, { stdio: "ignore" });
    this.#proc = proc;
    const deadline = Date.now() + 5000;
    while (!(await canConnect(this.port))) {
      if (Date.now() > deadline || proc.exitCode !== null) {
        await this.kill();
        throw new Error(`redis-server ${args.join(" ")} did not start`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Sends `sig` to the server (SIGSTOP: it stops answering, connections stay open). */
  signal(sig: "SIGSTOP" | "SIGCONT"): void {
    if (this.#proc?.pid) process.kill(this.#proc.pid, sig);
  }

  /** SIGKILL by pid, and wait for the exit. */
  async kill(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    process.kill(proc.pid!, "SIGKILL");
    await exited;
  }
}
