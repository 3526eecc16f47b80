// The commands of the CLI: their usage, flags and help. Each runs from its own file in cli/,
// imported only when it runs (the supervisor process stays small and starts fast).
import { VERSION } from "../version.ts";
import type { Command } from "./_args.ts";
import { OPS_COMMANDS, OPS_RUN } from "./_ops_commands.ts";

import type { Run } from "./_args.ts";
export type { Context, Run } from "./_args.ts";

const BROKER = `The broker: MODULE:NAME names it (the export NAME of MODULE, as Dramatiq's
module:attribute), else the one your modules set with setBroker(), else
DRAMATIS_BROKER (file:///path, redis://host:6379/0, amqp://host:5672/vhost,
memory:), else a file broker in ./.dramatis.`;

const json = { name: "json", help: "print JSON (for scripts)" };

export const COMMANDS: Command[] = [
  {
    name: "worker",
    args: "MODULE... [options]",
    bundledArgs: "[options]",
    summary: "run the actors of MODULE(s)",
    about: `Runs the actors that MODULE(s) declare: a supervisor starts -p worker processes,
each running -t Web Workers with -c messages in flight each.

${BROKER}

Signals: INT/TERM stop gracefully (the same stop sent to the whole process group
is one stop); a second INT/TERM stops at once; HUP reloads the code.
Exit codes: 0 stopped, 1 stopped by a second signal, 2 a module failed to
import, 3 the broker could not be set up, 4 the pid file is in use, 64 bad
arguments.`,
    flags: [
      { name: "queues", short: "Q", value: "a,b", help: "queues to consume (default: all)" },
      { name: "processes", short: "p", value: "N", help: "worker processes (default 1)" },
      { name: "threads", short: "t", value: "N", help: "Web Workers per process (default: cores)" },
      {
        name: "concurrency",
        short: "c",
        value: "N",
        help: "messages in flight per Web Worker (default 8)",
      },
      { name: "watch", value: "DIR", help: "reload when a .ts/.js file under DIR changes" },
      {
        name: "watch-use-polling",
        help: "with --watch: poll every second (no fs events)",
      },
      { name: "pid-file", value: "FILE", help: "write the supervisor's pid to FILE" },
      { name: "log-file", value: "FILE", help: "append log lines to FILE, not stderr" },
      {
        name: "shutdown-timeout",
        value: "MS",
        help: "longest graceful stop (default 600000)",
      },
      {
        name: "metrics",
        value: "HOST:PORT",
        help: "serve Prometheus /metrics (all workers)",
      },
      { name: "verbose", short: "v", help: "debug logging: a line per message" },
      { name: "dashboard", value: "ADDR", help: "serve the dashboard on ADDR (see dashboard)" },
    ],
  },
  {
    name: "queues",
    args: "[MODULE...] [options]",
    bundledArgs: "[options]",
    summary: "ready, delayed, in flight, dead: per queue",
    about: `Prints the counters of every queue: those the broker holds (file and Redis
brokers list theirs, no module needed) and those MODULE(s) declare.

${BROKER}`,
    flags: [json, { name: "running", help: "the messages running now, from the worker registry" }],
  },
  {
    name: "dead-letters",
    args: "list|requeue|purge QUEUE [MODULE...] [options]",
    bundledArgs: "list|requeue|purge QUEUE [options]",
    summary: "list, requeue or purge dead letters",
    about: `list: the dead letters of QUEUE, oldest first, with the retries they had (as
Dramatiq counts them: the runs after the first) and their last error.
requeue: puts them back on QUEUE. purge: deletes them.

${BROKER}`,
    flags: [{ name: "limit", value: "N", help: "list: at most N (the oldest)" }, json],
  },
  {
    name: "schedules",
    args: "[pause|resume NAME] [MODULE...] [options]",
    bundledArgs: "[pause|resume NAME] [options]",
    summary: "list, pause or resume schedules",
    about: `Lists the schedules MODULE(s) declare with schedule(): name, cron expression,
time zone, missed-tick policy, actor, the next tick (or since when it is
paused) and the last tick the broker enqueued (every worker process runs them;
each tick is enqueued once). Schedules the broker has ticks of that no module
declares are listed too.
pause NAME: no process enqueues the ticks of schedule NAME (kept by the broker,
across restarts) until resume NAME; the ticks of the pause count as missed
(the schedule's missed policy). An unknown NAME is exit code 5.

${BROKER}`,
    flags: [json],
  },
  {
    name: "send",
    args: "MODULE ACTOR [JSON_ARGS] [options]",
    bundledArgs: "ACTOR [JSON_ARGS] [options]",
    summary: "enqueue a message for ACTOR",
    about: `Enqueues one message for ACTOR, declared in MODULE. JSON_ARGS is a JSON array
of its arguments (default: none; a JSON value that is not an array is one
argument). Their number is checked against the actor's parameters: at least
those without a default, at most all of them. An actor with a rest parameter
(...args) takes any number beyond those before it; one whose parameters cannot
be read (a native or bound function) is checked for the minimum only.

${BROKER}`,
    flags: [
      { name: "kwargs", value: "JSON", help: "keyword arguments: a JSON object (one more arg)" },
      { name: "delay", value: "MS", help: "run it MS milliseconds from now" },
      { name: "queue", value: "NAME", help: "send it to queue NAME (default: the actor's)" },
      { name: "priority", value: "N", help: "its priority (lower runs first)" },
      { name: "json", help: "print the message as JSON" },
    ],
  },
  {
    name: "dashboard",
    args: "[MODULE...] [options]",
    bundledArgs: "[options]",
    summary: "serve the web dashboard",
    about: `Serves the dashboard of the broker: every queue, search, each message, workers,
schedules, and actions (retry, requeue, run now, delete, cancel, move, pause,
purge), each logged here. Listens on 127.0.0.1:8181 unless --listen says; any
address but loopback needs --token (or DRAMATIS_DASHBOARD_TOKEN), else exit 64.
\`dramatis worker --dashboard ADDR\` serves it from the workers' supervisor.

${BROKER}`,
    flags: [
      { name: "listen", value: "ADDR", help: "HOST:PORT to listen on (default 127.0.0.1:8181)" },
      { name: "read-only", help: "refuse every action (pages and search still work)" },
      { name: "token", value: "T", help: "require this token (a login form, or Bearer T)" },
    ],
  },
  {
    name: "compile",
    args: "MODULE... -o FILE",
    summary: "build one executable holding MODULE(s)",
    about: `Builds one executable (with bun build --compile, which works offline) holding
the CLI and MODULE(s): run FILE worker, FILE send ACTOR [JSON_ARGS], ...`,
    flags: [{ name: "output", short: "o", value: "FILE", help: "the executable to write" }],
  },
  ...OPS_COMMANDS,
];

/** Runs each command (imported when it runs). */
export const RUN: Record<string, () => Promise<Run>> = {
  worker: () => import("./worker.ts").then((m) => m.run),
  queues: () => import("./queues.ts").then((m) => m.run),
  "dead-letters": () => import("./dead_letters.ts").then((m) => m.run),
  schedules: () => import("./schedules.ts").then((m) => m.run),
  send: () => import("./send.ts").then((m) => m.run),
  compile: () => import("./compile.ts").then((m) => m.run),
  ...OPS_RUN,
  dashboard: () => import("./dashboard.ts").then((m) => m.run),
};

/** `dramatis --help`. */
export function globalHelp(bundled: boolean): string {
  const lines = COMMANDS.filter((c) => !bundled || c.name !== "compile").map((c) => {
    const usage = `${c.name} ${(bundled ? c.bundledArgs ?? c.args : c.args)}`
      .replace(/ \[options\]$/, "");
    return usage.length <= 34
      ? `  ${usage.padEnd(34)}${c.summary}`
      : `  ${usage}\n  ${"".padEnd(34)}${c.summary}`;
  });
  return `dramatis ${VERSION}: background task processing for Deno and Bun

Usage: dramatis COMMAND [options]       dramatis COMMAND --help: its options

Commands:
${lines.join("\n")}

${BROKER}

Exit codes: 0 ok, 1 stopped by a second signal, 2 a module failed to import,
3 the broker could not be set up or reached, 4 the pid file is in use,
5 a message to cancel was unknown or finished, 64 bad arguments,
70 an internal error (with its stack).

  -h, --help   this help                --version   the version`;
}
