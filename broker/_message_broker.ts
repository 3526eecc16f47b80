// Links a sent message to the broker it went to, so that `message.getResult()`, pipelines and
// groups find that broker without the message module knowing brokers.
import type { Broker } from "./broker.ts";
import type { Message } from "../message.ts";

const sentTo = new WeakMap<Message, Broker>();

/** Records the broker a message was sent to. */
export function _attachBroker<M extends Message>(message: M, broker: Broker): M {
  sentTo.set(message, broker);
  return message;
}

/** The broker a message was sent to, if it was sent in this isolate. */
export function brokerOf(message: Message): Broker | undefined {
  return sentTo.get(message);
}
