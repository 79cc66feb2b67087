/**
 * Payment's part in the order saga (ADR 0008): it consumes `order.events.v1` only and answers on
 * `payment.events.v1`, keyed by the order id.
 *
 * - PaymentRequested → authorise with the provider → PaymentAuthorized, PaymentDeclined or PaymentFailed;
 * - OrderCancelled   → refund an AUTHORIZED payment → PaymentRefunded (nothing to do otherwise).
 * Every other order event is recorded by the inbox and otherwise ignored.
 *
 * Both provider calls run in the events' preparers, outside any transaction, and their answers are
 * recorded by the handlers in the inbox transaction. Both calls are keyed so that doing them again
 * returns the first answer instead of charging or refunding twice:
 * - the payment id is the authorisation's idempotency key. The PENDING payment row is committed
 *   on its own BEFORE the provider is asked, so a redelivery after a crash (or a retry of the
 *   inbox transaction) finds that row and asks again with the same id;
 * - the refund id is derived from the payment id (one full refund per payment), so a retried
 *   refund carries the same key.
 *
 * Ordering: the orchestrator writes PaymentRequested before any OrderCancelled of the same order,
 * and both travel on one partition, so a cancellation that races the authorisation (the saga
 * deadline) is handled after it and refunds what was authorised.
 *
 * The refund gap: a PaymentRequested can still come after the cancellation, when it was
 * dead-lettered and replayed, or when a crash left its payment PENDING. So every OrderCancelled is
 * remembered (`cancelled_order`), and a PaymentRequested for a cancelled order charges nothing: with
 * no payment yet, the provider is not called; with a PENDING one (the provider may have authorised
 * it before a crash), the authorisation is asked again under the same id and, if it stands,
 * refunded at once (PaymentRefunded). No money is held for an order that is no longer payable.
 */
import { createHash } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import {
  clipReason,
  defineConsumer,
  enqueueEvents,
  newEvent,
  uuidv7,
  type AnyEventOf,
  type ConsumerSpec,
  type EntityManager,
  type EventHandler,
  type EventOf,
  type EventPreparer,
  type PaymentRequestedData,
  type Logger,
  type ServiceRuntime,
} from '@swiftcart/platform';
import { type AuthorizationOutcome, createResilientProvider, type PaymentSettings, type ResilientProvider } from './authorization.ts';
import { Payment, Refund, type PaymentEntity } from './entities.ts';

/** The consumer group and inbox name of payment's order-event consumer. */
export const ORDER_EVENTS_CONSUMER = 'payment.order-events';

/** Thrown when a refund the provider owes us did not happen: the inbox retries, then dead-letters it for replay. */
export class RefundFailedError extends Error {
  override name = 'RefundFailedError';
}

const providers = new WeakMap<ServiceRuntime, ResilientProvider>();

/**
 * The provider of one running service, configured once from its settings (`PAYMENT_*`, which the
 * platform parsed at start-up): one circuit breaker for every call the service makes.
 */
export function providerOf(runtime: ServiceRuntime<PaymentSettings>): ResilientProvider {
  let provider = providers.get(runtime);
  if (!provider) {
    provider = createResilientProvider(runtime.settings, undefined, {
      onRetry: (notice) => {
        runtime.log.warn(
          { operation: notice.operation, attempt: notice.attempt, delayMs: notice.delayMs, err: notice.error },
          'payment provider call failed; retrying',
        );
      },
      onCircuitChange: (status) => {
        if (status === 'open')
          runtime.log.warn({ circuit: status }, 'payment provider failing: circuit open, payments fail at once until a trial call succeeds');
        else runtime.log.info({ circuit: status }, `payment provider circuit ${status}`);
      },
    });
    providers.set(runtime, provider);
  }
  return provider;
}

/**
 * The refund id of a payment's (one, full) refund: a UUID derived from the payment id (version 8,
 * RFC 9562 §5.8), so every retry of the refund carries the same idempotency key.
 */
export function refundIdOf(paymentId: string): string {
  const bytes = createHash('sha256').update(`swiftcart.refund:${paymentId.toLowerCase()}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x80;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The order's payment, created PENDING and COMMITTED at once (in its own transaction) unless the
 * order already has one: whatever happens next, a later attempt reuses its id with the provider.
 */
async function openPayment(runtime: ServiceRuntime, data: PaymentRequestedData): Promise<PaymentEntity> {
  const em = runtime.db.fork();
  await em.execute(
    `
    insert into payment (id, order_id, customer_id, status, amount, currency, method)
    values (?, ?, ?, 'PENDING', ?, ?, ?)
    on conflict (order_id) do nothing`,
    [uuidv7(), data.orderId, data.customerId, data.amount.amount, data.amount.currency, data.paymentMethod],
    'run',
  );
  return em.findOneOrFail(Payment, { orderId: data.orderId });
}

/** What the provider said about a PaymentRequested, found out before its inbox transaction. */
type AuthorizationPrepared =
  | { readonly kind: 'decided'; readonly status: PaymentEntity['status'] }
  | { readonly kind: 'asked'; readonly paymentId: string; readonly outcome: AuthorizationOutcome }
  /** The order was cancelled first: nothing charged, or charged (before a crash) and refunded now. */
  | { readonly kind: 'voided'; readonly paymentId: string | null; readonly outcome: AuthorizationOutcome | null; readonly refundId: string | null };

/** Whether payment has seen this order cancelled. */
async function isCancelled(runtime: ServiceRuntime, orderId: string): Promise<boolean> {
  const rows = await runtime.db.fork().execute<{ found: number }[]>('select 1 as found from cancelled_order where order_id = ?', [orderId]);
  return rows.length > 0;
}

/** What the provider said about an OrderCancelled, found out before its inbox transaction. */
type RefundPrepared = { readonly kind: 'nothing' } | { readonly kind: 'refunded'; readonly paymentId: string; readonly refundId: string };

/** Thrown when a payment changed between the provider call and the transaction: the event is prepared again. */
export class PaymentChangedError extends Error {
  override name = 'PaymentChangedError';
}

/**
 * The order-event handlers of one running service. The provider is called in the preparers,
 * outside any transaction (platform/src/inbox.ts); the handlers record the answer in the inbox
 * transaction. A crash between the two is recovered by the redelivery: the preparer asks again
 * with the same payment (or refund) id, and the provider answers as the first time.
 */
export function orderEventHandlers(runtime: ServiceRuntime<PaymentSettings>) {
  const provider = providerOf(runtime);

  const preparePayment: EventPreparer<EventOf<'PaymentRequested'>> = async (event, context): Promise<AuthorizationPrepared> => {
    if (await isCancelled(runtime, event.data.orderId)) return voidPayment(event.data.orderId, context.signal);
    const opened = await openPayment(runtime, event.data);
    if (opened.status !== 'PENDING') return { kind: 'decided', status: opened.status };
    const outcome = await provider.authorize({ paymentId: opened.id, amount: opened.amount, method: opened.method }, context.signal);
    return { kind: 'asked', paymentId: opened.id, outcome };
  };

  /**
   * A PaymentRequested for a cancelled order: no payment yet means nothing was ever charged; a
   * PENDING one may have been authorised before a crash, so the provider is asked again under its
   * id (it answers as the first time) and what it authorised is refunded.
   */
  const voidPayment = async (orderId: string, signal: AbortSignal): Promise<AuthorizationPrepared> => {
    const pending = await runtime.db.fork().findOne(Payment, { orderId });
    if (!pending || pending.status !== 'PENDING') return { kind: 'voided', paymentId: pending?.id ?? null, outcome: null, refundId: null };
    const outcome = await provider.authorize({ paymentId: pending.id, amount: pending.amount, method: pending.method }, signal);
    if (outcome.outcome !== 'AUTHORIZED' || pending.amount === 0) return { kind: 'voided', paymentId: pending.id, outcome, refundId: null };
    const refundId = refundIdOf(pending.id);
    const refund = await provider.refund({ providerRef: outcome.providerRef, amount: pending.amount, refundId }, signal);
    if (refund.outcome === 'FAILED') throw new RefundFailedError(`refund of payment ${pending.id} (cancelled order ${orderId}) failed: ${refund.reason}`);
    return { kind: 'voided', paymentId: pending.id, outcome, refundId };
  };

  const paymentRequested: EventHandler<EventOf<'PaymentRequested'>> = async (em, event, context) => {
    const { orderId } = event.data;
    const prepared = context.prepared as AuthorizationPrepared;
    if (prepared.kind === 'voided') return recordVoided(em, event, prepared, context.log);
    if (prepared.kind === 'decided') {
      // Decided by an earlier PaymentRequested of this order: that decision was published then.
      context.log.warn({ orderId, eventId: event.id, status: prepared.status }, 'PaymentRequested for an order whose payment is already decided; ignored');
      return;
    }
    const payment = await em.findOneOrFail(Payment, { id: prepared.paymentId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (payment.status !== 'PENDING') return;
    if (payment.amount !== event.data.amount.amount || payment.currency !== event.data.amount.currency || payment.method !== event.data.paymentMethod) {
      context.log.warn(
        { orderId, eventId: event.id, paymentId: payment.id },
        'PaymentRequested differs from the pending payment; the pending payment is authorised as recorded',
      );
    }
    const { outcome } = prepared;
    payment.attempts += outcome.attempts;
    const amount = { amount: payment.amount, currency: payment.currency };
    let answer: AnyEventOf<'PaymentAuthorized' | 'PaymentDeclined' | 'PaymentFailed'>;
    if (outcome.outcome === 'AUTHORIZED') {
      payment.status = 'AUTHORIZED';
      payment.providerRef = outcome.providerRef;
      answer = newEvent('PaymentAuthorized', { orderId, paymentId: payment.id, amount, providerRef: outcome.providerRef }, { cause: event });
    } else if (outcome.outcome === 'DECLINED') {
      payment.status = 'DECLINED';
      payment.failureReason = outcome.reason;
      answer = newEvent('PaymentDeclined', { orderId, paymentId: payment.id, amount, reason: clipReason(outcome.reason) }, { cause: event });
    } else {
      payment.status = 'FAILED';
      payment.failureReason = outcome.reason;
      answer = newEvent('PaymentFailed', { orderId, paymentId: payment.id, reason: clipReason(outcome.reason) }, { cause: event });
    }
    await em.flush();
    await enqueueEvents(em, [answer]);
  };

  /** Records what {@link voidPayment} found: the payment stops PENDING, and a refund is recorded and announced. */
  const recordVoided = async (
    em: EntityManager,
    event: EventOf<'PaymentRequested'>,
    prepared: Extract<AuthorizationPrepared, { kind: 'voided' }>,
    log: Logger,
  ) => {
    const { orderId } = event.data;
    if (prepared.paymentId === null || prepared.outcome === null) {
      log.warn({ orderId, eventId: event.id }, 'PaymentRequested for a cancelled order; nothing charged');
      return;
    }
    const payment = await em.findOneOrFail(Payment, { id: prepared.paymentId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (payment.status !== 'PENDING') return;
    const { outcome } = prepared;
    payment.attempts += outcome.attempts;
    if (outcome.outcome !== 'AUTHORIZED') {
      payment.status = outcome.outcome === 'DECLINED' ? 'DECLINED' : 'FAILED';
      payment.failureReason = `order cancelled; the provider said: ${outcome.reason}`;
      await em.flush();
      return;
    }
    payment.providerRef = outcome.providerRef;
    payment.status = 'REFUNDED';
    const amount = { amount: payment.amount, currency: payment.currency };
    if (prepared.refundId !== null) em.create(Refund, { id: prepared.refundId, payment: payment.id, amount: payment.amount });
    await em.flush();
    log.warn({ orderId, eventId: event.id, paymentId: payment.id }, "a cancelled order's payment had been authorised; refunded at once");
    if (prepared.refundId !== null) {
      await enqueueEvents(em, [newEvent('PaymentRefunded', { orderId, paymentId: payment.id, refundId: prepared.refundId, amount }, { cause: event })]);
    }
  };

  const prepareRefund: EventPreparer<EventOf<'OrderCancelled'>> = async (event, context): Promise<RefundPrepared> => {
    const { orderId } = event.data;
    const payment = await runtime.db.fork().findOne(Payment, { orderId });
    // No payment, or one that took no money (PENDING, DECLINED, FAILED) or gave it back already.
    if (!payment || payment.status !== 'AUTHORIZED' || payment.amount === 0) return { kind: 'nothing' };
    if (!payment.providerRef) throw new Error(`payment ${payment.id} is AUTHORIZED without a provider reference`);
    const refundId = refundIdOf(payment.id);
    const outcome = await provider.refund({ providerRef: payment.providerRef, amount: payment.amount, refundId }, context.signal);
    if (outcome.outcome === 'FAILED') {
      throw new RefundFailedError(`refund of payment ${payment.id} (order ${orderId}) failed: ${outcome.reason}`);
    }
    return { kind: 'refunded', paymentId: payment.id, refundId };
  };

  const orderCancelled: EventHandler<EventOf<'OrderCancelled'>> = async (em, event, context) => {
    const { orderId } = event.data;
    const prepared = context.prepared as RefundPrepared;
    // Remembered whatever the payment's state: a PaymentRequested after this one must not charge.
    await em.execute('insert into cancelled_order (order_id) values (?) on conflict do nothing', [orderId], 'run');
    const payment = await em.findOne(Payment, { orderId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!payment || payment.status !== 'AUTHORIZED') return;
    if (payment.amount === 0) {
      context.log.info({ orderId, paymentId: payment.id }, 'cancelled order authorised nothing; nothing to refund');
      return;
    }
    // Authorised after the preparer looked (both events in one batch): refund it on its own turn.
    if (prepared.kind !== 'refunded' || prepared.paymentId !== payment.id) {
      throw new PaymentChangedError(`payment ${payment.id} (order ${orderId}) was authorised after the refund was prepared`);
    }
    em.create(Refund, { id: prepared.refundId, payment: payment.id, amount: payment.amount });
    payment.status = 'REFUNDED';
    await em.flush();
    await enqueueEvents(em, [
      newEvent(
        'PaymentRefunded',
        {
          orderId,
          paymentId: payment.id,
          refundId: prepared.refundId,
          amount: { amount: payment.amount, currency: payment.currency },
        },
        { cause: event },
      ),
    ]);
  };

  return {
    handlers: { PaymentRequested: paymentRequested, OrderCancelled: orderCancelled },
    preparers: { PaymentRequested: preparePayment, OrderCancelled: prepareRefund },
  };
}

/** Payment's one consumer: `order.events.v1`. */
export function orderEventsConsumer(runtime: ServiceRuntime<PaymentSettings>): ConsumerSpec {
  return defineConsumer({ consumer: ORDER_EVENTS_CONSUMER, ...orderEventHandlers(runtime) });
}
