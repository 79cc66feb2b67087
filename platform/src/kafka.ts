import { Kafka, Partitioners, logLevel, type Admin, type Producer, type Consumer, type EachMessagePayload, type LogEntry } from 'kafkajs';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

/** A topic that the platform creates at start-up; broker auto-creation stays off. */
export interface TopicSpec {
  /** The name without the configured prefix, e.g. `order.events.v1`. */
  readonly name: string;
  readonly partitions?: number;
}

/** A message to publish: the key keeps one aggregate's messages in order on one partition. */
export interface OutgoingMessage {
  readonly key: string;
  readonly value: string;
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

/** SwiftCart's Kafka client: the one module that knows kafkajs, so the client can be replaced. */
export interface KafkaClient extends AsyncDisposable {
  /** The full topic name under the configured prefix. */
  topic(name: string): string;
  /** Creates the topics that do not exist yet (idempotent). */
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  /** Sends messages with the idempotent producer (acks=all); resolves once the broker has them. */
  publish(topic: string, messages: readonly OutgoingMessage[]): Promise<void>;
  /** Joins `groupId` on `topics` and hands each message to `handle`; the offset is committed after it resolves. */
  consume(groupId: string, topics: readonly string[], handle: (message: IncomingMessage) => Promise<void>, options?: { fromBeginning?: boolean }): Promise<Subscription>;
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

function toLogger(log: Logger) {
  return () => ({ level, log: entry }: LogEntry) => {
    const { message, ...rest } = entry;
    const line = { kafka: rest, msg: message };
    if (level === logLevel.ERROR) log.error(line);
    else if (level === logLevel.WARN) log.warn(line);
    else log.debug(line);
  };
}

function headersOf(raw: EachMessagePayload['message']['headers']): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw ?? {})) {
    if (value === undefined) continue;
    headers[name] = Array.isArray(value) ? String(value[0]) : String(value);
  }
  return headers;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Creates a client for the configured brokers; connections open lazily on first use. */
export function createKafka(config: Config, log: Logger, clientId: string): KafkaClient {
  const kafka = new Kafka({
    clientId,
    brokers: [...config.kafkaBrokers],
    logLevel: logLevel.WARN,
    logCreator: toLogger(log),
    retry: { retries: 5, initialRetryTime: 200 },
  });
  let admin: Promise<Admin> | undefined;
  let producer: Promise<Producer> | undefined;
  const consumers = new Set<Consumer>();
  const topic = (name: string) => `${config.kafkaTopicPrefix}${name}`;

  const getAdmin = () => {
    admin ??= (async () => {
      const a = kafka.admin();
      await a.connect();
      return a;
    })().catch((error) => { admin = undefined; throw error; });
    return admin;
  };
  const getProducer = () => {
    producer ??= (async () => {
      const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await p.connect();
      return p;
    })().catch((error) => { producer = undefined; throw error; });
    return producer;
  };

  const close = async () => {
    await Promise.allSettled([...consumers].map((c) => c.disconnect()));
    consumers.clear();
    const pending = [admin, producer].filter(Boolean) as Promise<Admin | Producer>[];
    admin = producer = undefined;
    await Promise.allSettled(pending.map(async (p) => (await p).disconnect()));
  };

  return {
    topic,
    async ensureTopics(topics) {
      const a = await getAdmin();
      const existing = new Set(await a.listTopics());
      const missing = topics.filter((t) => !existing.has(topic(t.name)));
      if (missing.length === 0) return;
      await a.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({ topic: topic(t.name), numPartitions: t.partitions ?? 3, replicationFactor: 1 })),
      });
    },
    async publish(name, messages) {
      const p = await getProducer();
      await p.send({
        topic: topic(name),
        acks: -1,
        messages: messages.map((m) => ({ key: m.key, value: m.value, headers: { ...m.headers } })),
      });
    },
    async consume(groupId, topics, handle, options = {}) {
      const consumer = kafka.consumer({ groupId: topic(groupId), allowAutoTopicCreation: false });
      consumers.add(consumer);
      await consumer.connect();
      await consumer.subscribe({ topics: topics.map(topic), fromBeginning: options.fromBeginning ?? true });
      await consumer.run({
        autoCommit: true,
        eachMessage: async ({ topic: t, partition, message }) => {
          await handle({
            topic: t,
            partition,
            offset: message.offset,
            key: message.key?.toString() ?? null,
            value: message.value?.toString() ?? null,
            headers: headersOf(message.headers),
          });
        },
      });
      const stop = async () => {
        consumers.delete(consumer);
        await consumer.disconnect();
      };
      return { stop, [Symbol.asyncDispose]: stop };
    },
    async ping(timeoutMs) {
      await withTimeout(getAdmin().then((a) => a.describeCluster()), timeoutMs, 'Kafka');
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
