/**
 * The orchestrator against a real order service: participant events produced straight onto their
 * topics move orders through the saga, each step answered on `order.events.v1`; cancelOrder under
 * its rules. ADR 0008.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { type AnyEventEnvelope, eventHeaders, eventsTopic } from '@swiftcart/platform';
import type { TestStack } from '../../../test/support/stack.ts';
import { drain } from '../../../test/support/drain.ts';
import {
  CANCEL_ORDER,
  OrderEventProbe,
  PLACE_ORDER,
  READ_ORDER,
  em,
  orderInput,
  participantEvent,
  produce,
  seedCatalogue,
  startOrderStack,
  waitFor,
} from './support.ts';

describe('order saga orchestration', () => {
  let stack: TestStack;
  let probe: OrderEventProbe;
  let alice: string;
  let bob: string;
  let admin: string;

  before(async () => {
    stack = await startOrderStack({ ORDER_DEADLINE_MS: '600000' });
    probe = await OrderEventProbe.start(stack.services.order!.runtime.kafka);
    [alice, bob, admin] = await Promise.all([stack.token('alice', ['customer']), stack.token('bob', ['customer']), stack.token('root', ['admin'])]);
    await seedCatalogue(stack, [
      { sku: 'MUG-BLUE', amount: 1299 },
      { sku: 'TEE-M', amount: 2400 },
    ]);
  });

  after(async () => {
    await probe?.stop();
    await stack?.close();
  });

  /** Places an order for alice (2 × MUG-BLUE, 1 × TEE-M) and returns its id and OrderPlaced. */
  async function place(paymentMethod = 'tok_visa', token = alice): Promise<{ id: string; placed: AnyEventEnvelope }> {
    const result = await stack.graphql(PLACE_ORDER, {
      token,
      variables: {
        input: orderInput(
          [
            { sku: 'MUG-BLUE', quantity: 2 },
            { sku: 'TEE-M', quantity: 1 },
          ],
          { paymentMethod },
        ),
      },
    });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const id = result.data.placeOrder.id as string;
    const [placed] = await probe.waitFor(id, 'OrderPlaced');
    return { id, placed };
  }

  async function statusOf(id: string): Promise<string> {
    const [row] = await em(stack).execute<{ status: string }[]>('select status from orders where id = ?', [id]);
    return row.status;
  }

  async function waitForStatus(id: string, status: string): Promise<void> {
    await waitFor(
      async () => (await statusOf(id)) === status,
      `order ${id} to be ${status}`,
      undefined,
      () => statusOf(id),
    );
  }

  async function versionOf(id: string): Promise<number> {
    const [row] = await em(stack).execute<{ version: number }[]>('select version from orders where id = ?', [id]);
    return Number(row.version);
  }

  async function transitions(id: string): Promise<number> {
    const [row] = await em(stack).execute<{ n: number }[]>('select count(*)::int as n from order_transition where order_id = ?', [id]);
    return row.n;
  }

  /** Waits until the saga consumer has recorded these events in its inbox (applied, ignored or duplicate). */
  async function consumed(ids: readonly string[]): Promise<void> {
    await waitFor(async () => {
      const [row] = await em(stack).execute<{ n: number }[]>(
        `select count(*)::int as n from inbox where consumer = 'order.saga' and event_id in (${ids.map(() => '?').join(', ')})`,
        [...ids],
      );
      return row.n === new Set(ids).size;
    }, `the saga consumer to record ${ids.length} events`);
  }

  const stockReserved = (id: string, cause?: AnyEventEnvelope) =>
    participantEvent(
      'inventory',
      'StockReserved',
      {
        orderId: id,
        items: [
          { sku: 'MUG-BLUE', quantity: 2 },
          { sku: 'TEE-M', quantity: 1 },
        ],
      },
      cause,
    );
  const paymentAuthorized = (id: string, cause?: AnyEventEnvelope) =>
    participantEvent(
      'payment',
      'PaymentAuthorized',
      { orderId: id, paymentId: randomUUID(), amount: { amount: 4998, currency: 'EUR' }, providerRef: 'mock_ch_1' },
      cause,
    );

  /** Drives an order through the saga with participant events, waiting for each step. */
  async function reserveAndPay(id: string, placed: AnyEventEnvelope): Promise<{ reserved: AnyEventEnvelope; authorized: AnyEventEnvelope }> {
    const reserved = stockReserved(id, placed);
    await produce(stack, eventsTopic('inventory'), [reserved]);
    await waitForStatus(id, 'AWAITING_PAYMENT');
    const [requested] = await probe.waitFor(id, 'PaymentRequested');
    const authorized = paymentAuthorized(id, requested);
    await produce(stack, eventsTopic('payment'), [authorized]);
    await waitForStatus(id, 'CONFIRMED');
    return { reserved, authorized };
  }

  test('happy path: StockReserved → AWAITING_PAYMENT + PaymentRequested, PaymentAuthorized → CONFIRMED + OrderConfirmed, then shipped and delivered', async () => {
    const { id, placed } = await place();
    const reserved = stockReserved(id, placed);
    // The same event twice on the topic: the inbox applies it once.
    await produce(stack, eventsTopic('inventory'), [reserved, reserved]);
    await waitForStatus(id, 'AWAITING_PAYMENT');
    const [requested] = await probe.waitFor(id, 'PaymentRequested');
    assert.deepEqual(requested.data, { orderId: id, customerId: 'alice', amount: { amount: 4998, currency: 'EUR' }, paymentMethod: 'tok_visa' });
    assert.equal(requested.causationId, reserved.id);
    assert.equal(requested.correlationId, id);
    assert.equal(requested.aggregateId, id);

    const authorized = paymentAuthorized(id, requested);
    await produce(stack, eventsTopic('payment'), [authorized]);
    await waitForStatus(id, 'CONFIRMED');
    const [confirmed] = await probe.waitFor(id, 'OrderConfirmed');
    assert.deepEqual(confirmed.data, {
      orderId: id,
      customerId: 'alice',
      items: [
        { sku: 'MUG-BLUE', quantity: 2 },
        { sku: 'TEE-M', quantity: 1 },
      ],
    });
    assert.equal(confirmed.causationId, authorized.id);

    // Timeline-only events, then the shipment's steps; each waits for the one before (different topics).
    const committed = participantEvent(
      'inventory',
      'StockCommitted',
      {
        orderId: id,
        items: [
          { sku: 'MUG-BLUE', quantity: 2 },
          { sku: 'TEE-M', quantity: 1 },
        ],
      },
      confirmed,
    );
    await produce(stack, eventsTopic('inventory'), [committed]);
    await consumed([committed.id]);
    const shipmentId = randomUUID();
    const created = participantEvent('shipment', 'ShipmentCreated', { orderId: id, shipmentId }, confirmed);
    const dispatched = participantEvent('shipment', 'ShipmentDispatched', { orderId: id, shipmentId, carrier: 'DHL', trackingNumber: 'JD0001' });
    const delivered = participantEvent('shipment', 'ShipmentDelivered', { orderId: id, shipmentId });
    await produce(stack, eventsTopic('shipment'), [created, dispatched, delivered]);
    await waitForStatus(id, 'DELIVERED');
    await consumed([reserved.id]);

    const result = await stack.graphql(READ_ORDER, { token: alice, variables: { id } });
    assert.equal(result.errors, undefined);
    assert.deepEqual(
      result.data.order.timeline.map((t: any) => [t.status, t.eventType, t.eventId, t.reason]),
      [
        ['PENDING', null, null, null],
        ['AWAITING_PAYMENT', 'StockReserved', reserved.id, null],
        ['CONFIRMED', 'PaymentAuthorized', authorized.id, null],
        ['CONFIRMED', 'StockCommitted', committed.id, 'stock committed: 2 × MUG-BLUE, 1 × TEE-M'],
        ['CONFIRMED', 'ShipmentCreated', created.id, 'shipment created'],
        ['SHIPPED', 'ShipmentDispatched', dispatched.id, 'dispatched with DHL, tracking number JD0001'],
        ['DELIVERED', 'ShipmentDelivered', delivered.id, null],
      ],
    );
    assert.deepEqual(
      probe.of(id).map((e) => e.type),
      ['OrderPlaced', 'PaymentRequested', 'OrderConfirmed'],
    );
    const saga = stack.services.order!.consumers.find((c) => c.consumer === 'order.saga')!;
    assert.ok(saga.metrics.duplicates >= 1, 'the second StockReserved was a duplicate');
  });

  test('a second, different StockReserved after the step changes nothing', async () => {
    const { id, placed } = await place();
    const { reserved } = await reserveAndPay(id, placed);
    const before = await transitions(id);
    const again = stockReserved(id, placed);
    assert.notEqual(again.id, reserved.id);
    await produce(stack, eventsTopic('inventory'), [again]);
    await consumed([again.id]);
    assert.equal(await statusOf(id), 'CONFIRMED');
    assert.equal(await transitions(id), before);
    assert.equal(probe.of(id, 'PaymentRequested').length, 1);
  });

  test('StockReservationFailed → REJECTED + OrderRejected', async () => {
    const { id, placed } = await place();
    const failed = participantEvent('inventory', 'StockReservationFailed', { orderId: id, shortages: [{ sku: 'TEE-M', requested: 1, available: 0 }] }, placed);
    await produce(stack, eventsTopic('inventory'), [failed]);
    await waitForStatus(id, 'REJECTED');
    const [rejected] = await probe.waitFor(id, 'OrderRejected');
    const reason = 'insufficient stock: TEE-M (requested 1, available 0)';
    assert.deepEqual(rejected.data, { orderId: id, customerId: 'alice', reason });
    assert.equal(rejected.causationId, failed.id);
    const [last] = await em(stack).execute<any[]>(
      'select status, event_type, event_id, reason from order_transition where order_id = ? order by id desc limit 1',
      [id],
    );
    assert.deepEqual({ ...last }, { status: 'REJECTED', event_type: 'StockReservationFailed', event_id: failed.id, reason });
  });

  test('PaymentDeclined → CANCELLED + OrderCancelled', async () => {
    const { id, placed } = await place('tok_decline');
    const reserved = stockReserved(id, placed);
    await produce(stack, eventsTopic('inventory'), [reserved]);
    const [requested] = await probe.waitFor(id, 'PaymentRequested');
    assert.equal((requested.data as any).paymentMethod, 'tok_decline');
    const declined = participantEvent(
      'payment',
      'PaymentDeclined',
      { orderId: id, paymentId: randomUUID(), amount: { amount: 4998, currency: 'EUR' }, reason: 'card declined' },
      requested,
    );
    await produce(stack, eventsTopic('payment'), [declined]);
    await waitForStatus(id, 'CANCELLED');
    const [cancelled] = await probe.waitFor(id, 'OrderCancelled');
    assert.deepEqual(cancelled.data, { orderId: id, customerId: 'alice', reason: 'payment declined: card declined', previousStatus: 'AWAITING_PAYMENT' });
    assert.equal(cancelled.causationId, declined.id);
    assert.equal(cancelled.correlationId, id);
  });

  test('an event for an unknown order is recorded and ignored', async () => {
    const orderId = randomUUID();
    const stray = participantEvent('inventory', 'StockReserved', { orderId, items: [{ sku: 'MUG-BLUE', quantity: 1 }] });
    await produce(stack, eventsTopic('inventory'), [stray]);
    await consumed([stray.id]);
    const [row] = await em(stack).execute<{ n: number }[]>('select count(*)::int as n from orders where id = ?', [orderId]);
    assert.equal(row.n, 0);
    assert.equal(probe.of(orderId).length, 0);
  });

  test('cancelOrder: the owner cancels (OrderCancelled), again changes nothing; another customer is FORBIDDEN', async () => {
    const { id } = await place();
    const forbidden = await stack.graphql(CANCEL_ORDER, { token: bob, variables: { id } });
    assert.equal(forbidden.errors?.[0].extensions?.code, 'FORBIDDEN');
    assert.equal(forbidden.data?.cancelOrder ?? null, null);
    assert.equal(await statusOf(id), 'PENDING');
    assert.equal(await transitions(id), 1);

    const result = await stack.graphql(CANCEL_ORDER, { token: alice, variables: { id, reason: '  changed my mind ' } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.equal(result.data.cancelOrder.status, 'CANCELLED');
    assert.deepEqual(
      result.data.cancelOrder.timeline.map((t: any) => [t.status, t.eventType, t.reason]),
      [
        ['PENDING', null, null],
        ['CANCELLED', null, 'changed my mind'],
      ],
    );
    const [cancelled] = await probe.waitFor(id, 'OrderCancelled');
    assert.deepEqual(cancelled.data, { orderId: id, customerId: 'alice', reason: 'changed my mind', previousStatus: 'PENDING' });
    assert.equal(cancelled.causationId, null);

    const again = await stack.graphql(CANCEL_ORDER, { token: alice, variables: { id } });
    assert.equal(again.errors, undefined);
    assert.deepEqual(again.data.cancelOrder, result.data.cancelOrder);
    const bobAgain = await stack.graphql(CANCEL_ORDER, { token: bob, variables: { id } });
    assert.equal(bobAgain.errors?.[0].extensions?.code, 'FORBIDDEN');
    await drain(stack);
    assert.equal(probe.of(id, 'OrderCancelled').length, 1);

    // Payment authorising late (it raced the cancellation) moves nothing: payment refunds by itself.
    const late = paymentAuthorized(id);
    await produce(stack, eventsTopic('payment'), [late]);
    await consumed([late.id]);
    assert.equal(await statusOf(id), 'CANCELLED');
    assert.equal(await transitions(id), 2);
  });

  test("cancelOrder: an admin cancels a customer's order awaiting payment", async () => {
    const { id, placed } = await place();
    await produce(stack, eventsTopic('inventory'), [stockReserved(id, placed)]);
    await waitForStatus(id, 'AWAITING_PAYMENT');
    const result = await stack.graphql(CANCEL_ORDER, { token: admin, variables: { id } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.equal(result.data.cancelOrder.status, 'CANCELLED');
    assert.equal(result.data.cancelOrder.timeline.at(-1).reason, 'cancelled by an admin');
    const [cancelled] = await probe.waitFor(id, 'OrderCancelled');
    assert.deepEqual(cancelled.data, { orderId: id, customerId: 'alice', reason: 'cancelled by an admin', previousStatus: 'AWAITING_PAYMENT' });
  });

  test('cancelOrder after SHIPPED is ORDER_NOT_CANCELLABLE and changes nothing', async () => {
    const { id, placed } = await place();
    await reserveAndPay(id, placed);
    const shipmentId = randomUUID();
    await produce(stack, eventsTopic('shipment'), [
      participantEvent('shipment', 'ShipmentDispatched', { orderId: id, shipmentId, carrier: 'DHL', trackingNumber: 'JD0002' }),
    ]);
    await waitForStatus(id, 'SHIPPED');
    const before = await transitions(id);
    for (const token of [alice, admin]) {
      const result = await stack.graphql(CANCEL_ORDER, { token, variables: { id } });
      assert.equal(result.errors?.[0].extensions?.code, 'ORDER_NOT_CANCELLABLE');
      assert.equal(result.errors?.[0].extensions?.status, 'SHIPPED');
    }
    assert.equal(await statusOf(id), 'SHIPPED');
    assert.equal(await transitions(id), before);
    assert.equal(probe.of(id, 'OrderCancelled').length, 0);
  });

  test('cancelOrder refuses no token, a malformed id, an unknown order and an overlong reason', async () => {
    const { id } = await place();
    const cases: [string | null, Record<string, unknown>, string, string?][] = [
      [null, { id }, 'UNAUTHENTICATED'],
      [alice, { id: 'not-a-uuid' }, 'BAD_USER_INPUT', 'id'],
      [alice, { id: randomUUID() }, 'NOT_FOUND'],
      [alice, { id, reason: 'r'.repeat(501) }, 'BAD_USER_INPUT', 'reason'],
    ];
    for (const [token, variables, code, field] of cases) {
      const result = await stack.graphql(CANCEL_ORDER, { token, variables });
      assert.equal(result.errors?.[0].extensions?.code, code, JSON.stringify(variables).slice(0, 80));
      if (field) assert.equal(result.errors?.[0].extensions?.field, field);
    }
    assert.equal(await statusOf(id), 'PENDING');
  });

  test('one batch naming several orders, one of them twice and a duplicate, leaves each as one event at a time would', async () => {
    const a = await place();
    const b = await place();
    const [versionA0, versionB0] = [await versionOf(a.id), await versionOf(b.id)];
    const reservedA = stockReserved(a.id, a.placed);
    const reservedB = stockReserved(b.id, b.placed);
    const authorizedA = paymentAuthorized(a.id);
    const stranger = stockReserved(randomUUID());
    // One key, one publish: one partition and one fetch, so the consumer applies them in one batch.
    const batch = [reservedA, reservedB, authorizedA, reservedB, stranger];
    const saga = stack.services.order!.consumers.find((c) => c.consumer === 'order.saga')!;
    const before = saga.metrics;
    await stack.services.order!.runtime.kafka.publish(
      eventsTopic('inventory'),
      batch.map((event) => ({
        key: 'one-partition',
        value: JSON.stringify(event),
        headers: eventHeaders(event),
      })),
    );
    await consumed(batch.map((e) => e.id));
    assert.deepEqual(
      {
        batches: saga.metrics.batches - before.batches,
        split: saga.metrics.batchesSplit - before.batchesSplit,
        processed: saga.metrics.processed - before.processed,
        duplicates: saga.metrics.duplicates - before.duplicates,
      },
      { batches: 1, split: 0, processed: 4, duplicates: 1 },
    );
    assert.equal(await statusOf(a.id), 'CONFIRMED');
    assert.equal(await statusOf(b.id), 'AWAITING_PAYMENT');
    const timeline = async (id: string) =>
      (
        await em(stack).execute<{ status: string; event_id: string | null }[]>(
          'select status, event_id from order_transition where order_id = ? order by at, id',
          [id],
        )
      ).map((r) => `${r.status}:${r.event_id ?? '-'}`);
    assert.deepEqual(await timeline(a.id), ['PENDING:-', `AWAITING_PAYMENT:${reservedA.id}`, `CONFIRMED:${authorizedA.id}`]);
    assert.deepEqual(await timeline(b.id), ['PENDING:-', `AWAITING_PAYMENT:${reservedB.id}`]);
    // Every timeline entry raised its order's version, A's twice within the one batch.
    assert.equal(await versionOf(a.id), versionA0 + 2);
    assert.equal(await versionOf(b.id), versionB0 + 1);
    const [requestedA] = await probe.waitFor(a.id, 'PaymentRequested');
    const [confirmedA] = await probe.waitFor(a.id, 'OrderConfirmed');
    const [requestedB] = await probe.waitFor(b.id, 'PaymentRequested');
    assert.equal(requestedA.causationId, reservedA.id);
    assert.equal(confirmedA.causationId, authorizedA.id);
    assert.equal(requestedB.causationId, reservedB.id);
    const outboxOf = async (id: string) =>
      (await em(stack).execute<{ type: string }[]>('select type from outbox where aggregateid = ? and topic is not null order by sequence', [id])).map(
        (r) => r.type,
      );
    assert.deepEqual(await outboxOf(a.id), ['OrderPlaced', 'PaymentRequested', 'OrderConfirmed']);
    assert.deepEqual(await outboxOf(b.id), ['OrderPlaced', 'PaymentRequested']);
  });
});
