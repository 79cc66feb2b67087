import { randomUUID } from 'node:crypto';
import { Kafka, Partitioners, logLevel, type Admin, type Producer, type Consumer, type ConsumerRunConfig, type EachMessagePayload } from 'kafkajs';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { kafkaLogCreator, logKafkaRetry } from './kafka-log.ts';
import { retryPolicy, runPolicy, withTimeout } from './resilience.ts';

/** A topic that the platform creates at start-up; broker auto-creation stays off. */
export interface TopicSpec {
  /** The name without the configured prefix, e.g. `order.events.v1`. */
  readonly name: string;
  /** Default: the configured `KAFKA_PARTITIONS`. */
  readonly partitions?: number;
}

/** A message to publish: the key keeps one aggregate's messages in order on one partition. */
export interface OutgoingMessage {
  /** Null only when forwarding a message that had none (dead letters, replays). */
  readonly key: string | null;
  readonly value: string | null;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A message as a handler receives it. */
export interface IncomingMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Readonly<Record<string, string>>;
}

/** A running consumer group member; dispose to leave the group. */
export interface Subscription extends AsyncDisposable {
  stop(): Promise<void>;
}

/** What a message handler may do besides handling the message. */
export interface ConsumeControls {
  /** Tells the group coordinator this member is alive (call it during long work, e.g. between retries). */
  heartbeat(): Promise<void>;
}

/** What a batch handler may do besides handling the messages: see {@link KafkaClient.consumeBatches}. */
export interface BatchControls extends ConsumeControls {
  /** Marks `offset` and every earlier message of the batch consumed: committed with the next commit. */
  resolveOffset(offset: string): void;
  /** False once the consumer is stopping, or the partition was taken away by a rebalance: stop early. */
  isActive(): boolean;
}

/** How {@link KafkaClient.consume} and {@link KafkaClient.consumeBatches} run. */
export interface ConsumeOptions {
  /** Where a group without committed offsets starts (default true: the beginning). */
  readonly fromBeginning?: boolean;
  /** Partitions handled in parallel (default 1); messages of one partition are always handled one at a time, in order. */
  readonly partitionsConsumedConcurrently?: number;
  /** How long the broker may hold a fetch when no data is waiting (default 1000 ms; also bounds how fast `stop` returns). */
  readonly maxWaitTimeInMs?: number;
  /** How long the coordinator waits for a heartbeat before it evicts the member (default `config.kafkaSessionTimeoutMs`). */
  readonly sessionTimeoutMs?: number;
}

/** The offsets of one partition: `low` is the first offset held, `high` the next offset to be written. */
export interface PartitionOffsets {
  readonly partition: number;
  readonly low: string;
  readonly high: string;
}

/** Which part of a topic {@link KafkaClient.readTopic} reads. */
export interface ReadTopicOptions {
  /** Only these partitions (default all). */
  readonly partitions?: readonly number[];
  /** First offset per partition (default the partition's low offset). */
  readonly from?: Readonly<Record<number, string>>;
  /** Offset to stop before, per partition (default the high watermark when the call starts). */
  readonly until?: Readonly<Record<number, string>>;
  /** Gives up after this long (default 30 s). */
  readonly timeoutMs?: number;
}

/** A consumer group's committed position on one partition; `offset` null when nothing was committed. */
export interface CommittedOffset {
  readonly partition: number;
  readonly offset: string | null;
  readonly metadata: string | null;
}

/** An offset to commit for a group, with optional metadata stored beside it by the broker. */
export interface OffsetToCommit {
  readonly partition: number;
  readonly offset: string;
  readonly metadata?: string | null;
}

/** SwiftCart's Kafka client: the one module that knows kafkajs, so the client can be replaced. */
export interface KafkaClient extends AsyncDisposable {
  /** The full topic name under the configured prefix. */
  topic(name: string): string;
  /**
   * Creates the topics that do not exist yet (idempotent). An existing topic keeps its partitions:
   * adding some would send an aggregate's next events to another partition than its earlier ones,
   * out of order while those are in flight; a warning says when it has fewer than configured.
   */
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  /** Sends messages (acks=all, one request in flight); resolves once the broker has them. A retry may write a message twice. */
  publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void>;
  /**
   * Joins `groupId` (prefixed like topics) on `topics` and hands each message to `handle`, one at a
   * time per partition, in offset order. At-least-once: a message's offset is marked consumed only
   * after `handle` resolves, and marked offsets are committed every few seconds, on rebalance and on
   * `stop`. When `handle` rejects, its offset is not marked, and the same message is delivered
   * again (after kafkajs restarts the fetch): a handler that must not block its partition forever
   * handles its own failures (the inbox dead-letters them) and resolves.
   */
  consume(
    groupId: string,
    topics: readonly string[],
    handle: (message: IncomingMessage, controls: ConsumeControls) => Promise<void>,
    options?: ConsumeOptions,
  ): Promise<Subscription>;
  /**
   * Like {@link consume}, but hands over what one fetch brought of one partition at once, in offset
   * order, so a handler can apply many messages in one transaction. Only offsets the handler passes
   * to `resolveOffset` are committed (every few seconds, on rebalance and on `stop`); when `handle`
   * rejects, the messages after the last resolved offset are delivered again.
   */
  consumeBatches(
    groupId: string,
    topics: readonly string[],
    handle: (messages: readonly IncomingMessage[], controls: BatchControls) => Promise<void>,
    options?: ConsumeOptions,
  ): Promise<Subscription>;
  /** Whether a topic (name without the prefix) exists. */
  hasTopic(name: string): Promise<boolean>;
  /** Deletes topics (names without the prefix); missing ones are ignored. For tests and tools. */
  deleteTopics(names: readonly string[]): Promise<void>;
  /** The low and high offsets of every partition of a topic. */
  topicOffsets(name: string): Promise<PartitionOffsets[]>;
  /**
   * Reads a topic from `from` (per partition; default each partition's low offset) up to `until`
   * or its high watermark as of the call, with a throwaway consumer group that commits nothing.
   * Resolves with the messages sorted by partition and offset. For tools (the DLQ command).
   */
  readTopic(name: string, options?: ReadTopicOptions): Promise<IncomingMessage[]>;
  /** The offsets (and metadata) `groupId` (prefixed) has committed on a topic. */
  groupOffsets(groupId: string, name: string): Promise<CommittedOffset[]>;
  /** Deletes consumer groups (names without prefix) that will never read again; one that is unknown, or has members, is left as it is. */
  deleteGroups(groupIds: readonly string[]): Promise<void>;
  /**
   * Commits offsets (with metadata) for `groupId` (prefixed) on a topic by joining the group
   * briefly; the group must have no other running member.
   */
  commitGroupOffsets(groupId: string, name: string, offsets: readonly OffsetToCommit[]): Promise<void>;
  /** Resolves when the cluster answers a metadata request within `timeoutMs`. */
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

// kafkajs 2.2.4 schedules its request-queue check with a negative delay when nothing is throttled;
// Node 24 warns (TimeoutNegativeWarning) and runs it after 1 ms, which is what kafkajs meant. Only
// that warning type is dropped, and only once per process.
const emitWarning = process.emitWarning;
if (!(emitWarning as { swiftcartFiltered?: boolean }).swiftcartFiltered) {
  const filtered = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
    if (type === 'TimeoutNegativeWarning' || (warning instanceof Error && warning.name === 'TimeoutNegativeWarning')) return;
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  (filtered as { swiftcartFiltered?: boolean }).swiftcartFiltered = true;
  process.emitWarning = filtered;
}

function headersOf(raw: EachMessagePayload['message']['headers']): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw ?? {})) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? String(value[0]) : String(value);
  }
  return headers;
}

function toIncoming(topic: string, partition: number, message: EachMessagePayload['message']): IncomingMessage {
  return {
    topic,
    partition,
    offset: message.offset,
    key: message.key?.toString() ?? null,
    value: message.value?.toString() ?? null,
    headers: headersOf(message.headers),
  };
}

/**
 * The cluster as `admin` describes it, once connected, when it answers a metadata request within
 * `timeoutMs`; else rejects with `message`. The ping of a client and of a probe.
 */
function describeWithin(admin: Promise<Admin>, timeoutMs: number, message: string): ReturnType<Admin['describeCluster']> {
  return withTimeout(
    admin.then((a) => a.describeCluster()),
    timeoutMs,
    message,
  );
}

/**
 * Resolves with the number of live brokers when a Kafka cluster answers at `brokers` within
 * `timeoutMs`: a connection (ApiVersions) and a metadata request, by a client of its own that
 * makes one attempt, logs nothing and is gone afterwards. Rejects when nothing answers, when
 * something that is not Kafka does, or when the cluster reports no live broker yet. For tools
 * that must tell quickly whether a broker is up (scripts/kafka/broker.ts); a service pings its own
 * client instead ({@link KafkaClient.ping}).
 */
export async function probeKafka(brokers: readonly string[], timeoutMs: number): Promise<number> {
  const kafka = new Kafka({
    clientId: 'swiftcart-probe',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
  });
  const admin = kafka.admin();
  try {
    const cluster = await describeWithin(
      admin.connect().then(() => admin),
      timeoutMs,
      `no answer from ${brokers.join(', ')} within ${timeoutMs} ms`,
    );
    if (cluster.brokers.length < 1) throw new Error('the broker reports no live brokers yet');
    return cluster.brokers.length;
  } finally {
    // Also ends a connection attempt still under way (something that takes the bytes and never answers).
    await admin.disconnect().catch(() => undefined);
  }
}

/** The first wait before a consumer kafkajs gave up on is replaced; it doubles on each failure in a row. */
export const CONSUMER_RESTART_FIRST_MS = 1_000;
/** The longest wait between replacements of a consumer that keeps failing. */
export const CONSUMER_RESTART_MAX_MS = 30_000;

/** Creates a client for the configured brokers; connections open lazily on first use. */
export function createKafka(config: Config, log: Logger, clientId: string): KafkaClient {
  const kafka = new Kafka({
    clientId,
    brokers: [...config.kafkaBrokers],
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(log),
    retry: { retries: 5, initialRetryTime: 200 },
  });
  let admin: Promise<Admin> | undefined;
  let producer: Promise<Producer> | undefined;
  const consumers = new Set<Consumer>();
  const topic = (name: string) => `${config.kafkaTopicPrefix}${name}`;
  /** Topics already said to have fewer partitions than wanted: once per client is enough. */
  const warnedPartitions = new Set<string>();

  const getAdmin = () => {
    admin ??= (async () => {
      const a = kafka.admin();
      await a.connect();
      return a;
    })().catch((error) => {
      admin = undefined;
      throw error;
    });
    return admin;
  };
  const getProducer = () => {
    producer ??= (async () => {
      // Not kafkajs's idempotent producer (ADR 0013): after a produce request fails for some of
      // its partitions it rewinds the sequence numbers of all of them, and every later send is
      // refused as out of order until the process restarts. The inbox drops the duplicates a
      // plain producer's retries may write; one request in flight keeps each partition in order.
      const p = kafka.producer({ maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await p.connect();
      return p;
    })().catch((error) => {
      producer = undefined;
      throw error;
    });
    return producer;
  };

  const close = async () => {
    await Promise.allSettled([...consumers].map((c) => c.disconnect()));
    consumers.clear();
    const pending = [admin, producer].filter(Boolean) as Promise<Admin | Producer>[];
    admin = producer = undefined;
    await Promise.allSettled(pending.map(async (p) => (await p).disconnect()));
  };

  /**
   * Joins a group on `topics` and runs it with `run`; the subscription leaves the group. A consumer
   * kafkajs gives up on is replaced: kafkajs restarts only after errors it calls retriable, and a
   * group coordinator not found while a broker starts is not one of them, so a service would stay up
   * consuming nothing.
   */
  /**
   * Runs `action` again (5 tries, 200 ms doubling) while kafkajs calls its failure retriable: a topic
   * created a moment ago can still be unknown to the broker's metadata (UNKNOWN_TOPIC_OR_PARTITION),
   * or have no leader yet where offsets are asked (NOT_LEADER_FOR_PARTITION).
   */
  const whileRetriable = <T>(action: () => Promise<T>, onRetry: (error: unknown, attempt: number) => void = () => {}): Promise<T> =>
    runPolicy(
      retryPolicy({
        attempts: 5,
        baseMs: 200,
        maxMs: 2_000,
        retryable: (error) => (error as { retriable?: unknown }).retriable === true,
        onRetry,
      }),
      action,
    );
  const fetchOffsets = async (fullTopic: string) => {
    const a = await getAdmin();
    return whileRetriable(() => a.fetchTopicOffsets(fullTopic));
  };
  const runConsumer = async (groupId: string, topics: readonly string[], options: ConsumeOptions, run: ConsumerRunConfig): Promise<Subscription> => {
    let current: Consumer | undefined;
    let stopped = false;
    let restartTimer: NodeJS.Timeout | undefined;
    let failures = 0;

    const start = async () => {
      const consumer = kafka.consumer({
        groupId: topic(groupId),
        allowAutoTopicCreation: false,
        maxWaitTimeInMs: options.maxWaitTimeInMs ?? 1_000,
        sessionTimeout: options.sessionTimeoutMs ?? config.kafkaSessionTimeoutMs,
      });
      consumers.add(consumer);
      current = consumer;
      consumer.on(consumer.events.GROUP_JOIN, () => {
        failures = 0;
      });
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (payload.restart || stopped) return;
        consumers.delete(consumer);
        scheduleRestart(payload.error);
      });
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: topics.map(topic), fromBeginning: options.fromBeginning ?? true });
        await consumer.run(run);
      } catch (error) {
        consumers.delete(consumer);
        await consumer.disconnect().catch(() => undefined);
        throw error;
      }
    };
    const scheduleRestart = (error: unknown) => {
      const delayMs = Math.min(CONSUMER_RESTART_MAX_MS, CONSUMER_RESTART_FIRST_MS * 2 ** failures++);
      log.error({ err: error, groupId: topic(groupId), delayMs }, 'consumer stopped and kafkajs will not restart it; starting a new one');
      restartTimer = setTimeout(() => {
        restartTimer = undefined;
        if (stopped) return;
        start().catch((startError: unknown) => {
          if (!stopped) scheduleRestart(startError);
        });
      }, delayMs);
    };

    await whileRetriable(start, (error, attempt) => logKafkaRetry(log, error, attempt, 'consumer did not start; trying again', { groupId: topic(groupId) }));
    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        stopped = true;
        clearTimeout(restartTimer);
        if (!current) return;
        consumers.delete(current);
        await current.disconnect();
      })());
    return { stop, [Symbol.asyncDispose]: stop };
  };

  return {
    topic,
    async ensureTopics(topics) {
      const a = await getAdmin();
      const existing = new Set(await a.listTopics());
      const missing = topics.filter((t) => !existing.has(topic(t.name)));
      const present = topics.filter((t) => existing.has(topic(t.name)));
      if (present.length) {
        const { topics: described } = await a.fetchTopicMetadata({ topics: present.map((t) => topic(t.name)) });
        for (const t of present) {
          const wanted = t.partitions ?? config.kafkaPartitions;
          const has = described.find((d) => d.name === topic(t.name))?.partitions.length ?? wanted;
          if (has < wanted && !warnedPartitions.has(t.name)) {
            warnedPartitions.add(t.name);
            log.warn(
              { topic: topic(t.name), partitions: has, wanted },
              'topic has fewer partitions than wanted (KAFKA_PARTITIONS, or its spec) and is left as it is; see docs/operations.md, "Partitions"',
            );
          }
        }
      }
      if (missing.length === 0) return;
      try {
        await a.createTopics({
          waitForLeaders: true,
          topics: missing.map((t) => ({
            topic: topic(t.name),
            numPartitions: t.partitions ?? config.kafkaPartitions,
            replicationFactor: config.kafkaReplicationFactor,
            configEntries: [
              { name: 'min.insync.replicas', value: String(config.kafkaMinInsyncReplicas) },
              // Shorter than the inbox's memory (INBOX_RETENTION_MS), so no redelivery outlives it.
              { name: 'retention.ms', value: String(config.kafkaRetentionMs) },
            ],
          })),
        });
      } catch (error) {
        // kafkajs says only "Topic creation errors"; the broker's reason per topic is what helps.
        const reasons = (error as { errors?: { topic?: string; message: string }[] }).errors;
        if (!reasons?.length) throw error;
        throw new Error(`could not create topics: ${reasons.map((e) => `${e.topic ?? '?'}: ${e.message}`).join('; ')}`, { cause: error });
      }
    },
    async publish(name, messages) {
      if (messages.length === 0) return;
      const p = await getProducer();
      await p.send({
        topic: topic(name),
        acks: -1,
        messages: messages.map((m) => ({ key: m.key, value: m.value, headers: { ...m.headers } })),
      });
    },
    async consume(groupId, topics, handle, options = {}) {
      // autoCommit: kafkajs marks an offset only once eachMessage resolves, and commits marked
      // offsets every 5 s, on rebalance and on disconnect; so an offset is never committed before
      // its handler (and the transaction in it) finished.
      return runConsumer(groupId, topics, options, {
        autoCommit: true,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 1,
        eachMessage: async ({ topic: t, partition, message, heartbeat }) => {
          await handle(toIncoming(t, partition, message), { heartbeat });
        },
      });
    },
    async consumeBatches(groupId, topics, handle, options = {}) {
      return runConsumer(groupId, topics, options, {
        autoCommit: true,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 1,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary }) => {
          const messages = batch.messages.map((m) => toIncoming(batch.topic, batch.partition, m));
          await handle(messages, { heartbeat, resolveOffset, isActive: () => isRunning() && !isStale() });
          await commitOffsetsIfNecessary();
        },
      });
    },
    async hasTopic(name) {
      const a = await getAdmin();
      return (await a.listTopics()).includes(topic(name));
    },
    async deleteTopics(names) {
      const a = await getAdmin();
      const existing = new Set(await a.listTopics());
      const present = names.map(topic).filter((t) => existing.has(t));
      if (present.length) await a.deleteTopics({ topics: present });
    },
    async topicOffsets(name) {
      const offsets = await fetchOffsets(topic(name));
      return offsets.map((o) => ({ partition: o.partition, low: o.low, high: o.high })).sort((x, y) => x.partition - y.partition);
    },
    async readTopic(name, options = {}) {
      const full = topic(name);
      const offsets = await fetchOffsets(full);
      const range = new Map<number, { from: bigint; high: bigint }>();
      for (const o of offsets) {
        if (options.partitions && !options.partitions.includes(o.partition)) continue;
        const low = BigInt(o.low);
        const requested = options.from?.[o.partition] !== undefined ? BigInt(options.from[o.partition]) : low;
        const from = requested > low ? requested : low;
        const until = options.until?.[o.partition] !== undefined ? BigInt(options.until[o.partition]) : BigInt(o.high);
        const high = until < BigInt(o.high) ? until : BigInt(o.high);
        if (from < high) range.set(o.partition, { from, high });
      }
      if (range.size === 0) return [];
      const groupId = topic(`swiftcart-reader.${randomUUID()}`);
      const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
      consumers.add(consumer);
      const received = new Map<string, IncomingMessage>();
      const remaining = new Set(range.keys());
      let finish!: () => void;
      const done = new Promise<void>((resolve) => {
        finish = resolve;
      });
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [full], fromBeginning: true });
        // Seeking is only a shortcut (eachMessage skips what lies before `from`), and it needs a
        // joined group: after each join, since a consumer that crashed (the coordinator not ready
        // yet after a broker restart) joins again from the beginning.
        consumer.on(consumer.events.GROUP_JOIN, () => {
          try {
            for (const [partition, r] of range) consumer.seek({ topic: full, partition, offset: r.from.toString() });
          } catch {
            // kafkajs emits this inside its join: a throw here would fail the join, a lost seek costs nothing.
          }
        });
        await consumer.run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            const r = range.get(partition);
            const offset = BigInt(message.offset);
            if (!r || offset < r.from || offset >= r.high) return;
            received.set(`${partition}:${message.offset}`, toIncoming(full, partition, message));
            if (offset === r.high - 1n) {
              remaining.delete(partition);
              if (remaining.size === 0) finish();
            }
          },
        });
        const timeoutMs = options.timeoutMs ?? 30_000;
        await withTimeout(done, timeoutMs, `reading ${full} did not answer within ${timeoutMs} ms`);
      } finally {
        consumers.delete(consumer);
        await consumer.disconnect().catch(() => undefined);
        await (await getAdmin()).deleteGroups([groupId]).catch(() => undefined);
      }
      return [...received.values()].sort((x, y) => x.partition - y.partition || Number(BigInt(x.offset) - BigInt(y.offset)));
    },
    async deleteGroups(groupIds) {
      const a = await getAdmin();
      // kafkajs rejects the whole call when one group cannot go (unknown, not empty): none of that is worth failing for.
      await a.deleteGroups(groupIds.map(topic)).catch(() => undefined);
    },
    async groupOffsets(groupId, name) {
      const a = await getAdmin();
      const [result] = await a.fetchOffsets({ groupId: topic(groupId), topics: [topic(name)] });
      return (result?.partitions ?? [])
        .map((p) => ({
          partition: p.partition,
          offset: Number(p.offset) < 0 ? null : p.offset,
          metadata: p.metadata ?? null,
        }))
        .sort((x, y) => x.partition - y.partition);
    },
    async commitGroupOffsets(groupId, name, offsets) {
      if (offsets.length === 0) return;
      const full = topic(name);
      const consumer = kafka.consumer({ groupId: topic(groupId), allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
      consumers.add(consumer);
      try {
        await consumer.connect();
        await consumer.subscribe({ topics: [full], fromBeginning: true });
        // Joins the group and takes every partition, but handles nothing and commits nothing by itself.
        await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: async () => {} });
        consumer.pause([{ topic: full }]);
        await consumer.commitOffsets(offsets.map((o) => ({ topic: full, partition: o.partition, offset: o.offset, metadata: o.metadata ?? null })));
      } finally {
        consumers.delete(consumer);
        await consumer.disconnect().catch(() => undefined);
      }
    },
    async ping(timeoutMs) {
      await describeWithin(getAdmin(), timeoutMs, `Kafka did not answer within ${timeoutMs} ms`);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
