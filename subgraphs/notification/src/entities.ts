import { defineEntity, p } from '@mikro-orm/core';

/** How a message travels; mirrors the GraphQL enum and the `notification.channel` check. */
export const NOTIFICATION_CHANNELS = ['EMAIL', 'SMS'] as const;
export type NotificationChannel = (typeof NOTIFICATION_CHANNELS)[number];

/** What a message tells; mirrors the GraphQL enum and the `notification.kind` check. */
export const NOTIFICATION_KINDS = [
  'ORDER_PLACED',
  'ORDER_CONFIRMED',
  'ORDER_CANCELLED',
  'ORDER_REJECTED',
  'ORDER_SHIPPED',
  'ORDER_DELIVERED',
  'REFUND_ISSUED',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** Where a message is (ADR 0022); mirrors the GraphQL enum and the `notification.status` check. */
export const NOTIFICATION_STATUSES = ['PENDING', 'SENDING', 'SENT', 'FAILED', 'SKIPPED', 'UNCERTAIN'] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

/** What a kind of message needs beyond the order: the reason, the parcel, the refunded amount. */
export interface NotificationDetails {
  readonly reason?: string;
  readonly carrier?: string;
  readonly trackingNumber?: string;
  readonly amount?: { readonly amount: number; readonly currency: string };
}

/** One message about one event on one channel. The sender owns status, attempts and the lease. */
export const Notification = defineEntity({
  name: 'Notification',
  tableName: 'notification',
  properties: {
    id: p.uuid().primary(),
    eventId: p.uuid(),
    channel: p.string().$type<NotificationChannel>(),
    kind: p.string().$type<NotificationKind>(),
    orderId: p.uuid(),
    customerId: p.text().nullable(),
    details: p.json<NotificationDetails>(),
    subject: p.text(),
    recipient: p.text().nullable(),
    status: p.string().$type<NotificationStatus>(),
    statusReason: p.text().nullable(),
    attempts: p.integer(),
    nextAttemptAt: p.datetime(),
    leaseUntil: p.datetime().nullable(),
    sentAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/** A notification row as MikroORM hands it out. */
export type NotificationEntity = InstanceType<typeof Notification.class>;

/** A notification as resolvers see it. */
export interface NotificationRecord {
  readonly id: string;
  readonly kind: NotificationKind;
  readonly channel: NotificationChannel;
  readonly orderId: string;
  readonly customerId: string | null;
  readonly recipient: string | null;
  readonly subject: string;
  readonly status: NotificationStatus;
  readonly statusReason: string | null;
  readonly attempts: number;
  readonly sentAt: string | null;
  readonly createdAt: string;
}

/** An order named by its id, for the order subgraph to resolve. */
export interface OrderReference {
  readonly id: string;
}

/** Converts a row to its API shape. */
export function toRecord(row: NotificationEntity): NotificationRecord {
  return {
    id: row.id,
    kind: row.kind,
    channel: row.channel,
    orderId: row.orderId,
    customerId: row.customerId ?? null,
    recipient: row.recipient ?? null,
    subject: row.subject,
    status: row.status,
    statusReason: row.statusReason ?? null,
    attempts: row.attempts,
    sentAt: row.sentAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
  };
}
