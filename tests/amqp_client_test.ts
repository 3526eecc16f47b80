// The AMQP client against the shared RabbitMQ and against fake servers: URL parsing; pipelined
// confirms; a channel closed by the server opening again; heartbeats both ways (an idle
// connection stays up; a silent peer is detected and the client reconnects, restoring its
// consumers); and servers that send garbage, nothing, or the wrong protocol, which must end in
// a clear error, never a hang. Runs on both `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { AmqpClient, type AmqpClientEvent, parseAmqpUrl } from "../broker/amqp/client.ts";
import { AmqpError } from "../broker/amqp/errors.ts";
import { ByteWriter } from "../broker/amqp/_bytes.ts";
import { FrameReader } from "../broker/amqp/_frame.ts";
import { readMethod, writeMethod } from "../broker/amqp/_methods.ts";
import { ConnectionError } from "../errors.ts";
import { deleteQueues, SHARED_AMQP_URL, tcpProxy, uniqueName, until } from "./_rabbitmq.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("amqp client: URLs as RabbitMQ and pika read them", () => {
  assert.deepEqual(parseAmqpUrl("amqp://localhost"), {
    hostname: "localhost",
    port: 5672,
    username: "guest",
    password: "guest",
    vhost: "/",
    tls: false,
  });
  const u = parseAmqpUrl("amqps://app:s%40cret@[::1]:5999/%2Fprod?heartbeat=30&frame_max=8192");
  assert.deepEqual(
    [u.hostname, u.port, u.username, u.password, u.vhost, u.tls, u.heartbeat, u.frameMax],
    ["::1", 5999, "app", "s@cret", "/prod", true, 30, 8192],
  );
  assert.equal(parseAmqpUrl("amqp://h/").vhost, "/");
  assert.equal(parseAmqpUrl("amqp://h/%2F").vhost, "/");
  assert.equal(parseAmqpUrl("amqp://h/app").vhost, "app");
  assert.equal(parseAmqpUrl("amqps://h").port, 5671);
  assert.throws(() => parseAmqpUrl("http://h"), /Unsupported AMQP URL scheme "http:"/);
  assert.throws(() => parseAmqpUrl("amqp://h/a/b"), /has a "\/"; write it as %2F/);
  assert.throws(() => parseAmqpUrl("amqp://h?heartbeat=x"), /heartbeat must be an integer/);
  assert.throws(() => parseAmqpUrl("amqp://h?nope=1"), /Unknown AMQP URL parameter "nope"/);
  assert.throws(() => new AmqpClient({ url: "amqp://h:99999" }), /Invalid AMQP URL/);
});

test("amqp client: pipelined confirms, and a channel the server closed opens again", async () => {
  await using client = await AmqpClient.connect({ url: SHARED_AMQP_URL });
  const ch = await client.channel({ confirm: true });
  const q = uniqueName("client");
  await ch.declareQueue(q, { durable: false, autoDelete: false });
  try {
    const sends = Array.from({ length: 3_000 }, (_, i) => ch.publish(q, `m${i}`));
    assert.ok(ch.unconfirmed > 0, "nothing was in flight at once");
    await Promise.all(sends);
    assert.equal(ch.unconfirmed, 0);
    assert.equal((await ch.declareQueue(q, { durable: false })).messageCount, 3_000);
    // A publish to an exchange that does not exist: the server closes the channel (404).
    const generation = ch.generation;
    const e = await ch.publish("x", "y", { exchange: uniqueName("nowhere") }).catch((e) => e);
    assert.ok(e instanceof AmqpError && e.code === 404, String(e));
    assert.match(e.message, /NOT_FOUND - no exchange/);
    await ch.publish(q, "after"); // waits for the channel to open again
    assert.equal(ch.generation, generation + 1);
    assert.equal(await ch.purgeQueue(q), 3_001);
  } finally {
    await ch.deleteQueue(q);
  }
});

test(
  "amqp client: an idle connection with 1 s heartbeats stays up; a silent server is dropped, then reconnected with its consumers",
  {
    timeout: 60_000,
  },
  async () => {
    const proxy = await tcpProxy();
    const events: AmqpClientEvent[] = [];
    const client = await AmqpClient.connect({
      url: proxy.url,
      heartbeat: 1,
      reconnect: { initialDelay: 50, maxDelay: 200 },
      onEvent: (e) => events.push(e),
    });
    const q = uniqueName("hb");
    try {
      assert.equal(client.heartbeat, 1);
      const ch = await client.channel({ confirm: true, prefetch: 10 });
      await ch.declareQueue(q, { durable: false });
      let recovered = 0;
      const got: string[] = [];
      const consumer = await client.channel({
        prefetch: 5,
        onRecover: async (c) => {
          recovered++;
          await c.declareQueue(q, { durable: false });
        },
      });
      const tag = await consumer.consume(q, (d) => {
        got.push(new TextDecoder().decode(d.body));
        consumer.ack(d);
      }, { tag: "hb-consumer" });
      assert.equal(tag, "hb-consumer");
      // Idle for 3.5 heartbeats: both sides keep it alive (RabbitMQ drops a client silent for 2).
      await sleep(3_500);
      assert.deepEqual(events.map((e) => e.type), []);
      await ch.publish(q, "before");
      await until("delivered", () => got.length === 1);

      proxy.freeze(); // the server goes silent, the socket stays open
      await until(
        "the dead server was noticed",
        () => events.some((e) => e.type === "disconnect"),
        10_000,
      );
      const lost = events.find((e) => e.type === "disconnect") as { error: Error };
      assert.match(lost.error.message, /RabbitMQ sent nothing for \d+ s \(heartbeat 1 s\)/);
      proxy.freeze(false);
      await until("reconnected", () => events.some((e) => e.type === "reconnect"), 20_000);
      await ch.publish(q, "after"); // the consumer was restored, with its tag and prefetch
      await until("delivered after the reconnection", () => got.length === 2, 10_000);
      assert.deepEqual(got, ["before", "after"]);
      assert.equal(recovered, 1);
    } finally {
      await client.close();
      await proxy.close();
      await deleteQueues([q]);
    }
  },
);

/** A TCP server that runs `script` for each connection; closed after the test. */
async function fakeServer(script: (socket: net.Socket) => void) {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on("error", () => {});
    script(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `amqp://127.0.0.1:${port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A fake AMQP server: the whole handshake, then `after(socket)`. */
function handshakeThen(after: (socket: net.Socket) => void) {
  return (socket: net.Socket) => {
    const reader = new FrameReader();
    const send = (name: string, args: Record<string, unknown> = {}, channel = 0) => {
      const w = new ByteWriter();
      writeMethod(w, channel, name, args);
      socket.write(w.take());
    };
    let header = true;
    socket.on("data", (chunk: Uint8Array) => {
      if (header) {
        header = false;
        send("connection.start", {
          versionMajor: 0,
          versionMinor: 9,
          serverProperties: { product: "fake" },
          mechanisms: "PLAIN",
          locales: "en_US",
        });
        chunk = chunk.subarray(8);
      }
      reader.feed(chunk, (_type, channel, payload) => {
        const m = readMethod(payload);
        if (m.name === "connection.start-ok") {
          send("connection.tune", { channelMax: 10, frameMax: 4096 });
        }
        if (m.name === "connection.open") {
          send("connection.open-ok");
          after(socket);
        }
        if (m.name === "channel.open") send("channel.open-ok", {}, channel);
      });
    });
  };
}

test("amqp client: servers that send garbage, nothing, or another protocol give a clear error", {
  timeout: 60_000,
}, async () => {
  const cases: [string, (s: net.Socket) => void, RegExp][] = [
    [
      "HTTP",
      (s) => s.end("HTTP/1.1 400 Bad Request\r\n\r\n"),
      /does not speak AMQP 0-9-1 \(unknown frame type 72\)/,
    ],
    [
      "AMQP 1.0",
      (s) => s.write(new Uint8Array([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0])),
      /protocol header AMQP 1-0/,
    ],
    ["silence", () => {}, /no answer to the AMQP handshake within 500 ms/],
    ["a closed socket", (s) => s.destroy(), /closed the connection during the AMQP handshake/],
  ];
  for (const [what, script, message] of cases) {
    const server = await fakeServer(script);
    try {
      const start = Date.now();
      await assert.rejects(
        AmqpClient.connect({ url: server.url, connectTimeout: 500 }),
        (e: Error) => e instanceof ConnectionError && message.test(e.message),
        what,
      );
      assert.ok(Date.now() - start < 5_000, `${what}: took too long`);
    } finally {
      await server.close();
    }
  }
  // After the handshake: a frame with a bad end octet drops the connection; calls in flight
  // reject at once instead of waiting for ever.
  const server = await fakeServer(handshakeThen((s) => {
    setTimeout(() => s.write(new Uint8Array([1, 0, 1, 0, 0, 0, 4, 0, 60, 0, 80, 0])), 50);
  }));
  try {
    const events: AmqpClientEvent[] = [];
    const client = await AmqpClient.connect({
      url: server.url,
      reconnect: false,
      onEvent: (e) => events.push(e),
    });
    const ch = await client.channel();
    await assert.rejects(ch.declareQueue("q"), (e: Error) => e instanceof ConnectionError);
    await until("dropped", () => events.some((e) => e.type === "disconnect"));
    const lost = events.find((e) => e.type === "disconnect") as { error: Error };
    assert.match(lost.error.message, /frame end octet is 0x00, expected 0xCE/);
    await client.close();
  } finally {
    await server.close();
  }
});
