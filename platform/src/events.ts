/**
 * The one event envelope every SwiftCart service publishes and consumes (DESIGN.md §5), the
 * topic names, and the Kafka header names. Pure: no I/O here.
 */
import { context, propagation } from '@opentelemetry/api';
import { v7 } from 'uuid';
import { EVENT_CONTRACTS, type EventDataMap } from './generated/events.ts';

export type * from './generated/events.ts';
export { EVENT_CONTRACTS } from './generated/events.ts';

/** Header carrying the event id (also in the envelope), so tools can see it without parsing. */
export const EVENT_ID_HEADER = 'id';
/** Header carrying the event type, e.g. `OrderPlaced`. */
export const EVENT_TYPE_HEADER = 'type';
/** W3C trace context header: one trace follows an order through every service. */
export const TRACEPARENT_HEADER = 'traceparent';
/** W3C trace state header, carried along with `traceparent` when a propagator sets it. */
export const TRACESTATE_HEADER = 'tracestate';

/** Dead-letter headers: why and where a message failed. */
export const DLQ_ERROR_HEADER = 'dlq-error';
export const DLQ_ORIGINAL_TOPIC_HEADER = 'dlq-original-topic';
export const DLQ_ORIGINAL_PARTITION_HEADER = 'dlq-original-partition';
export const DLQ_ORIGINAL_OFFSET_HEADER = 'dlq-original-offset';
export const DLQ_ATTEMPTS_HEADER = 'dlq-attempts';
export const DLQ_FAILED_AT_HEADER = 'dlq-failed-at';
export const DLQ_CONSUMER_HEADER = 'dlq-consumer';

/** Every header the dead-letter path adds (a replay strips them again). */
export const DLQ_HEADERS: readonly string[] = [
  DLQ_ERROR_HEADER,
  DLQ_ORIGINAL_TOPIC_HEADER,
  DLQ_ORIGINAL_PARTITION_HEADER,
  DLQ_ORIGINAL_OFFSET_HEADER,
  DLQ_ATTEMPTS_HEADER,
  DLQ_FAILED_AT_HEADER,
  DLQ_CONSUMER_HEADER,
];

/**
 * One event as it travels on Kafka (the message value) and sits in the outbox (`payload`).
 * `id` is a UUID v7, so ids sort by creation time.
 */
export interface EventEnvelope<TType extends string = string, TData = unknown> {
  readonly id: string;
  readonly type: TType;
  readonly version: number;
  /** The service that published it, e.g. `order`. */
  readonly source: string;
  readonly aggregateType: string;
  /** Also the Kafka message key: one aggregate's events keep their order. */
  readonly aggregateId: string;
  /** ISO-8601 with milliseconds, UTC. */
  readonly occurredAt: string;
  /** The order id for saga events: every event of one business flow shares it. */
  readonly correlationId: string;
  /** The id of the event that caused this one; null for one caused by a request. */
  readonly causationId: string | null;
  readonly data: TData;
}

/** Any envelope, whatever its type and data. */
export type AnyEventEnvelope = EventEnvelope<string, unknown>;

/** What {@link createEvent} needs; the rest is filled in. */
export interface NewEvent<TType extends string, TData> {
  readonly type: TType;
  /** Defaults to 1. */
  readonly version?: number;
  readonly source: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** Defaults to the cause's correlation id, else the aggregate id. */
  readonly correlationId?: string;
  /** Defaults to the cause's id, else null. */
  readonly causationId?: string | null;
  /** The event this one reacts to: sets `causationId` and `correlationId` unless given. */
  readonly cause?: Pick<AnyEventEnvelope, 'id' | 'correlationId'>;
  readonly data: TData;
  /** Defaults to now. */
  readonly occurredAt?: string | Date;
  /** Defaults to a fresh {@link uuidv7}. */
  readonly id?: string;
}

/**
 * A UUID v7 (RFC 9562): time-ordered, so primary keys and event ids sort by creation. Without `now`,
 * ids from this process are strictly increasing, also within one millisecond or when the clock steps
 * back (the `uuid` package keeps a counter); with `now` (an injected clock) the id carries that time.
 */
export function uuidv7(now?: number): string {
  return now === undefined ? v7() : v7({ msecs: now });
}

/** The millisecond timestamp a UUID v7 carries. */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);
}

/**
 * Builds an envelope of any contract with a fresh UUID v7 and the current time; does not validate
 * (the outbox does). Services build theirs with {@link newEvent}, which takes what the contract fixes
 * from it; this is for contracts outside `schema/events/` (the platform's own tests).
 */
export function createEvent<TType extends string, TData>(input: NewEvent<TType, TData>): EventEnvelope<TType, TData> {
  const occurredAt =
    input.occurredAt === undefined ? new Date().toISOString() : input.occurredAt instanceof Date ? input.occurredAt.toISOString() : input.occurredAt;
  return {
    id: input.id ?? uuidv7(),
    type: input.type,
    version: input.version ?? 1,
    source: input.source,
    aggregateType: input.aggregateType,
    aggregateId: input.aggregateId,
    occurredAt,
    correlationId: input.correlationId ?? input.cause?.correlationId ?? input.aggregateId,
    causationId: input.causationId !== undefined ? input.causationId : (input.cause?.id ?? null),
    data: input.data,
  };
}

/** An event type of `schema/events/`, e.g. `OrderPlaced`. */
export type EventType = keyof EventDataMap;

/** The envelope of one event type at its current contract version. */
export type EventOf<T extends EventType> = EventEnvelope<T, EventDataMap[T]>;

/** The envelope of any of the given event types: a union, so `switch (event.type)` narrows `data`. */
export type AnyEventOf<T extends EventType = EventType> = { [K in T]: EventOf<K> }[T];

/** The event types a service publishes, e.g. `EventTypeOf<'inventory'>`. */
export type EventTypeOf<Source extends string> = {
  [T in EventType]: (typeof EVENT_CONTRACTS)[T]['source'] extends Source ? T : never;
}[EventType];

/** What {@link newEvent} takes besides the type and data. */
export interface EventOptions {
  /** The event this one answers: sets `causationId` and `correlationId`. None for a command (a mutation, a timer). */
  readonly cause?: Pick<AnyEventEnvelope, 'id' | 'correlationId'> | null;
  /** The cause's id when only the id is known (a saga decision replayed from its record). */
  readonly causationId?: string | null;
  /** Defaults to now. */
  readonly occurredAt?: string | Date;
  /** Defaults to a fresh {@link uuidv7}. */
  readonly id?: string;
}

/**
 * The one way a service builds an event: the contract of `type` fixes its version, source and
 * aggregate type, and names the data field that is the aggregate id (the Kafka key). An event about
 * an order is correlated by the order id; any other by its cause's correlation, else its aggregate.
 */
export function newEvent<T extends EventType>(type: T, data: EventDataMap[T], options: EventOptions = {}): EventOf<T> {
  const contract = EVENT_CONTRACTS[type];
  const aggregateId = String((data as unknown as Record<string, unknown>)[contract.aggregateIdField]);
  return createEvent({
    type,
    version: contract.version,
    source: contract.source,
    aggregateType: contract.aggregateType,
    aggregateId,
    correlationId: contract.aggregateType === 'Order' ? aggregateId : undefined,
    causationId: options.causationId,
    cause: options.cause ?? undefined,
    occurredAt: options.occurredAt,
    id: options.id,
    data,
  });
}

/** The topic a service publishes its events on: `<service>.events.v1` (before the configured prefix). */
export function eventsTopic(service: string): string {
  return `${service}.events.v1`;
}

/** The dead-letter topic of `topic`: `<topic>.dlq`. */
export function dlqTopic(topic: string): string {
  return `${topic}.dlq`;
}

/**
 * The W3C trace context of the active OpenTelemetry span (`traceparent`, `tracestate`), as headers.
 * Empty when no SDK is registered or no span is active.
 */
export function traceHeaders(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  const headers: Record<string, string> = {};
  if (carrier[TRACEPARENT_HEADER]) headers[TRACEPARENT_HEADER] = carrier[TRACEPARENT_HEADER];
  if (carrier[TRACESTATE_HEADER]) headers[TRACESTATE_HEADER] = carrier[TRACESTATE_HEADER];
  return headers;
}

/** The Kafka headers of an event: id, type and the active trace context. */
export function eventHeaders(event: Pick<AnyEventEnvelope, 'id' | 'type'>): Record<string, string> {
  return { [EVENT_ID_HEADER]: event.id, [EVENT_TYPE_HEADER]: event.type, ...traceHeaders() };
}
