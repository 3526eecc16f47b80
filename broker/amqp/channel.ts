// AmqpChannel: an AMQP channel that survives its connection. Synchronous methods go out one at
// a time (_rpc.ts); publishes are pipelined, each settled by its own confirm (_confirms.ts);
// after a lost connection or a server-side close the channel opens again, re-applies confirm
// mode and qos, runs `onRecover` and restores its consumers (_channel_consumers.ts). Deliveries
// carry the channel's `generation`: an ack for an older generation is dropped.
import { ConnectionError } from "../../errors.ts";
import { AmqpError, REPLY } from "./errors.ts";
import type { Connection } from "./_connection.ts";
import { type AmqpProperties, type Method, writeMethod, writePublish } from "./_methods.ts";
import type { FieldTable } from "./_table.ts";
import { Confirms } from "./_confirms.ts";
import { HeldPublishes } from "./_held.ts";
import { Acks } from "./_acks.ts";
import { type Reply, RpcQueue } from "./_rpc.ts";
import { ChannelConsumers, consumeArgs } from "./_channel_consumers.ts";
import {
  channelClosedError,
  checkPrefetch,
  nackedError,
  rpcError,
  serverCancelError,
  unconfirmedError,
} from "./_channel_errors.ts";
import type {
  AmqpChannelOptions,
  AmqpConsumeOptions,
  AmqpDelivery,
  AmqpPublishOptions,
  ChannelHost,
} from "./_channel_types.ts";

export type {
  AmqpChannelOptions,
  AmqpConsumeOptions,
  AmqpDelivery,
  AmqpPublishOptions,
  ChannelHost,
} from "./_channel_types.ts";

const DOWN = 0, OPENING = 1, SETUP = 2, OPEN = 3, CLOSING = 4, CLOSED = 5;

/**
 * An AMQP channel that is re-opened after a lost connection or a server-side close. Get one
 * from `AmqpClient.channel()`. Synchronous methods (declare, purge, qos, consume, get, ...) go
 * out one at a time; publishes are pipelined, and in confirm mode each one's promise settles
 * with its own `basic.ack` / `basic.nack`. On recovery the channel re-applies confirm mode and
 * qos, runs `onRecover`, and restores its consumers; an ack for a delivery of an older
 * `generation` is dropped (the server would close the channel over an unknown tag).
 *
 * @example
 * ```ts
 * import { AmqpClient } from "./client.ts";
 * await using client = await AmqpClient.connect("amqp://127.0.0.1");
 * const ch = await client.channel();
 * const q = `example-${crypto.randomUUID()}`;
 * const { messageCount } = await ch.declareQueue(q, { durable: false, autoDelete: true });
 * console.log(messageCount); // 0
 * await ch.deleteQueue(q);
 * await ch.close();
 * ```
 */
export class AmqpChannel {
  readonly #host: ChannelHost;
  readonly #options: AmqpChannelOptions;
  #state = DOWN;
  #conn: Connection | undefined;
  #number = 0;
  #generation = 0;
  /** Bumped whenever the channel is lost; async setup steps of an older epoch give up. */
  #epoch = 0;
  #openOk: { resolve: () => void; reject: (e: Error) => void } | undefined;
  #rpc = new RpcQueue({
    phase: () => this.#state === OPEN ? "open" : this.#state === SETUP ? "setup" : "down",
    write: (name, args) => {
      writeMethod(this.#conn!.out, this.#number, name, args);
      this.#conn!.flushSoon();
    },
    maxWait: () => this.#host.maxWait,
    address: () => this.#host.address(),
  });
  #inHook = false;
  #consumers = new ChannelConsumers();
  #held = new HeldPublishes();
  #confirms = new Confirms();
  #acks = new Acks((tag, multiple) => {
    if (this.#state !== OPEN && this.#state !== SETUP) return;
    writeMethod(this.#conn!.out, this.#number, "basic.ack", { deliveryTag: tag, multiple });
    this.#conn!.flushSoon();
  });
  #closes: number[] = [];
  #reopenTimer: ReturnType<typeof setTimeout> | undefined;
  #closedError: Error | undefined;
  #closeOk: (() => void) | undefined;

  /** @internal Use `AmqpClient.channel()`. */
  constructor(host: ChannelHost, options: AmqpChannelOptions = {}) {
    this.#host = host;
    this.#options = { ...options };
    if (options.prefetch !== undefined) checkPrefetch(options.prefetch);
  }

  /** How many times the channel was opened (1 at first, +1 per recovery). */
  get generation(): number {
    return this.#generation;
  }

  /** True while open (not recovering, not closed). */
  get isOpen(): boolean {
    return this.#state === OPEN;
  }

  /** True once `close()` was called (or recovery is off and the channel was lost). */
  get closed(): boolean {
    return this.#state >= CLOSING;
  }

  /** Publishes not confirmed yet (confirm mode). */
  get unconfirmed(): number {
    return this.#confirms.open + this.#held.length;
  }

  /** The channel number on the current connection (0 while down). */
  get number(): number {
    return this.#state === OPEN || this.#state === SETUP ? this.#number : 0;
  }

  // ---- opening and recovery --------------------------------------------------------------

  /** @internal Opens the channel on `conn`: open, confirm mode, qos, hook, consumers. */
  async _attach(conn: Connection): Promise<void> {
    if (this.#state === CLOSED || this.#state === CLOSING) return;
    const epoch = ++this.#epoch;
    this.#conn = conn;
    this.#state = OPENING;
    this.#number = conn.attach(this);
    const opened = new Promise<void>((resolve, reject) => this.#openOk = { resolve, reject });
    writeMethod(conn.out, this.#number, "channel.open");
    conn.flushSoon();
    await opened;
    if (epoch !== this.#epoch) return;
    this.#state = SETUP;
    this.#generation++;
    if (this.#options.confirm) {
      await this.#call("confirm.select", {}, ["confirm.select-ok"], true);
      this.#confirms.reset();
    }
    if (this.#options.prefetch !== undefined) {
      await this.#call("basic.qos", { prefetchCount: this.#options.prefetch }, [
        "basic.qos-ok",
      ], true);
    }
    if (this.#generation > 1 && this.#options.onRecover) {
      this.#inHook = true;
      try {
        await this.#options.onRecover(this);
      } finally {
        this.#inHook = false;
      }
    }
    const restored = await this.#consumers.restore(
      (args) => this.#call("basic.consume", args, ["basic.consume-ok"], true),
      () => epoch !== this.#epoch,
    );
    if (!restored) return;
    this.#state = OPEN;
    this.#held.release((key, body, o) => this.publish(key, body, o));
    this.#rpc.pump();
  }

  /** The channel was lost (its connection, or the server closed it): reject what was in flight. */
  #lost(error: Error): void {
    this.#epoch++;
    const wasOpening = this.#openOk;
    this.#openOk = undefined;
    if (this.#state !== CLOSED && this.#state !== CLOSING) this.#state = DOWN;
    this.#rpc.lost((name) => rpcError(name, error), error);
    // Setup steps belong to the lost channel; user calls wait for the next one.
    wasOpening?.reject(error);
    this.#acks.reset();
    for (const p of this.#confirms.reset()) {
      p.done = true;
      p.reject(unconfirmedError(error, this.#host.address(), p.routingKey));
    }
    if (this.#state === CLOSED || this.#options.recover === false) {
      this.#shut(this.#closedError ?? error);
    }
    this.#closeOk?.();
  }

  /** @internal The connection is gone; the client re-attaches the channel after reconnecting. */
  onConnectionLost(error: Error): void {
    this.#lost(error);
  }

  /** The server closed the channel: answer, fail what was in flight, open it again. */
  #serverClosed(m: Method): void {
    const error = channelClosedError(this.#number, m);
    const conn = this.#conn!;
    writeMethod(conn.out, this.#number, "channel.close-ok");
    conn.flushSoon();
    conn.detach(this.#number);
    this.#lost(error);
    this.#host.report(this, error);
    if (this.#state >= CLOSING || this.#options.recover === false) return;
    // Open again at once, with a growing pause if the server keeps closing it.
    const now = Date.now();
    this.#closes = this.#closes.filter((t) => now - t < 10_000);
    this.#closes.push(now);
    const delay = this.#closes.length <= 1 ? 0 : Math.min(5_000, 50 * 2 ** this.#closes.length);
    this.#reopenTimer = setTimeout(() => {
      this.#reopenTimer = undefined;
      if (this.#state !== DOWN || conn.dropped) return; // the client re-attaches it
      this._attach(conn).catch((e) => this.#host.report(this, e));
    }, delay);
  }

  // ---- synchronous methods ---------------------------------------------------------------

  /** Sends a synchronous method and resolves with its reply, one at a time per channel. */
  #call(
    name: string,
    args: Record<string, unknown>,
    reply: string[],
    setup = false,
    onReply?: (m: Method) => void,
  ): Promise<Reply | undefined> {
    if (this.#state >= CLOSING) return Promise.reject(this.#closedNow());
    return this.#rpc.call(name, args, reply, { setup: setup || this.#inHook, onReply });
  }

  /**
   * Declares a queue; resolves with its message and consumer counts. A queue that exists with
   * other arguments makes the server close the channel: this rejects with an `AmqpError` of
   * code 406 (the channel then opens again by itself).
   */
  async declareQueue(
    queue: string,
    options: {
      durable?: boolean;
      exclusive?: boolean;
      autoDelete?: boolean;
      passive?: boolean;
      arguments?: FieldTable;
    } = {},
  ): Promise<{ queue: string; messageCount: number; consumerCount: number }> {
    const m = await this.#call("queue.declare", {
      queue,
      passive: options.passive ?? false,
      durable: options.durable ?? true,
      exclusive: options.exclusive ?? false,
      autoDelete: options.autoDelete ?? false,
      arguments: options.arguments ?? {},
    }, ["queue.declare-ok"]) as Method;
    return m.args as { queue: string; messageCount: number; consumerCount: number };
  }

  /** Deletes the ready messages of `queue`; resolves with how many. */
  async purgeQueue(queue: string): Promise<number> {
    const m = await this.#call("queue.purge", { queue }, ["queue.purge-ok"]) as Method;
    return m.args.messageCount;
  }

  /** Deletes `queue`; resolves with how many messages it held. */
  async deleteQueue(
    queue: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean } = {},
  ): Promise<number> {
    const m = await this.#call(
      "queue.delete",
      { queue, ifUnused: options.ifUnused ?? false, ifEmpty: options.ifEmpty ?? false },
      ["queue.delete-ok"],
    ) as Method;
    return m.args.messageCount;
  }

  /** Sets the prefetch count for consumers started after this call (and after recoveries). */
  async qos(prefetch: number): Promise<void> {
    checkPrefetch(prefetch);
    this.#options.prefetch = prefetch;
    await this.#call("basic.qos", { prefetchCount: prefetch }, ["basic.qos-ok"]);
  }

  /**
   * Starts a consumer: `onDelivery` is called for each message, from the socket's read loop.
   * Resolves with the consumer tag. The consumer is restored after reconnections.
   */
  async consume(
    queue: string,
    onDelivery: (delivery: AmqpDelivery) => void,
    options: AmqpConsumeOptions = {},
  ): Promise<string> {
    let tag = "";
    await this.#call(
      "basic.consume",
      consumeArgs(queue, options.tag ?? "", options),
      ["basic.consume-ok"],
      false,
      (m) => {
        // Registered now: deliveries may follow consume-ok in the same read.
        tag = m.args.consumerTag as string;
        this.#consumers.add(tag, queue, options, onDelivery);
      },
    );
    return tag;
  }

  /** Stops a consumer (deliveries already sent still arrive). */
  async cancel(tag: string): Promise<void> {
    const had = this.#consumers.delete(tag);
    if (!had || this.#state >= CLOSING) return;
    await this.#call("basic.cancel", { consumerTag: tag }, ["basic.cancel-ok"]);
  }

  /** `basic.get`: one message, or undefined when the queue is empty. */
  async get(queue: string, options: { noAck?: boolean } = {}): Promise<AmqpDelivery | undefined> {
    const r = await this.#call("basic.get", { queue, noAck: options.noAck ?? false }, [
      "basic.get-ok",
      "basic.get-empty",
    ]);
    return r !== undefined && "body" in r ? r as AmqpDelivery : undefined;
  }

  // ---- publishing ------------------------------------------------------------------------

  /**
   * Publishes a message (a string body is sent as UTF-8). In confirm mode, resolves when the
   * server confirmed it; rejects with an `AmqpError` when it refused it (`basic.nack`) or, with
   * `mandatory`, returned it (code 312: no queue took it), and with `ConnectionError` when the
   * connection dropped first (it may or may not have been stored). Without confirms, resolves
   * once written. While the channel is recovering, waits for it (up to the client's maxWait).
   */
  publish(
    routingKey: string,
    body: string | Uint8Array,
    options: AmqpPublishOptions = {},
  ): Promise<void> {
    const exchange = options.exchange ?? "";
    const props = options.properties ?? {};
    const mandatory = options.mandatory ?? false;
    if (this.#state === OPEN) {
      const conn = this.#conn!;
      writePublish(
        conn.out,
        this.#number,
        conn.frameMax,
        exchange,
        routingKey,
        body,
        props,
        mandatory,
      );
      conn.flushSoon();
      if (!this.#options.confirm) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        this.#confirms.add({ resolve, reject, done: false, exchange, routingKey, body });
      });
    }
    if (this.#state >= CLOSING) return Promise.reject(this.#closedNow());
    return this.#held.hold(routingKey, body, options, {
      maxWait: this.#host.maxWait,
      address: this.#host.address(),
    });
  }

  // ---- acknowledgements ------------------------------------------------------------------

  /**
   * Acks a delivery of this channel (and, with `multiple`, every earlier one). Returns false,
   * sending nothing, when the delivery came on an earlier generation of the channel (before a
   * reconnection): the server has already put it back in its queue.
   */
  ack(
    delivery: AmqpDelivery | { deliveryTag: number; generation: number },
    multiple = false,
  ): boolean {
    if (!this.#live(delivery)) return false;
    if (!multiple) {
      this.#acks.ack(delivery.deliveryTag); // coalesced with this tick's other acks
      return true;
    }
    this.#acks.settled(delivery.deliveryTag, true);
    this.#send("basic.ack", { deliveryTag: delivery.deliveryTag, multiple });
    return true;
  }

  /** Rejects a delivery: `requeue` puts it back, else it is dead-lettered (or dropped). */
  nack(
    delivery: AmqpDelivery | { deliveryTag: number; generation: number },
    options: { requeue?: boolean; multiple?: boolean } = {},
  ): boolean {
    if (!this.#live(delivery)) return false;
    const multiple = options.multiple ?? false;
    this.#acks.flush(); // acks issued earlier go first
    this.#acks.settled(delivery.deliveryTag, multiple);
    this.#send("basic.nack", {
      deliveryTag: delivery.deliveryTag,
      multiple,
      requeue: options.requeue ?? false,
    });
    return true;
  }

  #live(d: { generation: number }): boolean {
    return (this.#state === OPEN || this.#state === SETUP) && d.generation === this.#generation;
  }

  #send(name: string, args: Record<string, unknown>): void {
    writeMethod(this.#conn!.out, this.#number, name, args);
    this.#conn!.flushSoon();
  }

  // ---- frames from the connection --------------------------------------------------------

  /** @internal */
  onMethod(m: Method): void {
    if (this.#state === CLOSING) {
      // Only the end of the close matters now (or the server closing it at the same time).
      if (m.name === "channel.close") {
        writeMethod(this.#conn!.out, this.#number, "channel.close-ok");
        this.#conn!.flushSoon();
      }
      if (m.name === "channel.close" || m.name === "channel.close-ok") this.#closeOk?.();
      return;
    }
    switch (m.name) {
      case "basic.ack":
        return this.#confirms.settle(m.args.deliveryTag, m.args.multiple);
      case "basic.nack":
        return this.#confirms.settle(m.args.deliveryTag, m.args.multiple, nackedError());
      case "channel.open-ok": {
        const ok = this.#openOk;
        this.#openOk = undefined;
        return ok?.resolve();
      }
      case "channel.close":
        return this.#serverClosed(m);
      case "channel.flow":
        writeMethod(this.#conn!.out, this.#number, "channel.flow-ok", { active: m.args.active });
        this.#conn!.flushSoon();
        return;
      case "basic.cancel": {
        const tag = m.args.consumerTag as string;
        const c = this.#consumers.take(tag);
        if (!m.args.nowait) {
          writeMethod(this.#conn!.out, this.#number, "basic.cancel-ok", { consumerTag: tag });
          this.#conn!.flushSoon();
        }
        c?.options.onCancel?.(serverCancelError(tag, c.queue));
        return;
      }
    }
    if (this.#rpc.answer(m, m.name)) return;
    this.#host.report(
      this,
      new AmqpError(`Unexpected ${m.name} on channel ${this.#number}; ignored.`, {
        code: REPLY.UNEXPECTED_FRAME,
        text: m.name,
      }),
    );
  }

  /** @internal */
  onContent(m: Method, properties: AmqpProperties, body: Uint8Array): void {
    if (this.#state === CLOSING) return; // unacked: the close hands it back
    const a = m.args;
    if (m.name === "basic.return") return this.#confirms.returned(m, body);
    const d: AmqpDelivery = {
      channel: this,
      generation: this.#generation,
      deliveryTag: a.deliveryTag,
      redelivered: a.redelivered,
      exchange: a.exchange,
      routingKey: a.routingKey,
      consumerTag: a.consumerTag ?? "",
      messageCount: a.messageCount,
      properties,
      body,
    };
    if (m.name === "basic.get-ok") {
      this.#acks.delivered(d.deliveryTag);
      if (this.#rpc.inFlightArgs?.noAck) this.#acks.settled(d.deliveryTag);
      this.#rpc.answer(d, m.name);
      return;
    }
    this.#acks.delivered(d.deliveryTag);
    const noAck = this.#consumers.noAck(d.consumerTag);
    if (noAck) this.#acks.settled(d.deliveryTag);
    const c = this.#consumers.get(d.consumerTag);
    if (c) c.onDelivery(d);
    else if (!noAck) this.nack(d, { requeue: true }); // cancelled: back
  }

  // ---- closing ---------------------------------------------------------------------------

  #closedNow(): Error {
    return this.#closedError ?? new ConnectionError("The AMQP channel is closed: open a new one.");
  }

  /** Ends the channel for good: fails everything still waiting. */
  #shut(error: Error): void {
    this.#state = CLOSED;
    this.#closedError ??= error;
    clearTimeout(this.#reopenTimer);
    this.#rpc.shut(error);
    this.#held.fail(error);
    this.#consumers.clear();
    this.#host.remove(this);
  }

  /**
   * Closes the channel: its consumers stop and its unacked deliveries go back to their queues.
   * Calls still waiting, and publishes not confirmed yet, reject.
   */
  async close(): Promise<void> {
    if (this.#state >= CLOSING) return;
    const error = new ConnectionError("The AMQP channel was closed: open a new one.");
    const conn = this.#conn;
    const attached = this.#state !== DOWN && conn !== undefined && !conn.dropped;
    this.#state = CLOSING;
    this.#closedError = error;
    if (attached) {
      // channel.close may follow any frame, even before channel.open-ok: the server reads in order.
      const ok = new Promise<void>((resolve) => this.#closeOk = resolve);
      writeMethod(conn.out, this.#number, "channel.close", { replyCode: 200, replyText: "bye" });
      conn.flushSoon();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([ok, new Promise((r) => timer = setTimeout(r, 5_000))]);
      clearTimeout(timer);
      this.#closeOk = undefined;
      conn.detach(this.#number);
    }
    this.#lost(error);
    this.#shut(error);
  }
}
