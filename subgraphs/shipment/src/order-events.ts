/**
 * Shipment's part in the order saga (ADR 0008): it consumes `order.events.v1` only and answers on
 * `shipment.events.v1`, keyed by the order id.
 *
 * - OrderConfirmed → a PENDING shipment (one per order) → ShipmentCreated;
 * - OrderCancelled → a PENDING shipment becomes CANCELLED → ShipmentCancelled.
 * Every other order event is recorded by the inbox and otherwise ignored. Dispatch and delivery
 * are admin mutations (shipments.ts).
 */
import { LockMode } from '@mikro-orm/core';
import { enqueueEvents, uuidv7, type ConsumerSpec, type EventEnvelope, type EventHandler } from '@swiftcart/platform';
import { Shipment } from './entities.ts';
import { shipmentEvent } from './shipments.ts';

/** The consumer group and inbox name of shipment's order-event consumer. */
export const ORDER_EVENTS_CONSUMER = 'shipment.order-events';
/** The one topic shipment consumes. */
export const ORDER_EVENTS_TOPIC = 'order.events.v1';

/** The data of the order events shipment acts on (schema/events/Order*.v1.json). */
export interface OrderConfirmedData {
  readonly orderId: string;
  readonly customerId: string;
  readonly items: readonly { readonly sku: string; readonly quantity: number }[];
}
export interface OrderCancelledData {
  readonly orderId: string;
  readonly customerId: string;
  readonly reason: string;
  readonly previousStatus: string;
}

/** OrderConfirmed: creates the order's shipment unless it has one (a second confirmation creates nothing). */
const orderConfirmed: EventHandler<EventEnvelope<'OrderConfirmed', OrderConfirmedData>> = async (em, event, context) => {
  const { orderId, customerId } = event.data;
  const created = await em.execute<{ id: string; order_id: string }[]>(`
    insert into shipment (id, order_id, customer_id) values (?, ?, ?)
    on conflict (order_id) do nothing
    returning id, order_id`, [uuidv7(), orderId, customerId]);
  if (created.length === 0) {
    context.log.warn({ orderId, eventId: event.id }, 'OrderConfirmed for an order that already has a shipment; nothing created');
    return;
  }
  await enqueueEvents(em, [shipmentEvent('ShipmentCreated', event, { orderId, shipmentId: created[0].id })]);
};

/** OrderCancelled: calls off a PENDING shipment; one already on its way stays as it is. */
const orderCancelled: EventHandler<EventEnvelope<'OrderCancelled', OrderCancelledData>> = async (em, event, context) => {
  const { orderId } = event.data;
  const shipment = await em.findOne(Shipment, { orderId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!shipment || shipment.status === 'CANCELLED') return;
  if (shipment.status !== 'PENDING') {
    // The order service cancels only before SHIPPED, so this is a dispatch racing a cancellation:
    // the parcel is with the carrier, and the orchestrator learns that from ShipmentDispatched.
    context.log.warn({ orderId, eventId: event.id, shipmentId: shipment.id, status: shipment.status }, 'OrderCancelled for a shipment already dispatched; left as it is');
    return;
  }
  shipment.status = 'CANCELLED';
  await em.flush();
  await enqueueEvents(em, [shipmentEvent('ShipmentCancelled', event, { orderId, shipmentId: shipment.id })]);
};

/** Shipment's one consumer: `order.events.v1`. */
export function orderEventsConsumer(): ConsumerSpec {
  return {
    consumer: ORDER_EVENTS_CONSUMER,
    topics: [ORDER_EVENTS_TOPIC],
    handlers: { OrderConfirmed: orderConfirmed, OrderCancelled: orderCancelled },
  };
}
