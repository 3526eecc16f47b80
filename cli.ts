/**
 * The `dramatis` command line.
 *
 * ```sh
 * deno run -A cli.ts worker tasks.ts -t 2 -c 8      # run workers for the actors in tasks.ts
 * deno run -A cli.ts queues tasks.ts                # ready / delayed / in flight / dead, per queue
 * deno run -A cli.ts dead-letters list default tasks.ts
 * deno run -A cli.ts send tasks.ts countWords '["http://example.com"]'
 * ```
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["--version"]);
 * ```
 * @module
 */
import { VERSION } from "./version.ts";
import { configureLogging, LEVELS, logToFile } from "./_log.ts";
import { EXIT } from "./worker/_exit.ts";
import { importModules, moduleUrl } from "./worker/_import.ts";
import type { SupervisorOptions } from "./worker/supervisor.ts";
import type { Broker, QueueStats } from "./broker/broker.ts";
import { args as runtimeArgs, cwd as workingDir, exit } from "./_runtime.ts";
// Everything else is imported by the command that needs it: the supervisor process stays small
// and starts fast (on Deno, node:util alone costs ~10 ms of start-up).

const HELP = `dramatis ${VERSION}: background task processing for Deno and Bun

Usage:
  dramatis worker MODULE... [options]    run the actors of MODULE(s)
  dramatis queues [MODULE...] [--json]   counters per queue
  dramatis dead-letters list|requeue|purge QUEUE [MODULE...] [--json]
  dramatis send MODULE ACTOR [JSON]      enqueue a message (JSON: its args)
  dramatis compile MODULE... -o FILE     build one executable with MODULE(s)

Worker options:
  -Q, --queues a,b          queues to consume (default: all the modules declare)
  -p, --processes N         worker processes (default 1)
  -t, --threads N           Web Workers per process (default: CPU cores)
  -c, --concurrency N       messages in flight per Web Worker (default 8)
      --watch DIR           reload when a .ts/.js file under DIR changes
      --pid-file FILE       write the supervisor's pid to FILE
      --log-file FILE       append log lines to FILE instead of stderr
      --shutdown-timeout MS time in-flight messages get on stop (default 600000)
  -v, --verbose             debug logging (one line per message)

The broker is the one your modules set with setBroker(), else DRAMATIS_BROKER
(file:///path, redis://host:6379/0, memory:), else a file broker in ./.dramatis.

Signals: INT/TERM stop gracefully; a second INT/TERM stops at once; HUP reloads.
Exit codes: 0 ok, 1 killed, 2 module import failed, 3 broker unreachable,
4 pid file in use, 64 bad arguments.
  -h, --help   this help           --version   the version`;

/** Options `main` takes when the CLI is embedded (the compiled binary). */
export interface MainOptions {
  /** Task modules already imported by the binary (so none need to be given). */
  bundled?: boolean;
  /** How to start a worker process, when not `cli.ts __process`. */
  processCommand?: string[];
  /** The Web Worker entry, when not `worker/_web_worker.ts`. */
  webWorkerUrl?: string;
  /** Modules the Web Workers must import (the bundled binary's own entry). */
  webWorkerModules?: string[];
}

class UsageError extends Error {}

function int(name: string, v: unknown, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} takes a whole number >= ${min}, got ${JSON.stringify(v)}.`);
  }
  return n;
}

/**
 * Runs the CLI with `args` and resolves with the process exit code.
 *
 * @example
 * ```ts
 * import { main } from "./cli.ts";
 * const code = await main(["--help"]);
 * ```
 */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  if (args[0] === "__process") {
    const { runWorkerProcess } = await import("./worker/_process.ts");
    return await runWorkerProcess(JSON.parse(args[1]));
  }
  try {
    return await run(args, options);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`dramatis: ${(e as Error).message}\nRun "dramatis --help" for usage.`);
      return EXIT.USAGE;
    }
    if ((e as Error).name === "ModuleImportError") {
      console.error(`dramatis: ${(e as Error).message}`);
      return EXIT.IMPORT;
    }
    throw e;
  }
}

async function run(args: string[], options: MainOptions): Promise<number> {
  const { parseArgs } = await import("node:util");
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      version: { type: "boolean" },
      queues: { type: "string", short: "Q" },
      processes: { type: "string", short: "p" },
      threads: { type: "string", short: "t" },
      concurrency: { type: "string", short: "c" },
      watch: { type: "string" },
      "pid-file": { type: "string" },
      "log-file": { type: "string" },
      "shutdown-timeout": { type: "string" },
      verbose: { type: "boolean", short: "v" },
      json: { type: "boolean" },
      limit: { type: "string" },
      output: { type: "string", short: "o" },
    },
  });
  if (values.version) {
    console.log(`dramatis ${VERSION}`);
    return EXIT.OK;
  }
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(HELP);
    return values.help ? EXIT.OK : EXIT.USAGE;
  }
  const level = values.verbose ? LEVELS.DEBUG : LEVELS.INFO;
  const cwd = workingDir();
  switch (command) {
    case "worker": {
      if (rest.length === 0 && !options.bundled) {
        throw new UsageError(
          "worker needs at least one module with actors: dramatis worker tasks.ts",
        );
      }
      if (values["log-file"]) logToFile(values["log-file"]);
      configureLogging({ level });
      const sup: SupervisorOptions = {
        modules: [...(options.webWorkerModules ?? []), ...rest.map((m) => moduleUrl(m, cwd))],
        queues: values.queues?.split(",").map((q) => q.trim()).filter(Boolean),
        processes: int("processes", values.processes),
        threads: int("threads", values.threads),
        concurrency: int("concurrency", values.concurrency),
        shutdownTimeout: int("shutdown-timeout", values["shutdown-timeout"], 0),
        watch: values.watch,
        pidFile: values["pid-file"],
        logFile: values["log-file"],
        logLevel: level,
        processCommand: options.processCommand,
        webWorkerUrl: options.webWorkerUrl,
      };
      const { runSupervisor } = await import("./worker/supervisor.ts");
      return await runSupervisor(sup);
    }
    case "queues":
      return await withBroker(rest, cwd, (broker) => queues(broker, !!values.json));
    case "dead-letters": {
      const [action, queue, ...mods] = rest;
      if (!["list", "requeue", "purge"].includes(action) || !queue) {
        throw new UsageError("usage: dramatis dead-letters list|requeue|purge QUEUE [MODULE...]");
      }
      const limit = int("limit", values.limit);
      return await withBroker(
        mods,
        cwd,
        (b) => deadLetters(b, action, queue, !!values.json, limit),
      );
    }
    case "send": {
      // A compiled binary holds its modules: `app send ACTOR [JSON]`.
      const [mod, actorName, json] = options.bundled ? [undefined, ...rest] : rest;
      if ((!mod && !options.bundled) || !actorName) {
        throw new UsageError("usage: dramatis send MODULE ACTOR [JSON_ARGS]");
      }
      let sendArgs: unknown = [];
      if (json !== undefined) {
        try {
          sendArgs = JSON.parse(json);
        } catch {
          throw new UsageError(`JSON_ARGS is not valid JSON: ${json}`);
        }
      }
      return await withBroker(
        mod ? [mod] : [],
        cwd,
        (b) => send(b, actorName, sendArgs, !!values.json),
      );
    }
    case "compile": {
      if (rest.length === 0 || !values.output) {
        throw new UsageError("usage: dramatis compile MODULE... -o FILE");
      }
      const { compileBinary } = await import("./_compile.ts");
      return compileBinary(rest.map((m) => moduleUrl(m, cwd)), values.output);
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}.`);
  }
}

async function withBroker(
  modules: string[],
  cwd: string,
  fn: (broker: Broker) => Promise<number>,
): Promise<number> {
  configureLogging({ level: LEVELS.WARNING });
  await importModules(modules.map((m) => moduleUrl(m, cwd)));
  const { getBroker } = await import("./broker/global.ts");
  const broker = getBroker();
  try {
    return await fn(broker);
  } finally {
    await broker.close();
  }
}

function table(rows: (string | number)[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows.map((r) =>
    r.map((c, i) =>
      typeof c === "number" ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i])
    )
      .join("  ").trimEnd()
  ).join("\n");
}

async function queues(broker: Broker, json: boolean): Promise<number> {
  const names = [...new Set([...broker.getDeclaredQueues(), ...await broker.listQueues()])].sort();
  const stats: QueueStats[] = [];
  for (const q of names) stats.push(await broker.stats(q));
  if (json) {
    console.log(JSON.stringify(stats));
  } else if (stats.length === 0) {
    console.log("No queues. Pass the modules that declare your actors: dramatis queues tasks.ts");
  } else {
    console.log(table([
      ["queue", "ready", "delayed", "in flight", "dead"],
      ...stats.map((s) => [s.queueName, s.ready, s.delayed, s.inFlight, s.dead]),
    ]));
  }
  return EXIT.OK;
}

async function deadLetters(
  broker: Broker,
  action: string,
  queue: string,
  json: boolean,
  limit: number | undefined,
): Promise<number> {
  broker.declareQueue(queue);
  if (action === "list") {
    const dead = await broker.deadLetters(queue, { limit });
    if (json) console.log(JSON.stringify(dead.map((m) => m.asDict())));
    else if (dead.length === 0) console.log(`No dead letters in ${queue}.`);
    else {
      console.log(table([
        ["message id", "actor", "retries", "enqueued", "args"],
        ...dead.map((m) => [
          m.messageId,
          m.actorName,
          Number(m.options.retries ?? 0),
          new Date(m.messageTimestamp).toISOString(),
          JSON.stringify(m.args).slice(0, 60),
        ]),
      ]));
    }
  } else if (action === "requeue") {
    const n = await broker.requeueDeadLetters(queue);
    console.log(
      json ? JSON.stringify({ requeued: n }) : `Requeued ${n} dead letter(s) on ${queue}.`,
    );
  } else {
    const n = await broker.purgeDeadLetters(queue);
    console.log(json ? JSON.stringify({ purged: n }) : `Purged ${n} dead letter(s) from ${queue}.`);
  }
  return EXIT.OK;
}

async function send(
  broker: Broker,
  actorName: string,
  args: unknown,
  json: boolean,
): Promise<number> {
  if (!broker.hasActor(actorName)) {
    throw new UsageError(
      `no actor ${JSON.stringify(actorName)} in the module. Declared: ${
        [...broker.getDeclaredActors()].join(", ") || "none"
      }.`,
    );
  }
  const actor = broker.getActor(actorName);
  const list = Array.isArray(args) ? args : [args];
  const m = await broker.enqueue(actor.message(...list));
  console.log(json ? JSON.stringify(m.asDict()) : `Sent ${m} as ${m.messageId} to ${m.queueName}.`);
  return EXIT.OK;
}

if (import.meta.main) {
  exit(await main(runtimeArgs()));
}
