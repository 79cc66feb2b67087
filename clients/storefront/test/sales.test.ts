/**
 * The sales dashboard's pure data logic (src/sales.ts, src/money.ts) in Node, without a browser:
 * the 24-hour window, gaps filled with zeros, live buckets merged by their start and version, the
 * window moving on, and money formatted in the currency's own decimals.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { currencyDigits, money, moneyAxisLabel, toMajorUnits } from '../src/money.ts';
import {
  DASHBOARD_HOURS,
  HOUR_MS,
  type HourlySeries,
  type SalesBucket,
  advanceSeries,
  axisHourLabel,
  chartData,
  currentHour,
  hourLabel,
  hourlySeries,
  mergeBucket,
  salesWindow,
  seriesTotals,
  soldChanged,
  startOfHour,
  zeroBucket,
} from '../src/sales.ts';

const NOW = Date.parse('2026-11-22T10:15:30.000Z');
const HOUR_10 = Date.parse('2026-11-22T10:00:00.000Z');

/** A bucket of the hour starting at `start` with `confirmed` orders of 19.99 EUR each. */
function bucket(start: number, confirmed: number, version: number, overrides: Partial<SalesBucket> = {}): SalesBucket {
  return {
    ...zeroBucket(start, 'EUR'),
    ordersPlaced: confirmed,
    ordersConfirmed: confirmed,
    revenue: { amount: confirmed * 1999, currency: 'EUR' },
    unitsSold: confirmed,
    version,
    ...overrides,
  };
}

const starts = (series: HourlySeries) => series.buckets.map((b) => b.start);

describe('sales dashboard data', () => {
  it('the window is the current UTC hour and the 23 before it, as salesSummary arguments', () => {
    assert.equal(startOfHour(NOW), HOUR_10);
    assert.deepEqual(salesWindow(NOW), { from: '2026-11-21T11:00:00.000Z', to: '2026-11-22T11:00:00.000Z' });
    assert.deepEqual(salesWindow(HOUR_10), salesWindow(HOUR_10 + HOUR_MS - 1), 'every instant of an hour has the same window');
    assert.deepEqual(salesWindow(NOW, 2), { from: '2026-11-22T09:00:00.000Z', to: '2026-11-22T11:00:00.000Z' });
  });

  it('fills the hours salesSummary did not answer with zeros, oldest first, and leaves out what does not belong', () => {
    const series = hourlySeries(
      [
        bucket(HOUR_10 - 3 * HOUR_MS, 2, 4),
        bucket(HOUR_10, 1, 2),
        // Outside the window, another currency, days: none of them is shown.
        bucket(HOUR_10 - 30 * HOUR_MS, 9, 9),
        bucket(HOUR_10 - HOUR_MS, 5, 5, { currency: 'USD', revenue: { amount: 100, currency: 'USD' } }),
        bucket(HOUR_10 - 2 * HOUR_MS, 7, 7, { granularity: 'DAY' }),
      ],
      NOW,
      'EUR',
    );
    assert.equal(series.buckets.length, DASHBOARD_HOURS);
    assert.equal(series.buckets[0].start, '2026-11-21T11:00:00.000Z');
    assert.equal(currentHour(series).start, '2026-11-22T10:00:00.000Z');
    for (let i = 1; i < series.buckets.length; i++) {
      assert.equal(Date.parse(series.buckets[i].start) - Date.parse(series.buckets[i - 1].start), HOUR_MS, 'consecutive hours');
    }
    assert.deepEqual(
      series.buckets.map((b) => b.ordersConfirmed),
      [...Array(20).fill(0), 2, 0, 0, 1],
    );
    assert.deepEqual(series.buckets[21], zeroBucket(HOUR_10 - 2 * HOUR_MS, 'EUR'));
    assert.deepEqual(seriesTotals(series), {
      ordersPlaced: 3,
      ordersConfirmed: 3,
      ordersCancelled: 0,
      ordersRejected: 0,
      revenue: 3 * 1999,
      refunds: 0,
      unitsSold: 3,
    });
  });

  it('accepts a start written another way (no milliseconds) for the same hour', () => {
    const series = hourlySeries([{ ...bucket(HOUR_10, 4, 1), start: '2026-11-22T10:00:00Z' }], NOW, 'EUR');
    assert.equal(currentHour(series).ordersConfirmed, 4);
  });

  it('merges a live bucket into its hour, never going back to an older version', () => {
    const series = hourlySeries([bucket(HOUR_10, 1, 3)], NOW, 'EUR');
    const newer = mergeBucket(series, bucket(HOUR_10, 2, 5));
    assert.equal(currentHour(newer).ordersConfirmed, 2);
    assert.equal(currentHour(series).ordersConfirmed, 1, 'the old series is left as it was');
    assert.equal(mergeBucket(newer, bucket(HOUR_10, 1, 4)), newer, 'an older version changes nothing');
    assert.equal(mergeBucket(newer, bucket(HOUR_10, 2, 5)), newer, 'the same bucket again changes nothing');
    // A late event for a past hour of the window updates that hour.
    const late = mergeBucket(newer, bucket(HOUR_10 - 5 * HOUR_MS, 1, 1));
    assert.equal(late.buckets[DASHBOARD_HOURS - 6].ordersConfirmed, 1);
    assert.deepEqual(starts(late), starts(series), 'the window stays');
    // One before the window, of another currency or of days: ignored.
    assert.equal(mergeBucket(late, bucket(HOUR_10 - 24 * HOUR_MS, 1, 1)), late);
    assert.equal(mergeBucket(late, bucket(HOUR_10, 9, 9, { currency: 'USD' })), late);
    assert.equal(mergeBucket(late, bucket(HOUR_10, 9, 9, { granularity: 'DAY' })), late);
  });

  it('a bucket of a later hour moves the window on to it, with zeros for the hours between', () => {
    const series = hourlySeries([bucket(HOUR_10 - 23 * HOUR_MS, 1, 1), bucket(HOUR_10, 2, 2)], NOW, 'EUR');
    const moved = mergeBucket(series, bucket(HOUR_10 + 2 * HOUR_MS, 3, 1));
    assert.equal(moved.buckets.length, DASHBOARD_HOURS);
    assert.equal(currentHour(moved).start, '2026-11-22T12:00:00.000Z');
    assert.equal(moved.buckets[0].start, '2026-11-21T13:00:00.000Z');
    assert.deepEqual(
      moved.buckets.slice(-3).map((b) => [b.ordersConfirmed, b.version]),
      [
        [2, 2],
        [0, 0],
        [3, 1],
      ],
    );
    assert.equal(seriesTotals(moved).ordersConfirmed, 5, 'the oldest hour left the window');
  });

  it('advances with the clock, all zeros after a long pause, and never backwards', () => {
    const series = hourlySeries([bucket(HOUR_10, 2, 2)], NOW, 'EUR');
    assert.equal(advanceSeries(series, NOW + 10 * 60_000), series, 'the same hour: unchanged');
    assert.equal(advanceSeries(series, NOW - 2 * HOUR_MS), series, 'an earlier clock: unchanged');
    const next = advanceSeries(series, HOUR_10 + HOUR_MS);
    assert.equal(currentHour(next).start, '2026-11-22T11:00:00.000Z');
    assert.equal(next.buckets[DASHBOARD_HOURS - 2].ordersConfirmed, 2);
    const later = advanceSeries(series, HOUR_10 + 100 * HOUR_MS);
    assert.equal(later.buckets.length, DASHBOARD_HOURS);
    assert.equal(seriesTotals(later).ordersConfirmed, 0);
    assert.equal(currentHour(later).start, new Date(HOUR_10 + 100 * HOUR_MS).toISOString());
  });

  it('gives the chart Unix seconds, orders confirmed and revenue in major units', () => {
    const series = hourlySeries([bucket(HOUR_10, 3, 1)], NOW, 'EUR', 2);
    assert.deepEqual(chartData(series), [
      [(HOUR_10 - HOUR_MS) / 1000, HOUR_10 / 1000],
      [0, 3],
      [0, 59.97],
    ]);
    const yen = hourlySeries([{ ...bucket(HOUR_10, 1, 1), currency: 'JPY', revenue: { amount: 500, currency: 'JPY' } }], NOW, 'JPY', 1);
    assert.deepEqual(chartData(yen)[2], [500]);
  });

  it('tells when what was sold changed (the top products are read again then)', () => {
    const series = hourlySeries([bucket(HOUR_10, 1, 1)], NOW, 'EUR');
    assert.equal(soldChanged(series, mergeBucket(series, bucket(HOUR_10, 2, 2))), true);
    assert.equal(soldChanged(series, mergeBucket(series, bucket(HOUR_10, 1, 2, { ordersCancelled: 1 }))), false);
  });

  it('labels an hour in UTC, for the table and for the time axis (with the date at midnight)', () => {
    assert.equal(hourLabel(HOUR_10), '10:00–11:00');
    assert.equal(hourLabel(HOUR_10 + 13 * HOUR_MS), '23:00–00:00');
    assert.equal(axisHourLabel(HOUR_10), '10:00');
    assert.equal(axisHourLabel(HOUR_10 + 14 * HOUR_MS), '00:00\nNov 23');
  });

  it('formats money in the currency’s own decimals', () => {
    assert.equal(currencyDigits('EUR'), 2);
    assert.equal(currencyDigits('JPY'), 0);
    assert.equal(currencyDigits('KWD'), 3);
    assert.equal(toMajorUnits(1999, 'EUR'), 19.99);
    assert.equal(toMajorUnits(500, 'JPY'), 500);
    assert.equal(money(1999, 'EUR'), '€19.99');
    assert.equal(money(123456, 'EUR'), '€1,234.56');
    assert.equal(money(500, 'JPY'), '¥500');
    assert.equal(money(0, 'USD'), '$0.00');
    assert.equal(moneyAxisLabel(1200, 'EUR'), '€1,200');
    assert.equal(moneyAxisLabel(12.5, 'EUR'), '€12.50');
  });
});
