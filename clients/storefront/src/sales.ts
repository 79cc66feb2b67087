/**
 * The sales dashboard's data, kept apart from the page so the unit tests run it in Node: the last
 * 24 hours as one bucket per hour (an hour nothing happened in is zeros), a live bucket merged in
 * by its start (never going back to an older version), the window moving on as hours pass, and
 * what the chart and the figures show of it. Pure: no DOM, no clock of its own (`now` is passed in).
 */
import type { SalesFiguresFragment } from '@swiftcart/sdk';
import { toMajorUnits } from './money.ts';

/** One hour's (or day's) sales as the API sends them: salesSummary's items and salesUpdated's payloads. */
export type SalesBucket = SalesFiguresFragment;

export const HOUR_MS = 3_600_000;

/** How many hours the dashboard shows: the current one and the 23 before it. */
export const DASHBOARD_HOURS = 24;

/** Consecutive hours in one currency, oldest first, ending with the current hour. */
export interface HourlySeries {
  readonly currency: string;
  /** One bucket per hour, oldest first; an hour without sales has zeros and version 0. */
  readonly buckets: readonly SalesBucket[];
}

/** The start of the UTC hour `ms` falls in, in milliseconds. */
export function startOfHour(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** The `from` and `to` (exclusive) of the last `hours` hours up to and including the one `now` falls in: salesSummary's and topProducts' arguments. */
export function salesWindow(now: number, hours = DASHBOARD_HOURS): { readonly from: string; readonly to: string } {
  const end = startOfHour(now) + HOUR_MS;
  return { from: new Date(end - hours * HOUR_MS).toISOString(), to: new Date(end).toISOString() };
}

/** The bucket of an hour nothing happened in (what the API answers for one, too). */
export function zeroBucket(start: number, currency: string): SalesBucket {
  return {
    granularity: 'HOUR',
    start: new Date(start).toISOString(),
    currency,
    ordersPlaced: 0,
    ordersConfirmed: 0,
    ordersCancelled: 0,
    ordersRejected: 0,
    revenue: { amount: 0, currency },
    refunds: { amount: 0, currency },
    unitsSold: 0,
    version: 0,
  };
}

/** Where a bucket starts, in milliseconds (its hour's start: the API sends whole hours). */
export function bucketStart(bucket: Pick<SalesBucket, 'start'>): number {
  return startOfHour(Date.parse(bucket.start));
}

/** `hours` hours of zeros ending with the hour that starts at `lastStart`. */
function zeros(lastStart: number, currency: string, hours: number): SalesBucket[] {
  return Array.from({ length: hours }, (_, i) => zeroBucket(lastStart - (hours - 1 - i) * HOUR_MS, currency));
}

/**
 * The last `hours` hours up to the one `now` falls in, from the buckets salesSummary answered:
 * each hour gets its bucket, an hour without one gets zeros, and buckets of another currency or
 * granularity or outside the window are left out.
 */
export function hourlySeries(buckets: readonly SalesBucket[], now: number, currency: string, hours = DASHBOARD_HOURS): HourlySeries {
  let series: HourlySeries = { currency, buckets: zeros(startOfHour(now), currency, hours) };
  for (const bucket of buckets) series = placeBucket(series, bucket, false);
  return series;
}

/** Moves the window on so that it ends with the hour `now` falls in (zeros for the new hours); the same series when it does already, or is ahead. */
export function advanceSeries(series: HourlySeries, now: number): HourlySeries {
  const { buckets } = series;
  const last = bucketStart(buckets[buckets.length - 1]);
  const current = startOfHour(now);
  if (current <= last) return series;
  const shift = Math.min(buckets.length, (current - last) / HOUR_MS);
  return { ...series, buckets: [...buckets.slice(shift), ...zeros(current, series.currency, shift)] };
}

/**
 * Merges a bucket salesUpdated sent into the series, by its start: it replaces the hour's bucket
 * unless that one is newer (a higher version), an hour after the window moves the window on to it,
 * and one before the window, of another currency or of days is ignored. Returns the same series
 * when nothing changed, so the caller can skip drawing.
 */
export function mergeBucket(series: HourlySeries, bucket: SalesBucket): HourlySeries {
  return placeBucket(series, bucket, true);
}

function placeBucket(series: HourlySeries, bucket: SalesBucket, moveOn: boolean): HourlySeries {
  if (bucket.granularity !== 'HOUR' || bucket.currency !== series.currency) return series;
  const start = bucketStart(bucket);
  if (!Number.isFinite(start)) return series;
  const moved = moveOn ? advanceSeries(series, start) : series;
  const index = (start - bucketStart(moved.buckets[0])) / HOUR_MS;
  if (index < 0 || index >= moved.buckets.length) return moved;
  const shown = moved.buckets[index];
  if (bucket.version < shown.version || sameFigures(bucket, shown)) return moved;
  const buckets = [...moved.buckets];
  buckets[index] = bucket;
  return { ...moved, buckets };
}

function sameFigures(a: SalesBucket, b: SalesBucket): boolean {
  return (
    a.version === b.version &&
    a.ordersPlaced === b.ordersPlaced &&
    a.ordersConfirmed === b.ordersConfirmed &&
    a.ordersCancelled === b.ordersCancelled &&
    a.ordersRejected === b.ordersRejected &&
    a.revenue.amount === b.revenue.amount &&
    a.refunds.amount === b.refunds.amount &&
    a.unitsSold === b.unitsSold
  );
}

/** The current (last) hour of the series. */
export function currentHour(series: HourlySeries): SalesBucket {
  return series.buckets[series.buckets.length - 1];
}

/** The sums over the whole series. */
export interface SalesTotals {
  readonly ordersPlaced: number;
  readonly ordersConfirmed: number;
  readonly ordersCancelled: number;
  readonly ordersRejected: number;
  /** In minor units of the series' currency. */
  readonly revenue: number;
  /** In minor units of the series' currency. */
  readonly refunds: number;
  readonly unitsSold: number;
}

export function seriesTotals(series: HourlySeries): SalesTotals {
  const totals = { ordersPlaced: 0, ordersConfirmed: 0, ordersCancelled: 0, ordersRejected: 0, revenue: 0, refunds: 0, unitsSold: 0 };
  for (const bucket of series.buckets) {
    totals.ordersPlaced += bucket.ordersPlaced;
    totals.ordersConfirmed += bucket.ordersConfirmed;
    totals.ordersCancelled += bucket.ordersCancelled;
    totals.ordersRejected += bucket.ordersRejected;
    totals.revenue += bucket.revenue.amount;
    totals.refunds += bucket.refunds.amount;
    totals.unitsSold += bucket.unitsSold;
  }
  return totals;
}

/** What the chart draws: the hours' starts (Unix seconds), orders confirmed, and revenue in major units. */
export type SalesChartData = [hours: number[], ordersConfirmed: number[], revenue: number[]];

export function chartData(series: HourlySeries): SalesChartData {
  return [
    series.buckets.map((bucket) => bucketStart(bucket) / 1000),
    series.buckets.map((bucket) => bucket.ordersConfirmed),
    series.buckets.map((bucket) => toMajorUnits(bucket.revenue.amount, series.currency)),
  ];
}

/** Whether going from `before` to `after` changed what was sold (so the top products may have changed). */
export function soldChanged(before: HourlySeries, after: HourlySeries): boolean {
  const a = seriesTotals(before);
  const b = seriesTotals(after);
  return a.unitsSold !== b.unitsSold || a.revenue !== b.revenue;
}

/** An hour as the figures table labels it, in UTC like the buckets: "14:00–15:00". */
export function hourLabel(start: number): string {
  const hh = (ms: number) => `${String(new Date(ms).getUTCHours()).padStart(2, '0')}:00`;
  return `${hh(start)}–${hh(start + HOUR_MS)}`;
}

/** The time axis' label of an hour, in UTC like the buckets: "14:00", and at midnight the date below it ("00:00\nNov 23"). */
export function axisHourLabel(start: number): string {
  const date = new Date(start);
  const hour = `${String(date.getUTCHours()).padStart(2, '0')}:00`;
  if (date.getUTCHours() !== 0) return hour;
  return `${hour}\n${date.toLocaleDateString('en', { month: 'short', day: 'numeric', timeZone: 'UTC' })}`;
}
