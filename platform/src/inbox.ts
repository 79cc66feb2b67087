/**
 * The inbox side of DESIGN.md §7: a consumer that validates every event, applies it exactly once
 * per consumer (the `inbox` row and the handler's effects commit together), retries failures with
 * backoff and jitter, and dead-letters what still fails (or fails its schema) to `<topic>.dlq`.
 */
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import type { Config } from './config.ts';
import type { Database, EntityManager } from './database.ts';
import {
  type AnyEventEnvelope,
  DLQ_ATTEMPTS_HEADER, DLQ_CONSUMER_HEADER, DLQ_ERROR_HEADER, DLQ_FAILED_AT_HEADER,
  DLQ_ORIGINAL_OFFSET_HEADER, DLQ_ORIGINAL_PARTITION_HEADER, DLQ_ORIGINAL_TOPIC_HEADER,
  dlqTopic,
} from './events.ts';
import { type EventSchemaRegistry, EventValidationError, defaultEventSchemaRegistry } from './event-schemas.ts';
import type { ConsumeControls, IncomingMessage, KafkaClient, Subscription } from './kafka.ts';
import type { Logger } from './logger.ts';
import { isUuid } from './ids.ts';
import { retryPolicy, runPolicy } from './resilience.ts';

/** The longest `dlq-error` header written; longer messages are cut. */
const MAX_ERROR_HEADER_LENGTH = 2_000;

/** What a handler gets besides the transactional EntityManager and the event. */
export interface HandlerContext {
  /** The Kafka message the event came in. */
  readonly message: IncomingMessage;
  /** 1 for the first try, then 2, 3, ... while retrying. */
  readonly attempt: number;
  readonly log: Logger;
  /**
   * Registers a side effect (a Redis publish, a metric) to run only after the transaction has
   * committed; dropped when this attempt fails. Its failures are logged, never retried.
   */
  afterCommit(effect: () => void | Promise<void>): void;
}

/**
 * Applies one event inside the inbox transaction: whatever it writes with `em` commits together
 * with the inbox row, or not at all. It may enqueue events (the outbox) with the same `em`.
 */
export type EventHandler<TEvent extends AnyEventEnvelope = AnyEventEnvelope> = (
  em: EntityManager, event: TEvent, context: HandlerContext,
) => Promise<void>;

/** Retry settings of a consumer's handlers. */
export interface ConsumerRetryOptions {
  /** Total attempts, the first included (default 5). */
  readonly attempts?: number;
  /** Backoff before the first retry (default 100 ms). */
  readonly baseMs?: number;
  /** No backoff exceeds this (default 5000 ms). */
  readonly maxMs?: number;
}

/** One consumer of a service: what a service module declares. */
export interface ConsumerSpec {
  /** Names the consumer group (under the topic prefix) and the `inbox.consumer` column, e.g. `inventory.order-events`. */
  readonly consumer: string;
  /** Topics without prefix, e.g. `order.events.v1`. */
  readonly topics: readonly string[];
  /** By event type; a type without a handler is recorded in the inbox and otherwise ignored. */
  readonly handlers: Readonly<Record<string, EventHandler<any>>>;
  readonly retry?: ConsumerRetryOptions;
  /** Partitions handled in parallel (default 3); one partition's messages stay in order. */
  readonly partitionsConsumedConcurrently?: number;
  /** Where a new consumer group starts (default true: the beginning, so no event is skipped). */
  readonly fromBeginning?: boolean;
  /** How long an idle fetch waits (default 1000 ms). */
  readonly maxWaitTimeInMs?: number;
}

/** The connections a consumer uses: a subset of `ServiceRuntime`. */
export interface ConsumerRuntime {
  readonly config: Config;
  readonly log: Logger;
  readonly db: Database;
  readonly kafka: KafkaClient;
}

/** {@link startConsumer}'s options. */
export interface ConsumerOptions extends ConsumerSpec {
  readonly runtime: ConsumerRuntime;
  /** The contracts (default: `schema/events/`). */
  readonly registry?: EventSchemaRegistry;
}

/** A consumer's counters since it started. */
export interface ConsumerMetrics {
  /** Events whose handler committed. */
  readonly processed: number;
  /** Events already in the inbox: redeliveries, replays, duplicates on the topic. */
  readonly duplicates: number;
  /** Events of a type this consumer has no handler for (recorded in the inbox, not applied). */
  readonly ignored: number;
  /** Messages sent to `<topic>.dlq`. */
  readonly deadLettered: number;
  /** Retries made (attempts after the first). */
  readonly retried: number;
}

/** A running consumer; dispose it to leave the group (a message in progress finishes or is redelivered later). */
export interface RunningConsumer extends AsyncDisposable {
  readonly consumer: string;
  readonly metrics: ConsumerMetrics;
  stop(): Promise<void>;
}

interface MutableMetrics {
  processed: number;
  duplicates: number;
  ignored: number;
  deadLettered: number;
  retried: number;
}

/** A message that is not an event we can apply, whatever we retry: it goes to the DLQ at once. */
class PoisonMessage extends Error {
  override name = 'PoisonMessage';
}

/**
 * The envelope of a message, validated against its contract; throws {@link PoisonMessage} when
 * it cannot be applied. A type this consumer has no handler for and no contract for (e.g. added
 * by a newer producer) is not an error: it comes back unvalidated, to be recorded and skipped.
 */
function parseEnvelope(message: IncomingMessage, registry: EventSchemaRegistry, handlers: ConsumerSpec['handlers']): AnyEventEnvelope {
  if (message.value === null) throw new PoisonMessage('message has no value');
  let parsed: unknown;
  try {
    parsed = JSON.parse(message.value);
  } catch (error) {
    throw new PoisonMessage(`value is not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new PoisonMessage('value is not a JSON object');
  const { id, type, version } = parsed as { id?: unknown; type?: unknown; version?: unknown };
  if (typeof id !== 'string' || !isUuid(id)) throw new PoisonMessage('envelope "id" must be a UUID');
  if (typeof type !== 'string' || type.length === 0) throw new PoisonMessage('envelope "type" must be a non-empty string');
  if (!Object.hasOwn(handlers, type) && !(Number.isInteger(version) && registry.has(type, version as number))) {
    return parsed as AnyEventEnvelope;
  }
  try {
    registry.validate(parsed);
  } catch (error) {
    if (error instanceof EventValidationError) throw new PoisonMessage(error.message);
    throw error;
  }
  return parsed;
}

/**
 * Starts consuming `topics` as `consumer`. Per message, in partition order:
 * 1. Parse and validate the envelope; a message that fails goes to `<topic>.dlq` at once.
 * 2. In one transaction: insert `(consumer, event id)` into `inbox` (on conflict do nothing). No
 *    row inserted means a duplicate: nothing else happens. Otherwise the handler runs with the
 *    transactional EntityManager (a type without handler is only recorded).
 * 3. After commit: the `afterCommit` effects run; the Kafka offset is marked only now.
 * A failed transaction is retried with exponential backoff and jitter up to `retry.attempts`,
 * then dead-lettered with the error in headers; either way the next message follows.
 *
 * The topics and their `.dlq` topics are created if missing (1 partition for a DLQ, so its
 * offsets name dead letters unambiguously).
 */
export async function startConsumer(options: ConsumerOptions): Promise<RunningConsumer> {
  const { runtime, consumer, topics, handlers } = options;
  const { kafka } = runtime;
  const log = runtime.log.child({ consumer });
  const registry: EventSchemaRegistry = options.registry ?? defaultEventSchemaRegistry();
  const attempts = options.retry?.attempts ?? 5;
  const baseMs = options.retry?.baseMs ?? 100;
  const maxMs = options.retry?.maxMs ?? 5_000;
  const metrics: MutableMetrics = { processed: 0, duplicates: 0, ignored: 0, deadLettered: 0, retried: 0 };
  const stopping = new AbortController();
  const tracer = trace.getTracer('@swiftcart/platform');
  // Full topic name (as Kafka reports it) → the name without prefix (as the platform publishes it).
  const shortNames = new Map(topics.map((t) => [kafka.topic(t), t]));

  await kafka.ensureTopics([
    ...topics.map((name) => ({ name })),
    ...topics.map((name) => ({ name: dlqTopic(name), partitions: 1 })),
  ]);

  const dlqRetry = retryPolicy({ attempts: 5, baseMs, maxMs });
  const deadLetter = async (message: IncomingMessage, error: unknown, attemptsMade: number) => {
    const shortName = shortNames.get(message.topic) ?? message.topic;
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const headers = {
      ...message.headers,
      [DLQ_ERROR_HEADER]: reason.slice(0, MAX_ERROR_HEADER_LENGTH),
      [DLQ_ORIGINAL_TOPIC_HEADER]: message.topic,
      [DLQ_ORIGINAL_PARTITION_HEADER]: String(message.partition),
      [DLQ_ORIGINAL_OFFSET_HEADER]: message.offset,
      [DLQ_ATTEMPTS_HEADER]: String(attemptsMade),
      [DLQ_FAILED_AT_HEADER]: new Date().toISOString(),
      [DLQ_CONSUMER_HEADER]: consumer,
    };
    // Losing a message is worse than blocking its partition: if even the DLQ refuses it, this
    // throws, the offset is not committed, and Kafka delivers the message again.
    await runPolicy(dlqRetry, () => kafka.publish(dlqTopic(shortName), [{ key: message.key, value: message.value, headers }]), stopping.signal);
    metrics.deadLettered++;
    log.warn({ topic: message.topic, partition: message.partition, offset: message.offset, eventId: message.headers.id, attempts: attemptsMade, err: error }, 'message dead-lettered');
  };

  /** Applies the event in the inbox transaction, with retries; rejects with the last failure (`tries.made` says how many attempts). */
  const apply = async (event: AnyEventEnvelope, message: IncomingMessage, controls: ConsumeControls, tries: { made: number }) => {
    const handler = handlers[event.type];
    let effects: (() => void | Promise<void>)[] = [];
    // One policy per event: its retry log names the event.
    const policy = retryPolicy({
      attempts,
      baseMs,
      maxMs,
      // An event its own contract refuses (e.g. an invalid event the handler enqueues) fails the same way every time.
      retryable: (error) => !(error instanceof EventValidationError),
      onRetry: (error, attempt, delayMs) => {
        metrics.retried++;
        log.warn({ eventId: event.id, type: event.type, attempt, delayMs, err: error }, 'event handler failed; retrying');
        void controls.heartbeat().catch(() => undefined);
      },
    });
    const outcome = await runPolicy(policy, async (context) => {
      const attempt = context.attempt + 1;
      tries.made = attempt;
      effects = [];
      return runtime.db.fork().transactional(async (em) => {
        const inserted = await em.execute<{ event_id: string }[]>(
          'insert into inbox (consumer, event_id, event_type) values (?, ?, ?) on conflict do nothing returning event_id',
          [consumer, event.id, event.type],
        );
        if (inserted.length === 0) return 'duplicates' as const;
        if (!handler) return 'ignored' as const;
        await handler(em, event, {
          message,
          attempt,
          log,
          afterCommit: (effect) => { effects.push(effect); },
        });
        return 'processed' as const;
      });
    }, stopping.signal);
    metrics[outcome]++;
    if (outcome === 'processed') {
      for (const effect of effects) {
        try {
          await effect();
        } catch (error) {
          log.error({ eventId: event.id, type: event.type, err: error }, 'after-commit effect failed');
        }
      }
    }
  };

  const handle = async (message: IncomingMessage, controls: ConsumeControls) => {
    let event: AnyEventEnvelope;
    try {
      event = parseEnvelope(message, registry, handlers);
    } catch (error) {
      if (error instanceof PoisonMessage) return deadLetter(message, error, 1);
      throw error;
    }
    const parent = propagation.extract(context.active(), message.headers);
    const envelope = event;
    await tracer.startActiveSpan(`${envelope.type} process`, {
      kind: SpanKind.CONSUMER,
      attributes: { 'messaging.system': 'kafka', 'messaging.destination.name': message.topic, 'messaging.message.id': envelope.id, 'messaging.consumer.group.name': consumer },
    }, parent, async (span) => {
      const tries = { made: 0 };
      try {
        await apply(envelope, message, controls, tries);
      } catch (error) {
        // Shutting down mid-retry: leave the offset alone; the message is delivered again later.
        if (stopping.signal.aborted) throw error;
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        await deadLetter(message, error, tries.made);
      } finally {
        span.end();
      }
    });
  };

  const subscription: Subscription = await kafka.consume(consumer, topics, handle, {
    fromBeginning: options.fromBeginning ?? true,
    partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 3,
    maxWaitTimeInMs: options.maxWaitTimeInMs,
  });
  log.info({ topics }, 'consumer started');

  let stopped: Promise<void> | undefined;
  const stop = () => (stopped ??= (async () => {
    stopping.abort(new Error(`consumer ${consumer} stopping`));
    await subscription.stop();
  })());
  return {
    consumer,
    get metrics(): ConsumerMetrics {
      return { ...metrics };
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
