// Shared by the dashboard's tests on real brokers: messages in every state on a broker (ready,
// delayed, running: received and not acked, dead: received and nacked), and the brokers to run on.
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import type { Broker } from "../broker/broker.ts";
import { FileBroker } from "../broker/file/broker.ts";
import { RedisBroker } from "../broker/redis/broker.ts";
import { deleteKeys, randomNamespace, SHARED_URL } from "./_redis_server.ts";
import type { Consumer } from "../broker/consumer.ts";
import { Message } from "../message.ts";

/** The ids of the messages `populate` made, by role, and the consumer holding the running one. */
export interface Populated {
  ids: Record<string, string>;
  /** Holds `run1` unacked (close it to hand it back). */
  consumer: Consumer;
}

function msg(queue: string, actor: string, args: unknown[]): Message {
  return new Message({ queueName: queue, actorName: actor, args: args as never });
}

/**
 * On `emails` and `reports`: 2 ready emails and 1 ready report, 1 delayed report, 1 running email,
 * 2 dead emails with a timeout error and 1 dead report with another error.
 */
export async function populate(
  broker: Broker,
  emails: string,
  reports: string,
): Promise<Populated> {
  broker.declareQueue(emails);
  broker.declareQueue(reports);
  const ids: Record<string, string> = {};
  const put = async (key: string, m: Message, delay?: number) => {
    ids[key] = (await broker.enqueue(m, delay ? { delay } : {})).messageId;
  };
  // The dead ones first: received and nacked with a traceback.
  await put("dead1", msg(emails, "send_email", ["erin@example.com", "Hello"]));
  await put("dead2", msg(emails, "send_email", ["frank@example.com", "Hello"]));
  await put("dead3", msg(reports, "build_report", [{ month: "2026-09" }]));
  await kill(broker, emails, 2, "TimeoutError: SMTP server did not answer");
  await kill(broker, reports, 1, "ValueError: no data");
  await put("run1", msg(emails, "send_email", ["dave@example.com", "Hi"]));
  const consumer = broker.consume(emails);
  const got = await receive(consumer, 1);
  if (got[0]?.messageId !== ids.run1) throw new Error("populate: run1 was not received first");
  await put("ready1", msg(emails, "send_email", ["alice@example.com", "Welcome"]));
  await put("ready2", msg(emails, "send_email", ["bob@example.org", "Invoice 12"]));
  await put("ready3", msg(reports, "build_report", [{ month: "2026-11" }]));
  await put("delayed1", msg(reports, "build_report", [{ month: "2026-12" }]), 3_600_000);
  return { ids, consumer };
}

async function receive(c: Consumer, want: number) {
  const got = [];
  const deadline = Date.now() + 5_000;
  while (got.length < want && Date.now() < deadline) {
    got.push(...await c.receive(want - got.length, { timeout: 200 }));
  }
  if (got.length < want) throw new Error(`populate: received ${got.length} of ${want}`);
  return got;
}

async function kill(broker: Broker, queue: string, n: number, error: string): Promise<void> {
  const c = broker.consume(queue);
  try {
    for (const m of await receive(c, n)) {
      m.options.traceback = `${error}\n    at test`;
      await c.nack(m);
    }
  } finally {
    await c.close();
  }
}

/** A broker made for a test, and how to remove it and what it wrote. */
export interface Made {
  broker: Broker;
  cleanup(): Promise<void>;
}

/** The real brokers the dashboard tests run on: a FileBroker in a temp directory, Redis shared. */
export const BROKERS: [string, () => Made][] = [
  ["FileBroker", () => {
    const dir = fs.mkdtempSync(`${tmpdir()}/dramatis-dash-`);
    const broker = new FileBroker({ dir });
    return {
      broker,
      cleanup: async () => {
        await broker.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }],
  ["RedisBroker", () => {
    const namespace = randomNamespace("dash");
    const broker = new RedisBroker({ url: SHARED_URL, namespace });
    return {
      broker,
      cleanup: async () => {
        await broker.close();
        await deleteKeys(`${namespace}:`);
      },
    };
  }],
];
