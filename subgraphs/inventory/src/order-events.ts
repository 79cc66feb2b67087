/**
 * Inventory's part in the order saga (ADR 0008): it consumes `order.events.v1` only and answers on
 * `inventory.events.v1`, keyed by the order id.
 *
 * - OrderPlaced    → reserve every line or none → StockReserved, or StockReservationFailed;
 * - OrderConfirmed → commit the reservation     → StockCommitted (only when something was held);
 * - OrderCancelled → release the reservation    → StockReleased (only when something was held).
 * Every other order event is recorded by the inbox and otherwise ignored.
 *
 * Each handler runs in the inbox transaction: the reservation change, the inbox row and the
 * outbox event commit together. The new stock figures go to Redis only after that commit.
 */
import {
  createEvent, enqueueEvents,
  type AnyEventEnvelope, type ConsumerSpec, type EntityManager, type EventEnvelope, type EventHandler, type HandlerContext,
} from '@swiftcart/platform';
import type { StockRecord } from './entities.ts';
import { commitReservation, releaseReservation, reserveAll, type ReservationLine, type Shortage } from './reservations.ts';
import { recordStockChanges, type StockLedger } from './stock.ts';

/** The consumer group and inbox name of inventory's order-event consumer. */
export const ORDER_EVENTS_CONSUMER = 'inventory.order-events';
/** The one topic inventory consumes. */
export const ORDER_EVENTS_TOPIC = 'order.events.v1';

interface Money { readonly amount: number; readonly currency: string }

/** The data of the order events inventory acts on (schema/events/Order*.v1.json). */
export interface OrderPlacedData {
  readonly orderId: string;
  readonly customerId: string;
  readonly items: readonly { readonly sku: string; readonly quantity: number; readonly unitPrice: Money }[];
  readonly total: Money;
  readonly deadlineAt: string;
}
export interface OrderConfirmedData {
  readonly orderId: string;
  readonly customerId: string;
  readonly items: readonly ReservationLine[];
}
export interface OrderCancelledData {
  readonly orderId: string;
  readonly customerId: string;
  readonly reason: string;
  readonly previousStatus: string;
}

/** The events inventory publishes, by type (schema/events/Stock*.v1.json). */
export interface InventoryEventData {
  readonly StockReserved: { readonly orderId: string; readonly items: readonly ReservationLine[] };
  readonly StockReservationFailed: { readonly orderId: string; readonly shortages: readonly Shortage[] };
  readonly StockCommitted: { readonly orderId: string; readonly items: readonly ReservationLine[] };
  readonly StockReleased: { readonly orderId: string; readonly items: readonly ReservationLine[] };
}

/** An inventory saga event answering `cause`, about the order `orderId`. */
export function inventoryEvent<T extends keyof InventoryEventData>(
  type: T, cause: Pick<AnyEventEnvelope, 'id'>, data: InventoryEventData[T] & { readonly orderId: string },
): EventEnvelope<T, InventoryEventData[T]> {
  return createEvent({
    type,
    source: 'inventory',
    aggregateType: 'Order',
    aggregateId: data.orderId,
    correlationId: data.orderId,
    causationId: cause.id,
    data,
  });
}

/** Records the new figures in the inbox transaction and announces them once it has committed (never before). */
async function announceChanges(em: EntityManager, ledger: StockLedger, context: HandlerContext, stock: readonly StockRecord[]): Promise<void> {
  if (stock.length === 0) return;
  await recordStockChanges(em, stock);
  context.afterCommit(async () => {
    for (const record of stock) await ledger.announce(record);
  });
}

/** The order-event handlers, announcing new figures through `ledger`. */
export function orderEventHandlers(ledger: StockLedger) {
  const orderPlaced: EventHandler<EventEnvelope<'OrderPlaced', OrderPlacedData>> = async (em, event, context) => {
    const { orderId, items } = event.data;
    const result = await reserveAll(em, orderId, items.map(({ sku, quantity }) => ({ sku, quantity })));
    if (result.ok && result.replayed) {
      // Another OrderPlaced (a different event id) for an order that already holds reservations:
      // they were announced when made, and may since have been committed or released, so
      // repeating StockReserved could only mislead the orchestrator.
      context.log.warn({ orderId, eventId: event.id }, 'OrderPlaced for an order that already has reservations; nothing reserved again');
      return;
    }
    await enqueueEvents(em, [result.ok
      ? inventoryEvent('StockReserved', event, { orderId, items: result.items })
      : inventoryEvent('StockReservationFailed', event, { orderId, shortages: result.shortages })]);
    await announceChanges(em, ledger, context, result.stock);
  };

  const settle = (
    type: 'StockCommitted' | 'StockReleased',
    change: (em: EntityManager, orderId: string) => ReturnType<typeof commitReservation>,
  ): EventHandler<EventEnvelope<string, OrderConfirmedData | OrderCancelledData>> => async (em, event, context) => {
    const { orderId } = event.data;
    const changed = await change(em, orderId);
    // Nothing held (never reserved, already settled): nothing happened, so nothing is announced.
    if (changed.items.length === 0) return;
    await enqueueEvents(em, [inventoryEvent(type, event, { orderId, items: changed.items })]);
    await announceChanges(em, ledger, context, changed.stock);
  };

  return {
    OrderPlaced: orderPlaced,
    OrderConfirmed: settle('StockCommitted', commitReservation),
    OrderCancelled: settle('StockReleased', releaseReservation),
  };
}

/** Inventory's one consumer: `order.events.v1`. */
export function orderEventsConsumer(ledger: StockLedger): ConsumerSpec {
  return { consumer: ORDER_EVENTS_CONSUMER, topics: [ORDER_EVENTS_TOPIC], handlers: orderEventHandlers(ledger) };
}
