/**
 * Inventory as a saga participant, against real PostgreSQL, Redis and Kafka: order events go in on
 * `order.events.v1`, stock events come out on `inventory.events.v1`, the reservations and figures
 * change in PostgreSQL, and the live figure in Redis follows after commit.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import type { RunningService } from '@swiftcart/platform';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { findReservations } from '../src/reservations.ts';
import { seedStock } from '../src/stock.ts';
import { EventTap, consumerMetrics, handled, outboxTypes, publishEnvelope, publishOrderEvent, waitFor } from '../../../test/support/participants.ts';
import { em, stockRow } from './support.ts';

const EUR = (amount: number) => ({ amount, currency: 'EUR' });

/** OrderPlaced data for these lines, priced at 1.00 a unit. */
function placed(orderId: string, lines: readonly [sku: string, quantity: number][]) {
  const items = lines.map(([sku, quantity]) => ({ sku, quantity, unitPrice: EUR(100) }));
  return {
    orderId,
    customerId: 'alice',
    items,
    total: EUR(items.reduce((sum, i) => sum + i.quantity * 100, 0)),
    deadlineAt: new Date(Date.now() + 60_000).toISOString(),
  };
}

describe('inventory consumes order events', () => {
  let stack: TestStack;
  let inventory: RunningService;
  let tap: EventTap;
  let redis: Redis;

  before(async () => {
    stack = await startStack({ services: ['inventory'] });
    inventory = stack.services.inventory!;
    tap = await EventTap.start(inventory);
    redis = new Redis(stack.config.redisUrl, { keyPrefix: stack.config.redisPrefix });
    await seedStock(em(stack), [
      { sku: 'SAGA-A', onHand: 10 },
      { sku: 'SAGA-B', onHand: 5 },
      { sku: 'SHORT-A', onHand: 10 },
      { sku: 'SHORT-B', onHand: 2 },
      { sku: 'DUP-A', onHand: 10 },
      { sku: 'REL-A', onHand: 4 },
    ]);
  });
  after(async () => {
    redis?.disconnect();
    await tap?.stop();
    await stack?.close();
  });

  test('OrderPlaced with enough stock reserves every line, publishes StockReserved, then updates Redis', async () => {
    const orderId = randomUUID();
    const cause = await publishOrderEvent(
      inventory,
      'OrderPlaced',
      placed(orderId, [
        ['SAGA-B', 2],
        ['SAGA-A', 3],
      ]),
    );
    const reserved = await tap.next(orderId, 'StockReserved');
    assert.deepEqual(reserved.data, {
      orderId,
      items: [
        { sku: 'SAGA-A', quantity: 3 },
        { sku: 'SAGA-B', quantity: 2 },
      ],
    });
    assert.equal(reserved.source, 'inventory');
    assert.equal(reserved.aggregateType, 'Order');
    assert.equal(reserved.aggregateId, orderId);
    assert.equal(reserved.correlationId, orderId);
    assert.equal(reserved.causationId, cause.id);
    assert.deepEqual(await stockRow(stack, 'SAGA-A'), { on_hand: 10, reserved: 3, version: 2 });
    assert.deepEqual(await stockRow(stack, 'SAGA-B'), { on_hand: 5, reserved: 2, version: 2 });
    assert.deepEqual(await findReservations(em(stack), orderId), [
      { sku: 'SAGA-A', quantity: 3, status: 'RESERVED' },
      { sku: 'SAGA-B', quantity: 2, status: 'RESERVED' },
    ]);
    // The live figure follows once the transaction has committed.
    const figure = await waitFor(async () => {
      const hash = await redis.hgetall('stock:SAGA-A');
      return hash.version === '2' && hash;
    }, 'the Redis figure of SAGA-A');
    assert.deepEqual({ ...figure, updatedAt: undefined }, { onHand: '10', reserved: '3', available: '7', version: '2', updatedAt: undefined });
  });

  test('OrderConfirmed commits the reservation: StockCommitted, on_hand drops, Redis follows', async () => {
    const orderId = randomUUID();
    await publishOrderEvent(inventory, 'OrderPlaced', placed(orderId, [['SAGA-A', 2]]));
    await tap.next(orderId, 'StockReserved');
    const before = await stockRow(stack, 'SAGA-A');
    const cause = await publishOrderEvent(inventory, 'OrderConfirmed', { orderId, customerId: 'alice', items: [{ sku: 'SAGA-A', quantity: 2 }] });
    const committed = await tap.next(orderId, 'StockCommitted');
    assert.deepEqual(committed.data, { orderId, items: [{ sku: 'SAGA-A', quantity: 2 }] });
    assert.equal(committed.causationId, cause.id);
    const afterCommit = await stockRow(stack, 'SAGA-A');
    assert.equal(afterCommit!.on_hand, before!.on_hand - 2);
    assert.equal(afterCommit!.reserved, before!.reserved - 2);
    assert.deepEqual(await findReservations(em(stack), orderId), [{ sku: 'SAGA-A', quantity: 2, status: 'COMMITTED' }]);
    await waitFor(async () => (await redis.hget('stock:SAGA-A', 'version')) === String(afterCommit!.version), 'the Redis figure after the commit');
    assert.equal(await redis.hget('stock:SAGA-A', 'onHand'), String(afterCommit!.on_hand));

    // A cancellation after the commit (before shipping) puts the committed units back on hand.
    const cancelled = await publishOrderEvent(inventory, 'OrderCancelled', {
      orderId,
      customerId: 'alice',
      reason: 'changed my mind',
      previousStatus: 'CONFIRMED',
    });
    await handled(inventory, cancelled.id);
    assert.deepEqual(await outboxTypes(inventory, orderId), ['StockReserved', 'StockCommitted', 'StockReleased']);
    const [restocked] = await em(stack).execute<{ on_hand: number; reserved: number }[]>(`select on_hand, reserved from stock where sku = 'SAGA-A'`);
    assert.deepEqual({ onHand: restocked.on_hand, reserved: restocked.reserved }, { onHand: afterCommit!.on_hand + 2, reserved: afterCommit!.reserved });
  });

  test('a short line reserves nothing and publishes StockReservationFailed with the shortages', async () => {
    const orderId = randomUUID();
    await publishOrderEvent(
      inventory,
      'OrderPlaced',
      placed(orderId, [
        ['SHORT-A', 4],
        ['SHORT-B', 3],
        ['SHORT-NEVER', 1],
      ]),
    );
    const failed = await tap.next(orderId, 'StockReservationFailed');
    assert.deepEqual(failed.data, {
      orderId,
      shortages: [
        { sku: 'SHORT-B', requested: 3, available: 2 },
        { sku: 'SHORT-NEVER', requested: 1, available: 0 },
      ],
    });
    assert.deepEqual(await stockRow(stack, 'SHORT-A'), { on_hand: 10, reserved: 0, version: 1 });
    assert.deepEqual(await stockRow(stack, 'SHORT-B'), { on_hand: 2, reserved: 0, version: 1 });
    assert.deepEqual(await findReservations(em(stack), orderId), []);
    assert.deepEqual(await outboxTypes(inventory, orderId), ['StockReservationFailed']);
  });

  test('OrderCancelled after a reservation releases it: StockReleased, reserved drops back', async () => {
    const orderId = randomUUID();
    await publishOrderEvent(inventory, 'OrderPlaced', placed(orderId, [['REL-A', 4]]));
    await tap.next(orderId, 'StockReserved');
    assert.deepEqual(await stockRow(stack, 'REL-A'), { on_hand: 4, reserved: 4, version: 2 });
    const cause = await publishOrderEvent(inventory, 'OrderCancelled', {
      orderId,
      customerId: 'alice',
      reason: 'payment declined',
      previousStatus: 'AWAITING_PAYMENT',
    });
    const released = await tap.next(orderId, 'StockReleased');
    assert.deepEqual(released.data, { orderId, items: [{ sku: 'REL-A', quantity: 4 }] });
    assert.equal(released.causationId, cause.id);
    assert.deepEqual(await stockRow(stack, 'REL-A'), { on_hand: 4, reserved: 0, version: 3 });
    assert.deepEqual(await findReservations(em(stack), orderId), [{ sku: 'REL-A', quantity: 4, status: 'RELEASED' }]);
    await waitFor(async () => (await redis.hget('stock:REL-A', 'available')) === '4', 'the Redis figure after the release');
  });

  test('the same OrderPlaced delivered twice reserves once and publishes one StockReserved', async () => {
    const orderId = randomUUID();
    const before = consumerMetrics(inventory).duplicates;
    const event = await publishOrderEvent(inventory, 'OrderPlaced', placed(orderId, [['DUP-A', 3]]));
    await publishEnvelope(inventory, event);
    await waitFor(() => consumerMetrics(inventory).duplicates > before, 'the duplicate to be recognised');
    await tap.next(orderId, 'StockReserved');
    assert.deepEqual(await stockRow(stack, 'DUP-A'), { on_hand: 10, reserved: 3, version: 2 });
    assert.deepEqual(await outboxTypes(inventory, orderId), ['StockReserved']);

    // A second OrderPlaced for the same order (another event id) reserves nothing again either.
    const again = await publishOrderEvent(inventory, 'OrderPlaced', placed(orderId, [['DUP-A', 3]]));
    await handled(inventory, again.id);
    assert.deepEqual(await stockRow(stack, 'DUP-A'), { on_hand: 10, reserved: 3, version: 2 });
    assert.deepEqual(await outboxTypes(inventory, orderId), ['StockReserved']);
    assert.equal(tap.of(orderId).filter((e) => e.type === 'StockReserved').length, 1);
  });

  test('order events inventory does not act on, and settlements of nothing, publish nothing', async () => {
    const orderId = randomUUID();
    const ignoredBefore = consumerMetrics(inventory).ignored;
    const rejected = await publishOrderEvent(inventory, 'OrderRejected', { orderId, customerId: 'alice', reason: 'SHORT-B was short' });
    const requested = await publishOrderEvent(inventory, 'PaymentRequested', { orderId, customerId: 'alice', amount: EUR(100), paymentMethod: 'tok_visa' });
    const cancelled = await publishOrderEvent(inventory, 'OrderCancelled', {
      orderId,
      customerId: 'alice',
      reason: 'changed my mind',
      previousStatus: 'PENDING',
    });
    const confirmed = await publishOrderEvent(inventory, 'OrderConfirmed', { orderId, customerId: 'alice', items: [{ sku: 'SAGA-A', quantity: 1 }] });
    for (const event of [rejected, requested, cancelled, confirmed]) await handled(inventory, event.id);
    assert.equal(consumerMetrics(inventory).ignored - ignoredBefore, 2);
    assert.deepEqual(await outboxTypes(inventory, orderId), []);
    assert.equal(consumerMetrics(inventory).deadLettered, 0);
  });
});
