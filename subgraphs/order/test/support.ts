/**
 * Helpers of the order service's integration tests: a real order service (startStack), its price
 * replica seeded through product events, participant events produced straight onto their topics,
 * and a probe that collects everything the service publishes on `order.events.v1`.
 */
import { randomUUID } from 'node:crypto';
import { type AnyEventEnvelope, type EventEnvelope, type KafkaClient, type Subscription, createEvent, eventHeaders, eventsTopic } from '@swiftcart/platform';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { waitFor } from '../../../test/support/wait.ts';

export { waitFor };

export const ORDER_FIELDS = `
  id customerId status paymentMethod createdAt updatedAt
  items { sku quantity unitPrice { amount currency } lineTotal { amount currency } }
  total { amount currency }
  shippingAddress { name line1 line2 city postalCode country }
  timeline { status at eventType eventId reason }`;
export const PLACE_ORDER = `mutation ($input: PlaceOrderInput!) { placeOrder(input: $input) { ${ORDER_FIELDS} } }`;
export const CANCEL_ORDER = `mutation ($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { ${ORDER_FIELDS} } }`;
export const READ_ORDER = `query ($id: ID!) { order(id: $id) { ${ORDER_FIELDS} } }`;

export const ADDRESS = Object.freeze({ name: 'Ada Lovelace', line1: 'Hauptstraße 1', line2: null, city: 'Berlin', postalCode: '10115', country: 'DE' });

/** A placeOrder input; every part can be overridden. */
export function orderInput(items: readonly { sku: string; quantity: number }[], overrides: Record<string, unknown> = {}) {
  return { idempotencyKey: randomUUID(), items, shippingAddress: ADDRESS, paymentMethod: 'tok_visa', ...overrides };
}

/** Everything the order service published on `order.events.v1` since the probe started. */
export class OrderEventProbe {
  readonly events: AnyEventEnvelope[] = [];
  #subscription: Subscription | null = null;

  static async start(kafka: KafkaClient): Promise<OrderEventProbe> {
    const probe = new OrderEventProbe();
    probe.#subscription = await kafka.consume(
      `test.order-events-probe.${randomUUID()}`,
      [eventsTopic('order')],
      async (message) => {
        if (message.value) probe.events.push(JSON.parse(message.value) as AnyEventEnvelope);
      },
      { fromBeginning: true, maxWaitTimeInMs: 100 },
    );
    return probe;
  }

  /** The events of one order, optionally of one type, in the order they arrived. */
  of(orderId: string, type?: string): AnyEventEnvelope[] {
    return this.events.filter((e) => e.aggregateId === orderId && (type === undefined || e.type === type));
  }

  /** Waits until `count` events of `type` for the order have arrived, and returns them. */
  async waitFor(orderId: string, type: string, count = 1, timeoutMs = 10_000): Promise<AnyEventEnvelope[]> {
    return waitFor(
      () => {
        const found = this.of(orderId, type);
        return found.length >= count ? found : undefined;
      },
      `${count} × ${type} for order ${orderId}`,
      timeoutMs,
      () =>
        this.of(orderId)
          .map((e) => e.type)
          .join(', ') || 'none',
    );
  }

  async stop(): Promise<void> {
    await this.#subscription?.stop();
  }
}

/** A product in the replica: what a ProductCreated / ProductUpdated carries. */
export interface CatalogueEntry {
  readonly sku: string;
  readonly amount: number;
  readonly currency?: string;
  readonly status?: 'ACTIVE' | 'DISCONTINUED';
  readonly version?: number;
}

/** A product event as the product service would publish it. */
export function productEvent(type: 'ProductCreated' | 'ProductUpdated', entry: CatalogueEntry): AnyEventEnvelope {
  return createEvent({
    type,
    source: 'product',
    aggregateType: 'Product',
    aggregateId: entry.sku,
    data: {
      sku: entry.sku,
      name: `Product ${entry.sku}`,
      price: { amount: entry.amount, currency: entry.currency ?? 'EUR' },
      status: entry.status ?? 'ACTIVE',
      version: entry.version ?? 1,
    },
  });
}

/** A ProductDiscontinued as the product service would publish it. */
export function productDiscontinued(sku: string, version: number): AnyEventEnvelope {
  return createEvent({ type: 'ProductDiscontinued', source: 'product', aggregateType: 'Product', aggregateId: sku, data: { sku, version } });
}

/** Produces events straight onto a topic, keyed by their aggregate, as their service's relay would. */
export async function produce(stack: TestStack, topic: string, events: readonly AnyEventEnvelope[]): Promise<void> {
  await stack.services.order!.runtime.kafka.publish(
    topic,
    events.map((event) => ({
      key: event.aggregateId,
      value: JSON.stringify(event),
      headers: eventHeaders(event),
    })),
  );
}

/** Reads one replica row. */
export async function replicaRow(stack: TestStack, sku: string) {
  const [row] = await em(stack).execute<{ price_amount: number; currency: string; status: string; version: number }[]>(
    'select price_amount, currency, status, version from catalogue_price where sku = ?',
    [sku],
  );
  return row;
}

/** Seeds the price replica the way production does: ProductCreated on product.events.v1, then waits for the consumer. */
export async function seedCatalogue(stack: TestStack, entries: readonly CatalogueEntry[], timeoutMs = 20_000): Promise<void> {
  await produce(
    stack,
    eventsTopic('product'),
    entries.map((entry) => productEvent('ProductCreated', entry)),
  );
  await waitFor(
    async () => {
      for (const entry of entries) {
        const row = await replicaRow(stack, entry.sku);
        if (!row || row.version < (entry.version ?? 1)) return undefined;
      }
      return true;
    },
    `the price replica to hold ${entries.map((e) => e.sku).join(', ')}`,
    timeoutMs,
  );
}

/** A participant event about one order (inventory, payment or shipment), caused by `cause` if given. */
export function participantEvent<TData extends { orderId: string }>(
  source: 'inventory' | 'payment' | 'shipment',
  type: string,
  data: TData,
  cause?: AnyEventEnvelope,
): EventEnvelope<string, TData> {
  return createEvent({
    type,
    source,
    aggregateType: 'Order',
    aggregateId: data.orderId,
    correlationId: data.orderId,
    causationId: cause?.id ?? null,
    data,
  });
}

/** A fresh EntityManager of the order database. */
export function em(stack: TestStack) {
  return stack.services.order!.runtime.db.fork();
}

/**
 * How many orders, order lines, transitions, outbox events and live changes (outbox rows without a
 * topic) there are: a failed mutation must change none.
 */
export async function rowCounts(stack: TestStack): Promise<Record<string, number>> {
  const [row] = await em(stack).execute<Record<string, number>[]>(`
    select (select count(*)::int from orders) as orders, (select count(*)::int from order_item) as items,
           (select count(*)::int from order_transition) as transitions,
           (select count(*)::int from outbox where topic is not null) as outbox,
           (select count(*)::int from outbox where topic is null) as live`);
  return { ...row };
}

/** Starts the order service alone, with `env` as its settings (through the stack's configuration). */
export async function startOrderStack(env: Record<string, string> = {}): Promise<TestStack> {
  return startStack({ services: ['order'], env });
}
