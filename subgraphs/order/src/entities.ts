import { defineEntity, p } from '@mikro-orm/core';
import type { Money, PostalAddress } from '@swiftcart/platform';

/** Where an order is in its saga; mirrors the GraphQL enum and the `orders.status` check. */
export const ORDER_STATUSES = ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** Where an order is shipped to: the `orders.shipping_address` JSON document and the API's ShippingAddress. */
export type ShippingAddressRecord = PostalAddress;

/** A customer as the order subgraph knows them: by id (the profile is the customer subgraph's). */
export interface CustomerReference {
  readonly id: string;
}

/**
 * An order. Money is integer minor units beside its currency; `version` is the optimistic lock the
 * saga's handlers rely on. `(customerId, idempotencyKey)` is unique, and `requestHash` tells a retry
 * of the same placement from a different request under the same key.
 */
export const Order = defineEntity({
  name: 'Order',
  tableName: 'orders',
  properties: {
    id: p.uuid().primary(),
    customerId: p.text(),
    status: p.string().$type<OrderStatus>(),
    currency: p.string(),
    totalAmount: p.integer(),
    idempotencyKey: p.text(),
    requestHash: p.text(),
    deadlineAt: p.datetime(),
    shippingAddress: p.json<ShippingAddressRecord>(),
    /** The payment method token the saga hands to payment (PaymentRequested). */
    paymentMethod: p.text(),
    version: p.integer().version(),
    createdAt: p.datetime(3).onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/** An order row as MikroORM hands it out. */
export type OrderEntity = InstanceType<typeof Order.class>;

/** One line of an order, priced from the local catalogue replica when the order was placed. */
export const OrderItem = defineEntity({
  name: 'OrderItem',
  tableName: 'order_item',
  properties: {
    order: p.manyToOne(Order).mapToPk().primary(),
    sku: p.text().primary(),
    quantity: p.integer(),
    unitPriceAmount: p.integer(),
  },
});

/** An order line row as MikroORM hands it out. */
export type OrderItemEntity = InstanceType<typeof OrderItem.class>;

/** One status change of an order, with the event (if any) that caused it. */
export const OrderTransition = defineEntity({
  name: 'OrderTransition',
  tableName: 'order_transition',
  properties: {
    id: p.bigint('string').primary().autoincrement(),
    order: p.manyToOne(Order).mapToPk(),
    status: p.string().$type<OrderStatus>(),
    at: p.datetime().onCreate(() => new Date()),
    eventType: p.text().nullable(),
    eventId: p.uuid().nullable(),
    reason: p.text().nullable(),
  },
});

/** A timeline row as MikroORM hands it out. */
export type OrderTransitionEntity = InstanceType<typeof OrderTransition.class>;

/** The order service's replica of the catalogue's prices (platform/src/catalogue.ts): orders are priced from it, never from the client. */
export { CataloguePrice, type CataloguePriceEntity } from '@swiftcart/platform';

/** Money as the API and the events show it: integer minor units and an ISO-4217 code. */
export type { Money };

/** An order line as resolvers see it. */
export interface OrderItemRecord {
  readonly sku: string;
  readonly quantity: number;
  readonly unitPrice: Money;
}

/** A timeline entry as resolvers see it. */
export interface OrderTransitionRecord {
  readonly status: OrderStatus;
  readonly at: string;
  readonly eventType: string | null;
  readonly eventId: string | null;
  readonly reason: string | null;
}

/** An order with its lines and timeline (oldest first), as resolvers see it. */
export interface OrderRecord {
  readonly id: string;
  readonly customerId: string;
  readonly status: OrderStatus;
  readonly currency: string;
  readonly totalAmount: number;
  readonly items: readonly OrderItemRecord[];
  readonly timeline: readonly OrderTransitionRecord[];
  readonly shippingAddress: ShippingAddressRecord;
  readonly paymentMethod: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Grows with every committed change (status or timeline): the row's optimistic-lock version. */
  readonly version: number;
}

/** Builds the API shape of an order from its rows; `items` and `timeline` must belong to it. */
export function toRecord(row: OrderEntity, items: readonly OrderItemEntity[], timeline: readonly OrderTransitionEntity[]): OrderRecord {
  return {
    id: row.id,
    customerId: row.customerId,
    status: row.status,
    currency: row.currency,
    totalAmount: row.totalAmount,
    items: items.map((item) => ({ sku: item.sku, quantity: item.quantity, unitPrice: { amount: item.unitPriceAmount, currency: row.currency } })),
    timeline: timeline.map((t) => ({
      status: t.status,
      at: t.at.toISOString(),
      eventType: t.eventType ?? null,
      eventId: t.eventId ?? null,
      reason: t.reason ?? null,
    })),
    shippingAddress: { ...row.shippingAddress, line2: row.shippingAddress.line2 ?? null },
    paymentMethod: row.paymentMethod,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    version: row.version,
  };
}
