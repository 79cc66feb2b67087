import type { FilterQuery } from '@mikro-orm/core';
import { ErrorCode, apiError, badInput, canRead, decodeCursor, isUuid, pageSize, toConnection, type EntityManager, type Viewer } from '@swiftcart/platform';
import {
  Order,
  OrderItem,
  OrderTransition,
  toRecord,
  type OrderEntity,
  type OrderItemEntity,
  type OrderRecord,
  type OrderTransitionEntity,
} from './entities.ts';

/** Returns the canonical (lower-case) form of an order id; BAD_USER_INPUT unless it is a UUID. */
export function checkOrderId(id: string, field = 'id'): string {
  if (!isUuid(id)) throw badInput(`"${field}" must be an order id (a UUID), got "${id}"`, field);
  return id.toLowerCase();
}

/**
 * The one ownership rule of `order(id)` and `Order.__resolveReference`: the order as it is when the
 * viewer may read it, null when it does not exist, FORBIDDEN when it is another customer's.
 */
export function visibleOrder(viewer: Viewer, order: OrderRecord | null): OrderRecord | null {
  if (order === null) return null;
  if (!canRead(viewer, order.customerId)) {
    throw apiError(ErrorCode.Forbidden, `Order "${order.id}" belongs to another customer`, { id: order.id });
  }
  return order;
}

/** Attaches lines and timeline to order rows: one query for all lines, one for all transitions. */
async function hydrate(em: EntityManager, rows: readonly OrderEntity[]): Promise<OrderRecord[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((row) => row.id);
  const [items, transitions] = await Promise.all([
    em.fork().find(OrderItem, { order: { $in: ids } }, { orderBy: { order: 'asc', sku: 'asc' } }),
    em.fork().find(OrderTransition, { order: { $in: ids } }, { orderBy: [{ at: 'asc' }, { id: 'asc' }] }),
  ]);
  const itemsOf = groupBy<OrderItemEntity>(items, (item) => item.order);
  const timelineOf = groupBy<OrderTransitionEntity>(transitions, (t) => t.order);
  return rows.map((row) => toRecord(row, itemsOf.get(row.id) ?? [], timelineOf.get(row.id) ?? []));
}

function groupBy<T>(rows: readonly T[], keyOf: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return groups;
}

/**
 * The orders with these ids (canonical, lower-case), with lines and timelines: three SQL queries
 * however many ids. Absent ids are absent from the map.
 */
export async function findOrders(em: EntityManager, ids: readonly string[]): Promise<Map<string, OrderRecord>> {
  if (ids.length === 0) return new Map();
  const rows = await em.fork().find(Order, { id: { $in: [...new Set(ids)] } });
  const records = await hydrate(em, rows);
  return new Map(records.map((record) => [record.id, record]));
}

/** The sort key of `myOrders`, newest first with the id breaking ties, as a cursor payload. */
function cursorKey(order: OrderRecord): string {
  return `${order.createdAt}|${order.id}`;
}

function parseCursor(after: string): { createdAt: Date; id: string } {
  const key = decodeCursor(after);
  const separator = key.indexOf('|');
  const createdAt = new Date(key.slice(0, separator));
  const id = key.slice(separator + 1);
  if (separator < 0 || Number.isNaN(createdAt.getTime()) || !isUuid(id)) throw badInput('"after" is not a valid cursor', 'after');
  return { createdAt, id: id.toLowerCase() };
}

/**
 * One page of a customer's orders, newest first (created_at desc, id asc: the order of the
 * `orders_customer_created_idx` index), with lines and timelines: four SQL queries per page whatever its size.
 */
export async function listCustomerOrders(em: EntityManager, customerId: string, args: { first?: number | null; after?: string | null }) {
  const size = pageSize(args.first);
  const after = args.after == null ? null : parseCursor(args.after);
  const where: FilterQuery<OrderEntity> =
    after === null ? { customerId } : { customerId, $or: [{ createdAt: { $lt: after.createdAt } }, { createdAt: after.createdAt, id: { $gt: after.id } }] };
  const [rows, totalCount] = await Promise.all([
    em.fork().find(Order, where, { orderBy: [{ createdAt: 'desc' }, { id: 'asc' }], limit: size + 1 }),
    em.fork().count(Order, { customerId }),
  ]);
  // The extra row only tells toConnection that a next page exists; hydrating it costs no extra query.
  return toConnection(await hydrate(em, rows), size, cursorKey, totalCount);
}
