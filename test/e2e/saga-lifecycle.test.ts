/**
 * The order saga end to end through the gateway, one path per test: the happy path to DELIVERED,
 * a rejection for missing stock, a declined payment, a cancellation with refund after confirmation,
 * and a provider that never answers. Real services, PostgreSQL, Redis and Kafka; nothing stubbed.
 *
 * The mock provider answers after 1 s here, so AWAITING_PAYMENT (stock reserved, not yet
 * committed) lasts long enough to be observed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestStack } from '../support/stack.ts';
import {
  type SagaSystem,
  CANCEL_ORDER,
  DISPATCH_SHIPMENT,
  MARK_DELIVERED,
  assertConserved,
  dispatchWhenReady,
  distinctStatuses,
  placeOrder,
  drainSystem,
  readEvents,
  readOrder,
  startSeededSaga,
  statusChanges,
  stockOf,
  waitFor,
  waitForOrder,
  waitForStatus,
  waitForStock,
} from '../support/saga.ts';
import { eventsTopic } from '@swiftcart/platform';

const SKUS = [
  { sku: 'HAPPY-1', onHand: 10, priceAmount: 1250 },
  { sku: 'REJ-1', onHand: 5, priceAmount: 800 },
  { sku: 'REJ-2', onHand: 9, priceAmount: 300 },
  { sku: 'DEC-1', onHand: 8, priceAmount: 999 },
  { sku: 'REF-1', onHand: 6, priceAmount: 2000 },
  { sku: 'TMO-1', onHand: 5, priceAmount: 450 },
  { sku: 'EARLY-1', onHand: 7, priceAmount: 100 },
];
const TERMINAL_OR_CONFIRMED = ['CONFIRMED', 'CANCELLED', 'REJECTED', 'DELIVERED'];

describe('order saga lifecycle through the gateway', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let admin: string;

  before(async () => {
    ({ stack, system, admin } = await startSeededSaga(SKUS, {
      PAYMENT_PROVIDER_LATENCY_MS: '1000',
      PAYMENT_TIMEOUT_MS: '2000',
      PAYMENT_RETRY_ATTEMPTS: '2',
      PAYMENT_RETRY_BASE_MS: '20',
    }));
  });
  after(() => stack?.close());

  it('happy path: PENDING → AWAITING_PAYMENT → CONFIRMED → SHIPPED → DELIVERED, with stock, payment and shipment', async () => {
    const token = await stack.token('happy-customer', ['customer']);
    const sku = 'HAPPY-1';
    assert.deepEqual(await stockOf(system, sku), { onHand: 10, reserved: 0, available: 10 });

    const placed = await placeOrder(system, token, [{ sku, quantity: 3 }], 'tok_visa');
    assert.equal(placed.status, 'PENDING');
    assert.equal(placed.customerId, 'happy-customer');
    assert.equal(placed.paymentMethod, 'tok_visa');
    assert.deepEqual(placed.total, { amount: 3750, currency: 'EUR' }, 'priced from the catalogue replica: 3 × 1250');
    assert.deepEqual(placed.items, [{ sku, quantity: 3, unitPrice: { amount: 1250, currency: 'EUR' }, lineTotal: { amount: 3750 } }]);
    assert.equal(placed.timeline.length, 1);
    assert.equal(placed.timeline[0].status, 'PENDING');
    assert.equal(placed.timeline[0].eventType, null, 'the placement has no causing event');

    // Stock reserved, payment under way (the provider takes 1 s).
    const awaiting = await waitForStatus(system, token, placed.id, ['AWAITING_PAYMENT', ...TERMINAL_OR_CONFIRMED]);
    assert.equal(awaiting.status, 'AWAITING_PAYMENT', `expected to observe AWAITING_PAYMENT, got ${awaiting.status}`);
    assert.deepEqual(await stockOf(system, sku), { onHand: 10, reserved: 3, available: 7 }, 'after reservation: reserved += 3, onHand unchanged');

    const confirmed = await waitForStatus(system, token, placed.id, TERMINAL_OR_CONFIRMED);
    assert.equal(confirmed.status, 'CONFIRMED', JSON.stringify(confirmed.timeline));
    // Commit: the units leave the warehouse, the reservation is gone.
    await waitForStock(system, sku, { onHand: 7, reserved: 0, available: 7 });
    const paid = await waitForOrder(system, token, placed.id, 'payment AUTHORIZED', (o) => o.payment?.status === 'AUTHORIZED');
    assert.deepEqual(paid.payment.amount, { amount: 3750, currency: 'EUR' });
    assert.equal(paid.payment.method, 'tok_visa');

    const dispatched = await dispatchWhenReady(system, admin, token, placed.id, 'DHL', 'JD014600006281');
    assert.deepEqual(
      { status: dispatched.status, carrier: dispatched.carrier, trackingNumber: dispatched.trackingNumber },
      { status: 'DISPATCHED', carrier: 'DHL', trackingNumber: 'JD014600006281' },
    );
    const shipped = await waitForStatus(system, token, placed.id, ['SHIPPED', 'DELIVERED', 'CANCELLED']);
    assert.equal(shipped.status, 'SHIPPED');

    const delivered = await system.graphql(MARK_DELIVERED, { token: admin, variables: { orderId: placed.id } });
    assert.equal(delivered.errors, undefined, JSON.stringify(delivered.errors));
    assert.equal(delivered.data.markShipmentDelivered.status, 'DELIVERED');

    // The timeline-only entries (StockCommitted from inventory, ShipmentCreated from shipment) may land in between.
    const final = await waitForOrder(
      system,
      token,
      placed.id,
      'DELIVERED with StockCommitted and ShipmentCreated on the timeline',
      (o) => o.status === 'DELIVERED' && ['StockCommitted', 'ShipmentCreated'].every((t) => o.timeline.some((e: any) => e.eventType === t)),
    );
    assert.deepEqual(distinctStatuses(final.timeline), ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED'], JSON.stringify(final.timeline));
    assert.deepEqual(
      statusChanges(final.timeline).map((e: any) => e.eventType),
      [null, 'StockReserved', 'PaymentAuthorized', 'ShipmentDispatched', 'ShipmentDelivered'],
    );
    for (const entry of final.timeline.slice(1)) {
      assert.ok(entry.eventType && entry.eventId, `every entry after the placement names its event: ${JSON.stringify(entry)}`);
    }
    assert.equal(new Set(final.timeline.map((e: any) => e.eventId).filter(Boolean)).size, final.timeline.length - 1, 'no event on the timeline twice');
    const times = final.timeline.map((e: any) => Date.parse(e.at));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      'timeline oldest first',
    );
    assert.deepEqual(final.shipment, { status: 'DELIVERED', carrier: 'DHL', trackingNumber: 'JD014600006281' });
    assert.equal(final.payment.status, 'AUTHORIZED');
    assert.deepEqual(final.payment.amount, { amount: 3750, currency: 'EUR' });

    const stock = await stockOf(system, sku);
    assert.deepEqual(stock, { onHand: 7, reserved: 0, available: 7 });
    assertConserved(sku, 10, stock, 3);
  });

  it('REJECTED when a line is short: nothing is reserved, not even the lines that were available', async () => {
    const token = await stack.token('rejected-customer', ['customer']);
    const beforeA = await stockOf(system, 'REJ-1');
    const beforeB = await stockOf(system, 'REJ-2');
    const placed = await placeOrder(
      system,
      token,
      [
        { sku: 'REJ-2', quantity: 2 },
        { sku: 'REJ-1', quantity: 6 },
      ],
      'tok_visa',
    );
    const rejected = await waitForStatus(system, token, placed.id, TERMINAL_OR_CONFIRMED);
    assert.equal(rejected.status, 'REJECTED', JSON.stringify(rejected.timeline));
    assert.deepEqual(distinctStatuses(rejected.timeline), ['PENDING', 'REJECTED']);
    const change = statusChanges(rejected.timeline)[1];
    assert.equal(change.eventType, 'StockReservationFailed');
    assert.match(change.reason ?? '', /REJ-1/, 'the reason names the short sku');
    assert.doesNotMatch(change.reason ?? '', /REJ-2/, 'only the short line is named');
    assert.equal(rejected.payment, null, 'no payment was asked for');
    assert.equal(rejected.shipment, null);
    await drainSystem(system); // every saga step has been taken: anything late would show now
    assert.deepEqual(await stockOf(system, 'REJ-1'), beforeA);
    assert.deepEqual(await stockOf(system, 'REJ-2'), beforeB, 'all or none: the available line was not reserved either');
    assert.deepEqual(beforeA, { onHand: 5, reserved: 0, available: 5 });
    const published = await waitFor(async () => {
      const events = await readEvents(system.kafka, eventsTopic('order'), (e) => e.aggregateId === placed.id);
      return events.length >= 2 ? events : undefined;
    }, 'OrderPlaced and OrderRejected on order.events.v1');
    await drainSystem(system);
    assert.deepEqual(
      (await readEvents(system.kafka, eventsTopic('order'), (e) => e.aggregateId === placed.id)).map((r) => r.event.type),
      ['OrderPlaced', 'OrderRejected'],
      `no PaymentRequested for a rejected order; saw ${published.length}`,
    );
  });

  it('CANCELLED on a declined payment: the reservation is released and the payment is DECLINED', async () => {
    const token = await stack.token('declined-customer', ['customer']);
    const sku = 'DEC-1';
    const placed = await placeOrder(system, token, [{ sku, quantity: 2 }], 'tok_decline');
    const awaiting = await waitForStatus(system, token, placed.id, ['AWAITING_PAYMENT', ...TERMINAL_OR_CONFIRMED]);
    if (awaiting.status === 'AWAITING_PAYMENT') assert.deepEqual(await stockOf(system, sku), { onHand: 8, reserved: 2, available: 6 });
    const cancelled = await waitForStatus(system, token, placed.id, TERMINAL_OR_CONFIRMED);
    assert.equal(cancelled.status, 'CANCELLED', JSON.stringify(cancelled.timeline));
    assert.deepEqual(distinctStatuses(cancelled.timeline), ['PENDING', 'AWAITING_PAYMENT', 'CANCELLED']);
    const change = statusChanges(cancelled.timeline)[2];
    assert.equal(change.eventType, 'PaymentDeclined');
    assert.match(change.reason ?? '', /declined/i);
    const settled = await waitForOrder(
      system,
      token,
      placed.id,
      'payment DECLINED and StockReleased on the timeline',
      (o) => o.payment?.status === 'DECLINED' && o.timeline.some((e: any) => e.eventType === 'StockReleased'),
    );
    assert.deepEqual(settled.payment.amount, { amount: 1998, currency: 'EUR' });
    assert.equal(settled.shipment, null);
    assert.equal(settled.status, 'CANCELLED');
    const stock = await waitForStock(system, sku, { onHand: 8, reserved: 0, available: 8 });
    assertConserved(sku, 8, stock, 0);
  });

  it('cancellation after CONFIRMED: CANCELLED at once, then the payment is REFUNDED and the shipment CANCELLED', async () => {
    const token = await stack.token('refund-customer', ['customer']);
    const sku = 'REF-1';
    const placed = await placeOrder(system, token, [{ sku, quantity: 2 }], 'tok_visa');
    const confirmed = await waitForStatus(system, token, placed.id, TERMINAL_OR_CONFIRMED);
    assert.equal(confirmed.status, 'CONFIRMED');
    await waitForStock(system, sku, { onHand: 4, reserved: 0, available: 4 }); // committed at CONFIRMED

    const result = await system.graphql(CANCEL_ORDER, { token, variables: { id: placed.id, reason: 'changed my mind' } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const cancelled = result.data.cancelOrder;
    assert.equal(cancelled.status, 'CANCELLED');
    const last = statusChanges(cancelled.timeline).at(-1);
    assert.equal(last.status, 'CANCELLED');
    assert.equal(last.eventType, null, 'a command, not an event, cancelled it');
    assert.equal(last.reason, 'changed my mind');

    const settled = await waitForOrder(
      system,
      token,
      placed.id,
      'payment REFUNDED, shipment CANCELLED, PaymentRefunded on the timeline',
      (o) => o.payment?.status === 'REFUNDED' && o.shipment?.status === 'CANCELLED' && o.timeline.some((e: any) => e.eventType === 'PaymentRefunded'),
    );
    assert.equal(settled.status, 'CANCELLED', 'the refund only adds to the timeline');
    assert.deepEqual(distinctStatuses(settled.timeline), ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'CANCELLED']);
    assert.ok(settled.timeline.filter((e: any) => e.eventType === 'PaymentRefunded').every((e: any) => e.status === 'CANCELLED'));

    // Cancelling again changes nothing.
    const again = await system.graphql(CANCEL_ORDER, { token, variables: { id: placed.id } });
    assert.equal(again.errors, undefined, JSON.stringify(again.errors));
    assert.equal(again.data.cancelOrder.status, 'CANCELLED');
    const cancelledEvents = await readEvents(system.kafka, eventsTopic('order'), (e) => e.aggregateId === placed.id && e.type === 'OrderCancelled');
    assert.equal(cancelledEvents.length, 1, 'one OrderCancelled, however often cancelOrder is called');
    assert.equal((cancelledEvents[0].event.data as any).previousStatus, 'CONFIRMED');

    // The called-off shipment cannot be dispatched any more.
    const dispatch = await system.graphql(DISPATCH_SHIPMENT, { token: admin, variables: { orderId: placed.id, carrier: 'DHL', trackingNumber: 'X1' } });
    assert.equal(dispatch.errors?.[0]?.extensions?.code, 'INVALID_TRANSITION', JSON.stringify(dispatch));
    assert.equal((await readOrder(system, token, placed.id)).status, 'CANCELLED');

    // The reservation was COMMITTED at CONFIRMED (the units left onHand); the order was cancelled
    // before it shipped, so OrderCancelled puts them back on hand.
    await waitForStock(system, sku, { onHand: 6, reserved: 0, available: 6 });
    assertConserved(sku, 6, await stockOf(system, sku), 0);
  });

  it('cancelled by an admin right after placing: compensated whatever step it was at, never CONFIRMED', async () => {
    const token = await stack.token('early-cancel-customer', ['customer']);
    const sku = 'EARLY-1';
    const placed = await placeOrder(system, token, [{ sku, quantity: 4 }], 'tok_visa');
    const result = await system.graphql(CANCEL_ORDER, { token: admin, variables: { id: placed.id } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.equal(result.data.cancelOrder.status, 'CANCELLED');
    const change = statusChanges(result.data.cancelOrder.timeline).at(-1);
    assert.equal(change.status, 'CANCELLED');
    assert.match(change.reason ?? '', /admin/, 'the default reason says who cancelled');
    // Inventory reserves (OrderPlaced) and then releases (OrderCancelled), in that order on one partition.
    const stock = await waitForStock(system, sku, { onHand: 7, reserved: 0, available: 7 });
    assertConserved(sku, 7, stock, 0);
    // Every consumer has handled everything (payment's included, however slow the provider): a late authorisation would show now.
    await drainSystem(system);
    const final = await readOrder(system, token, placed.id);
    assert.equal(final.status, 'CANCELLED');
    assert.ok(!distinctStatuses(final.timeline).includes('CONFIRMED'), JSON.stringify(final.timeline));
    assert.ok(final.payment === null || ['REFUNDED', 'DECLINED', 'FAILED'].includes(final.payment.status), `no money kept: ${JSON.stringify(final.payment)}`);
    assert.equal(final.shipment, null);
    assert.deepEqual(await stockOf(system, sku), { onHand: 7, reserved: 0, available: 7 });
  });

  it('a provider that never answers (tok_timeout): payment FAILED after its timeouts, order CANCELLED, stock released', async () => {
    const token = await stack.token('timeout-customer', ['customer']);
    const sku = 'TMO-1';
    const placed = await placeOrder(system, token, [{ sku, quantity: 1 }], 'tok_timeout');
    const cancelled = await waitForStatus(system, token, placed.id, TERMINAL_OR_CONFIRMED, 30_000);
    assert.equal(cancelled.status, 'CANCELLED', JSON.stringify(cancelled.timeline));
    assert.deepEqual(distinctStatuses(cancelled.timeline), ['PENDING', 'AWAITING_PAYMENT', 'CANCELLED']);
    const change = statusChanges(cancelled.timeline)[2];
    assert.equal(change.eventType, 'PaymentFailed');
    assert.match(change.reason ?? '', /payment failed/i);
    const settled = await waitForOrder(system, token, placed.id, 'payment FAILED', (o) => o.payment?.status === 'FAILED');
    assert.match(settled.payment.failureReason ?? '', /time/i, 'the failure names the timeout');
    assert.equal(settled.payment.attempts, 2, 'PAYMENT_RETRY_ATTEMPTS=2');
    const stock = await waitForStock(system, sku, { onHand: 5, reserved: 0, available: 5 });
    assertConserved(sku, 5, stock, 0);
    assert.equal((await readOrder(system, token, placed.id)).shipment, null);
  });
});
