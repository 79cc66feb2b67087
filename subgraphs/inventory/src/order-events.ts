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
  defineConsumer,
  enqueueEvents,
  newEvent,
  type ConsumerSpec,
  type EntityManager,
  type EventHandler,
  type EventOf,
  type HandlerContext,
} from '@swiftcart/platform';
import type { StockRecord } from './entities.ts';
import { commitReservation, releaseReservation, reserveAll } from './reservations.ts';
import { recordStockChanges, type StockLedger } from './stock.ts';

/** The consumer group and inbox name of inventory's order-event consumer. */
export const ORDER_EVENTS_CONSUMER = 'inventory.order-events';
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
  const orderPlaced: EventHandler<EventOf<'OrderPlaced'>> = async (em, event, context) => {
    const { orderId, items } = event.data;
    const result = await reserveAll(
      em,
      orderId,
      items.map(({ sku, quantity }) => ({ sku, quantity })),
    );
    if (result.ok && result.replayed) {
      // Another OrderPlaced (a different event id) for an order that already holds reservations:
      // they were announced when made, and may since have been committed or released, so
      // repeating StockReserved could only mislead the orchestrator.
      context.log.warn({ orderId, eventId: event.id }, 'OrderPlaced for an order that already has reservations; nothing reserved again');
      return;
    }
    await enqueueEvents(em, [
      result.ok
        ? newEvent('StockReserved', { orderId, items: result.items }, { cause: event })
        : newEvent('StockReservationFailed', { orderId, shortages: result.shortages }, { cause: event }),
    ]);
    await announceChanges(em, ledger, context, result.stock);
  };

  const settle =
    (
      type: 'StockCommitted' | 'StockReleased',
      change: (em: EntityManager, orderId: string) => ReturnType<typeof commitReservation>,
    ): EventHandler<EventOf<'OrderConfirmed'> | EventOf<'OrderCancelled'>> =>
    async (em, event, context) => {
      const { orderId } = event.data;
      const changed = await change(em, orderId);
      // Nothing held (never reserved, already settled): nothing happened, so nothing is announced.
      if (changed.items.length === 0) return;
      await enqueueEvents(em, [newEvent(type, { orderId, items: changed.items }, { cause: event })]);
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
  return defineConsumer({ consumer: ORDER_EVENTS_CONSUMER, handlers: orderEventHandlers(ledger) });
}
