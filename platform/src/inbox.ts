/**
 * The inbox side of DESIGN.md §7: a consumer that validates every event, applies it exactly once
 * per consumer (the `inbox` row and the handler's effects commit together), many events to a
 * transaction, retries failures with backoff and jitter, and dead-letters what still fails (or
 * fails its schema) to `<topic>.dlq`.
 */
import { type Span, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import type { Config } from './config.ts';
import { type AfterCommit, type Database, type EntityManager, inTransaction } from './database.ts';
import {
  type AnyEventEnvelope,
  DLQ_ATTEMPTS_HEADER,
  DLQ_CONSUMER_HEADER,
  DLQ_ERROR_HEADER,
  DLQ_FAILED_AT_HEADER,
  DLQ_ORIGINAL_OFFSET_HEADER,
  DLQ_ORIGINAL_PARTITION_HEADER,
  DLQ_ORIGINAL_TOPIC_HEADER,
  dlqTopic,
} from './events.ts';
import { type EventSchemaRegistry, EventValidationError, defaultEventSchemaRegistry } from './event-schemas.ts';
import { type BatchControls, type ConsumeControls, type IncomingMessage, type KafkaClient, type Subscription } from './kafka.ts';
import type { Logger } from './logger.ts';
import { crashPoint } from './faults.ts';
import { ORDER_ID_ATTRIBUTE, orderIdOf } from './messaging-tracing.ts';
import { isUnavailable } from './errors.ts';
import { isUuid } from './ids.ts';
import { EVENT_CONTRACTS, eventsTopic, type EventOf, type EventType } from './events.ts';
import { retryPolicy, runPolicy } from './resilience.ts';

/** The longest `dlq-error` header written; longer messages are cut. */
const MAX_ERROR_HEADER_LENGTH = 2_000;

/** What a handler gets besides the transactional EntityManager and the event. */
export interface HandlerContext {
  /** The Kafka message the event came in. */
  readonly message: IncomingMessage;
  /** 1 for the first try, then 2, 3, ... while retrying one event on its own. */
  readonly attempt: number;
  readonly log: Logger;
  /** What the event type's {@link EventPreparer} returned for this event (undefined without one). */
  readonly prepared: unknown;
  /**
   * Registers a side effect (a Redis publish, a metric) to run only after the transaction has
   * committed; dropped when this attempt fails. Its failures are logged, never retried.
   */
  readonly afterCommit: AfterCommit;
}

/**
 * Applies one event inside the inbox transaction: whatever it writes with `em` commits together
 * with the inbox row, or not at all. It may enqueue events (the outbox) with the same `em`.
 */
export type EventHandler<TEvent extends AnyEventEnvelope = AnyEventEnvelope> = (em: EntityManager, event: TEvent, context: HandlerContext) => Promise<void>;

/** What a {@link BatchEventHandler} gets besides the transactional EntityManager and the events. */
export interface BatchHandlerContext {
  readonly log: Logger;
  /** What the preparers returned, by event id. */
  readonly prepared: ReadonlyMap<string, unknown>;
  /** As {@link HandlerContext.afterCommit}: runs once the batch's transaction has committed. */
  readonly afterCommit: AfterCommit;
}

/**
 * Applies several new events of one partition at once, in the given (offset) order, inside the
 * inbox transaction: the set-based twin of a consumer's per-event handlers, for a consumer whose
 * cost is round trips per event. It must leave the same state as the handlers applied one by one
 * (which is what an event applied on its own gets: a retry, a batch split around a poison event).
 */
export type BatchEventHandler = (em: EntityManager, events: readonly AnyEventEnvelope[], context: BatchHandlerContext) => Promise<void>;

/** What a preparer gets: see {@link ConsumerSpec.preparers}. */
export interface PrepareContext {
  readonly message: IncomingMessage;
  readonly log: Logger;
  /** Aborts when the consumer stops. */
  readonly signal: AbortSignal;
}

/**
 * Does the slow, remote part of an event's work OUTSIDE any transaction (a payment provider call),
 * before its handler records the outcome inside the inbox transaction (as `context.prepared`). It
 * runs only for events not yet in the inbox, may run again for the same event (a redelivery, a
 * retry, a batch applied again one event at a time), so what it does must be idempotent (e.g.
 * keyed by an id derived from the event). Preparers of one batch run concurrently; a handler that
 * finds the state changed since its preparer looked throws, and the event is prepared and applied
 * again on its own.
 */
export type EventPreparer<TEvent extends AnyEventEnvelope = AnyEventEnvelope> = (event: TEvent, context: PrepareContext) => Promise<unknown>;

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
  /** By event type: remote work done before the handler's transaction (see {@link EventPreparer}). */
  readonly preparers?: Readonly<Record<string, EventPreparer<any>>>;
  /**
   * Applies the events of a batch that have a handler in one call instead of a handler call each
   * (see {@link BatchEventHandler}); events applied on their own still go to `handlers`.
   */
  readonly applyBatch?: BatchEventHandler;
  /** Events applied in one transaction, at most (default 100); 1 applies every event on its own. */
  readonly maxBatchSize?: number;
  readonly retry?: ConsumerRetryOptions;
  /**
   * Partitions handled in parallel; one partition's messages stay in order. Default: the topics ×
   * `KAFKA_PARTITIONS`, at most `DB_POOL_SIZE`, since each one in flight holds a connection.
   */
  readonly partitionsConsumedConcurrently?: number;
  /** Where a new consumer group starts (default true: the beginning, so no event is skipped). */
  readonly fromBeginning?: boolean;
  /** How long an idle fetch waits (default 1000 ms). */
  readonly maxWaitTimeInMs?: number;
}

/** Handlers of SwiftCart's contracts, by event type: each gets the envelope its contract describes. */
export type TypedEventHandlers<T extends EventType> = { readonly [K in T]: EventHandler<EventOf<K>> };

/** Preparers of SwiftCart's contracts, by event type (see {@link EventPreparer}). */
export type TypedEventPreparers<T extends EventType> = { readonly [K in T]?: EventPreparer<EventOf<K>> };

/** What {@link defineConsumer} takes: a {@link ConsumerSpec} whose handlers are typed and whose topics follow from them. */
export interface TypedConsumerSpec<T extends EventType> extends Omit<ConsumerSpec, 'topics' | 'handlers' | 'preparers'> {
  readonly handlers: TypedEventHandlers<T>;
  readonly preparers?: TypedEventPreparers<T>;
}

/**
 * A consumer of the events in `schema/events/`: each handler is typed by its event's contract (the
 * inbox validates every event against it before a handler runs, so the type holds), and the topics
 * are those of the services that publish the handled types.
 */
export function defineConsumer<T extends EventType>(spec: TypedConsumerSpec<T>): ConsumerSpec {
  const types = Object.keys(spec.handlers) as T[];
  const topics = [...new Set(types.map((type) => eventsTopic(EVENT_CONTRACTS[type].source)))].sort();
  return { ...spec, topics, handlers: spec.handlers as ConsumerSpec['handlers'], preparers: spec.preparers as ConsumerSpec['preparers'] };
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
  /** Transactions that applied more than one event. */
  readonly batches: number;
  /** Batches that failed and were applied again one event at a time. */
  readonly batchesSplit: number;
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
  batches: number;
  batchesSplit: number;
}

/** PostgreSQL's answer when two transactions wait on each other, or a serializable one lost: worth applying the batch again. */
const CONCURRENCY_FAILURES = new Set(['40P01', '40001']);

function isConcurrencyFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONCURRENCY_FAILURES.has(code);
}

/** A message and the event parsed from it. */
interface Delivery {
  readonly message: IncomingMessage;
  readonly event: AnyEventEnvelope;
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

/** The order id attribute of an event's span, when the event is about an order. */
function orderAttribute(event: AnyEventEnvelope): Record<string, string> {
  const orderId = orderIdOf(event.aggregateType, event.aggregateId, event.data);
  return orderId ? { [ORDER_ID_ATTRIBUTE]: orderId } : {};
}

/**
 * Starts consuming `topics` as `consumer`. What one fetch brings of a partition is handled in
 * chunks of up to `maxBatchSize` messages, in offset order:
 * 1. Parse and validate each envelope; a message that fails goes to `<topic>.dlq` at once.
 * 2. Preparers (remote calls) run for the events not yet in the inbox, outside any transaction.
 * 3. In ONE transaction: insert `(consumer, event id)` into `inbox` for the whole chunk (on
 *    conflict do nothing); an event whose row was not inserted is a duplicate and changes nothing.
 *    Then each new event's handler runs with the transactional EntityManager, in order (a type
 *    without handler is only recorded). A deadlock applies the chunk again.
 * 4. After commit: the `afterCommit` effects run, in order; only now are the offsets resolved.
 * When the chunk's transaction fails, its events are applied again one at a time, each in its own
 * transaction, retried with exponential backoff and jitter up to `retry.attempts`, then
 * dead-lettered with the error in headers; either way the next message follows. So one poison
 * event costs its batch a second pass, never the others' effects, and nothing applies twice.
 *
 * A message that kills the process (no error to catch) is found by counting in PostgreSQL, before
 * any work, how often each chunk was handed over (`consumer_delivery`). A chunk handed over again
 * unfinished is applied one event at a time, each counted first; an event handed over
 * `CONSUMER_MAX_DELIVERIES` times is dead-lettered unapplied on the next handing.
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
  const metrics: MutableMetrics = { processed: 0, duplicates: 0, ignored: 0, deadLettered: 0, retried: 0, batches: 0, batchesSplit: 0 };
  const preparers = options.preparers ?? {};
  const { applyBatch } = options;
  const maxBatchSize = options.maxBatchSize ?? 100;
  if (!Number.isSafeInteger(maxBatchSize) || maxBatchSize < 1) throw new RangeError(`maxBatchSize must be a whole number from 1, got ${maxBatchSize}`);
  const stopping = new AbortController();
  const tracer = trace.getTracer('@swiftcart/platform');
  // Full topic name (as Kafka reports it) → the name without prefix (as the platform publishes it).
  const shortNames = new Map(topics.map((t) => [kafka.topic(t), t]));

  await kafka.ensureTopics([...topics.map((name) => ({ name })), ...topics.map((name) => ({ name: dlqTopic(name), partitions: 1 }))]);

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
    log.warn(
      { topic: message.topic, partition: message.partition, offset: message.offset, eventId: message.headers.id, attempts: attemptsMade, err: error },
      'message dead-lettered',
    );
  };

  /** Runs `work` in the CONSUMER span of one event, a child of the producer's context (the `traceparent` header). */
  const inConsumerSpan = <T>({ message, event }: Delivery, work: (span: Span) => Promise<T>): Promise<T> => {
    const parent = propagation.extract(context.active(), message.headers);
    return tracer.startActiveSpan(
      `${event.type} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.destination.name': message.topic,
          'messaging.message.id': event.id,
          'messaging.consumer.group.name': consumer,
          ...orderAttribute(event),
        },
      },
      parent,
      async (span) => {
        try {
          return await work(span);
        } finally {
          span.end();
        }
      },
    );
  };

  /** Runs `work` (one call for several events) inside a CONSUMER span per event, each a child of its producer's context. */
  const inConsumerSpans = async <T>(deliveries: readonly Delivery[], work: () => Promise<T>): Promise<T> => {
    const spans = deliveries.map(({ message, event }) =>
      tracer.startSpan(
        `${event.type} process`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': 'kafka',
            'messaging.destination.name': message.topic,
            'messaging.message.id': event.id,
            'messaging.consumer.group.name': consumer,
            'messaging.batch.message_count': deliveries.length,
            ...orderAttribute(event),
          },
        },
        propagation.extract(context.active(), message.headers),
      ),
    );
    try {
      return await work();
    } catch (error) {
      for (const span of spans) span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      for (const span of spans) span.end();
    }
  };

  /** Event ids of `ids` already in this consumer's inbox. */
  const alreadyApplied = async (ids: readonly string[]): Promise<Set<string>> => {
    const rows = await runtime.db
      .fork()
      .execute<{ event_id: string }[]>(
        'select event_id from inbox where consumer = ? and event_id in (select value::uuid from jsonb_array_elements_text(?::jsonb))',
        [consumer, JSON.stringify(ids)],
      );
    return new Set(rows.map((r) => r.event_id));
  };

  const prepare = (delivery: Delivery): Promise<unknown> => {
    const preparer = preparers[delivery.event.type];
    return preparer ? preparer(delivery.event, { message: delivery.message, log, signal: stopping.signal }) : Promise.resolve(undefined);
  };

  /** Applies one event in its own inbox transaction, with retries; rejects with the last failure (`tries.made` says how many attempts). */
  const applyOne = async ({ message, event }: Delivery, controls: ConsumeControls, tries: { made: number }) => {
    const handler = handlers[event.type] as EventHandler | undefined;
    const preparer = preparers[event.type] as EventPreparer | undefined;
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
    const outcome = await runPolicy(
      policy,
      async (retryContext) => {
        const attempt = retryContext.attempt + 1;
        tries.made = attempt;
        // The remote part first, outside the transaction, and only for an event not applied yet.
        let prepared: unknown;
        if (handler && preparer) {
          if ((await alreadyApplied([event.id])).size > 0) return 'duplicates' as const;
          prepared = await prepare({ message, event });
        }
        // Its after-commit effects run once this attempt has committed; a failed attempt drops them.
        return inTransaction(
          runtime.db,
          log,
          async (em, afterCommit) => {
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
              prepared,
              afterCommit,
            });
            return 'processed' as const;
          },
          { eventId: event.id, type: event.type },
        );
      },
      stopping.signal,
    );
    metrics[outcome]++;
  };

  /** One event on its own: applied with retries, dead-lettered when they are spent. */
  const handleOne = (delivery: Delivery, controls: ConsumeControls) =>
    inConsumerSpan(delivery, async (span) => {
      const tries = { made: 0 };
      try {
        await applyOne(delivery, controls, tries);
      } catch (error) {
        // Shutting down mid-retry, or the database or a broker out of reach: not the event's fault.
        // The offset stays unresolved and the message is delivered again once the consumer restarts.
        if (stopping.signal.aborted || isUnavailable(error)) throw error;
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        await deadLetter(delivery.message, error, tries.made);
      }
    });

  // A batch that two transactions deadlocked on is applied again whole before it is split up.
  const batchRetry = retryPolicy({ attempts: 3, baseMs, maxMs, retryable: isConcurrencyFailure });

  /**
   * Applies several events of one partition in ONE transaction, in offset order: the inbox rows in
   * one statement, then each new event's handler; the first copy of an event id counts, later ones
   * are duplicates. Rejects when any of it fails (nothing is committed then).
   */
  const applyTogether = async (deliveries: readonly Delivery[]) => {
    const unique: Delivery[] = [];
    const seen = new Set<string>();
    for (const delivery of deliveries) {
      if (seen.has(delivery.event.id)) continue;
      seen.add(delivery.event.id);
      unique.push(delivery);
    }
    let duplicates = deliveries.length - unique.length;
    // The remote parts, concurrently and outside the transaction, for events not applied yet.
    const prepared = new Map<string, unknown>();
    const toPrepare = unique.filter((d) => handlers[d.event.type] && preparers[d.event.type]);
    if (toPrepare.length > 0) {
      const applied = await alreadyApplied(toPrepare.map((d) => d.event.id));
      await Promise.all(
        toPrepare
          .filter((d) => !applied.has(d.event.id))
          .map(async (d) => {
            prepared.set(d.event.id, await prepare(d));
          }),
      );
    }
    // The effects run once the attempt that commits has committed; a failed attempt drops them.
    const counts = await runPolicy(
      batchRetry,
      () => {
        return inTransaction(
          runtime.db,
          log,
          async (em, afterCommit) => {
            const inserted = new Set(
              (
                await em.execute<{ event_id: string }[]>(
                  `
          insert into inbox (consumer, event_id, event_type)
          select ?, (e->>'id')::uuid, e->>'type' from jsonb_array_elements(?::jsonb) as e
          on conflict do nothing returning event_id`,
                  [consumer, JSON.stringify(unique.map((d) => ({ id: d.event.id, type: d.event.type })))],
                )
              ).map((r) => r.event_id),
            );
            const result = { processed: 0, duplicates: 0, ignored: 0 };
            if (applyBatch) {
              const handled: Delivery[] = [];
              for (const delivery of unique) {
                if (!inserted.has(delivery.event.id)) result.duplicates++;
                else if (!handlers[delivery.event.type]) result.ignored++;
                else handled.push(delivery);
              }
              if (handled.length > 0) {
                await inConsumerSpans(handled, () =>
                  applyBatch(
                    em,
                    handled.map((d) => d.event),
                    { log, prepared, afterCommit },
                  ),
                );
                result.processed += handled.length;
              }
              return result;
            }
            for (const delivery of unique) {
              const { event, message } = delivery;
              if (!inserted.has(event.id)) {
                result.duplicates++;
                continue;
              }
              const handler = handlers[event.type];
              if (!handler) {
                result.ignored++;
                continue;
              }
              await inConsumerSpan(delivery, () =>
                handler(em, event, {
                  message,
                  attempt: 1,
                  log,
                  prepared: prepared.get(event.id),
                  afterCommit,
                }),
              );
              // Each handler starts from the database, not from entities an earlier one left behind.
              await em.flush();
              em.clear();
              result.processed++;
            }
            return result;
          },
          { events: unique.length },
        );
      },
      stopping.signal,
    );
    duplicates += counts.duplicates;
    metrics.processed += counts.processed;
    metrics.duplicates += duplicates;
    metrics.ignored += counts.ignored;
    metrics.batches++;
  };

  /**
   * Counts one more handing of `message` to this consumer, committed before any work on it, and
   * returns the count. A row that does not exist yet starts at `initial`. A message that kills the
   * process leaves nothing else behind, so this count is how its next delivery knows.
   */
  const recordDelivery = async (scope: 'chunk' | 'event', message: IncomingMessage, initial = 1): Promise<number> => {
    const [row] = await runtime.db.fork().execute<{ deliveries: number }[]>(
      `
      insert into consumer_delivery as d (consumer, scope, topic, partition, "offset", deliveries) values (?, ?, ?, ?, ?, ?)
      on conflict (consumer, scope, topic, partition, "offset")
        do update set deliveries = d.deliveries + 1, delivered_at = now()
      returning deliveries`,
      [consumer, scope, message.topic, message.partition, message.offset, initial],
    );
    return Number(row.deliveries);
  };
  const { consumerMaxDeliveries } = runtime.config;

  /**
   * A chunk handed over before without being finished (the process died, or stopped, mid-chunk):
   * its events go one at a time, each counted on its own first, so the one that kills the process
   * is found, and dead-lettered unapplied once handed `CONSUMER_MAX_DELIVERIES` times. An event's
   * count starts at 2: the chunk's unfinished handing may have been its doing, and that is all
   * that can be said of an event never handed on its own before.
   */
  const handleCarefully = async (deliveries: readonly Delivery[], controls: ConsumeControls) => {
    for (const delivery of deliveries) {
      const handed = await recordDelivery('event', delivery.message, 2);
      if (handed > consumerMaxDeliveries) {
        const died = handed - 1;
        await deadLetter(delivery.message, new Error(`handed to this consumer ${died} times, and each time it died before finishing; not applied`), died);
        continue;
      }
      crashPoint(runtime.config, 'handling', delivery.event.id);
      await handleOne(delivery, controls);
    }
  };

  /** Up to `maxBatchSize` messages: poison to the DLQ, the rest in one transaction, or one at a time when that fails. */
  const handleChunk = async (messages: readonly IncomingMessage[], controls: ConsumeControls) => {
    const chunkDeliveries = await recordDelivery('chunk', messages[0]);
    const deliveries: Delivery[] = [];
    for (const message of messages) {
      try {
        deliveries.push({ message, event: parseEnvelope(message, registry, handlers) });
      } catch (error) {
        if (!(error instanceof PoisonMessage)) throw error;
        await deadLetter(message, error, 1);
      }
    }
    if (deliveries.length === 0) return;
    if (chunkDeliveries > 1) {
      log.warn(
        { partition: messages[0].partition, firstOffset: messages[0].offset, deliveries: chunkDeliveries, events: deliveries.length },
        'chunk handed over again unfinished; applying its events one at a time',
      );
      return handleCarefully(deliveries, controls);
    }
    for (const delivery of deliveries) crashPoint(runtime.config, 'handling', delivery.event.id);
    if (deliveries.length === 1) return handleOne(deliveries[0], controls);
    try {
      await applyTogether(deliveries);
    } catch (error) {
      if (stopping.signal.aborted || isUnavailable(error)) throw error;
      // One bad event must not hold back the others: each goes again on its own, with its own
      // retries and dead letter; what the batch did was rolled back, so nothing applies twice.
      metrics.batchesSplit++;
      log.warn(
        { events: deliveries.length, firstOffset: deliveries[0].message.offset, partition: deliveries[0].message.partition, err: error },
        'batch failed; applying its events one at a time',
      );
      for (const delivery of deliveries) await handleOne(delivery, controls);
    }
  };

  const handleBatch = async (messages: readonly IncomingMessage[], controls: BatchControls) => {
    for (let from = 0; from < messages.length; from += maxBatchSize) {
      // Stopping or rebalanced: what is not resolved is delivered again, here or to another member.
      if (!controls.isActive()) return;
      const chunk = messages.slice(from, from + maxBatchSize);
      await handleChunk(chunk, controls);
      controls.resolveOffset(chunk[chunk.length - 1].offset);
      await controls.heartbeat().catch(() => undefined);
    }
  };

  const subscription: Subscription = await kafka.consumeBatches(consumer, topics, handleBatch, {
    fromBeginning: options.fromBeginning ?? true,
    partitionsConsumedConcurrently:
      options.partitionsConsumedConcurrently ?? Math.min(topics.length * runtime.config.kafkaPartitions, runtime.config.databasePoolSize),
    maxWaitTimeInMs: options.maxWaitTimeInMs,
  });
  log.info({ topics }, 'consumer started');

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
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
