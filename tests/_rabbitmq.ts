// Helpers for the RabbitMQ tests, on the shared node (127.0.0.1:5672, guest/guest), which other
// tests use at the same time: unique queue names, a private vhost where fixed names are needed,
// `rabbitmqctl` to close only this test's connections (found by their connection_name).
import { execFile } from "node:child_process";
import { AmqpClient } from "../broker/amqp/client.ts";

export const SHARED_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F";

/** A queue name no other test uses. */
export function uniqueName(prefix = "t"): string {
  return `dramatis-${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Runs `rabbitmqctl` with `args` (against `node` if given); resolves with its stdout. */
export function rabbitmqctl(
  args: string[],
  options: { node?: string; env?: Record<string, string> } = {},
) {
  const bin = options.node ? "/usr/lib/rabbitmq/bin/rabbitmqctl" : "rabbitmqctl";
  const all = options.node ? ["-n", options.node, ...args] : args;
  return new Promise<string>((resolve, reject) => {
    execFile(
      bin,
      all,
      { env: { ...process.env, ...options.env }, timeout: 60_000 },
      (e, out, err) => {
        if (e) reject(new Error(`rabbitmqctl ${all.join(" ")} failed: ${err || e.message}`));
        else resolve(out);
      },
    );
  });
}

/** A fresh vhost that guest may use, for tests that need fixed queue names; delete it after. */
export async function tempVhost(): Promise<
  { url: string; vhost: string; delete(): Promise<void> }
> {
  const vhost = uniqueName("vhost");
  await rabbitmqctl(["add_vhost", vhost]);
  await rabbitmqctl(["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"]);
  return {
    vhost,
    url: `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vhost)}`,
    delete: () => rabbitmqctl(["delete_vhost", vhost]).then(() => {}),
  };
}

/** Closes, from the server, every connection whose connection_name contains `name`. */
export async function closeConnections(name: string, node?: string): Promise<number> {
  const out = await rabbitmqctl(
    ["list_connections", "pid", "client_properties", "-q", "--no-table-headers"],
    { node },
  );
  const pids = out.split("\n").filter((l) => l.includes(name)).map((l) => l.split("\t")[0]);
  for (const pid of pids) {
    await rabbitmqctl(["close_connection", pid, "closed by a dramatis test"], { node });
  }
  return pids.length;
}

/** Deletes queues (and what they hold) on the server at `url`. */
export async function deleteQueues(names: string[], url = SHARED_AMQP_URL): Promise<void> {
  const client = await AmqpClient.connect(url);
  try {
    const ch = await client.channel();
    for (const name of names) await ch.deleteQueue(name);
  } finally {
    await client.close();
  }
}

/** Deletes `q`, `q.DQ` and `q.XQ`. */
export function deleteDramatiqQueues(queues: string[], url = SHARED_AMQP_URL): Promise<void> {
  return deleteQueues(queues.flatMap((q) => [q, `${q}.DQ`, `${q}.XQ`]), url);
}

/** Resolves once `cond()` holds, polling; rejects with `what` after `timeout` ms. */
export async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeout = 20_000,
) {
  const deadline = Date.now() + timeout;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A TCP proxy in front of RabbitMQ, to break connections the way networks do: `cut()` passes
 * on half of the next chunk from the server and then drops both sides (a frame cut in the
 * middle); `freeze()` stops passing on what the server sends, without closing (a server gone
 * silent; the server still hears the client, so it keeps the connection).
 */
export async function tcpProxy(target = 5672) {
  const net = await import("node:net");
  const state = { cutNext: false, frozen: false, cuts: 0, connections: 0 };
  const sockets = new Set<import("node:net").Socket>();
  const server = net.createServer((client) => {
    state.connections++;
    const upstream = net.createConnection({ host: "127.0.0.1", port: target });
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("data", (d) => upstream.write(d));
    upstream.on("data", (d) => {
      if (state.frozen) return;
      if (state.cutNext && d.length > 1) {
        state.cutNext = false;
        state.cuts++;
        client.write(d.subarray(0, Math.floor(d.length / 2)), drop);
        return;
      }
      client.write(d);
    });
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as import("node:net").AddressInfo).port;
  return {
    port,
    state,
    url: `amqp://guest:guest@127.0.0.1:${port}/%2F`,
    cut: () => void (state.cutNext = true),
    freeze: (on = true) => void (state.frozen = on),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
