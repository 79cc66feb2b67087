/**
 * Shipment as a saga participant, against real PostgreSQL and Kafka: OrderConfirmed and
 * OrderCancelled go in on `order.events.v1`; the admin mutations dispatch and deliver; every step
 * comes out on `shipment.events.v1`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { RunningService } from '@swiftcart/platform';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { Shipment } from '../src/entities.ts';
import { EventTap, consumerMetrics, handled, outboxTypes, publishEnvelope, publishOrderEvent, waitFor } from '../../../test/support/participants.ts';

const FIELDS = 'id status carrier trackingNumber dispatchedAt deliveredAt createdAt updatedAt order { id }';
const DISPATCH = `mutation ($orderId: ID!, $carrier: String!, $trackingNumber: String!) {
  dispatchShipment(orderId: $orderId, carrier: $carrier, trackingNumber: $trackingNumber) { ${FIELDS} }
}`;
const DELIVER = `mutation ($orderId: ID!) { markShipmentDelivered(orderId: $orderId) { ${FIELDS} } }`;

describe('shipment consumes order events and dispatches', () => {
  let stack: TestStack;
  let shipment: RunningService;
  let tap: EventTap;
  let admin: string;
  let alice: string;

  const confirm = (orderId: string, customerId = 'alice') =>
    publishOrderEvent(shipment, 'OrderConfirmed', { orderId, customerId, items: [{ sku: 'SKU-1', quantity: 1 }] });
  const cancel = (orderId: string, previousStatus = 'CONFIRMED') =>
    publishOrderEvent(shipment, 'OrderCancelled', { orderId, customerId: 'alice', reason: 'customer changed their mind', previousStatus });
  const shipmentOf = (orderId: string) => shipment.runtime.db.fork().findOne(Shipment, { orderId });
  const dispatch = (orderId: string, token: string | null = admin, carrier = 'DHL', trackingNumber = 'JD014600003SE') =>
    stack.graphql(DISPATCH, { variables: { orderId, carrier, trackingNumber }, token });
  const deliver = (orderId: string, token: string | null = admin) => stack.graphql(DELIVER, { variables: { orderId }, token });

  /** Confirms an order and waits for its shipment to exist. */
  async function confirmed(orderId = randomUUID()): Promise<{ orderId: string; shipmentId: string }> {
    await confirm(orderId);
    const created = await tap.next(orderId, 'ShipmentCreated');
    return { orderId, shipmentId: (created.data as { shipmentId: string }).shipmentId };
  }

  before(async () => {
    stack = await startStack({ services: ['shipment'] });
    shipment = stack.services.shipment!;
    tap = await EventTap.start(shipment);
    [admin, alice] = await Promise.all([stack.token('root', ['admin']), stack.token('alice', ['customer'])]);
  });
  after(async () => {
    await tap?.stop();
    await stack?.close();
  });

  test('OrderConfirmed creates a PENDING shipment for the customer and publishes ShipmentCreated', async () => {
    const orderId = randomUUID();
    const cause = await confirm(orderId, 'bob');
    const created = await tap.next(orderId, 'ShipmentCreated');
    const row = await shipmentOf(orderId);
    assert.ok(row);
    assert.equal(row.status, 'PENDING');
    assert.equal(row.customerId, 'bob');
    assert.equal(row.carrier, null);
    assert.deepEqual(created.data, { orderId, shipmentId: row.id });
    assert.equal(created.source, 'shipment');
    assert.equal(created.aggregateType, 'Order');
    assert.equal(created.aggregateId, orderId);
    assert.equal(created.correlationId, orderId);
    assert.equal(created.causationId, cause.id);
  });

  test('OrderConfirmed twice (a redelivery, or another event) creates one shipment and one event', async () => {
    const orderId = randomUUID();
    const duplicatesBefore = consumerMetrics(shipment).duplicates;
    const first = await confirm(orderId);
    await publishEnvelope(shipment, first);
    await waitFor(() => consumerMetrics(shipment).duplicates > duplicatesBefore, 'the redelivery to be recognised');
    const second = await confirm(orderId);
    await handled(shipment, second.id);
    assert.equal((await shipment.runtime.db.fork().find(Shipment, { orderId })).length, 1);
    assert.deepEqual(await outboxTypes(shipment, orderId), ['ShipmentCreated']);
  });

  test('an admin dispatches and then delivers: the shipment moves on and each step is published', async () => {
    const { orderId, shipmentId } = await confirmed();
    const dispatched = await dispatch(orderId, admin, '  DHL ', 'JD014600003SE');
    assert.equal(dispatched.errors, undefined, JSON.stringify(dispatched.errors));
    const shipped = dispatched.data.dispatchShipment;
    assert.equal(shipped.id, shipmentId);
    assert.equal(shipped.status, 'DISPATCHED');
    assert.equal(shipped.carrier, 'DHL');
    assert.equal(shipped.trackingNumber, 'JD014600003SE');
    assert.ok(shipped.dispatchedAt);
    assert.equal(shipped.deliveredAt, null);
    assert.deepEqual(shipped.order, { id: orderId });
    const dispatchedEvent = await tap.next(orderId, 'ShipmentDispatched');
    assert.deepEqual(dispatchedEvent.data, { orderId, shipmentId, carrier: 'DHL', trackingNumber: 'JD014600003SE' });
    assert.equal(dispatchedEvent.causationId, null);
    assert.equal(dispatchedEvent.correlationId, orderId);

    const delivered = await deliver(orderId.toUpperCase());
    assert.equal(delivered.errors, undefined, JSON.stringify(delivered.errors));
    assert.equal(delivered.data.markShipmentDelivered.status, 'DELIVERED');
    assert.ok(delivered.data.markShipmentDelivered.deliveredAt);
    assert.equal(delivered.data.markShipmentDelivered.dispatchedAt, shipped.dispatchedAt);
    const deliveredEvent = await tap.next(orderId, 'ShipmentDelivered');
    assert.deepEqual(deliveredEvent.data, { orderId, shipmentId });
    const row = await shipmentOf(orderId);
    assert.equal(row?.status, 'DELIVERED');
    assert.deepEqual(await outboxTypes(shipment, orderId), ['ShipmentCreated', 'ShipmentDispatched', 'ShipmentDelivered']);

    // A cancellation after dispatch leaves the shipment alone.
    const late = await cancel(orderId, 'SHIPPED');
    await handled(shipment, late.id);
    assert.equal((await shipmentOf(orderId))?.status, 'DELIVERED');
  });

  test('a customer, or nobody, may not dispatch or deliver: FORBIDDEN, nothing changes', async () => {
    const { orderId } = await confirmed();
    for (const token of [alice, null]) {
      const dispatched = await dispatch(orderId, token);
      assert.equal(dispatched.errors?.[0].extensions?.code, 'FORBIDDEN');
      assert.equal(dispatched.errors?.[0].extensions?.requiredRole, 'admin');
      const delivered = await deliver(orderId, token);
      assert.equal(delivered.errors?.[0].extensions?.code, 'FORBIDDEN');
    }
    assert.equal((await shipmentOf(orderId))?.status, 'PENDING');
    assert.deepEqual(await outboxTypes(shipment, orderId), ['ShipmentCreated']);
  });

  test('dispatching twice, or delivering what was not dispatched, is an INVALID_TRANSITION with the current status', async () => {
    const { orderId } = await confirmed();
    const early = await deliver(orderId);
    assert.equal(early.errors?.[0].extensions?.code, 'INVALID_TRANSITION');
    assert.equal(early.errors?.[0].extensions?.status, 'PENDING');
    assert.equal((await dispatch(orderId)).errors, undefined);
    const twice = await dispatch(orderId, admin, 'UPS', '1Z999');
    assert.equal(twice.errors?.[0].extensions?.code, 'INVALID_TRANSITION');
    assert.equal(twice.errors?.[0].extensions?.status, 'DISPATCHED');
    const row = await shipmentOf(orderId);
    assert.equal(row?.carrier, 'DHL');
    assert.deepEqual(await outboxTypes(shipment, orderId), ['ShipmentCreated', 'ShipmentDispatched']);
  });

  test('OrderCancelled cancels a PENDING shipment (ShipmentCancelled), which then cannot be dispatched', async () => {
    const { orderId, shipmentId } = await confirmed();
    const cause = await cancel(orderId);
    const cancelled = await tap.next(orderId, 'ShipmentCancelled');
    assert.deepEqual(cancelled.data, { orderId, shipmentId });
    assert.equal(cancelled.causationId, cause.id);
    assert.equal((await shipmentOf(orderId))?.status, 'CANCELLED');

    const dispatched = await dispatch(orderId);
    assert.equal(dispatched.errors?.[0].extensions?.code, 'INVALID_TRANSITION');
    assert.equal(dispatched.errors?.[0].extensions?.status, 'CANCELLED');

    // Cancelling again, or cancelling an order without a shipment, publishes nothing.
    const again = await cancel(orderId, 'CANCELLED');
    const unshipped = randomUUID();
    const none = await cancel(unshipped, 'PENDING');
    for (const event of [again, none]) await handled(shipment, event.id);
    assert.deepEqual(await outboxTypes(shipment, orderId), ['ShipmentCreated', 'ShipmentCancelled']);
    assert.deepEqual(await outboxTypes(shipment, unshipped), []);
  });

  test('bad input is BAD_USER_INPUT naming the field; an order without a shipment is NOT_FOUND', async () => {
    const { orderId } = await confirmed();
    const cases: [Record<string, string>, string][] = [
      [{ orderId: 'not-a-uuid' }, 'orderId'],
      [{ carrier: '   ' }, 'carrier'],
      [{ carrier: 'x'.repeat(101) }, 'carrier'],
      [{ trackingNumber: '' }, 'trackingNumber'],
      [{ trackingNumber: '9'.repeat(101) }, 'trackingNumber'],
    ];
    for (const [override, field] of cases) {
      const result = await stack.graphql(DISPATCH, { variables: { orderId, carrier: 'DHL', trackingNumber: 'T1', ...override }, token: admin });
      assert.equal(result.errors?.[0].extensions?.code, 'BAD_USER_INPUT', JSON.stringify(override));
      assert.equal(result.errors?.[0].extensions?.field, field);
    }
    const badDeliver = await deliver('nope');
    assert.equal(badDeliver.errors?.[0].extensions?.code, 'BAD_USER_INPUT');
    assert.equal((await shipmentOf(orderId))?.status, 'PENDING');

    const stranger = randomUUID();
    for (const result of [await dispatch(stranger), await deliver(stranger)]) {
      assert.equal(result.errors?.[0].extensions?.code, 'NOT_FOUND');
      assert.equal(result.errors?.[0].extensions?.orderId, stranger);
    }
    // 100 characters each is still fine.
    const longest = await dispatch(orderId, admin, 'c'.repeat(100), 't'.repeat(100));
    assert.equal(longest.errors, undefined, JSON.stringify(longest.errors));
  });

  test('concurrent dispatches of one shipment: exactly one wins, the others are INVALID_TRANSITION', async () => {
    const { orderId } = await confirmed();
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => dispatch(orderId, admin, 'DHL', `T-${i}`)));
    const won = results.filter((r) => !r.errors);
    assert.equal(won.length, 1);
    assert.ok(results.filter((r) => r.errors).every((r) => r.errors?.[0].extensions?.code === 'INVALID_TRANSITION'));
    assert.equal((await shipmentOf(orderId))?.trackingNumber, won[0].data.dispatchShipment.trackingNumber);
    assert.deepEqual(await outboxTypes(shipment, orderId), ['ShipmentCreated', 'ShipmentDispatched']);
    assert.equal(consumerMetrics(shipment).deadLettered, 0);
  });
});
