/**
 * The analytics tables (migrations.ts creates them) and the records resolvers hand out. Every row
 * of these tables changes only through the set-based SQL of counting.ts and generations.ts, so the
 * entities only describe the tables; reads are SQL too, through the row mappers below
 * (docs/conventions.md, "Data access").
 */
import { defineEntity, p } from '@mikro-orm/core';
import type { BucketFigures, Granularity } from './buckets.ts';

/** Where a generation of the figures stands; mirrors the `analytics_generation.state` check (ADR 0023). */
export const GENERATION_STATES = ['BUILDING', 'FOLLOWING', 'CURRENT', 'RETIRED'] as const;
export type GenerationState = (typeof GENERATION_STATES)[number];

/** One generation of the figures: the one queries read (CURRENT), or one being rebuilt beside it. */
export const AnalyticsGeneration = defineEntity({
  name: 'AnalyticsGeneration',
  tableName: 'analytics_generation',
  properties: {
    id: p.integer().primary(),
    state: p.string().$type<GenerationState>(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});

/** What OrderPlaced said of an order, for its later events (shared by every generation: it is a fact, not a figure). */
export const AnalyticsOrder = defineEntity({
  name: 'AnalyticsOrder',
  tableName: 'analytics_order',
  properties: {
    orderId: p.uuid().primary(),
    currency: p.string(),
    totalAmount: p.bigint(),
    lines: p.json(),
    placedAt: p.datetime(),
  },
});

/** An event counted into a generation: what makes counting it a second time a no-op. */
export const AnalyticsEvent = defineEntity({
  name: 'AnalyticsEvent',
  tableName: 'analytics_event',
  properties: {
    generation: p.integer().primary(),
    eventId: p.uuid().primary(),
    eventType: p.string(),
    occurredAt: p.datetime(),
    countedAt: p.datetime(),
  },
});

/** The counters of one hour or day in one currency, in one generation. */
export const SalesBucket = defineEntity({
  name: 'SalesBucket',
  tableName: 'sales_bucket',
  properties: {
    generation: p.integer().primary(),
    granularity: p.string().primary().$type<Granularity>(),
    currency: p.string().primary(),
    start: p.datetime().primary(),
    ordersPlaced: p.integer(),
    ordersConfirmed: p.integer(),
    ordersCancelled: p.integer(),
    ordersRejected: p.integer(),
    revenue: p.bigint(),
    refunds: p.bigint(),
    unitsSold: p.bigint(),
    version: p.integer(),
    updatedAt: p.datetime(),
  },
});

/** The units and revenue of one sku in one hour and currency, in one generation. */
export const ProductSales = defineEntity({
  name: 'ProductSales',
  tableName: 'product_sales',
  properties: {
    generation: p.integer().primary(),
    currency: p.string().primary(),
    hour: p.datetime().primary(),
    sku: p.string().primary(),
    unitsSold: p.bigint(),
    revenue: p.bigint(),
  },
});

/** An amount of money, as the GraphQL `Money` type. */
export interface MoneyRecord {
  readonly amount: number;
  readonly currency: string;
}

/** A `SalesBucket` as resolvers and live messages carry it: exactly its GraphQL shape. */
export interface SalesBucketRecord {
  readonly granularity: Granularity;
  /** ISO-8601. */
  readonly start: string;
  readonly currency: string;
  readonly ordersPlaced: number;
  readonly ordersConfirmed: number;
  readonly ordersCancelled: number;
  readonly ordersRejected: number;
  readonly revenue: MoneyRecord;
  readonly refunds: MoneyRecord;
  readonly unitsSold: number;
  /** The number of events counted in the bucket: grows with each change, 0 for an empty bucket. */
  readonly version: number;
}

/** A product named by its sku; the product subgraph resolves the rest. */
export interface ProductReference {
  readonly sku: string;
}

/** A `ProductSales` as resolvers see it. */
export interface ProductSalesRecord {
  readonly product: ProductReference;
  readonly unitsSold: number;
  readonly revenue: MoneyRecord;
}

/** The columns of a `sales_bucket` row that {@link toBucketRecord} reads, for `select` and `returning`. */
export const BUCKET_COLUMNS =
  'granularity, start, currency, orders_placed, orders_confirmed, orders_cancelled, orders_rejected, revenue, refunds, units_sold, version';

/** A `sales_bucket` row as the driver returns it (bigints come as strings). */
export interface BucketRow {
  readonly granularity: Granularity;
  readonly start: Date | string;
  readonly currency: string;
  readonly orders_placed: number;
  readonly orders_confirmed: number;
  readonly orders_cancelled: number;
  readonly orders_rejected: number;
  readonly revenue: string | number;
  readonly refunds: string | number;
  readonly units_sold: string | number;
  readonly version: number;
}

/** A bucket with figures, as its GraphQL record. */
export function bucketRecord(granularity: Granularity, start: Date, currency: string, figures: BucketFigures, version: number): SalesBucketRecord {
  return {
    granularity,
    start: start.toISOString(),
    currency,
    ordersPlaced: figures.ordersPlaced,
    ordersConfirmed: figures.ordersConfirmed,
    ordersCancelled: figures.ordersCancelled,
    ordersRejected: figures.ordersRejected,
    revenue: { amount: figures.revenue, currency },
    refunds: { amount: figures.refunds, currency },
    unitsSold: figures.unitsSold,
    version,
  };
}

/** Converts a `sales_bucket` row to its record. */
export function toBucketRecord(row: BucketRow): SalesBucketRecord {
  return bucketRecord(
    row.granularity,
    new Date(row.start),
    row.currency,
    {
      ordersPlaced: Number(row.orders_placed),
      ordersConfirmed: Number(row.orders_confirmed),
      ordersCancelled: Number(row.orders_cancelled),
      ordersRejected: Number(row.orders_rejected),
      revenue: Number(row.revenue),
      refunds: Number(row.refunds),
      unitsSold: Number(row.units_sold),
    },
    Number(row.version),
  );
}
