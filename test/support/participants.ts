/**
 * Saga test helpers (not a test file): produce order events onto `order.events.v1` as the order
 * service would, and tap a service's own events topic.
 */
import { randomBytes } from 'node:crypto';
import { createEvent, eventsTopic, type AnyEventEnvelope, type EventEnvelope, type RunningService, type Subscription } from '@swiftcart/platform';
import { waitFor } from './wait.ts';

export { waitFor };

export const ORDER_TOPIC = eventsTopic('order');

/** Publishes an order event (source `order`, keyed by the order id) straight onto `order.events.v1`. */
export async function publishOrderEvent<T extends string, D extends { orderId: string }>(
  service: RunningService,
  type: T,
  data: D,
  envelope: Partial<AnyEventEnvelope> = {},
): Promise<EventEnvelope<T, D>> {
  const event = {
    ...createEvent({ type, source: 'order', aggregateType: 'Order', aggregateId: data.orderId, causationId: null, data }),
    ...envelope,
  } as EventEnvelope<T, D>;
  await publishEnvelope(service, event);
  return event;
}

/** Publishes an existing envelope again (a redelivery). */
export async function publishEnvelope(service: RunningService, event: AnyEventEnvelope): Promise<void> {
  await service.runtime.kafka.publish(ORDER_TOPIC, [{ key: event.aggregateId, value: JSON.stringify(event), headers: { id: event.id, type: event.type } }]);
}

/** Everything published on a service's `<service>.events.v1`, as a test consumer sees it. */
export class EventTap implements AsyncDisposable {
  readonly events: AnyEventEnvelope[] = [];
  #subscription: Subscription | undefined;

  static async start(service: RunningService): Promise<EventTap> {
    const tap = new EventTap();
    const group = `test-tap-${randomBytes(4).toString('hex')}`;
    tap.#subscription = await service.runtime.kafka.consume(
      group,
      [eventsTopic(service.runtime.name)],
      async (message) => {
        if (message.value) tap.events.push(JSON.parse(message.value) as AnyEventEnvelope);
      },
      { fromBeginning: true, maxWaitTimeInMs: 100 },
    );
    return tap;
  }

  /** The events about one order, in topic order. */
  of(orderId: string): AnyEventEnvelope[] {
    return this.events.filter((e) => e.aggregateId === orderId);
  }

  /** Resolves with the first event of `type` about `orderId`. */
  next(orderId: string, type: string, timeoutMs?: number): Promise<AnyEventEnvelope> {
    return waitFor(() => this.of(orderId).find((e) => e.type === type), `${type} for order ${orderId}`, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.#subscription?.stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** Rows in a service's outbox about `orderId`, by type: what it has committed to publish. */
export async function outboxTypes(service: RunningService, orderId: string): Promise<string[]> {
  const rows = await service.runtime.db.fork().execute<{ type: string }[]>('select type from outbox where aggregateid = ? order by sequence', [orderId]);
  return rows.map((r) => r.type);
}

/** Resolves once the service's consumer has committed `eventId` (its inbox row and effects). */
export function handled(service: RunningService, eventId: string): Promise<true> {
  return waitFor(async () => {
    const rows = await service.runtime.db.fork().execute('select 1 from inbox where event_id = ?', [eventId]);
    return rows.length > 0;
  }, `the inbox to record ${eventId}`);
}

/** The service's consumer counters, summed over its consumers. */
export function consumerMetrics(service: RunningService): { processed: number; duplicates: number; ignored: number; deadLettered: number } {
  const sum = { processed: 0, duplicates: 0, ignored: 0, deadLettered: 0 };
  for (const consumer of service.consumers) {
    const m = consumer.metrics;
    sum.processed += m.processed;
    sum.duplicates += m.duplicates;
    sum.ignored += m.ignored;
    sum.deadLettered += m.deadLettered;
  }
  return sum;
}
