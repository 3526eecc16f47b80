// What the RedisBroker's operations (broker/ops.ts) need of the broker: its client, namespace,
// the operations script, and the few broker steps they reuse (encoding a message, enqueueing).
import type { Message } from "../../message.ts";
import type { Arg, RedisClient, RedisScript, Reply } from "./client.ts";
import { OPS_LUA } from "./_ops.lua.ts";

const textDecoder = new TextDecoder();

/** A reply as text. */
export function text(reply: Reply | undefined): string {
  if (reply === null || reply === undefined) return "";
  return reply instanceof Uint8Array ? textDecoder.decode(reply) : String(reply);
}

/** What the broker gives its operations. */
export interface OpsHost {
  /** The namespace (`ns` in `ns:q`). */
  readonly ns: string;
  /** The broker's command client. */
  readonly client: RedisClient;
  /** Limit of one command, in ms. */
  readonly commandTimeout: number;
  /** Dramatiq's heartbeat timeout, in ms. */
  readonly heartbeatTimeout: number;
  /** Connects and checks the server once (undefined when done). */
  ready(): Promise<void> | undefined;
  /** A connection of its own, for blocking reads. */
  newBlockingClient(): Promise<RedisClient>;
  /** The canonical queues declared on this broker. */
  declaredQueues(): string[];
  /** Every canonical queue with keys under the namespace (a SCAN). */
  listQueues(): Promise<string[]>;
  /** The wire payload of `message` stored under a fresh `redis_message_id`. */
  encode(message: Message): { rid: string; payload: string };
  /** `broker.enqueue(message)`, with its middleware. */
  enqueue(message: Message): Promise<Message>;
}

/** The host plus the operations script and key names. */
export class OpsContext {
  readonly script: RedisScript;
  readonly keys: readonly string[];
  /** `ns:__dramatis__.`: the prefix of every key only dramatis reads. */
  readonly prefix: string;

  constructor(readonly host: OpsHost) {
    this.script = host.client.script(OPS_LUA);
    this.keys = [host.ns];
    this.prefix = `${host.ns}:__dramatis__.`;
  }

  /** Runs an operations-script command. */
  run(command: string, args: readonly Arg[] = [], bytes = false): Promise<Reply> {
    const call = () => {
      const argv: Arg[] = [command, Date.now()];
      for (let i = 0; i < args.length; i++) argv.push(args[i]!);
      return this.script.run(this.keys, argv, { bytes, timeout: this.host.commandTimeout });
    };
    const ready = this.host.ready();
    return ready ? ready.then(call) : call();
  }

  /** Sends one command. */
  send(args: readonly Arg[], bytes = false): Promise<Reply> {
    const call = () => this.host.client.send(args, { bytes, timeout: this.host.commandTimeout });
    const ready = this.host.ready();
    return ready ? ready.then(call) : call();
  }

  /** Sends commands in one round trip. */
  pipeline(commands: readonly (readonly Arg[])[]): Promise<Reply[]> {
    const call = () => this.host.client.pipeline(commands, { timeout: this.host.commandTimeout });
    const ready = this.host.ready();
    return ready ? ready.then(call) : call();
  }
}
