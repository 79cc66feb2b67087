/** Reading notifications: one customer's page, and the messages of some orders. */
import { type EntityManager, badInput, decodeCursor, isUuid, pageSize, toConnection } from '@swiftcart/platform';
import { Notification, type NotificationRecord, toRecord } from './entities.ts';

/**
 * One page of a customer's notifications, newest first. Ids are UUID v7, so their order is the
 * order they were made in, and the cursor is the last id.
 */
export async function listCustomerNotifications(em: EntityManager, customerId: string, args: { first?: number | null; after?: string | null }) {
  const size = pageSize(args.first);
  const after = args.after == null ? null : decodeCursor(args.after);
  if (after !== null && !isUuid(after)) throw badInput('"after" is not a valid cursor', 'after');
  const where = after === null ? { customerId } : { customerId, id: { $lt: after } };
  const [rows, totalCount] = await Promise.all([
    em.fork().find(Notification, where, { orderBy: { id: 'desc' }, limit: size + 1 }),
    em.fork().count(Notification, { customerId }),
  ]);
  return toConnection(rows.map(toRecord), size, (n) => n.id, totalCount);
}

/** An order's notifications and whose order it is (null while the service knows neither). */
export interface OrderNotifications {
  readonly owner: string | null;
  readonly notifications: readonly NotificationRecord[];
}

/**
 * The notifications of each order, oldest first, with the order's customer: from its OrderPlaced,
 * else from a message that names it. Two queries for all of them.
 */
export async function findByOrders(em: EntityManager, orderIds: readonly string[]): Promise<Map<string, OrderNotifications>> {
  const [rows, owners] = await Promise.all([
    em.fork().find(Notification, { orderId: { $in: [...orderIds] } }, { orderBy: { id: 'asc' } }),
    em.fork().execute<{ order_id: string; customer_id: string }[]>('select order_id, customer_id from order_summary where order_id in (?)', [[...orderIds]]),
  ]);
  const ownerOf = new Map(owners.map((o) => [o.order_id, o.customer_id]));
  const byOrder = new Map<string, NotificationRecord[]>(orderIds.map((id) => [id, []]));
  for (const row of rows) byOrder.get(row.orderId)?.push(toRecord(row));
  return new Map(
    [...byOrder].map(([id, notifications]) => [
      id,
      { owner: ownerOf.get(id) ?? notifications.find((n) => n.customerId !== null)?.customerId ?? null, notifications },
    ]),
  );
}

/** Notifications by id: one query for all of them. */
export async function findNotifications(em: EntityManager, ids: readonly string[]): Promise<Map<string, NotificationRecord>> {
  const rows = await em.fork().find(Notification, { id: { $in: [...ids] } });
  return new Map(rows.map((row) => [row.id, toRecord(row)]));
}
