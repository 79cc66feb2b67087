import { defineEntity, p } from '@mikro-orm/core';

/** Where a payment stands with the provider; mirrors the GraphQL enum and the `payment.status` check. */
export const PAYMENT_STATUSES = ['PENDING', 'AUTHORIZED', 'DECLINED', 'FAILED', 'REFUNDED'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/**
 * The payment of one order (at most one per order). `customerId` is copied from the order so the
 * payment service can authorise reads without asking the order service; `version` is the optimistic lock.
 */
export const Payment = defineEntity({
  name: 'Payment',
  tableName: 'payment',
  properties: {
    id: p.uuid().primary(),
    orderId: p.uuid().unique(),
    customerId: p.text(),
    status: p.string().$type<PaymentStatus>(),
    amount: p.integer(),
    currency: p.string(),
    method: p.text(),
    attempts: p.integer().default(0),
    failureReason: p.text().nullable(),
    providerRef: p.text().nullable(),
    version: p.integer().version(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/** A payment row as MikroORM hands it out. */
export type PaymentEntity = InstanceType<typeof Payment.class>;

/** Money given back on a payment, in the payment's currency. */
export const Refund = defineEntity({
  name: 'Refund',
  tableName: 'refund',
  properties: {
    id: p.uuid().primary(),
    payment: p.manyToOne(Payment).mapToPk(),
    amount: p.integer(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

/** A refund row as MikroORM hands it out. */
export type RefundEntity = InstanceType<typeof Refund.class>;

/** A payment as resolvers see it: the GraphQL shape plus the customer who owns it. */
export interface PaymentRecord {
  readonly id: string;
  readonly orderId: string;
  readonly customerId: string;
  readonly status: PaymentStatus;
  readonly amount: { readonly amount: number; readonly currency: string };
  readonly method: string;
  readonly attempts: number;
  readonly failureReason: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Converts a row to its API shape; the provider's reference stays inside the service. */
export function toRecord(row: PaymentEntity): PaymentRecord {
  return {
    id: row.id,
    orderId: row.orderId,
    customerId: row.customerId,
    status: row.status,
    amount: { amount: row.amount, currency: row.currency },
    method: row.method,
    attempts: row.attempts,
    failureReason: row.failureReason ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
