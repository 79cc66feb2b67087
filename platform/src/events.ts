/**
 * The one event envelope every SwiftCart service publishes and consumes (DESIGN.md §5), the
 * topic names, and the Kafka header names. Pure: no I/O here.
 */
import { randomBytes } from 'node:crypto';
import { context, propagation } from '@opentelemetry/api';

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
  DLQ_ERROR_HEADER, DLQ_ORIGINAL_TOPIC_HEADER, DLQ_ORIGINAL_PARTITION_HEADER, DLQ_ORIGINAL_OFFSET_HEADER,
  DLQ_ATTEMPTS_HEADER, DLQ_FAILED_AT_HEADER, DLQ_CONSUMER_HEADER,
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

// ---------------------------------------------------------------------------------------------
// UUID v7 (RFC 9562 §5.7): 48-bit Unix milliseconds, version 7, 74 random bits. Within one
// millisecond (or when the clock steps back) the 74-bit tail is incremented by a random amount
// (RFC 9562 §6.2, method 2), so ids from one process are strictly increasing.

const RANDOM_BITS = 74n;
const RANDOM_MAX = (1n << RANDOM_BITS) - 1n;
let lastMs = -1;
let lastRandom = 0n;

function random74(): bigint {
  const bytes = randomBytes(10); // 80 bits, keep 74; the top bit stays clear to leave room to count up
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return value & (RANDOM_MAX >> 1n);
}

function randomIncrement(): bigint {
  const bytes = randomBytes(4);
  return 1n + BigInt(bytes.readUInt32BE(0) & 0xffffff);
}

/** A UUID v7: time-ordered, so primary keys and event ids sort by creation (monotonic within this process). */
export function uuidv7(now: number = Date.now()): string {
  let ms = now;
  let random: bigint;
  if (ms > lastMs) {
    random = random74();
  } else {
    ms = lastMs;
    random = lastRandom + randomIncrement();
    if (random > RANDOM_MAX) {
      ms = lastMs + 1;
      random = random74();
    }
  }
  lastMs = ms;
  lastRandom = random;
  const randA = (random >> 62n) & 0xfffn; // 12 bits
  const randB = random & ((1n << 62n) - 1n); // 62 bits
  const value = (BigInt(ms) << 80n) | (0x7n << 76n) | (randA << 64n) | (0b10n << 62n) | randB;
  const hex = value.toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The millisecond timestamp a UUID v7 carries. */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);
}

/** Builds an envelope with a fresh UUID v7 and the current time; does not validate (the outbox does). */
export function createEvent<TType extends string, TData>(input: NewEvent<TType, TData>): EventEnvelope<TType, TData> {
  const occurredAt = input.occurredAt === undefined
    ? new Date().toISOString()
    : input.occurredAt instanceof Date ? input.occurredAt.toISOString() : input.occurredAt;
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
