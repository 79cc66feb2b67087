/**
 * The spans of messages between processes: the outbox relay's PRODUCER span per event, the live
 * path's spans over Redis, and the order id that ties one order's spans together. Consumers' spans
 * are in inbox.ts. Without a registered SDK every span here is a no-op (tracing.ts).
 */
import { type Attributes, type Context, type Span, ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { TRACEPARENT_HEADER, TRACESTATE_HEADER } from './events.ts';

/** The span attribute that names the order a span worked on: search for it to find an order's trace. */
export const ORDER_ID_ATTRIBUTE = 'swiftcart.order_id';

const tracer = trace.getTracer('@swiftcart/platform');

/** The order an event or change is about, if any: its `orderId`, or its own id when it is an order. */
export function orderIdOf(aggregateType: string, aggregateId: string, data: unknown): string | undefined {
  const orderId = (data as { orderId?: unknown } | null)?.orderId;
  if (typeof orderId === 'string') return orderId;
  return aggregateType === 'Order' ? aggregateId : undefined;
}

/** Tags the active span (a request's, a consumer's) with the order it works on. */
export function markOrder(orderId: string): void {
  trace.getActiveSpan()?.setAttribute(ORDER_ID_ATTRIBUTE, orderId);
}

/** The trace context that `headers` (a message's, a row's) carry; the root context when none. */
export function contextOf(headers: Readonly<Record<string, string | undefined>>): Context {
  return headers[TRACEPARENT_HEADER] ? propagation.extract(ROOT_CONTEXT, headers) : ROOT_CONTEXT;
}

/** A message about to be sent, and the span that sends it. */
export interface ProducedMessage {
  readonly span: Span;
  /** The stored headers with the PRODUCER span's context in place of the one stored. */
  readonly headers: Record<string, string>;
}

/**
 * Starts the PRODUCER span of one event the relay sends, a child of the context stored with the event
 * (the request or the consumer that caused it), and returns the headers that carry the span on.
 * `describe` is asked for the order id only when the span records.
 */
export function startProducerSpan(stored: Readonly<Record<string, string>>, type: string, topic: string, describe: () => string | undefined): ProducedMessage {
  const parent = contextOf(stored);
  const span = tracer.startSpan(
    `${type} publish`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.operation.type': 'send',
        'messaging.destination.name': topic,
        'messaging.message.id': stored.id ?? '',
      },
    },
    parent,
  );
  const headers: Record<string, string> = { ...stored };
  if (!span.isRecording()) return { span, headers };
  const orderId = describe();
  if (orderId) span.setAttribute(ORDER_ID_ATTRIBUTE, orderId);
  delete headers[TRACEPARENT_HEADER];
  delete headers[TRACESTATE_HEADER];
  propagation.inject(trace.setSpan(parent, span), headers);
  return { span, headers };
}

/** Ends `spans`, marked failed with `error` when there is one. */
export function endSpans(spans: readonly Span[], error?: unknown): void {
  for (const span of spans) {
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    span.end();
  }
}

/**
 * Runs `work` in a span named `name`, a child of the context `headers` carry; the span is active
 * in `work`, so what it logs, queries or publishes belongs to that trace.
 */
export async function inSpanOf<T>(
  headers: Readonly<Record<string, string | undefined>>,
  name: string,
  kind: SpanKind,
  attributes: Attributes,
  work: () => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { kind, attributes }, contextOf(headers), async (span) => {
    try {
      return await work();
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Runs `work` (synchronous) in a CONSUMER span, a child of the context `traceparent` names. */
export function inSpanOfSync(traceparent: string, name: string, attributes: Attributes, work: () => void): void {
  const parent = contextOf({ [TRACEPARENT_HEADER]: traceparent });
  const span = tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes }, parent);
  try {
    context.with(trace.setSpan(parent, span), work);
  } finally {
    span.end();
  }
}

/** The active span's context as a `traceparent` value, or undefined when nothing is traced. */
export function activeTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier[TRACEPARENT_HEADER];
}
