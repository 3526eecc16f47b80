// The commands of the broker operations (broker/ops.ts): cancel, pause, resume and workers, as
// cli/_commands.ts lists them (it spreads OPS_COMMANDS and OPS_RUN into its own).
import type { Command, Run } from "./_args.ts";

const BROKER = `The broker: as for dramatis worker (MODULE:NAME, setBroker() in MODULE(s),
DRAMATIS_BROKER, else a file broker in ./.dramatis).`;

export const OPS_COMMANDS: Command[] = [
  {
    name: "cancel",
    args: "ID... [MODULE...] [options]",
    bundledArgs: "ID... [options]",
    summary: "cancel messages by id",
    about: `Cancels the messages with these ids and prints, per id, what happened:
cancelled (it was queued or delayed: it will never run), running (its worker
is told: the actor's currentSignal() aborts with Cancelled; an actor that
ignores it is stopped after a grace), finished (too late) or unknown (no
queue holds it). A cancelled message is not retried; its result, with
Results, is a failure named Cancelled. Exit code 5 when some id was finished
or unknown.

${BROKER}`,
    flags: [{ name: "json", help: "print {id: outcome} as JSON" }],
  },
  {
    name: "pause",
    args: "QUEUE [MODULE...]",
    bundledArgs: "QUEUE",
    summary: "stop delivering QUEUE's messages",
    about: `Pauses QUEUE: workers take no new message from it (those running finish)
until dramatis resume QUEUE. The pause is kept by the broker: it holds across
worker restarts. dramatis queues shows it.

${BROKER}`,
    flags: [],
  },
  {
    name: "resume",
    args: "QUEUE [MODULE...]",
    bundledArgs: "QUEUE",
    summary: "deliver a paused QUEUE again",
    about: `Resumes QUEUE, paused by dramatis pause: workers take its messages again.

${BROKER}`,
    flags: [],
  },
  {
    name: "workers",
    args: "[MODULE...] [options]",
    bundledArgs: "[options]",
    summary: "the worker processes and what they run",
    about: `Prints the worker processes in the broker's registry: host, pid, runtime,
queues, concurrency, how many messages each runs now and how long ago its last
heartbeat was (each publishes one a second; one gone for 10 s drops out).

${BROKER}`,
    flags: [{ name: "json", help: "print the registry records as JSON" }],
  },
];

export const OPS_RUN: Record<string, () => Promise<Run>> = {
  cancel: () => import("./cancel.ts").then((m) => m.run),
  pause: () => import("./pause.ts").then((m) => m.pause),
  resume: () => import("./pause.ts").then((m) => m.resume),
  workers: () => import("./workers.ts").then((m) => m.run),
};
