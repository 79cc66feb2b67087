/**
 * Stock reservations for the order saga (DESIGN.md §6, ADR 0008): inventory reserves ALL lines of
 * an order or NONE, commits the reservation when the order is confirmed and releases it when the
 * order is cancelled.
 *
 * Every function takes the caller's transactional EntityManager: the event handler owns the
 * transaction and writes its inbox row and outbox events in it, so a reservation and the event
 * that announces it commit (or roll back) together. Call them in a READ COMMITTED transaction (the
 * default) and handle one order per transaction.
 *
 * Concurrency, in one place:
 * - Every operation first takes a transaction-scoped advisory lock on the order id, so two
 *   deliveries of the same order's events never interleave (idempotency checks see the other's
 *   committed result).
 * - Stock rows are then locked `FOR NO KEY UPDATE` in sku order before any of them changes. Every
 *   multi-row writer takes its stock locks in that one global order, so concurrent orders never
 *   deadlock; `StockLedger.adjust` locks a single row.
 * - With the rows locked, the figures read are the current ones and cannot move, so the
 *   all-or-none decision is exact; the update still re-checks `on_hand - reserved >= quantity`, and
 *   the table's `0 <= reserved <= on_hand` check is the last line of defence against oversell.
 *
 * The functions return the touched skus' new figures; announce them with
 * `StockLedger.announce()` only after the caller's transaction has committed.
 */
import type { EntityManager, SkuQuantity, StockReservationFailedShortage } from '@swiftcart/platform';
import { toStockRecord, type ReservationStatus, type StockRecord, type StockRow } from './entities.ts';

/** The largest quantity one line (after merging duplicate skus) may ask for: PostgreSQL's integer. */
export const MAX_LINE_QUANTITY = 2_147_483_647;
/** The longest order id accepted. */
const MAX_ORDER_ID_LENGTH = 200;

const STOCK_COLUMNS = 's.sku, s.on_hand, s.reserved, s.version, s.updated_at';

/** One line of an order: units of one sku (as the saga events carry it). */
export type ReservationLine = SkuQuantity;

/** A line that could not be reserved, with what was available when the order was decided (StockReservationFailed's). */
export type Shortage = StockReservationFailedShortage;

/** Every line was reserved (now, or by an earlier call for the same order). */
export interface ReservedAll {
  readonly ok: true;
  /** The reserved lines, one per sku, ordered by sku. */
  readonly items: readonly ReservationLine[];
  /** The new figures of the skus this call changed (empty on a replay); announce after commit. */
  readonly stock: readonly StockRecord[];
  /** True when the order already had reservations: nothing was reserved again. */
  readonly replayed: boolean;
}

/** At least one line was short: nothing was reserved. */
export interface ReservationRefused {
  readonly ok: false;
  /** The short lines only, ordered by sku. */
  readonly shortages: readonly Shortage[];
  /** Always empty: no figure changed. */
  readonly stock: readonly StockRecord[];
  readonly replayed: false;
}

export type ReserveResult = ReservedAll | ReservationRefused;

/** What a commit or release changed. Empty `items` means it was a no-op. */
export interface ReservationChange {
  readonly orderId: string;
  /** The lines that moved to the new status, ordered by sku. */
  readonly items: readonly ReservationLine[];
  /** The new figures of the touched skus; announce after commit. */
  readonly stock: readonly StockRecord[];
}

/** A reservation row as the saga sees it. */
export interface ReservationView extends ReservationLine {
  readonly status: ReservationStatus;
}

/**
 * Reserves every line of `orderId` or none: either each sku's `reserved` grows by its quantity and
 * a RESERVED row per sku is written, or nothing changes and the short lines are reported
 * (a sku never stocked is short with 0 available). Duplicate skus are merged.
 *
 * Idempotent per order: when the order already has reservations (in any status), they are
 * returned with `replayed: true` and nothing is reserved again, whatever `items` says. A refusal
 * leaves no trace, so a repeated call after a refusal decides afresh; the inbox (DESIGN.md §7) is
 * what keeps a redelivered OrderPlaced from being handled twice.
 *
 * Throws (and the caller must roll back) on invalid input or outside a transaction.
 */
export async function reserveAll(em: EntityManager, orderId: string, items: readonly ReservationLine[]): Promise<ReserveResult> {
  requireTransaction(em, 'reserveAll');
  checkOrderId(orderId);
  const lines = mergeLines(items);
  await lockOrder(em, orderId);

  const existing = await em.execute<{ sku: string; quantity: number }[]>('select sku, quantity from reservation where order_id = ? order by sku collate "C"', [
    orderId,
  ]);
  if (existing.length > 0) {
    return { ok: true, items: existing.map((r) => ({ sku: r.sku, quantity: Number(r.quantity) })), stock: [], replayed: true };
  }

  const batch = JSON.stringify(lines);
  // Lock the rows in sku order (the global lock order), then decide on figures that cannot move.
  const locked = await em.execute<{ sku: string; on_hand: number; reserved: number }[]>(
    `
    select s.sku, s.on_hand, s.reserved from stock s
    where s.sku in (select r.sku from jsonb_to_recordset(?::jsonb) as r(sku text, quantity integer))
    order by s.sku collate "C"
    for no key update of s`,
    [batch],
  );
  const available = new Map(locked.map((row) => [row.sku, Math.max(0, Number(row.on_hand) - Number(row.reserved))]));
  const shortages = lines
    .map((line) => ({ sku: line.sku, requested: line.quantity, available: available.get(line.sku) ?? 0 }))
    .filter((line) => line.available < line.requested);
  if (shortages.length > 0) return { ok: false, shortages, stock: [], replayed: false };

  // One statement: take the units and record the reservations. The condition repeats the check;
  // with the rows locked it cannot fail, and if it ever did the throw below rolls everything back.
  const updated = await em.execute<StockRow[]>(
    `
    with r as (
      select sku, quantity from jsonb_to_recordset(?::jsonb) as r(sku text, quantity integer)
    ), updated as (
      update stock s set reserved = s.reserved + r.quantity, version = s.version + 1, updated_at = now()
      from r
      where s.sku = r.sku and s.on_hand - s.reserved >= r.quantity
      returning ${STOCK_COLUMNS}
    ), held as (
      insert into reservation (id, order_id, sku, quantity, status)
      select gen_random_uuid(), ?, r.sku, r.quantity, 'RESERVED' from r join updated u on u.sku = r.sku
    )
    select * from updated order by sku collate "C"`,
    [batch, orderId],
  );
  if (updated.length !== lines.length) {
    throw new Error(`reserveAll(${orderId}): ${updated.length} of ${lines.length} lines reserved on locked rows; rolling back`);
  }
  return { ok: true, items: lines, stock: updated.map(toStockRecord), replayed: false };
}

/**
 * Commits the order's RESERVED reservations: the units leave the warehouse (`on_hand` and
 * `reserved` both drop by the quantity) and the rows become COMMITTED. Idempotent: an order with
 * nothing RESERVED (already committed, released, or never reserved) changes nothing and returns
 * empty `items`.
 */
export function commitReservation(em: EntityManager, orderId: string): Promise<ReservationChange> {
  return settle(em, orderId, 'COMMITTED');
}

/**
 * Releases what the order holds, for a cancelled order: a RESERVED line gives its units back to
 * `available` (`reserved` drops), a COMMITTED line puts its units back on hand (an order can only be
 * cancelled before it ships, so they never left). The rows become RELEASED. Idempotent: a second
 * call, or a call for an order holding nothing, returns empty `items`.
 */
export function releaseReservation(em: EntityManager, orderId: string): Promise<ReservationChange> {
  return settle(em, orderId, 'RELEASED');
}

/** The order's reservations (any status), ordered by sku; empty when it has none. */
export async function findReservations(em: EntityManager, orderId: string): Promise<ReservationView[]> {
  const rows = await em.execute<{ sku: string; quantity: number; status: ReservationStatus }[]>(
    'select sku, quantity, status from reservation where order_id = ? order by sku collate "C"',
    [orderId],
  );
  return rows.map((r) => ({ sku: r.sku, quantity: Number(r.quantity), status: r.status }));
}

async function settle(em: EntityManager, orderId: string, to: 'COMMITTED' | 'RELEASED'): Promise<ReservationChange> {
  requireTransaction(em, to === 'COMMITTED' ? 'commitReservation' : 'releaseReservation');
  checkOrderId(orderId);
  await lockOrder(em, orderId);
  // Lock the stock rows of what is still held, in sku order, before changing any of them.
  // Commit moves RESERVED lines; release moves RESERVED and COMMITTED ones.
  const from = to === 'COMMITTED' ? `('RESERVED')` : `('RESERVED', 'COMMITTED')`;
  const held = await em.execute<{ sku: string }[]>(
    `
    select s.sku from stock s join reservation r on r.sku = s.sku
    where r.order_id = ? and r.status in ${from}
    order by s.sku collate "C"
    for no key update of s`,
    [orderId],
  );
  if (held.length === 0) return { orderId, items: [], stock: [] };

  // RESERVED → COMMITTED: the units leave (on hand and reserved drop).
  // RESERVED → RELEASED: reserved drops. COMMITTED → RELEASED: the units come back on hand.
  const onHand = to === 'COMMITTED' ? 's.on_hand - h.quantity' : `s.on_hand + case when h.was = 'COMMITTED' then h.quantity else 0 end`;
  const reserved = `s.reserved - case when h.was = 'RESERVED' then h.quantity else 0 end`;
  const rows = await em.execute<(StockRow & { quantity: number })[]>(
    `
    with h as (
      select sku, quantity, status as was from reservation
      where order_id = ? and status in ${from}
    ), moved as (
      update reservation r set status = ?, updated_at = now()
      from h where r.order_id = ? and r.sku = h.sku
    ), updated as (
      update stock s set on_hand = ${onHand}, reserved = ${reserved}, version = s.version + 1, updated_at = now()
      from h
      where s.sku = h.sku
      returning ${STOCK_COLUMNS}
    )
    select u.*, h.quantity from updated u join h on h.sku = u.sku order by u.sku collate "C"`,
    [orderId, to, orderId],
  );
  return {
    orderId,
    items: rows.map((r) => ({ sku: r.sku, quantity: Number(r.quantity) })),
    stock: rows.map(toStockRecord),
  };
}

/** Serialises every reservation operation of one order, until the transaction ends. */
async function lockOrder(em: EntityManager, orderId: string): Promise<void> {
  await em.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`inventory.reservation:${orderId}`]);
}

function requireTransaction(em: EntityManager, what: string): void {
  if (!em.isInTransaction()) {
    throw new Error(`${what} must run inside the caller's transaction (em.transactional), not on a bare EntityManager`);
  }
}

function checkOrderId(orderId: string): void {
  if (typeof orderId !== 'string' || orderId.length === 0 || orderId.length > MAX_ORDER_ID_LENGTH) {
    throw new TypeError(`orderId must be a string of 1 to ${MAX_ORDER_ID_LENGTH} characters, got ${JSON.stringify(orderId)}`);
  }
}

/** Validates the lines and merges duplicate skus; the result is ordered by sku. */
export function mergeLines(items: readonly ReservationLine[]): ReservationLine[] {
  if (!Array.isArray(items) || items.length === 0) throw new TypeError('an order needs at least one line to reserve');
  const merged = new Map<string, number>();
  for (const [index, item] of items.entries()) {
    if (typeof item?.sku !== 'string' || item.sku.length === 0) {
      throw new TypeError(`line ${index}: sku must be a non-empty string, got ${JSON.stringify(item?.sku)}`);
    }
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_LINE_QUANTITY) {
      throw new TypeError(`line ${index} (${item.sku}): quantity must be a whole number from 1, got ${JSON.stringify(item.quantity)}`);
    }
    const total = (merged.get(item.sku) ?? 0) + item.quantity;
    if (total > MAX_LINE_QUANTITY) throw new TypeError(`${item.sku}: the order asks for more than ${MAX_LINE_QUANTITY} units`);
    merged.set(item.sku, total);
  }
  return [...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([sku, quantity]) => ({ sku, quantity }));
}
