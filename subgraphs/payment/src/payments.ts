import { ErrorCode, apiError, canRead, type EntityManager, type Viewer } from '@swiftcart/platform';
import { Payment, toRecord, type PaymentRecord } from './entities.ts';

/**
 * The payments of these orders (canonical, lower-case ids), in one SQL query however many ids.
 * Orders without a payment are absent from the map.
 */
export async function findPaymentsByOrder(em: EntityManager, orderIds: readonly string[]): Promise<Map<string, PaymentRecord>> {
  if (orderIds.length === 0) return new Map();
  const rows = await em.fork().find(Payment, { orderId: { $in: [...new Set(orderIds)] } });
  return new Map(rows.map((row) => [row.orderId, toRecord(row)]));
}

/**
 * The ownership rule of a payment: FORBIDDEN unless the viewer is the payment's customer or an
 * admin. A payment is never silently hidden from a foreign viewer, so null always means there is none.
 */
export function visiblePayment(viewer: Viewer, payment: PaymentRecord | null): PaymentRecord | null {
  if (payment === null) return null;
  if (!canRead(viewer, payment.customerId)) {
    throw apiError(ErrorCode.Forbidden, `The payment of order "${payment.orderId}" belongs to another customer`, { orderId: payment.orderId });
  }
  return payment;
}
