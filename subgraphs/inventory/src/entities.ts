import { defineEntity, p } from '@mikro-orm/core';

/**
 * The stock of one sku. Changes go through hand-written conditional SQL (see stock.ts), never
 * through the unit of work, so the database enforces `0 <= reserved <= on_hand` under any concurrency.
 */
export const Stock = defineEntity({
  name: 'Stock',
  tableName: 'stock',
  properties: {
    sku: p.string().primary(),
    onHand: p.integer(),
    reserved: p.integer(),
    version: p.integer(),
    updatedAt: p.datetime(),
  },
});

/** One audited change of stock on hand: who changed it, by how much, why, and what it left. */
export const StockAdjustment = defineEntity({
  name: 'StockAdjustment',
  tableName: 'stock_adjustment',
  properties: {
    id: p.bigint().primary().autoincrement(),
    sku: p.string(),
    delta: p.integer(),
    reason: p.text(),
    actor: p.string(),
    onHandAfter: p.integer(),
    createdAt: p.datetime(),
  },
});

/** What a reservation can be: held for an order, taken by a confirmed order, or given back. */
export const RESERVATION_STATUSES = ['RESERVED', 'COMMITTED', 'RELEASED'] as const;
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

/** Units of one sku held for one order (the order saga writes these). */
export const Reservation = defineEntity({
  name: 'Reservation',
  tableName: 'reservation',
  properties: {
    id: p.uuid().primary(),
    orderId: p.string(),
    sku: p.string(),
    quantity: p.integer(),
    status: p.string().$type<ReservationStatus>(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});

/**
 * The stock of one sku as the API, Redis and the live channel see it. A sku that has never been
 * stocked is all zero with version 0 and no `updatedAt`.
 */
export interface StockRecord {
  readonly sku: string;
  readonly onHand: number;
  readonly reserved: number;
  readonly available: number;
  readonly version: number;
  readonly updatedAt: string | null;
}

/**
 * A product as this subgraph knows it: its key, plus its stock when `__resolveReference` has
 * already loaded it.
 */
export interface ProductReference {
  readonly sku: string;
  readonly stock?: StockRecord;
}

/** A stock row as PostgreSQL returns it from raw SQL. */
export interface StockRow {
  readonly sku: string;
  readonly on_hand: number;
  readonly reserved: number;
  readonly version: number;
  readonly updated_at: Date | string;
}

/** Converts a row to its API shape; `available` is never below zero. */
export function toStockRecord(row: StockRow): StockRecord {
  const onHand = Number(row.on_hand);
  const reserved = Number(row.reserved);
  return {
    sku: row.sku,
    onHand,
    reserved,
    available: Math.max(0, onHand - reserved),
    version: Number(row.version),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/** The stock of a sku that has never been stocked. */
export function emptyStock(sku: string): StockRecord {
  return { sku, onHand: 0, reserved: 0, available: 0, version: 0, updatedAt: null };
}
