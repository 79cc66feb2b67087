/**
 * What the notification service consumes. The order, shipment and payment events each become one
 * `notification` row per channel, written in the event's inbox transaction (ADR 0022): a redelivered
 * event writes nothing new, and nothing is sent here — the sender (sender.ts) sends after commit.
 * The customer events keep the copy of how to reach each customer; OrderPlaced keeps the order's
 * lines and customer for the messages about it.
 */
import {
  type AnyEventOf,
  type ConsumerSpec,
  type EntityManager,
  type EventHandler,
  type EventOf,
  type EventType,
  defineConsumer,
  uuidv7,
} from '@swiftcart/platform';
import type { NotificationChannel, NotificationDetails, NotificationKind } from './entities.ts';
import { subjectOf } from './messages.ts';
import type { NotificationSettings } from './settings.ts';

/** The consumer (and inbox) names. */
export const ORDER_EVENTS_CONSUMER = 'notification.order-events';
export const CUSTOMER_CONSUMER = 'notification.customers';

/** What to write for one event: its kind, the order, the customer when the event names one, the details. */
interface Announcement {
  readonly kind: NotificationKind;
  readonly orderId: string;
  readonly customerId: string | null;
  readonly details: NotificationDetails;
}

/**
 * Writes the event's messages: e-mail always (SKIPPED later when there is nobody to send it to, so
 * that is recorded), SMS only when the customer, as known now, wants SMS and has a phone.
 */
async function announce(
  em: EntityManager,
  event: { readonly id: string; readonly occurredAt: string },
  announcement: Announcement,
  maxAgeMs: number,
): Promise<void> {
  const orderId = announcement.orderId.toLowerCase();
  const owner = await em.execute<{ customer_id: string }[]>('select customer_id from order_summary where order_id = ?', [orderId]);
  const customerId = announcement.customerId ?? owner[0]?.customer_id ?? null;
  const channels: NotificationChannel[] = ['EMAIL'];
  if (customerId !== null) {
    const sms = await em.execute<{ ok: boolean }[]>('select sms_enabled and phone is not null as ok from customer_contact where customer_id = ?', [customerId]);
    if (sms[0]?.ok) channels.push('SMS');
  }
  // An event older than maxAgeMs is news to nobody: a new deployment (or a reset database) reads
  // the topics from their beginning, and must not mail a week of orders again.
  await em.execute(
    `
    insert into notification (id, event_id, channel, kind, order_id, customer_id, details, subject, status, status_reason)
    select (c->>'id')::uuid, ?, c->>'channel', ?, ?, ?, ?::jsonb, ?,
      case when stale then 'SKIPPED' else 'PENDING' end,
      case when stale then 'the event is older than NOTIFICATION_MAX_EVENT_AGE_MS: the customer is not told so late' end
    from jsonb_array_elements(?::jsonb) as c,
      lateral (select ?::timestamptz < now() - (? * interval '1 millisecond') as stale) as age
    on conflict (event_id, channel) do nothing`,
    [
      event.id,
      announcement.kind,
      orderId,
      customerId,
      JSON.stringify(announcement.details),
      subjectOf(announcement.kind, orderId),
      JSON.stringify(channels.map((channel) => ({ id: uuidv7(), channel }))),
      event.occurredAt,
      maxAgeMs,
    ],
  );
}

/** OrderPlaced: keeps the order's lines and customer (first one wins; a replay changes nothing), then announces it. */
const orderPlaced =
  (maxAgeMs: number): EventHandler<EventOf<'OrderPlaced'>> =>
  async (em, event) => {
    const { orderId, customerId, items, total } = event.data;
    await em.execute(
      `
    insert into order_summary (order_id, customer_id, currency, total_amount, items, placed_at)
    values (?, ?, ?, ?, ?::jsonb, ?)
    on conflict (order_id) do nothing`,
      [orderId.toLowerCase(), customerId, total.currency, total.amount, JSON.stringify(items), event.occurredAt],
    );
    await announce(em, event, { kind: 'ORDER_PLACED', orderId, customerId, details: {} }, maxAgeMs);
  };

/**
 * CustomerRegistered / CustomerUpdated: replaces the copy of how to reach the customer when the
 * event's version is newer than the copy's, so a stale or replayed event changes nothing.
 */
const customerChanged: EventHandler<AnyEventOf<'CustomerRegistered' | 'CustomerUpdated'>> = async (em, event) => {
  const { customerId, email, name, phone, notificationPreferences, version } = event.data;
  await em.execute(
    `
    insert into customer_contact (customer_id, email, name, phone, email_enabled, sms_enabled, version, updated_at)
    values (?, ?, ?, ?, ?, ?, ?, now())
    on conflict (customer_id) do update set
      email = excluded.email, name = excluded.name, phone = excluded.phone,
      email_enabled = excluded.email_enabled, sms_enabled = excluded.sms_enabled,
      version = excluded.version, updated_at = now()
    where customer_contact.version < excluded.version`,
    [customerId, email, name, phone, notificationPreferences.email, notificationPreferences.sms, version],
  );
};

/** The notification service's consumers: one for the customers' contacts, one for everything it tells them about. */
export function notificationConsumers(settings: Pick<NotificationSettings, 'maxEventAgeMs'>): readonly ConsumerSpec[] {
  /** A handler that announces what `toAnnouncement` makes of its event. */
  const announcing =
    <T extends EventType>(toAnnouncement: (event: EventOf<T>) => Announcement): EventHandler<EventOf<T>> =>
    (em, event) =>
      announce(em, event, toAnnouncement(event), settings.maxEventAgeMs);
  return [
    defineConsumer({ consumer: CUSTOMER_CONSUMER, handlers: { CustomerRegistered: customerChanged, CustomerUpdated: customerChanged } }),
    defineConsumer({
      consumer: ORDER_EVENTS_CONSUMER,
      handlers: {
        OrderPlaced: orderPlaced(settings.maxEventAgeMs),
        OrderConfirmed: announcing<'OrderConfirmed'>((e) => ({ kind: 'ORDER_CONFIRMED', orderId: e.data.orderId, customerId: e.data.customerId, details: {} })),
        OrderCancelled: announcing<'OrderCancelled'>((e) => ({
          kind: 'ORDER_CANCELLED',
          orderId: e.data.orderId,
          customerId: e.data.customerId,
          details: { reason: e.data.reason },
        })),
        OrderRejected: announcing<'OrderRejected'>((e) => ({
          kind: 'ORDER_REJECTED',
          orderId: e.data.orderId,
          customerId: e.data.customerId,
          details: { reason: e.data.reason },
        })),
        ShipmentDispatched: announcing<'ShipmentDispatched'>((e) => ({
          kind: 'ORDER_SHIPPED',
          orderId: e.data.orderId,
          customerId: null,
          details: { carrier: e.data.carrier, trackingNumber: e.data.trackingNumber },
        })),
        ShipmentDelivered: announcing<'ShipmentDelivered'>((e) => ({ kind: 'ORDER_DELIVERED', orderId: e.data.orderId, customerId: null, details: {} })),
        PaymentRefunded: announcing<'PaymentRefunded'>((e) => ({
          kind: 'REFUND_ISSUED',
          orderId: e.data.orderId,
          customerId: null,
          details: { amount: e.data.amount },
        })),
      },
    }),
  ];
}
