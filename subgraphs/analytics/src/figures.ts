/**
 * Reading the figures: always from the CURRENT generation, named inside the same statement as the
 * rows, so a read taken while a rebuild swaps generations sees one generation or the other, whole.
 */
import type { EntityManager } from '@swiftcart/platform';
import { type Granularity, ZERO_FIGURES, bucketStart, bucketStartsIn } from './buckets.ts';
import { BUCKET_COLUMNS, type BucketRow, type ProductSalesRecord, type SalesBucketRecord, bucketRecord, toBucketRecord } from './entities.ts';

/** The CURRENT generation, as a subquery. */
const CURRENT_GENERATION = `(select id from analytics_generation where state = 'CURRENT')`;

/**
 * One bucket for each start of `starts` (ascending, of `granularity`), from the CURRENT generation;
 * a bucket nothing was counted in has zeros and version 0.
 */
async function bucketsAt(em: EntityManager, granularity: Granularity, currency: string, starts: readonly Date[]): Promise<SalesBucketRecord[]> {
  if (starts.length === 0) return [];
  const rows = await em.execute<BucketRow[]>(
    `select ${BUCKET_COLUMNS} from sales_bucket
     where generation = ${CURRENT_GENERATION} and granularity = ? and currency = ? and start >= ? and start <= ?
     order by start`,
    [granularity, currency, starts[0], starts[starts.length - 1]],
  );
  const found = new Map(rows.map((row) => [new Date(row.start).getTime(), toBucketRecord(row)]));
  return starts.map((start) => found.get(start.getTime()) ?? bucketRecord(granularity, start, currency, ZERO_FIGURES, 0));
}

/** The buckets of `granularity` that start in [from, to), oldest first, empty ones included (the caller checks the range's size). */
export function salesSummary(em: EntityManager, granularity: Granularity, from: Date, to: Date, currency: string): Promise<SalesBucketRecord[]> {
  return bucketsAt(em, granularity, currency, bucketStartsIn(granularity, from, to));
}

/** The bucket of `granularity` that `now` falls in. */
export async function currentBucket(em: EntityManager, granularity: Granularity, currency: string, now = new Date()): Promise<SalesBucketRecord> {
  const [bucket] = await bucketsAt(em, granularity, currency, [bucketStart(granularity, now)]);
  return bucket;
}

/**
 * The `first` skus with the most units sold in the hours that start in [from, to), in `currency`,
 * most first, ties by sku (byte order).
 */
export async function topProducts(em: EntityManager, from: Date, to: Date, currency: string, first: number): Promise<ProductSalesRecord[]> {
  const rows = await em.execute<{ sku: string; units_sold: string | number; revenue: string | number }[]>(
    `select sku, sum(units_sold) as units_sold, sum(revenue) as revenue from product_sales
     where generation = ${CURRENT_GENERATION} and currency = ? and hour >= ? and hour < ?
     group by sku
     order by sum(units_sold) desc, sku collate "C"
     limit ?`,
    [currency, from, to, first],
  );
  return rows.map((row) => ({ product: { sku: row.sku }, unitsSold: Number(row.units_sold), revenue: { amount: Number(row.revenue), currency } }));
}
