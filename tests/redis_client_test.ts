// Tests of the Redis client (broker/redis/client.ts) against real redis-server processes: the
// shared one (127.0.0.1:6379, or DRAMATIS_TEST_REDIS_URL; keys under a random prefix, removed
// afterwards) and private ones started on free ports for password, TLS and crash/restart tests.
// Runs on both `deno test -A` and `bun test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  parseRedisUrl,
  RedisClient,
  type RedisClientEvent,
  type RedisClientOptions,
  RedisError,
  type Reply,
} from "../broker/redis/client.ts";
import { BrokerError, ConnectionError } from "../errors.ts";
import { SHARED_ADDRESS, SHARED_SERVER } from "./_redis_server.ts";

const SHARED = SHARED_SERVER;
const PREFIX = `dramatis-test:${crypto.randomUUID()}:`;
const key = (name: string) => PREFIX + name;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Connects to the shared server, runs `fn`, then deletes this run's keys and closes. */
async function withShared(
  fn: (redis: RedisClient) => Promise<void>,
  options: RedisClientOptions = {},
): Promise<void> {
  const redis = await RedisClient.connect({ url: SHARED, ...options });
  try {
    await fn(redis);
  } finally {
    let cursor = "0";
    do {
      const [next, keys] = await redis.send<[string, string[]]>(
        ["SCAN", cursor, "MATCH", PREFIX + "*", "COUNT", 1000],
      );
      if (keys.length > 0) await redis.send(["DEL", ...keys]);
      cursor = next;
    } while (cursor !== "0");
    await redis.close();
  }
}

async function freePort(): Promise<number> {
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

/** A private redis-server on a free port (TLS only if `tls`), keeping nothing on disk. */
class TestRedis {
  #proc: ChildProcess | undefined;
  constructor(readonly port: number, readonly args: string[] = [], readonly tls = false) {}

  static async start(args: string[] = [], tls = false): Promise<TestRedis> {
    const server = new TestRedis(await freePort(), args, tls);
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    const port = String(this.port);
    const args = this.tls ? ["--port", "0", "--tls-port", port] : ["--port", port];
    args.push("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...this.args);
    this.#proc = spawn("redis-server", args, { stdio: "ignore" });
    const deadline = Date.now() + 5000;
    while (!(await canConnect(this.port))) {
      if (Date.now() > deadline || this.#proc.exitCode !== null) {
        await this.kill();
        throw new Error(`redis-server ${args.join(" ")} did not start`);
      }
      await sleep(5);
    }
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

async function connectionsReceived(admin: RedisClient): Promise<number> {
  const info = await admin.send<string>(["INFO", "stats"]);
  return Number(/total_connections_received:(\d+)/.exec(info)![1]);
}

async function rejectsWith(
  promise: Promise<unknown>,
  type: new (...args: never[]) => Error,
  pattern?: RegExp,
): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    if (pattern) assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected a ${type.name}`);
}

test("client: SET/GET, command(), types of replies", async () => {
  await withShared(async (redis) => {
    assert.equal(redis.protocol, 3);
    assert.equal(redis.connected, true);
    assert.equal(await redis.send(["SET", key("a"), "héllo wörld"]), "OK");
    assert.equal(await redis.send(["GET", key("a")]), "héllo wörld");
    assert.equal(await redis.command("GET", key("missing")), null);
    assert.equal(await redis.command("INCRBY", key("n"), 41), 41);
    assert.equal(await redis.send(["INCR", key("n")]), 42);
    assert.equal(await redis.send(["INCRBYFLOAT", key("f"), 1.5]), "1.5");
    assert.equal(await redis.send(["EXISTS", key("a"), key("n"), key("nope")]), 2);
    await redis.send(["RPUSH", key("list"), "x", "y", 3]);
    assert.deepEqual(await redis.send(["LRANGE", key("list"), 0, -1]), ["x", "y", "3"]);
    assert.deepEqual(await redis.send(["SMEMBERS", key("nope")]), new Set());
    assert.equal(await redis.send(["ZSCORE", key("nope"), "m"]), null);
    await redis.send(["ZADD", key("z"), 2.5, "m"]);
    assert.equal(await redis.send(["ZSCORE", key("z"), "m"]), 2.5); // a RESP3 double
  });
});

test("client: 10,000 concurrent pipelined commands, replies matched in order", async () => {
  await withShared(async (redis) => {
    const n = 10_000;
    const sets: Promise<Reply>[] = [];
    const gets: Promise<Reply>[] = [];
    for (let i = 0; i < n; i++) {
      sets.push(redis.send(["SET", key(`p${i}`), `value-${i}`]));
      gets.push(redis.send(["GET", key(`p${i}`)]));
    }
    const echoes = Array.from({ length: n }, (_, i) => redis.send(["ECHO", `e${i}`]));
    assert.ok((await Promise.all(sets)).every((r) => r === "OK"));
    const values = await Promise.all(gets);
    for (let i = 0; i < n; i++) assert.equal(values[i], `value-${i}`);
    const echoed = await Promise.all(echoes);
    for (let i = 0; i < n; i++) assert.equal(echoed[i], `e${i}`);

    const replies = await redis.pipeline([
      ["SET", key("pl"), "1"],
      ["INCR", key("pl")],
      ["LPUSH", key("pl"), "x"],
      ["GET", key("pl")],
    ]);
    assert.deepEqual(replies.slice(0, 2), ["OK", 2]);
    assert.ok(replies[2] instanceof RedisError);
    assert.match(replies[2].message, /^WRONGTYPE/);
    assert.equal(replies[3], "2");
  });
});

test("client: binary-safe values (all byte values, 1 MB random payload)", async () => {
  await withShared(async (redis) => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    await redis.send([new TextEncoder().encode("SET"), key("bin"), all]);
    assert.deepEqual(await redis.send(["GET", key("bin")], { bytes: true }), all);
    assert.equal(await redis.send(["STRLEN", key("bin")]), 256);

    const big = new Uint8Array(1024 * 1024);
    for (let i = 0; i < big.length; i += 65536) {
      crypto.getRandomValues(big.subarray(i, i + 65536));
    }
    await redis.send(["SET", key("big"), big]);
    const back = await redis.send<Uint8Array>(["GET", key("big")], { bytes: true });
    assert.ok(Buffer.from(back).equals(Buffer.from(big)));

    // Binary field names and values in a hash, as a RESP3 map of byte arrays.
    await redis.send(["HSET", key("h"), new Uint8Array([0, 255]), new Uint8Array([13, 10])]);
    const map = await redis.send<Map<Reply, Reply>>(["HGETALL", key("h")], { bytes: true });
    assert.deepEqual([...map], [[new Uint8Array([0, 255]), new Uint8Array([13, 10])]]);
  });
});

test("client: RESP3 maps (HELLO 3, HGETALL) and RESP2 fallback shape", async () => {
  await withShared(async (redis) => {
    const hello = await redis.send<Map<Reply, Reply>>(["HELLO", 3]);
    assert.ok(hello instanceof Map);
    assert.equal(hello.get("server"), "redis");
    assert.equal(hello.get("proto"), 3);
    await redis.send(["HSET", key("h"), "f1", "v1", "f2", "v2"]);
    assert.deepEqual(
      await redis.send(["HGETALL", key("h")]),
      new Map([["f1", "v1"], ["f2", "v2"]]),
    );
    await using resp2 = await redis.duplicate({ protocol: 2 });
    assert.equal(resp2.protocol, 2);
    // RESP2: a flat [field, value, ...] array. Redis does not promise the order of a hash's
    // fields: compare the pairs, not their order.
    const flat = await resp2.send<string[]>(["HGETALL", key("h")]);
    assert.ok(Array.isArray(flat) && flat.length === 4, `HGETALL gave ${JSON.stringify(flat)}`);
    const pairs = [[flat[0], flat[1]], [flat[2], flat[3]]].sort((a, b) => a[0] < b[0] ? -1 : 1);
    assert.deepEqual(pairs, [["f1", "v1"], ["f2", "v2"]]);
  });
});

test("client: server errors reject with RedisError carrying Redis's message", async () => {
  await withShared(async (redis) => {
    await redis.send(["SET", key("s"), "x"]);
    const e = await rejectsWith(redis.send(["LPUSH", key("s"), "y"]), RedisError) as RedisError;
    assert.equal(e.message, "WRONGTYPE Operation against a key holding the wrong kind of value");
    assert.equal(e.code, "WRONGTYPE");
    assert.equal(e.command, "LPUSH");
    assert.ok(e instanceof BrokerError);
    await rejectsWith(redis.send(["NOSUCHCOMMAND"]), RedisError, /^ERR unknown command/);
    await rejectsWith(
      redis.send(["EVAL", "return redis.error_reply('MYERR custom failure')", 0]),
      RedisError,
      /^MYERR custom failure/,
    );
    // The connection is still in sync after errors.
    assert.equal(await redis.send(["GET", key("s")]), "x");
    await rejectsWith(redis.send(["SET", key("s"), NaN]), TypeError);
    assert.equal(await redis.send(["GET", key("s")]), "x");
  });
});

test("client: EVALSHA script cache with NOSCRIPT fallback after SCRIPT FLUSH", async () => {
  // SCRIPT FLUSH runs on a private server, not to disturb other users of the shared one.
  const server = await TestRedis.start();
  try {
    await using redis = await RedisClient.connect({ port: server.port });
    const lua =
      "redis.call('INCR', KEYS[1]); return {KEYS[1], ARGV[1], redis.call('GET', KEYS[1])}";
    const script = redis.script(lua);
    assert.equal(redis.script(lua), script); // cached
    const sha = await script.sha1();
    assert.equal(sha, await redis.send(["SCRIPT", "LOAD", lua])); // same SHA as Redis
    assert.deepEqual(await script.run(["k"], ["a"]), ["k", "a", "1"]);
    await redis.send(["SCRIPT", "FLUSH"]);
    assert.deepEqual(await redis.send(["SCRIPT", "EXISTS", sha]), [0]);
    // Many concurrent calls all hit NOSCRIPT and all fall back.
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => script.run(["k"], [`b${i}`])),
    );
    assert.deepEqual(results.map((r) => (r as Reply[])[1]), results.map((_, i) => `b${i}`));
    assert.deepEqual(await redis.send(["SCRIPT", "EXISTS", sha]), [1]); // loaded again
    assert.deepEqual(await script.run(["k"], ["c"]), ["k", "c", "52"]);
    await rejectsWith(
      redis.script("return redis.call('NOPE')").run([]),
      RedisError,
      /Unknown Redis command/i,
    );
  } finally {
    await server.kill();
  }
});

test("client: a BLPOP on a duplicate() connection does not block the main one", async () => {
  await withShared(async (redis) => {
    await using blocking = await redis.duplicate();
    const started = performance.now();
    const popped = blocking.send(["BLPOP", key("queue"), 5]);
    await sleep(20);
    for (let i = 0; i < 100; i++) assert.equal(await redis.send(["PING"]), "PONG");
    assert.ok(performance.now() - started < 1000, "the main connection was blocked");
    await redis.send(["RPUSH", key("queue"), "job"]);
    assert.deepEqual(await popped, [key("queue"), "job"]);
    assert.ok(performance.now() - started < 2000);
  });
});

test("client: command timeout rejects, and the connection stays in sync", async () => {
  await withShared(async (redis) => {
    await using blocking = await redis.duplicate();
    const started = performance.now();
    await rejectsWith(
      blocking.send(["BLPOP", key("never"), 0], { timeout: 100 }),
      ConnectionError,
      /did not answer BLPOP within 100 ms/,
    );
    assert.ok(performance.now() - started < 1000);
    const ping = blocking.send(["PING"]); // queued behind the still-blocked BLPOP
    await redis.send(["RPUSH", key("never"), "late"]); // unblocks it; its reply is dropped
    assert.equal(await ping, "PONG");
    assert.equal(await blocking.send(["LLEN", key("never")]), 0);
  });
});

test("client: SELECT db from the URL", async () => {
  await using db15 = await RedisClient.connect(`${SHARED}/15`);
  await withShared(async (db0) => {
    await db15.send(["SET", key("db"), "in 15"]);
    assert.equal(await db0.send(["GET", key("db")]), null);
    assert.equal(await db15.send(["GET", key("db")]), "in 15");
    await db15.send(["DEL", key("db")]);
  });
  await rejectsWith(
    RedisClient.connect(`${SHARED}/999`),
    ConnectionError,
    /refused SELECT 999 .*DB index is out of range/,
  );
});

test("client: connection refused gives one clear ConnectionError, quickly", async () => {
  const port = await freePort();
  const started = performance.now();
  const error = await rejectsWith(
    RedisClient.connect(`redis://127.0.0.1:${port}`),
    ConnectionError,
  );
  assert.ok(performance.now() - started < 1000);
  assert.ok(error.message.includes(`127.0.0.1:${port}`), error.message);
  assert.match(error.message, /connection refused/);
  // Commands on a never-connected client get the same kind of error, and may retry later.
  const lazy = new RedisClient({ port });
  await rejectsWith(lazy.send(["PING"]), ConnectionError, /connection refused/);
  await rejectsWith(lazy.send(["PING"]), ConnectionError, /connection refused/);
  await lazy.close();
});

test("client: a silent server or a non-Redis server gives a clear ConnectionError", async () => {
  const sockets: net.Socket[] = [];
  const silent = net.createServer((socket) => sockets.push(socket)); // never answers
  const http = net.createServer((socket) => {
    socket.on("data", () => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  try {
    const silentPort = (silent.address() as net.AddressInfo).port;
    const started = performance.now();
    await rejectsWith(
      RedisClient.connect({ port: silentPort, connectTimeout: 100 }),
      ConnectionError,
      new RegExp(`127\\.0\\.0\\.1:${silentPort}: no answer to the handshake within 100 ms`),
    );
    assert.ok(performance.now() - started < 1000);
    await rejectsWith(
      RedisClient.connect({ port: (http.address() as net.AddressInfo).port }),
      ConnectionError,
      /does not speak RESP.*unexpected type byte 0x48 \("H"\)/,
    );
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await new Promise((resolve) => http.close(resolve));
  }
});

test("client: connects lazily on the first command; connect() is idempotent", async () => {
  const redis = new RedisClient({ url: SHARED, name: "dramatis-test" });
  assert.equal(redis.connected, false);
  assert.equal(await redis.send(["CLIENT", "GETNAME"]), "dramatis-test");
  await Promise.all([redis.connect(), redis.connect()]);
  assert.equal(redis.connected, true);
  assert.equal(redis.address, SHARED_ADDRESS);
  await redis.close();
});

test("client: wrong password gives one clear ConnectionError and no retry loop", async () => {
  const server = await TestRedis.start(["--requirepass", "s3cret"]);
  try {
    await using admin = await RedisClient.connect(`redis://:s3cret@127.0.0.1:${server.port}`);
    const before = await connectionsReceived(admin);
    const url = `redis://:wrong@127.0.0.1:${server.port}`;
    const error = await rejectsWith(RedisClient.connect(url), ConnectionError);
    assert.ok(error.message.includes(`127.0.0.1:${server.port}`), error.message);
    assert.match(error.message, /WRONGPASS/);
    assert.match(error.message, /password in the URL/);
    assert.ok(!error.message.includes("wrong"), "the password must not leak into the message");
    await rejectsWith(
      RedisClient.connect(`redis://127.0.0.1:${server.port}`),
      ConnectionError,
      /requires a password.*NOAUTH/,
    );
    await sleep(200);
    assert.equal(await connectionsReceived(admin), before + 2, "one attempt each, no retries");

    // ACL-style user + password also works.
    await using user = await RedisClient.connect(
      `redis://default:s3cret@127.0.0.1:${server.port}/2`,
    );
    assert.equal(await user.send(["PING"]), "PONG");

    // The password changes while connected: the reconnection fails once, and stops.
    const events: RedisClientEvent[] = [];
    const victim = await RedisClient.connect({
      url: `redis://:s3cret@127.0.0.1:${server.port}`,
      reconnect: { initialDelay: 10 },
      onEvent: (event) => events.push(event),
    });
    const id = await victim.send<number>(["CLIENT", "ID"]);
    await admin.send(["CONFIG", "SET", "requirepass", "n3w"]);
    const beforeKill = await connectionsReceived(admin);
    await admin.send(["CLIENT", "KILL", "ID", id]);
    while (victim.connected) await sleep(1);
    await rejectsWith(victim.send(["PING"]), ConnectionError, /WRONGPASS/);
    await sleep(200);
    assert.equal(await connectionsReceived(admin), beforeKill + 1);
    assert.deepEqual(events.map((e) => e.type), ["disconnect", "reconnecting", "give-up"]);
    await rejectsWith(victim.send(["PING"]), ConnectionError, /WRONGPASS/);
    await victim.close();
  } finally {
    await server.kill();
  }
});

test("client: server killed mid-stream and restarted: in-flight commands reject, then reconnect", async () => {
  const server = await TestRedis.start();
  try {
    const events: string[] = [];
    const options: RedisClientOptions = {
      port: server.port,
      reconnect: { initialDelay: 20, maxDelay: 100 },
      onEvent: (event) => events.push(event.type),
    };
    await using redis = await RedisClient.connect(options);
    await using failFast = await RedisClient.connect({
      ...options,
      whileDisconnected: "fail",
      onEvent: undefined,
    });
    await using noReconnect = await RedisClient.connect({ port: server.port, reconnect: false });
    const blocked = rejectsWith(
      redis.send(["BLPOP", "blocked", 0]),
      ConnectionError,
      /may or may not have run/,
    );
    await sleep(30);
    const burst = Promise.allSettled(
      Array.from({ length: 10_000 }, (_, i) => redis.send(["SET", `k${i}`, i])),
    );
    await server.kill();

    const error = await blocked;
    assert.ok(error.message.includes(`127.0.0.1:${server.port}`));
    const outcomes = await burst;
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") assert.ok(outcome.reason instanceof ConnectionError);
      else assert.equal(outcome.value, "OK");
    }
    assert.ok(outcomes.some((o) => o.status === "rejected"), "some SETs were in flight");

    // While the server is down: "fail" mode fails fast, "wait" mode waits.
    await sleep(50);
    assert.equal(redis.connected, false);
    const started = performance.now();
    await rejectsWith(failFast.send(["PING"]), ConnectionError, /Not connected/);
    assert.ok(performance.now() - started < 100);
    await rejectsWith(noReconnect.send(["PING"]), ConnectionError, /reconnect is disabled/);
    const waiting = redis.send(["PING"]);
    const timedOut = redis.send(["PING"], { timeout: 50 });
    await rejectsWith(timedOut, ConnectionError, /Could not send PING within 50 ms: not connected/);

    await sleep(150); // a few failed reconnection attempts
    await server.start(); // same port
    assert.equal(await waiting, "PONG");
    assert.equal(await redis.send(["SET", "after", "restart"]), "OK");
    assert.equal(await redis.send(["GET", "after"]), "restart");
    assert.equal(redis.connected, true);
    assert.deepEqual(
      [events[0], events[1], events.at(-1)],
      ["disconnect", "reconnecting", "reconnect"],
    );
    // The fail-fast client reconnects too.
    const deadline = Date.now() + 2000;
    while (!failFast.connected && Date.now() < deadline) await sleep(10);
    assert.equal(await failFast.send(["GET", "after"]), "restart");
  } finally {
    await server.kill();
  }
});

test("client: commands waiting for a reconnection give up after maxWait", async () => {
  const server = await TestRedis.start();
  try {
    await using redis = await RedisClient.connect({ port: server.port, maxWait: 100 });
    await server.kill();
    await sleep(20);
    const started = performance.now();
    await rejectsWith(redis.send(["PING"]), ConnectionError, /Not connected .* for 100 ms/);
    assert.ok(performance.now() - started < 500);
  } finally {
    await server.kill();
  }
});

test("client: close() rejects pending commands; asyncDispose; later commands fail", async () => {
  await withShared(async (main) => {
    const redis = await main.duplicate();
    const pending = rejectsWith(redis.send(["BLPOP", key("closing"), 5]), ConnectionError);
    await sleep(10);
    await redis.close();
    await pending;
    await rejectsWith(redis.send(["PING"]), ConnectionError, /was closed/);
    await redis.close(); // idempotent
    {
      await using scoped = await main.duplicate();
      assert.equal(await scoped.send(["PING"]), "PONG");
    }
  });
});

const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUSStK8hzzSkeJXOAAQAd2VICdeMAwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNzAwMzgxOVoYDzIxMjYxMTAz
MDAzODE5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASJUrUpuBOLMCHNYJXSdbMzJ4dEtY8gtkj0eRscjBMmM96/30zxMA0c
5wVMyvSaOZsVDQOhYaEyZqGiPoKhgAgWo28wbTAdBgNVHQ4EFgQUN7jacWgBBfIf
khjlejKuXOTXL+IwHwYDVR0jBBgwFoAUN7jacWgBBfIfkhjlejKuXOTXL+IwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSAAwRQIhAMmiq7xkEKNj597pcyHzBK33uUVVr0lFBZVCTl7ncZ0RAiAw
SruWpcMS3BcboP9E/BnloHyPkuEv4vRPBdIMn8N3EA==
-----END CERTIFICATE-----
`;
// A throwaway key for a self-signed localhost certificate, used only by this test.
const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgweHQP/lH38BwmbEn
WGAV8/ebLX3TGdnt60O2BQ27gmyhRANCAASJUrUpuBOLMCHNYJXSdbMzJ4dEtY8g
tkj0eRscjBMmM96/30zxMA0c5wVMyvSaOZsVDQOhYaEyZqGiPoKhgAgW
-----END PRIVATE KEY-----
`;

test("client: rediss:// (TLS) with a custom CA; clear errors without it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dramatis-redis-tls-"));
  try {
    writeFileSync(join(dir, "cert.pem"), TEST_CERT);
    writeFileSync(join(dir, "key.pem"), TEST_KEY);
    const files = [
      "--tls-cert-file",
      join(dir, "cert.pem"),
      "--tls-key-file",
      join(dir, "key.pem"),
    ];
    const tlsServer = await TestRedis.start([...files, "--tls-auth-clients", "no"], true)
      .catch(() => undefined);
    if (tlsServer === undefined) return; // redis-server built without TLS: nothing to test
    const tlsPort = tlsServer.port;
    try {
      for (const host of ["127.0.0.1", "localhost"]) {
        await using redis = await RedisClient.connect({
          url: `rediss://${host}:${tlsPort}`,
          tls: { ca: TEST_CERT },
        });
        assert.equal(await redis.send(["PING"]), "PONG");
      }
      await rejectsWith(
        RedisClient.connect(`rediss://127.0.0.1:${tlsPort}`),
        ConnectionError,
        /TLS connection failed .*self.signed/,
      );
      await rejectsWith(
        RedisClient.connect(`redis://127.0.0.1:${tlsPort}`),
        ConnectionError,
        /closed the connection during the handshake.*rediss:\/\//,
      );
    } finally {
      await tlsServer.kill();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("parseRedisUrl: valid and invalid URLs", () => {
  assert.deepEqual(parseRedisUrl("redis://localhost"), {
    hostname: "localhost",
    port: 6379,
    db: 0,
    tls: false,
  });
  assert.deepEqual(parseRedisUrl("rediss://us%40r:p%3Ass@example.com:6380/4"), {
    hostname: "example.com",
    port: 6380,
    db: 4,
    tls: true,
    username: "us@r",
    password: "p:ss",
  });
  assert.deepEqual(parseRedisUrl("redis://:pw@[::1]:7000/"), {
    hostname: "::1",
    port: 7000,
    db: 0,
    tls: false,
    password: "pw",
  });
  for (
    const bad of ["http://x", "redis://host/abc", "redis://host?db=1", "redis://user@host", ""]
  ) {
    assert.throws(() => parseRedisUrl(bad), TypeError, bad);
  }
  assert.throws(() => parseRedisUrl("redis://:topsecret@host/x"), (e: Error) => {
    assert.ok(!e.message.includes("topsecret"));
    return true;
  });
  assert.throws(() => new RedisClient({ url: "redis://host", port: 70000 }), TypeError);
});
