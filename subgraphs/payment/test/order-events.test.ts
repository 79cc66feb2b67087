/**
 * Payment as a saga participant, against real PostgreSQL and Kafka and the mock provider behind
 * its timeout, retries and circuit breaker: PaymentRequested and OrderCancelled go in on
 * `order.events.v1`, payment events come out on `payment.events.v1`, payments and refunds change
 * in PostgreSQL.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createEvent, type AnyEventEnvelope, type PrepareContext, type RunningService } from '@swiftcart/platform';
import type { PaymentSettings } from '../src/authorization.ts';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { Payment, Refund } from '../src/entities.ts';
import { orderEventHandlers, refundIdOf } from '../src/order-events.ts';
import { EventTap, consumerMetrics, handled, outboxTypes, publishEnvelope, publishOrderEvent, waitFor } from '../../../test/support/participants.ts';

/** The provider settings of this file: a fast provider and short timeouts. */
const PAYMENT_ENV = {
  PAYMENT_TIMEOUT_MS: '100',
  PAYMENT_RETRY_ATTEMPTS: '2',
  PAYMENT_RETRY_BASE_MS: '10',
  PAYMENT_RETRY_MAX_MS: '50',
  PAYMENT_PROVIDER_LATENCY_MS: '5',
};

const EUR = (amount: number) => ({ amount, currency: 'EUR' });

describe('payment consumes order events', () => {
  let stack: TestStack;
  let payment: RunningService<PaymentSettings>;
  let tap: EventTap;

  const requestPayment = (orderId: string, paymentMethod: string, amount = 4_999) =>
    publishOrderEvent(payment, 'PaymentRequested', { orderId, customerId: 'alice', amount: EUR(amount), paymentMethod });
  const cancelOrder = (orderId: string, previousStatus = 'AWAITING_PAYMENT') =>
    publishOrderEvent(payment, 'OrderCancelled', { orderId, customerId: 'alice', reason: 'saga deadline passed', previousStatus });
  const paymentOf = (orderId: string) => payment.runtime.db.fork().findOne(Payment, { orderId });
  const refundsOf = (paymentId: string) => payment.runtime.db.fork().find(Refund, { payment: paymentId });

  before(async () => {
    stack = await startStack({ services: ['payment'], env: PAYMENT_ENV });
    payment = stack.services.payment!;
    tap = await EventTap.start(payment);
  });
  after(async () => {
    await tap?.stop();
    await stack?.close();
  });

  test('tok_visa: the payment is AUTHORIZED and PaymentAuthorized is published', async () => {
    const orderId = randomUUID();
    const cause = await requestPayment(orderId, 'tok_visa');
    const authorized = await tap.next(orderId, 'PaymentAuthorized');
    const row = await paymentOf(orderId);
    assert.ok(row);
    assert.equal(row.status, 'AUTHORIZED');
    assert.equal(row.attempts, 1);
    assert.match(row.providerRef ?? '', /^auth_/);
    assert.equal(row.customerId, 'alice');
    assert.equal(row.method, 'tok_visa');
    assert.deepEqual(authorized.data, { orderId, paymentId: row.id, amount: EUR(4_999), providerRef: row.providerRef });
    assert.equal(authorized.source, 'payment');
    assert.equal(authorized.aggregateType, 'Order');
    assert.equal(authorized.aggregateId, orderId);
    assert.equal(authorized.correlationId, orderId);
    assert.equal(authorized.causationId, cause.id);
  });

  test('tok_decline: the payment is DECLINED and PaymentDeclined carries the reason', async () => {
    const orderId = randomUUID();
    await requestPayment(orderId, 'tok_decline', 1_200);
    const declined = await tap.next(orderId, 'PaymentDeclined');
    const row = await paymentOf(orderId);
    assert.equal(row?.status, 'DECLINED');
    assert.equal(row?.failureReason, 'card declined');
    assert.equal(row?.providerRef, null);
    assert.deepEqual(declined.data, { orderId, paymentId: row!.id, amount: EUR(1_200), reason: 'card declined' });
  });

  test('tok_timeout: every attempt times out, the payment FAILED with its attempts, PaymentFailed within seconds', async () => {
    const orderId = randomUUID();
    const started = Date.now();
    await requestPayment(orderId, 'tok_timeout');
    const failed = await tap.next(orderId, 'PaymentFailed', 5_000);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    const row = await paymentOf(orderId);
    assert.equal(row?.status, 'FAILED');
    assert.equal(row?.attempts, 2);
    assert.equal(row?.failureReason, 'provider timed out after 2 attempts');
    assert.deepEqual(failed.data, { orderId, paymentId: row!.id, reason: 'provider timed out after 2 attempts' });
  });

  test('OrderCancelled after the authorisation refunds it: refund row, REFUNDED, PaymentRefunded', async () => {
    const orderId = randomUUID();
    await requestPayment(orderId, 'tok_visa', 2_500);
    const authorized = await tap.next(orderId, 'PaymentAuthorized');
    const cause = await cancelOrder(orderId, 'CONFIRMED');
    const refunded = await tap.next(orderId, 'PaymentRefunded');
    const row = await paymentOf(orderId);
    assert.equal(row?.status, 'REFUNDED');
    const refunds = await refundsOf(row!.id);
    assert.equal(refunds.length, 1);
    assert.equal(refunds[0].id, refundIdOf(row!.id));
    assert.equal(refunds[0].amount, 2_500);
    assert.deepEqual(refunded.data, { orderId, paymentId: row!.id, refundId: refunds[0].id, amount: EUR(2_500) });
    assert.equal(refunded.causationId, cause.id);
    assert.equal((authorized.data as { paymentId: string }).paymentId, row!.id);

    // A second cancellation (another event id) finds nothing left to refund.
    const again = await cancelOrder(orderId, 'CANCELLED');
    await handled(payment, again.id);
    assert.equal((await refundsOf(row!.id)).length, 1);
    assert.deepEqual(await outboxTypes(payment, orderId), ['PaymentAuthorized', 'PaymentRefunded']);
  });

  test('the deadline race: a cancellation right behind the request still refunds what was authorised', async () => {
    const orderId = randomUUID();
    await requestPayment(orderId, 'tok_visa', 700);
    await cancelOrder(orderId, 'AWAITING_PAYMENT');
    await tap.next(orderId, 'PaymentRefunded');
    assert.deepEqual(
      tap.of(orderId).map((e) => e.type),
      ['PaymentAuthorized', 'PaymentRefunded'],
    );
    assert.equal((await paymentOf(orderId))?.status, 'REFUNDED');
  });

  test('OrderCancelled without an authorised payment refunds nothing', async () => {
    const declinedOrder = randomUUID();
    await requestPayment(declinedOrder, 'tok_decline');
    await tap.next(declinedOrder, 'PaymentDeclined');
    const noPaymentOrder = randomUUID();
    const events = [await cancelOrder(declinedOrder), await cancelOrder(noPaymentOrder)];
    for (const event of events) await handled(payment, event.id);
    assert.equal((await paymentOf(declinedOrder))?.status, 'DECLINED');
    assert.equal(await paymentOf(noPaymentOrder), null);
    assert.deepEqual(await outboxTypes(payment, declinedOrder), ['PaymentDeclined']);
    assert.deepEqual(await outboxTypes(payment, noPaymentOrder), []);
  });

  test('a PENDING payment (the provider was never answered) is cancelled without a refund', async () => {
    const orderId = randomUUID();
    const em = payment.runtime.db.fork();
    em.create(Payment, { id: randomUUID(), orderId, customerId: 'alice', status: 'PENDING', amount: 100, currency: 'EUR', method: 'tok_visa', attempts: 0 });
    await em.flush();
    const cancelled = await cancelOrder(orderId);
    await handled(payment, cancelled.id);
    assert.equal((await paymentOf(orderId))?.status, 'PENDING');
    assert.deepEqual(await outboxTypes(payment, orderId), []);
  });

  test('a duplicate PaymentRequested creates one payment and publishes one event', async () => {
    const orderId = randomUUID();
    const duplicatesBefore = consumerMetrics(payment).duplicates;
    const first = await requestPayment(orderId, 'tok_visa');
    await publishEnvelope(payment, first);
    await waitFor(() => consumerMetrics(payment).duplicates > duplicatesBefore, 'the redelivery to be recognised');
    await tap.next(orderId, 'PaymentAuthorized');

    // Another PaymentRequested (a new event id) for the same order: the decided payment stands.
    const second = await requestPayment(orderId, 'tok_visa');
    await handled(payment, second.id);
    const rows = await payment.runtime.db.fork().find(Payment, { orderId });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].attempts, 1);
    assert.deepEqual(await outboxTypes(payment, orderId), ['PaymentAuthorized']);
    assert.equal(tap.of(orderId).length, 1);
  });

  test('a PENDING payment left by a crash is authorised under its own id when the request comes again', async () => {
    const orderId = randomUUID();
    const paymentId = randomUUID();
    const em = payment.runtime.db.fork();
    em.create(Payment, { id: paymentId, orderId, customerId: 'alice', status: 'PENDING', amount: 4_999, currency: 'EUR', method: 'tok_visa', attempts: 0 });
    await em.flush();
    await requestPayment(orderId, 'tok_visa');
    const authorized = await tap.next(orderId, 'PaymentAuthorized');
    assert.equal((authorized.data as { paymentId: string }).paymentId, paymentId);
    assert.equal((await paymentOf(orderId))?.status, 'AUTHORIZED');
    assert.equal(consumerMetrics(payment).deadLettered, 0);
  });

  /** An order event as the order service would write it, not yet on Kafka. */
  const orderEvent = (type: string, data: { readonly orderId: string } & Record<string, unknown>): AnyEventEnvelope =>
    createEvent({ type, source: 'order', aggregateType: 'Order', aggregateId: data.orderId, causationId: null, data });
  /** The step before a crash: what the consumer does outside its transaction, done here on its own. */
  const prepareOnly = (event: AnyEventEnvelope) => {
    const { preparers } = orderEventHandlers(payment.runtime);
    const context = { message: {} as PrepareContext['message'], log: payment.runtime.log, signal: new AbortController().signal };
    return (preparers as Record<string, (e: AnyEventEnvelope, c: PrepareContext) => Promise<unknown>>)[event.type](event, context);
  };

  test('a crash after the provider authorised, before the outcome was recorded: the redelivery records the same authorisation, charged once', async () => {
    const orderId = randomUUID();
    const request = orderEvent('PaymentRequested', { orderId, customerId: 'alice', amount: EUR(4_999), paymentMethod: 'tok_visa' });
    const first = (await prepareOnly(request)) as { kind: string; paymentId: string; outcome: { outcome: string; providerRef: string } };
    assert.equal(first.outcome.outcome, 'AUTHORIZED');
    // The process died here: the payment is PENDING, nothing is in the inbox or the outbox.
    assert.equal((await paymentOf(orderId))?.status, 'PENDING');
    assert.deepEqual(await outboxTypes(payment, orderId), []);
    await publishEnvelope(payment, request);
    const authorized = await tap.next(orderId, 'PaymentAuthorized');
    const row = await paymentOf(orderId);
    assert.equal(row?.id, first.paymentId);
    assert.equal(row?.status, 'AUTHORIZED');
    assert.equal(row?.providerRef, first.outcome.providerRef, 'the provider answered with the first authorisation: one charge');
    assert.equal((authorized.data as { providerRef: string }).providerRef, first.outcome.providerRef);
    assert.deepEqual(await outboxTypes(payment, orderId), ['PaymentAuthorized']);
  });

  test('the refund gap: a PaymentRequested replayed after the cancellation charges nothing', async () => {
    const orderId = randomUUID();
    const cancelled = await cancelOrder(orderId, 'PENDING');
    await handled(payment, cancelled.id);
    // The request had been dead-lettered; replayed now, after the order was cancelled.
    const replayed = await requestPayment(orderId, 'tok_visa');
    await handled(payment, replayed.id);
    assert.equal(await paymentOf(orderId), null, 'no payment, so the provider was never asked');
    assert.deepEqual(await outboxTypes(payment, orderId), []);
  });

  test('the refund gap after a crash: authorised, then cancelled, then redelivered: refunded at once, charged once', async () => {
    const orderId = randomUUID();
    const request = orderEvent('PaymentRequested', { orderId, customerId: 'alice', amount: EUR(4_999), paymentMethod: 'tok_visa' });
    const first = (await prepareOnly(request)) as { paymentId: string; outcome: { outcome: string; providerRef: string } };
    assert.equal(first.outcome.outcome, 'AUTHORIZED');
    // The process died with the money authorised and the payment PENDING; the order was cancelled meanwhile.
    const cancelled = await cancelOrder(orderId);
    await handled(payment, cancelled.id);
    assert.equal((await paymentOf(orderId))?.status, 'PENDING', 'nothing to refund yet: the authorisation was never recorded');
    await publishEnvelope(payment, request);
    const refunded = await tap.next(orderId, 'PaymentRefunded');
    const row = await paymentOf(orderId);
    assert.equal(row?.status, 'REFUNDED');
    assert.equal(row?.providerRef, first.outcome.providerRef, 'the first authorisation, not a second charge');
    const refunds = await refundsOf(first.paymentId);
    assert.equal(refunds.length, 1);
    assert.equal(refunds[0].id, refundIdOf(first.paymentId));
    assert.deepEqual(refunded.data, { orderId, paymentId: first.paymentId, refundId: refundIdOf(first.paymentId), amount: EUR(4_999) });
    assert.deepEqual(await outboxTypes(payment, orderId), ['PaymentRefunded'], 'no PaymentAuthorized for a cancelled order');
  });

  test('a crash after the provider refunded, before the refund was recorded: the redelivery records that refund once', async () => {
    const orderId = randomUUID();
    await requestPayment(orderId, 'tok_visa');
    await tap.next(orderId, 'PaymentAuthorized');
    const authorised = (await paymentOf(orderId))!;
    const cancel = orderEvent('OrderCancelled', { orderId, customerId: 'alice', reason: 'customer changed their mind', previousStatus: 'CONFIRMED' });
    const first = (await prepareOnly(cancel)) as { kind: string; refundId: string };
    assert.deepEqual(first, { kind: 'refunded', paymentId: authorised.id, refundId: refundIdOf(authorised.id) });
    assert.equal((await paymentOf(orderId))?.status, 'AUTHORIZED', 'nothing recorded before the crash');
    await publishEnvelope(payment, cancel);
    const refunded = await tap.next(orderId, 'PaymentRefunded');
    assert.equal((refunded.data as { refundId: string }).refundId, first.refundId);
    assert.equal((await paymentOf(orderId))?.status, 'REFUNDED');
    assert.deepEqual(
      (await refundsOf(authorised.id)).map((r) => r.id),
      [first.refundId],
    );
    assert.deepEqual(await outboxTypes(payment, orderId), ['PaymentAuthorized', 'PaymentRefunded']);
  });

  test('a refund the provider refuses is not dropped: retried, then dead-lettered, the payment stays AUTHORIZED', async () => {
    const orderId = randomUUID();
    const em = payment.runtime.db.fork();
    const paymentId = randomUUID();
    // An authorisation this provider never gave (e.g. made before a restart of the in-memory mock).
    em.create(Payment, {
      id: paymentId,
      orderId,
      customerId: 'alice',
      status: 'AUTHORIZED',
      amount: 300,
      currency: 'EUR',
      method: 'tok_visa',
      attempts: 1,
      providerRef: 'auth_unknown',
    });
    await em.flush();
    const before = consumerMetrics(payment).deadLettered;
    await cancelOrder(orderId, 'CONFIRMED');
    await waitFor(() => consumerMetrics(payment).deadLettered > before, 'the cancellation to be dead-lettered');
    assert.equal((await paymentOf(orderId))?.status, 'AUTHORIZED');
    assert.deepEqual(await refundsOf(paymentId), []);
    assert.deepEqual(await outboxTypes(payment, orderId), []);
  });
});
