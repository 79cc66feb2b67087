/**
 * The saga deadline, end to end: with ORDER_DEADLINE_MS shorter than the payment provider's
 * latency, the sweeper cancels an order stuck in AWAITING_PAYMENT, inventory releases its stock,
 * and the authorisation that arrives after the cancellation is refunded, never confirmed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestStack } from '../support/stack.ts';
import {
  type SagaSystem,
  assertConserved,
  distinctStatuses,
  drainSystem,
  placeOrder,
  readEvents,
  seedSaga,
  startSagaStack,
  statusChanges,
  stockOf,
  systemOf,
  waitForOrder,
  waitForStatus,
  waitForStock,
} from '../support/saga.ts';

// Generous margins: the suite runs two files at once on small machines.
const DEADLINE_MS = 3000;
const PROVIDER_LATENCY_MS = 6000;

describe('order saga deadline', () => {
  let stack: TestStack;
  let system: SagaSystem;

  before(async () => {
    stack = await startSagaStack({
      ORDER_DEADLINE_MS: String(DEADLINE_MS),
      ORDER_SWEEP_INTERVAL_MS: '100',
      PAYMENT_PROVIDER_LATENCY_MS: String(PROVIDER_LATENCY_MS),
      PAYMENT_TIMEOUT_MS: '20000',
      PAYMENT_RETRY_ATTEMPTS: '1',
    });
    system = systemOf(stack);
    await seedSaga(system, [{ sku: 'DL-1', onHand: 5, priceAmount: 1999 }]);
  });
  after(() => stack?.close());

  it('a slow provider: CANCELLED by the deadline, stock released, the late authorisation refunded', async () => {
    const token = await stack.token('deadline-customer', ['customer']);
    const order = await placeOrder(system, token, [{ sku: 'DL-1', quantity: 2 }], 'tok_visa');

    const awaiting = await waitForStatus(system, token, order.id, ['AWAITING_PAYMENT', 'CANCELLED', 'CONFIRMED']);
    assert.equal(awaiting.status, 'AWAITING_PAYMENT');
    assert.deepEqual(await stockOf(system, 'DL-1'), { onHand: 5, reserved: 2, available: 3 });

    const cancelled = await waitForStatus(system, token, order.id, ['CANCELLED', 'CONFIRMED'], 15_000);
    assert.equal(cancelled.status, 'CANCELLED', JSON.stringify(cancelled.timeline));
    assert.deepEqual(distinctStatuses(cancelled.timeline), ['PENDING', 'AWAITING_PAYMENT', 'CANCELLED']);
    const change = statusChanges(cancelled.timeline)[2];
    const placedAt = Date.parse(cancelled.timeline[0].at);
    const cancelledAt = Date.parse(change.at);
    assert.ok(cancelledAt - placedAt >= DEADLINE_MS, `cancelled ${cancelledAt - placedAt} ms after placement, before the ${DEADLINE_MS} ms deadline`);
    assert.match(change.reason ?? '', /deadline/i, 'the reason names the deadline');
    assert.equal(change.eventType, null, 'a timer, not an event, cancelled it');

    // Inventory released the reservation.
    const released = await waitForStock(system, 'DL-1', { onHand: 5, reserved: 0, available: 5 });
    assertConserved('DL-1', 5, released, 0);

    // The provider answers after 6 s: the authorisation is refunded, and the order stays CANCELLED.
    const refunded = await waitForOrder(
      system,
      token,
      order.id,
      'payment REFUNDED and PaymentRefunded on the timeline',
      (o) => o.payment?.status === 'REFUNDED' && o.timeline.some((e: any) => e.eventType === 'PaymentRefunded'),
      20_000,
    );
    assert.equal(refunded.status, 'CANCELLED');
    assert.deepEqual(refunded.payment.amount, { amount: 3998, currency: 'EUR' });
    assert.deepEqual(distinctStatuses(refunded.timeline), ['PENDING', 'AWAITING_PAYMENT', 'CANCELLED'], 'never CONFIRMED');
    assert.ok(
      refunded.timeline.some((e: any) => e.eventType === 'StockReleased'),
      'StockReleased on the timeline',
    );
    assert.equal(refunded.shipment, null, 'no shipment for a cancelled order');

    await drainSystem(system);
    const orderEvents = await readEvents(system.kafka, 'order.events.v1', (e) => e.aggregateId === order.id);
    assert.deepEqual(
      orderEvents.map((r) => r.event.type),
      ['OrderPlaced', 'PaymentRequested', 'OrderCancelled'],
    );
    assert.equal((orderEvents[2].event.data as any).previousStatus, 'AWAITING_PAYMENT');
    const paymentEvents = await readEvents(system.kafka, 'payment.events.v1', (e) => e.aggregateId === order.id);
    assert.deepEqual(
      paymentEvents.map((r) => r.event.type),
      ['PaymentAuthorized', 'PaymentRefunded'],
    );
    assert.ok(Date.parse(paymentEvents[0].event.occurredAt) > cancelledAt, 'the authorisation came after the deadline cancellation');
    const stock = await stockOf(system, 'DL-1');
    assert.deepEqual(stock, { onHand: 5, reserved: 0, available: 5 }, 'nothing committed');
  });
});
