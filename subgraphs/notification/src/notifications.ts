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

/** The notifications of each order, oldest first: one query for all of them. */
export async function findByOrders(em: EntityManager, orderIds: readonly string[]): Promise<Map<string, NotificationRecord[]>> {
  const rows = await em.fork().find(Notification, { orderId: { $in: [...orderIds] } }, { orderBy: { id: 'asc' } });
  const byOrder = new Map<string, NotificationRecord[]>(orderIds.map((id) => [id, []]));
  for (const row of rows) byOrder.get(row.orderId)?.push(toRecord(row));
  return byOrder;
}

/** Notifications by id: one query for all of them. */
export async function findNotifications(em: EntityManager, ids: readonly string[]): Promise<Map<string, NotificationRecord>> {
  const rows = await em.fork().find(Notification, { id: { $in: [...ids] } });
  return new Map(rows.map((row) => [row.id, toRecord(row)]));
}
