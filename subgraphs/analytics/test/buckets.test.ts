/**
 * The arithmetic of the sales figures, pure: which hour and day an instant falls in, which buckets
 * a range holds, what events add to the buckets and products, and the arguments' checks.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { createEvent } from '@swiftcart/platform';
import {
  type CountedEvent,
  type OrderFacts,
  MAX_SUMMARY_BUCKETS,
  bucketStart,
  bucketStartsIn,
  countBucketStarts,
  orderFactsOf,
  tally,
} from '../src/buckets.ts';
import { parseCurrency, parseFirst, parseInstant, parseRange, parseSummaryRange } from '../src/inputs.ts';

const at = (iso: string) => new Date(iso);
const iso = (dates: readonly Date[]) => dates.map((d) => d.toISOString());

function event<T extends CountedEvent['type']>(type: T, occurredAt: string, data: Extract<CountedEvent, { type: T }>['data']): CountedEvent {
  const source = type === 'PaymentRefunded' ? 'payment' : 'order';
  return { ...createEvent({ type, source, aggregateType: 'Order', aggregateId: data.orderId, causationId: null, data }), occurredAt } as CountedEvent;
}

const placed = (orderId: string, occurredAt: string, lines: { sku: string; quantity: number; unit: number }[], currency = 'EUR') =>
  event('OrderPlaced', occurredAt, {
    orderId,
    customerId: 'alice',
    items: lines.map((l) => ({ sku: l.sku, quantity: l.quantity, unitPrice: { amount: l.unit, currency } })),
    total: { amount: lines.reduce((sum, l) => sum + l.quantity * l.unit, 0), currency },
    deadlineAt: '2030-01-01T00:00:00.000Z',
  });
const confirmed = (orderId: string, occurredAt: string) =>
  event('OrderConfirmed', occurredAt, { orderId, customerId: 'alice', items: [{ sku: 'IGNORED', quantity: 1 }] });

describe('buckets', () => {
  test('an instant falls in the UTC hour and day that hold it; a bucket starts at its own instant', () => {
    assert.equal(bucketStart('HOUR', at('2026-12-07T10:59:59.999Z')).toISOString(), '2026-12-07T10:00:00.000Z');
    assert.equal(bucketStart('HOUR', at('2026-12-07T11:00:00.000Z')).toISOString(), '2026-12-07T11:00:00.000Z');
    assert.equal(bucketStart('DAY', at('2026-12-07T23:59:59.999Z')).toISOString(), '2026-12-07T00:00:00.000Z');
    // An offset is only a way to write the instant: 00:30 in Berlin (+01:00) is 23:30 UTC the day before.
    assert.equal(bucketStart('DAY', at('2026-12-08T00:30:00+01:00')).toISOString(), '2026-12-07T00:00:00.000Z');
    assert.equal(bucketStart('HOUR', at('1969-12-31T23:30:00Z')).toISOString(), '1969-12-31T23:00:00.000Z', 'before the epoch too');
  });

  test('a range holds the buckets that start in [from, to), whole days across a daylight-saving change', () => {
    assert.deepEqual(iso(bucketStartsIn('HOUR', at('2026-12-07T10:00:00Z'), at('2026-12-07T13:00:00Z'))), [
      '2026-12-07T10:00:00.000Z',
      '2026-12-07T11:00:00.000Z',
      '2026-12-07T12:00:00.000Z',
    ]);
    assert.deepEqual(
      iso(bucketStartsIn('HOUR', at('2026-12-07T10:30:00Z'), at('2026-12-07T12:00:00.001Z'))),
      ['2026-12-07T11:00:00.000Z', '2026-12-07T12:00:00.000Z'],
      'the hour from starts in is not one of them; the hour to falls in is',
    );
    assert.deepEqual(bucketStartsIn('HOUR', at('2026-12-07T10:15:00Z'), at('2026-12-07T10:45:00Z')), []);
    // Europe's clocks go back on 2026-10-25: UTC days stay 24 hours.
    const days = bucketStartsIn('DAY', at('2026-10-24T00:00:00Z'), at('2026-10-27T00:00:00Z'));
    assert.deepEqual(iso(days), ['2026-10-24T00:00:00.000Z', '2026-10-25T00:00:00.000Z', '2026-10-26T00:00:00.000Z']);
    assert.equal(countBucketStarts('HOUR', at('2026-10-25T00:00:00Z'), at('2026-10-26T00:00:00Z')), 24);
    assert.equal(countBucketStarts('DAY', at('2026-12-08T00:00:00Z'), at('2026-12-07T00:00:00Z')), 0, 'a backwards range holds nothing');
  });

  test('more than the most buckets a summary returns is refused before any is made', () => {
    const from = at('2026-01-01T00:00:00Z');
    const to = new Date(from.getTime() + (MAX_SUMMARY_BUCKETS + 1) * 3_600_000);
    assert.equal(countBucketStarts('HOUR', from, to), MAX_SUMMARY_BUCKETS + 1);
    assert.throws(() => bucketStartsIn('HOUR', from, to), RangeError);
    assert.equal(bucketStartsIn('HOUR', from, new Date(to.getTime() - 3_600_000)).length, MAX_SUMMARY_BUCKETS);
    assert.equal(countBucketStarts('HOUR', at('0001-01-01T00:00:00Z'), at('9999-12-31T00:00:00Z')), 3_652_058 * 24, 'counted (3,652,058 days), not listed');
  });
});

describe('tally', () => {
  const a = randomUUID();
  const b = randomUUID();

  test('each event counts once in its hour and its day, by occurredAt, in its currency', () => {
    const events = [
      placed(a, '2026-12-07T10:05:00.000Z', [
        { sku: 'SKU-2', quantity: 2, unit: 500 },
        { sku: 'SKU-1', quantity: 1, unit: 1000 },
      ]),
      placed(b, '2026-12-07T10:10:00.000Z', [{ sku: 'SKU-1', quantity: 3, unit: 900 }], 'USD'),
      confirmed(a, '2026-12-07T11:00:00.000Z'),
      event('OrderRejected', '2026-12-07T10:11:00.000Z', { orderId: b, customerId: 'alice', reason: 'SKU-1 short' }),
      event('PaymentRefunded', '2026-12-08T09:00:00.000Z', {
        orderId: a,
        paymentId: randomUUID(),
        refundId: randomUUID(),
        amount: { amount: 2000, currency: 'EUR' },
      }),
      event('OrderCancelled', '2026-12-08T08:59:00.000Z', { orderId: a, customerId: 'alice', reason: 'changed mind', previousStatus: 'CONFIRMED' }),
    ];
    const orders = new Map(events.filter((e) => e.type === 'OrderPlaced').map((e) => [e.data.orderId, orderFactsOf(e as never)] as const));
    const { buckets, products, unmatched } = tally(events, orders);
    assert.deepEqual(unmatched, []);
    const zero = { ordersPlaced: 0, ordersConfirmed: 0, ordersCancelled: 0, ordersRejected: 0, revenue: 0, refunds: 0, unitsSold: 0 };
    assert.deepEqual(buckets, [
      {
        granularity: 'DAY',
        start: '2026-12-07T00:00:00.000Z',
        currency: 'EUR',
        ...zero,
        ordersPlaced: 1,
        ordersConfirmed: 1,
        revenue: 2000,
        unitsSold: 3,
        events: 2,
      },
      { granularity: 'DAY', start: '2026-12-08T00:00:00.000Z', currency: 'EUR', ...zero, ordersCancelled: 1, refunds: 2000, events: 2 },
      { granularity: 'DAY', start: '2026-12-07T00:00:00.000Z', currency: 'USD', ...zero, ordersPlaced: 1, ordersRejected: 1, events: 2 },
      { granularity: 'HOUR', start: '2026-12-07T10:00:00.000Z', currency: 'EUR', ...zero, ordersPlaced: 1, events: 1 },
      { granularity: 'HOUR', start: '2026-12-07T11:00:00.000Z', currency: 'EUR', ...zero, ordersConfirmed: 1, revenue: 2000, unitsSold: 3, events: 1 },
      { granularity: 'HOUR', start: '2026-12-08T08:00:00.000Z', currency: 'EUR', ...zero, ordersCancelled: 1, events: 1 },
      { granularity: 'HOUR', start: '2026-12-08T09:00:00.000Z', currency: 'EUR', ...zero, refunds: 2000, events: 1 },
      { granularity: 'HOUR', start: '2026-12-07T10:00:00.000Z', currency: 'USD', ...zero, ordersPlaced: 1, ordersRejected: 1, events: 2 },
    ]);
    assert.deepEqual(products, [
      { hour: '2026-12-07T11:00:00.000Z', currency: 'EUR', sku: 'SKU-1', unitsSold: 1, revenue: 1000 },
      { hour: '2026-12-07T11:00:00.000Z', currency: 'EUR', sku: 'SKU-2', unitsSold: 2, revenue: 1000 },
    ]);
  });

  test('an event whose order was never placed counts nowhere; a late event lands in its own hour', () => {
    const facts: OrderFacts = { orderId: a, currency: 'EUR', totalAmount: 700, lines: [{ sku: 'SKU-9', quantity: 7, unitAmount: 100 }] };
    const late = confirmed(a, '2026-11-30T23:59:59.999Z');
    const { buckets, unmatched } = tally([confirmed(b, '2026-12-07T10:00:00.000Z'), late], new Map([[a, facts]]));
    assert.deepEqual(
      unmatched.map((e) => e.data.orderId),
      [b],
    );
    assert.deepEqual(
      buckets.map((x) => [x.granularity, x.start, x.revenue, x.unitsSold]),
      [
        ['DAY', '2026-11-30T00:00:00.000Z', 700, 7],
        ['HOUR', '2026-11-30T23:00:00.000Z', 700, 7],
      ],
    );
  });

  test('order ids are matched whatever their case', () => {
    const upper = randomUUID().toUpperCase();
    const placedUpper = placed(upper, '2026-12-07T10:00:00.000Z', [{ sku: 'SKU-1', quantity: 1, unit: 100 }]);
    const facts = orderFactsOf(placedUpper as never);
    assert.equal(facts.orderId, upper.toLowerCase());
    const { unmatched } = tally([confirmed(upper, '2026-12-07T10:01:00.000Z')], new Map([[facts.orderId, facts]]));
    assert.deepEqual(unmatched, []);
  });
});

describe('arguments', () => {
  const field = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      const { code, field: name } = (error as { extensions: { code: string; field?: string } }).extensions;
      return `${code}:${name}`;
    }
    return 'accepted';
  };

  test('instants need a date, a time and an offset, and must exist', () => {
    assert.equal(parseInstant('2026-12-07T10:00:00Z', 'from').toISOString(), '2026-12-07T10:00:00.000Z');
    assert.equal(parseInstant('2026-12-07T11:00:00.5+01:00', 'from').toISOString(), '2026-12-07T10:00:00.500Z');
    assert.equal(parseInstant('2026-12-07T10:00Z', 'from').toISOString(), '2026-12-07T10:00:00.000Z');
    for (const bad of ['2026-12-07', '2026-12-07T10:00:00', 'yesterday', '2026-02-30T00:00:00Z', '2026-12-07T24:00:00Z', 1_700_000_000_000, null]) {
      assert.equal(
        field(() => parseInstant(bad, 'to')),
        'BAD_USER_INPUT:to',
        String(bad),
      );
    }
  });

  test('a range runs forwards, and a summary holds at most 1,000 buckets', () => {
    assert.equal(
      field(() => parseRange('2026-12-07T10:00:00Z', '2026-12-07T10:00:00Z')),
      'BAD_USER_INPUT:to',
    );
    assert.equal(
      field(() => parseRange('2026-12-07T11:00:00Z', '2026-12-07T10:00:00Z')),
      'BAD_USER_INPUT:to',
    );
    assert.equal(
      field(() => parseRange('nope', '2026-12-07T10:00:00Z')),
      'BAD_USER_INPUT:from',
    );
    assert.equal(
      field(() => parseSummaryRange('2026-01-01T00:00:00Z', '2028-09-27T00:00:00Z', 'DAY')),
      'accepted',
      '1,000 days',
    );
    assert.equal(
      field(() => parseSummaryRange('2026-01-01T00:00:00Z', '2028-09-28T00:00:00Z', 'DAY')),
      'BAD_USER_INPUT:to',
      '1,001 days',
    );
    assert.equal(
      field(() => parseSummaryRange('2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z', 'HOUR')),
      'BAD_USER_INPUT:to',
      '1,416 hours',
    );
  });

  test('currencies are three capital letters; first is 1 to 100, 10 by default', () => {
    assert.equal(parseCurrency(undefined, 'EUR'), 'EUR');
    assert.equal(parseCurrency('USD', 'EUR'), 'USD');
    for (const bad of ['eur', 'EURO', '', 'E1R'])
      assert.equal(
        field(() => parseCurrency(bad, 'EUR')),
        'BAD_USER_INPUT:currency',
        bad,
      );
    assert.equal(parseFirst(undefined), 10);
    assert.equal(parseFirst(100), 100);
    for (const bad of [0, 101, -1])
      assert.equal(
        field(() => parseFirst(bad)),
        'BAD_USER_INPUT:first',
        String(bad),
      );
  });
});
