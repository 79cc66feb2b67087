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
import { defineConsumer, enqueueEvents, newEvent, uuidv7, type ConsumerSpec, type EventHandler, type EventOf } from '@swiftcart/platform';
import { Shipment } from './entities.ts';

/** The consumer group and inbox name of shipment's order-event consumer. */
export const ORDER_EVENTS_CONSUMER = 'shipment.order-events';
/** OrderConfirmed: creates the order's shipment unless it has one (a second confirmation creates nothing). */
const orderConfirmed: EventHandler<EventOf<'OrderConfirmed'>> = async (em, event, context) => {
  const { orderId, customerId } = event.data;
  const created = await em.execute<{ id: string; order_id: string }[]>(
    `
    insert into shipment (id, order_id, customer_id) values (?, ?, ?)
    on conflict (order_id) do nothing
    returning id, order_id`,
    [uuidv7(), orderId, customerId],
  );
  if (created.length === 0) {
    context.log.warn({ orderId, eventId: event.id }, 'OrderConfirmed for an order that already has a shipment; nothing created');
    return;
  }
  await enqueueEvents(em, [newEvent('ShipmentCreated', { orderId, shipmentId: created[0].id }, { cause: event })]);
};

/** OrderCancelled: calls off a PENDING shipment; one already on its way stays as it is. */
const orderCancelled: EventHandler<EventOf<'OrderCancelled'>> = async (em, event, context) => {
  const { orderId } = event.data;
  const shipment = await em.findOne(Shipment, { orderId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!shipment || shipment.status === 'CANCELLED') return;
  if (shipment.status !== 'PENDING') {
    // The order service cancels only before SHIPPED, so this is a dispatch racing a cancellation:
    // the parcel is with the carrier, and the orchestrator learns that from ShipmentDispatched.
    context.log.warn(
      { orderId, eventId: event.id, shipmentId: shipment.id, status: shipment.status },
      'OrderCancelled for a shipment already dispatched; left as it is',
    );
    return;
  }
  shipment.status = 'CANCELLED';
  await em.flush();
  await enqueueEvents(em, [newEvent('ShipmentCancelled', { orderId, shipmentId: shipment.id }, { cause: event })]);
};

/** Shipment's one consumer: `order.events.v1`. */
export function orderEventsConsumer(): ConsumerSpec {
  return defineConsumer({ consumer: ORDER_EVENTS_CONSUMER, handlers: { OrderConfirmed: orderConfirmed, OrderCancelled: orderCancelled } });
}
