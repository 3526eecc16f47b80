/**
 * dramatis: background task processing for Deno and Bun, in the spirit of Python's Dramatiq.
 * Declare a function as an actor, `send()` it, and workers run it later with retries, time
 * limits, delays, priorities, dead letters, results, pipelines and groups.
 *
 * @example
 * ```ts
 * import { actor, setBroker, StubBroker, Worker } from "@dramatis/dramatis";
 *
 * const broker = setBroker(new StubBroker());
 * const add = actor(function add(a: number, b: number) {
 *   console.log(a + b);
 * });
 * await add.send(1, 2);
 *
 * const worker = new Worker(broker, { workerTimeout: 100 });
 * await worker.start();
 * await broker.join("default");
 * await worker.stop();
 * ```
 * @module
 */
export { actor } from "./actor.ts";
export type { Actor, ActorOptions, AnyActor, ArgsPrefix, SendOptions } from "./actor.ts";
export { actorClass } from "./actor_class.ts";
export type { ActorClass, PerformMethod } from "./actor_class.ts";
export { Message, MessageProxy } from "./message.ts";
export type {
  GetResultOptions,
  HasMiddleware,
  JsonObject,
  JsonValue,
  MessageFields,
  MessageOpsOptions,
  OpsBroker,
  WireMessage,
} from "./message.ts";
export {
  ActorNotFound,
  BrokerError,
  Cancelled,
  ConnectionError,
  DecodeError,
  DramatisError,
  QueueJoinTimeout,
  QueueNotFound,
  RateLimitExceeded,
  ResultError,
  ResultFailure,
  ResultMissing,
  ResultTimeout,
  Retry,
  Shutdown,
  SkipMessage,
  TimeLimitExceeded,
  Unsupported,
} from "./errors.ts";
export type { ErrorClass } from "./errors.ts";
export { Broker } from "./broker/broker.ts";
export { dqName, qName, xqName } from "./broker/queue_name.ts";
export type {
  BrokerOptions,
  EnqueueOptions,
  JoinOptions,
  MiddlewareClass,
  QueueStats,
} from "./broker/broker.ts";
export type { ConsumeOptions, Consumer, RawDelivery, ReceiveOptions } from "./broker/consumer.ts";
export {
  DEBOUNCE_OPTION,
  NO_CAPABILITIES,
  SCHEDULE_OPTION,
  SCHEDULE_TICK_OPTION,
  UNIQUE_FOR_OPTION,
  UNIQUE_KEY_OPTION,
} from "./broker/ops.ts";
export type {
  BrokerCapabilities,
  BrokerEvent,
  BrowseEntry,
  BrowseOptions,
  BrowsePage,
  BrowseState,
  CancelOutcome,
  ProgressRecord,
  RunningMessage,
  SchedulePause,
  WorkerRecord,
} from "./broker/ops.ts";
export type { HistogramSnapshot, MetricsSnapshot, SeriesSnapshot } from "./telemetry/registry.ts";
export {
  Histogram,
  mergeSnapshots,
  MetricsAggregator,
  MetricSeries,
  MetricsRegistry,
} from "./telemetry/registry.ts";
export type {
  MergeOptions,
  MetricsAggregatorOptions,
  MetricsRegistryOptions,
} from "./telemetry/registry.ts";
export { Metrics } from "./middleware/metrics.ts";
export type { MetricsOptions } from "./middleware/metrics.ts";
export { BrokerMetrics, brokerMetricsHandler, metricsHandler } from "./telemetry/broker_metrics.ts";
export type { BrokerMetricsCollection, BrokerMetricsOptions } from "./telemetry/broker_metrics.ts";
export type {
  MetricsSource,
  PrometheusInput,
  PrometheusOptions,
  QueueMetrics,
  WorkerMetrics,
} from "./telemetry/prometheus.ts";
export { StubBroker } from "./broker/stub.ts";
export { FileBroker, fileBrokerOptionsFromUrl } from "./broker/file/broker.ts";
export type { Durability, FileAccess, FileBrokerOptions } from "./broker/file/broker.ts";
export { RedisBroker, redisBrokerOptionsFromUrl } from "./broker/redis/broker.ts";
export type { RedisBrokerOptions, RedisReceipt } from "./broker/redis/broker.ts";
export { PushReply, RedisClient, RedisError, RedisScript } from "./broker/redis/client.ts";
export type {
  Arg,
  RedisClientEvent,
  RedisClientOptions,
  RedisReconnectOptions,
  RedisTlsOptions,
  Reply,
  SendOptions as RedisSendOptions,
} from "./broker/redis/client.ts";
export { RabbitmqBroker, rabbitmqBrokerOptionsFromUrl } from "./broker/rabbitmq/broker.ts";
export type { RabbitmqBrokerOptions, RabbitmqReceipt } from "./broker/rabbitmq/broker.ts";
export { AmqpClient, parseAmqpUrl } from "./broker/amqp/client.ts";
export type {
  AmqpClientEvent,
  AmqpClientOptions,
  AmqpReconnectOptions,
  AmqpTlsOptions,
  AmqpUrlInfo,
} from "./broker/amqp/client.ts";
export { AmqpChannel } from "./broker/amqp/channel.ts";
export type {
  AmqpChannelOptions,
  AmqpConsumeOptions,
  AmqpDelivery,
  AmqpPublishOptions,
} from "./broker/amqp/channel.ts";
export { AmqpError, AmqpProtocolError, REPLY } from "./broker/amqp/errors.ts";
export type { AmqpProperties } from "./broker/amqp/_methods.ts";
export { typed } from "./broker/amqp/_table.ts";
export type {
  AmqpDecimal,
  FieldTable,
  FieldType,
  FieldValue,
  TypedValue,
} from "./broker/amqp/_table.ts";
export { getBroker, setBroker } from "./broker/global.ts";
export { brokerFromUrl } from "./broker/url.ts";
export { Worker } from "./worker/worker.ts";
export type { StopOptions, WorkerMonitor, WorkerOptions } from "./worker/worker.ts";
export { currentMessage, currentSignal, reportProgress } from "./worker/context.ts";
export type { ProgressSink } from "./worker/_progress.ts";
export { HOOKS, Middleware } from "./middleware/middleware.ts";
export type { Awaitable, HookName, ProcessOutcome } from "./middleware/middleware.ts";
export { AgeLimit } from "./middleware/age_limit.ts";
export { TimeLimit } from "./middleware/time_limit.ts";
export { ShutdownNotifications } from "./middleware/shutdown.ts";
export { Callbacks } from "./middleware/callbacks.ts";
export { Pipelines } from "./middleware/pipelines.ts";
export { computeBackoff, Retries } from "./middleware/retries.ts";
export type { RetriesOptions } from "./middleware/retries.ts";
export { CurrentMessage } from "./middleware/current_message.ts";
export { Results } from "./middleware/results.ts";
export { GroupCallbacks } from "./middleware/group_callbacks.ts";
export { defaultMiddleware } from "./middleware/_default.ts";
export { MemoryResultBackend, ResultBackend, unwrap } from "./results/backend.ts";
export { FileResultBackend } from "./results/file.ts";
export { RedisResultBackend } from "./results/redis.ts";
export type { RedisResultBackendOptions } from "./results/redis.ts";
export type { DeclaredActor } from "./broker/declared_actor.ts";
export type { RedisBackendOptions } from "./broker/redis/_backend.ts";
export type { ResultBackendOptions, ResultGetOptions, StoredFailure } from "./results/backend.ts";
export { Group, group, Pipeline, pipeline } from "./composition.ts";
export type { CompositionOptions, GroupMember } from "./composition.ts";
export { MemoryRateLimiterBackend } from "./rate_limits/backend.ts";
export { FileRateLimiterBackend } from "./rate_limits/file.ts";
export { RedisRateLimiterBackend } from "./rate_limits/redis.ts";
export type { RedisRateLimiterBackendOptions } from "./rate_limits/redis.ts";
export type { RateLimiterBackend } from "./rate_limits/backend.ts";
export {
  Barrier,
  BucketRateLimiter,
  ConcurrentRateLimiter,
  RateLimiter,
  WindowRateLimiter,
} from "./rate_limits/limiters.ts";
export type { AcquireOptions, Lease } from "./rate_limits/limiters.ts";
export { Cron } from "./schedule/cron.ts";
export type { CronOptions } from "./schedule/cron.ts";
export { getSchedule, getSchedules, removeSchedule, schedule } from "./schedule/schedule.ts";
export type { Schedule, ScheduleOptions } from "./schedule/schedule.ts";
export { dueTicks, tickKey, tickMessageId } from "./schedule/ticks.ts";
export type { DueOptions, DueTicks, MissedPolicy } from "./schedule/ticks.ts";
export { runSchedules } from "./schedule/run.ts";
export type { RunSchedulesOptions } from "./schedule/run.ts";
