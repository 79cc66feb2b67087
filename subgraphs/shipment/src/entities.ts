import { defineEntity, p } from '@mikro-orm/core';

/** Where a shipment is; mirrors the GraphQL enum and the `shipment.status` check. */
export const SHIPMENT_STATUSES = ['PENDING', 'DISPATCHED', 'DELIVERED', 'CANCELLED'] as const;
export type ShipmentStatus = (typeof SHIPMENT_STATUSES)[number];

/**
 * The shipment of one order (at most one per order). `customerId` is copied from the order so the
 * shipment service can authorise reads on its own; `version` is the optimistic lock.
 */
export const Shipment = defineEntity({
  name: 'Shipment',
  tableName: 'shipment',
  properties: {
    id: p.uuid().primary(),
    orderId: p.uuid().unique(),
    customerId: p.text(),
    status: p.string().$type<ShipmentStatus>(),
    carrier: p.text().nullable(),
    trackingNumber: p.text().nullable(),
    dispatchedAt: p.datetime().nullable(),
    deliveredAt: p.datetime().nullable(),
    version: p.integer().version(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/** A shipment row as MikroORM hands it out. */
export type ShipmentEntity = InstanceType<typeof Shipment.class>;

/** A shipment as resolvers see it: the GraphQL scalars plus the order and customer it belongs to. */
export interface ShipmentRecord {
  readonly id: string;
  readonly orderId: string;
  readonly customerId: string;
  readonly status: ShipmentStatus;
  readonly carrier: string | null;
  readonly trackingNumber: string | null;
  readonly dispatchedAt: string | null;
  readonly deliveredAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Converts a row to its API shape. */
export function toRecord(row: ShipmentEntity): ShipmentRecord {
  return {
    id: row.id,
    orderId: row.orderId,
    customerId: row.customerId,
    status: row.status,
    carrier: row.carrier ?? null,
    trackingNumber: row.trackingNumber ?? null,
    dispatchedAt: row.dispatchedAt?.toISOString() ?? null,
    deliveredAt: row.deliveredAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
