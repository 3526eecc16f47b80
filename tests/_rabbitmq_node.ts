// A private RabbitMQ node for tests that need another server configuration (a short
// consumer_timeout, TLS, users and vhosts, a memory alarm): started on free ports with its own
// data directory and Erlang cookie, stopped by pid (its process group). The shared node is never
// touched. Starting one takes 5-30 s on these machines.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AmqpClient } from "../broker/amqp/client.ts";
import { freePort } from "./_redis_server.ts";

const SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/** Why a private node cannot be started here, or false. */
export function nodeSkip(): string | false {
  if (!existsSync(SERVER)) return `${SERVER} is missing (apt-get install rabbitmq-server)`;
  if (!existsSync("/usr/bin/openssl")) return "openssl is missing (apt-get install openssl)";
  return false;
}

function exec(cmd: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<string>((resolve, reject) => {
    execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 120_000 }, (e, out, err) => {
      if (e) reject(new Error(`${cmd} ${args.join(" ")} failed: ${err || e.message}`));
      else resolve(out);
    });
  });
}

export class TestRabbitmq {
  #proc: ChildProcess | undefined;
  private constructor(
    readonly dir: string,
    readonly node: string,
    readonly port: number,
    readonly tlsPort: number,
  ) {}

  /**
   * Starts a node with `config` lines added to rabbitmq.conf (a TLS listener always) and
   * `advanced` terms in advanced.config's rabbit section (`{channel_tick_interval, 1000}`).
   */
  static async start(config: string[] = [], advanced: string[] = []): Promise<TestRabbitmq> {
    const dir = mkdtempSync(join(tmpdir(), "dramatis-rmq-"));
    const [port, tlsPort, distPort] = [await freePort(), await freePort(), await freePort()];
    const node = new TestRabbitmq(dir, `dramatis-${port}@localhost`, port, tlsPort);
    try {
      await node.#certificates();
      mkdirSync(join(dir, "home"));
      writeFileSync(join(dir, "home", ".erlang.cookie"), `DRAMATIS${crypto.randomUUID()}`, {
        mode: 0o400,
      });
      writeFileSync(
        join(dir, "rabbitmq.conf"),
        [
          `listeners.tcp.default = 127.0.0.1:${port}`,
          `listeners.ssl.default = 127.0.0.1:${tlsPort}`,
          `ssl_options.cacertfile = ${join(dir, "ca.pem")}`,
          `ssl_options.certfile = ${join(dir, "server.pem")}`,
          `ssl_options.keyfile = ${join(dir, "server.key")}`,
          "ssl_options.verify = verify_none",
          "ssl_options.fail_if_no_peer_cert = false",
          "loopback_users = none",
          ...config,
        ].join("\n") + "\n",
      );
      writeFileSync(join(dir, "enabled_plugins"), "[].\n");
      writeFileSync(join(dir, "advanced.config"), `[{rabbit, [${advanced.join(", ")}]}].\n`);
      node.#proc = spawn(SERVER, [], {
        cwd: dir,
        env: { ...process.env, ...node.#env(), RABBITMQ_DIST_PORT: String(distPort) },
        stdio: "ignore",
        detached: true,
      });
      const deadline = Date.now() + 120_000;
      for (;;) {
        try {
          await (await AmqpClient.connect({ url: node.url, connectTimeout: 2_000 })).close();
          return node;
        } catch (e) {
          if (Date.now() > deadline || node.#proc.exitCode !== null) throw e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    } catch (e) {
      await node.stop();
      throw e;
    }
  }

  #env(): Record<string, string> {
    const dir = this.dir;
    return {
      HOME: join(dir, "home"),
      RABBITMQ_NODENAME: this.node,
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
      RABBITMQ_LOG_BASE: join(dir, "log"),
      RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, "advanced.config"),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
    };
  }

  /** A CA and a server certificate for localhost and 127.0.0.1. */
  async #certificates(): Promise<void> {
    const d = (f: string) => join(this.dir, f);
    writeFileSync(d("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    const ssl = (...args: string[]) => exec("openssl", args);
    await ssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      d("ca.key"),
      "-out",
      d("ca.pem"),
      "-days",
      "2",
      "-subj",
      "/CN=dramatis test CA",
    );
    await ssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      d("server.key"),
      "-out",
      d("server.csr"),
      "-subj",
      "/CN=localhost",
    );
    await ssl(
      "x509",
      "-req",
      "-in",
      d("server.csr"),
      "-CA",
      d("ca.pem"),
      "-CAkey",
      d("ca.key"),
      "-CAcreateserial",
      "-out",
      d("server.pem"),
      "-days",
      "2",
      "-extfile",
      d("ext.cnf"),
    );
  }

  /** The PEM of the CA that signed the server's certificate. */
  get ca(): string {
    return readFileSync(join(this.dir, "ca.pem"), "utf8");
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}/%2F`;
  }

  get tlsUrl(): string {
    return `amqps://guest:guest@localhost:${this.tlsPort}/%2F`;
  }

  /** Runs rabbitmqctl against this node. */
  ctl(args: string[]): Promise<string> {
    return exec(CTL, ["-n", this.node, ...args], { HOME: join(this.dir, "home") });
  }

  /** SIGKILL of the node's process group, and its files removed. */
  async stop(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      try {
        process.kill(-proc.pid!, "SIGKILL");
      } catch { /* gone */ }
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
