/**
 * The analytics service against real PostgreSQL, Redis and Kafka: order and payment events go in
 * on their topics as their services would publish them; the figures come out of the subgraph's
 * `salesSummary` and `topProducts`. Counting once (a redelivery, the same event from two
 * consumers), late events, events about unknown orders, a rebuild while events keep arriving, a
 * stopped rebuild resumed, and who may read what.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type AnyEventEnvelope, type EventDataMap, type RunningService, eventsTopic, inTransaction, newEvent } from '@swiftcart/platform';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { drain } from '../../../test/support/drain.ts';
import { waitFor } from '../../../test/support/wait.ts';
import type { CountedEvent, CountedEventType } from '../src/buckets.ts';
import { SALES_CONSUMER } from '../src/consumer.ts';
import { countEvents } from '../src/counting.ts';
import { generationStatus, rebuild } from '../src/generations.ts';

const BUCKET = `granularity start currency ordersPlaced ordersConfirmed ordersCancelled ordersRejected
  revenue { amount currency } refunds { amount currency } unitsSold version`;
const SUMMARY = `query ($from: DateTime!, $to: DateTime!, $granularity: SalesGranularity!, $currency: String) {
  salesSummary(from: $from, to: $to, granularity: $granularity, currency: $currency) { ${BUCKET} }
}`;
const TOP = `query ($from: DateTime!, $to: DateTime!, $first: Int, $currency: String) {
  topProducts(from: $from, to: $to, first: $first, currency: $currency) { product { sku } unitsSold revenue { amount currency } }
}`;

/** A day in the past that only this file's fixed-time events fall in. */
const DAY = '2026-03-01';
const t = (time: string) => `${DAY}T${time}.000Z`;

describe('analytics counts order and payment events', () => {
  let stack: TestStack;
  let analytics: RunningService;
  let admin: string;
  let customer: string;

  const publish = async (...events: AnyEventEnvelope[]) => {
    for (const event of events) {
      await analytics.runtime.kafka.publish(eventsTopic(event.source), [
        { key: event.aggregateId, value: JSON.stringify(event), headers: { id: event.id, type: event.type } },
      ]);
    }
    return events;
  };
  /** Resolves once the live consumer has committed every one of `events`. */
  const counted = async (events: readonly AnyEventEnvelope[]) => {
    const ids = events.map((e) => e.id);
    await waitFor(async () => {
      const [row] = await analytics.runtime.db
        .fork()
        .execute<{ n: number }[]>(
          'select count(*)::int as n from inbox where consumer = ? and event_id in (select value::uuid from jsonb_array_elements_text(?::jsonb))',
          [SALES_CONSUMER, JSON.stringify(ids)],
        );
      return Number(row.n) === ids.length;
    }, `${ids.length} events counted`);
  };
  const event = <T extends CountedEventType>(type: T, data: EventDataMap[T], occurredAt: string) => newEvent(type, data, { occurredAt });
  const placed = (orderId: string, occurredAt: string, lines: readonly [sku: string, quantity: number, unit: number][], currency = 'EUR') =>
    event(
      'OrderPlaced',
      {
        orderId,
        customerId: 'alice',
        items: lines.map(([sku, quantity, amount]) => ({ sku, quantity, unitPrice: { amount, currency } })),
        total: { amount: lines.reduce((sum, [, quantity, amount]) => sum + quantity * amount, 0), currency },
        deadlineAt: '2030-01-01T00:00:00.000Z',
      },
      occurredAt,
    );
  const confirmed = (orderId: string, occurredAt: string) =>
    event('OrderConfirmed', { orderId, customerId: 'alice', items: [{ sku: 'SKU-A', quantity: 1 }] }, occurredAt);
  const summary = async (from: string, to: string, granularity = 'HOUR', currency?: string, token: string | null = admin) => {
    const result = await stack.graphql(SUMMARY, { token, variables: { from, to, granularity, currency } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data.salesSummary as any[];
  };
  const top = async (from: string, to: string, first?: number, currency?: string) => {
    const result = await stack.graphql(TOP, { token: admin, variables: { from, to, first, currency } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data.topProducts as any[];
  };
  const zero = { ordersPlaced: 0, ordersConfirmed: 0, ordersCancelled: 0, ordersRejected: 0, refunds: { amount: 0, currency: 'EUR' }, unitsSold: 0 };

  before(async () => {
    stack = await startStack({ services: ['analytics'] });
    analytics = stack.services.analytics!;
    [admin, customer] = await Promise.all([stack.token('root', ['admin']), stack.token('alice', ['customer'])]);
  });
  after(() => stack?.close());

  test('each event counts in its hour and day, by occurredAt and currency; topProducts ranks by units, then sku', async () => {
    const [a, b, c, d, e] = Array.from({ length: 5 }, () => randomUUID());
    await counted(
      await publish(
        placed(a, t('10:05:00'), [
          ['SKU-B', 2, 500],
          ['SKU-A', 1, 1000],
        ]),
        placed(b, t('10:20:00'), [['SKU-A', 2, 1000]]),
        placed(c, t('10:30:00'), [['SKU-C', 5, 100]]),
        event('OrderRejected', { orderId: c, customerId: 'alice', reason: 'SKU-C short' }, t('10:30:01')),
        placed(d, t('10:40:00'), [['SKU-A', 1, 1000]]),
        placed(e, t('10:50:00'), [['SKU-Z', 4, 250]], 'USD'),
        confirmed(a, t('11:00:00')),
        confirmed(b, t('11:30:00')),
        confirmed(e, t('11:10:00')),
        event('OrderCancelled', { orderId: d, customerId: 'alice', reason: 'changed their mind', previousStatus: 'AWAITING_PAYMENT' }, t('12:10:00')),
        event('PaymentRefunded', { orderId: a, paymentId: randomUUID(), refundId: randomUUID(), amount: { amount: 1000, currency: 'EUR' } }, t('12:59:59')),
      ),
    );
    const eur = (amount: number) => ({ amount, currency: 'EUR' });
    assert.deepEqual(await summary(t('10:00:00'), t('14:00:00')), [
      { granularity: 'HOUR', start: t('10:00:00'), currency: 'EUR', ...zero, ordersPlaced: 4, ordersRejected: 1, revenue: eur(0), version: 5 },
      { granularity: 'HOUR', start: t('11:00:00'), currency: 'EUR', ...zero, ordersConfirmed: 2, revenue: eur(4000), unitsSold: 5, version: 2 },
      { granularity: 'HOUR', start: t('12:00:00'), currency: 'EUR', ...zero, ordersCancelled: 1, revenue: eur(0), refunds: eur(1000), version: 2 },
      { granularity: 'HOUR', start: t('13:00:00'), currency: 'EUR', ...zero, revenue: eur(0), version: 0 },
    ]);
    const [day] = await summary(`${DAY}T00:00:00Z`, `${DAY}T00:00:01Z`, 'DAY');
    assert.deepEqual(day, {
      granularity: 'DAY',
      start: t('00:00:00'),
      currency: 'EUR',
      ordersPlaced: 4,
      ordersConfirmed: 2,
      ordersCancelled: 1,
      ordersRejected: 1,
      revenue: eur(4000),
      refunds: eur(1000),
      unitsSold: 5,
      version: 9,
    });
    const [usd] = await summary(`${DAY}T00:00:00+00:00`, `${DAY}T23:59:59Z`, 'DAY', 'USD');
    assert.deepEqual([usd.ordersPlaced, usd.ordersConfirmed, usd.revenue, usd.unitsSold], [1, 1, { amount: 1000, currency: 'USD' }, 4]);

    assert.deepEqual(await top(t('10:00:00'), t('14:00:00')), [
      { product: { sku: 'SKU-A' }, unitsSold: 3, revenue: eur(3000) },
      { product: { sku: 'SKU-B' }, unitsSold: 2, revenue: eur(1000) },
    ]);
    assert.deepEqual(await top(t('10:00:00'), t('14:00:00'), 1), [{ product: { sku: 'SKU-A' }, unitsSold: 3, revenue: eur(3000) }]);
    assert.deepEqual(await top(t('11:00:01'), t('14:00:00')), [], 'the hour 11:00 does not start in the range');
    assert.deepEqual(await top(t('10:00:00'), t('14:00:00'), 10, 'USD'), [
      { product: { sku: 'SKU-Z' }, unitsSold: 4, revenue: { amount: 1000, currency: 'USD' } },
    ]);
    // A tie is broken by sku: SKU-Y sells 3 too, later.
    const f = randomUUID();
    await counted(await publish(placed(f, t('13:00:00'), [['SKU-0', 3, 1]]), confirmed(f, t('13:00:01'))));
    assert.deepEqual(
      (await top(t('10:00:00'), t('14:00:00'))).map((p) => [p.product.sku, p.unitsSold]),
      [
        ['SKU-0', 3],
        ['SKU-A', 3],
        ['SKU-B', 2],
      ],
    );
  });

  test('a redelivered event, and one counted again by a second consumer, change nothing', async () => {
    const g = randomUUID();
    const events = await publish(placed(g, t('15:00:00'), [['SKU-A', 1, 700]]), confirmed(g, t('15:10:00')));
    await counted(events);
    const before = await summary(t('15:00:00'), t('16:00:00'));
    assert.equal(before[0].version, 2);
    const duplicates = () => analytics.consumers.find((c) => c.consumer === SALES_CONSUMER)!.metrics.duplicates;
    const seen = duplicates();
    await publish(...events);
    await waitFor(() => duplicates() >= seen + 2, 'the redeliveries to be recognised');
    assert.deepEqual(await summary(t('15:00:00'), t('16:00:00')), before);

    // The same events handed to the counting again in a transaction of its own (as a rebuild
    // would, past the live consumer's inbox), twice in one call too: recorded per generation, they count once.
    await inTransaction(analytics.runtime.db, analytics.runtime.log, (em, afterCommit) =>
      countEvents(em, [...events, ...events] as CountedEvent[], { kind: 'live' }, { log: analytics.runtime.log, afterCommit }),
    );
    assert.deepEqual(await summary(t('15:00:00'), t('16:00:00')), before);
    // A new event handed over twice in one call counts once too.
    const refund = event(
      'PaymentRefunded',
      { orderId: g, paymentId: randomUUID(), refundId: randomUUID(), amount: { amount: 700, currency: 'EUR' } },
      t('15:20:00'),
    );
    await inTransaction(analytics.runtime.db, analytics.runtime.log, (em, afterCommit) =>
      countEvents(em, [refund, refund], { kind: 'live' }, { log: analytics.runtime.log, afterCommit }),
    );
    const [after] = await summary(t('15:00:00'), t('16:00:00'));
    assert.deepEqual([after.refunds.amount, after.version], [700, 3]);
    // And when it then reaches the live consumer (a rebuild will find it on the topic too): once still.
    await counted(await publish(refund));
    assert.deepEqual((await summary(t('15:00:00'), t('16:00:00')))[0], after);
  });

  test('a late event lands in the hour it happened in; one about an order never placed counts nowhere', async () => {
    const h = randomUUID();
    await counted(await publish(placed(h, t('16:00:00'), [['SKU-L', 1, 300]])));
    const later = await summary(t('17:00:00'), t('18:00:00'));
    // Published after everything above, it happened at 08:59: it goes to the 08:00 hour, and the DAY.
    const late = await publish(confirmed(h, t('08:59:59')));
    await counted(late);
    const [eight] = await summary(t('08:00:00'), t('09:00:00'));
    assert.deepEqual([eight.ordersConfirmed, eight.revenue.amount, eight.unitsSold, eight.version], [1, 300, 1, 1]);
    assert.deepEqual(await summary(t('17:00:00'), t('18:00:00')), later);

    const stranger = await publish(confirmed(randomUUID(), t('18:30:00')));
    await counted(stranger);
    const [eighteen] = await summary(t('18:00:00'), t('19:00:00'));
    assert.deepEqual([eighteen.ordersConfirmed, eighteen.version], [0, 0], 'its currency is unknown: counted nowhere, and not dead-lettered');
    assert.equal(analytics.consumers[0].metrics.deadLettered, 0);
  });

  test('only admins read the figures: UNAUTHENTICATED without a token, FORBIDDEN for a customer', async () => {
    const variables = { from: t('10:00:00'), to: t('11:00:00'), granularity: 'HOUR' };
    const anonymous = await stack.graphql(SUMMARY, { token: null, variables });
    assert.equal(anonymous.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    const asCustomer = await stack.graphql(SUMMARY, { token: customer, variables });
    assert.equal(asCustomer.errors?.[0].extensions?.code, 'FORBIDDEN');
    assert.equal(asCustomer.data?.salesSummary, undefined, 'no figures leak');
    const topAsCustomer = await stack.graphql(TOP, { token: customer, variables: { from: t('10:00:00'), to: t('11:00:00') } });
    assert.equal(topAsCustomer.errors?.[0].extensions?.code, 'FORBIDDEN');
    // A customer learns nothing from the arguments either: authorisation comes first.
    const badAsCustomer = await stack.graphql(SUMMARY, { token: customer, variables: { ...variables, from: 'nonsense' } });
    assert.equal(badAsCustomer.errors?.[0].extensions?.code, 'FORBIDDEN');
  });

  test('bad arguments are BAD_USER_INPUT naming the argument', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      [SUMMARY, { from: t('11:00:00'), to: t('10:00:00'), granularity: 'HOUR' }, 'to'],
      [SUMMARY, { from: t('10:00:00'), to: t('10:00:00'), granularity: 'HOUR' }, 'to'],
      [SUMMARY, { from: '2026-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z', granularity: 'HOUR' }, 'to'],
      [SUMMARY, { from: 'yesterday', to: t('10:00:00'), granularity: 'HOUR' }, 'from'],
      [SUMMARY, { from: t('10:00:00'), to: t('11:00:00'), granularity: 'HOUR', currency: 'eur' }, 'currency'],
      [TOP, { from: t('10:00:00'), to: t('11:00:00'), first: 0 }, 'first'],
      [TOP, { from: t('10:00:00'), to: t('11:00:00'), first: 101 }, 'first'],
      [TOP, { from: t('10:00:00'), to: t('09:00:00') }, 'to'],
      [TOP, { from: t('10:00:00'), to: t('11:00:00'), currency: 'EURO' }, 'currency'],
    ];
    for (const [query, variables, field] of cases) {
      const result = await stack.graphql(query, { token: admin, variables });
      assert.equal(result.errors?.[0].extensions?.code, 'BAD_USER_INPUT', JSON.stringify(variables));
      assert.equal(result.errors?.[0].extensions?.field, field, JSON.stringify(variables));
    }
    const thousand = await summary('2026-01-01T00:00:00Z', '2028-09-27T00:00:00Z', 'DAY');
    assert.equal(thousand.length, 1_000);
  });

  test('/metrics reports the counting lag, the generation and the buckets', async () => {
    const text = await (await fetch(new URL('/metrics', analytics.url))).text();
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
    assert.ok(value('swiftcart_analytics_count_lag_seconds_count') >= 10, 'the events counted so far were timed');
    assert.equal(value('swiftcart_analytics_generation'), 1);
    assert.equal(value('swiftcart_analytics_rebuilding'), 0);
    assert.ok(value('swiftcart_analytics_buckets') >= 10);
  });

  test('a rebuild while events keep arriving gives the same figures, and queries answer throughout', async () => {
    const dayBefore = await summary(`${DAY}T00:00:00Z`, `${DAY}T00:00:01Z`, 'DAY');
    const hoursBefore = await summary(t('00:00:00'), `2026-03-02T00:00:00Z`);
    const topBefore = await top(t('00:00:00'), '2026-03-02T00:00:00Z', 100);

    // Orders keep coming, in the current hour, before, during and after the rebuild.
    const live: AnyEventEnvelope[] = [];
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        const id = randomUUID();
        const now = new Date().toISOString();
        live.push(...(await publish(placed(id, now, [['SKU-LIVE', 2, 150]]), confirmed(id, now))));
      }
    })();
    await waitFor(() => live.length >= 20, 'some live orders');
    const during: string[] = [];
    const held: Record<string, number> = {};
    /** Holds the rebuild until the live consumer has counted 20 more orders (40 events). */
    const hold = async (phase: string) => {
      const from = live.length;
      await waitFor(() => live.length >= from + 40, `live orders while ${phase}`);
      await counted(live.slice(from, from + 40));
      held[phase] = live.length - from;
    };
    const result = await rebuild(analytics.runtime, {
      pollMs: 50,
      onProgress: async (message) => {
        during.push(message);
        // Before the rebuild reads the watermarks again: orders the live consumer counts into both
        // generations, and the rebuild then counts again; each must count once.
        if (message.includes('follows the live events')) await hold('following, before the second watermarks');
        // After them: orders only the live consumer counts into the new generation.
        if (message.includes('swapping it in')) await hold('following, after the second watermarks');
      },
    });
    const atSwap = live.length;
    await waitFor(() => live.length >= atSwap + 20, 'more live orders after the swap');
    publishing = false;
    await publisher;
    await drain(stack);

    assert.equal(result.generation, 2);
    assert.equal(result.retired, 1);
    assert.equal(result.resumed, false);
    // (changedBuckets may count the current hour: events the rebuild counted before the live consumer did.)
    assert.equal(Object.keys(held).length, 2, during.join('\n'));
    assert.deepEqual(await summary(`${DAY}T00:00:00Z`, `${DAY}T00:00:01Z`, 'DAY'), dayBefore);
    assert.deepEqual(await summary(t('00:00:00'), `2026-03-02T00:00:00Z`), hoursBefore, 'every hour, versions included');
    assert.deepEqual(await top(t('00:00:00'), '2026-03-02T00:00:00Z', 100), topBefore);

    // Every live order counted once, in whichever generation was current when it came.
    const orders = live.length / 2;
    const from = new Date(Date.now() - 86_400_000).toISOString();
    const to = new Date(Date.now() + 3_600_000).toISOString();
    const hours = await summary(from, to);
    assert.equal(
      hours.reduce((sum, h) => sum + h.ordersPlaced, 0),
      orders,
    );
    assert.equal(
      hours.reduce((sum, h) => sum + h.ordersConfirmed, 0),
      orders,
    );
    assert.equal(
      hours.reduce((sum, h) => sum + h.revenue.amount, 0),
      orders * 300,
    );
    assert.deepEqual(await top(from, to, 1), [{ product: { sku: 'SKU-LIVE' }, unitsSold: orders * 2, revenue: { amount: orders * 300, currency: 'EUR' } }]);
    const generations = await generationStatus(analytics.runtime);
    assert.deepEqual(
      generations.map((g) => [g.id, g.state]),
      [
        [2, 'CURRENT'],
        [1, 'RETIRED'],
      ],
    );
    assert.equal(generations[1].events, 0, "the retired generation's rows are gone");
    const [leftover] = await analytics.runtime.db
      .fork()
      .execute<{ n: number }[]>(`select count(*)::int as n from inbox where consumer like 'analytics.rebuild.%'`);
    assert.equal(Number(leftover.n), 0, "the rebuild consumer's inbox rows are gone");
  });

  test('a stopped rebuild is resumed by the next one', async () => {
    const before = await summary(t('00:00:00'), `2026-03-02T00:00:00Z`);
    const stop = new AbortController();
    await assert.rejects(
      rebuild(analytics.runtime, {
        pollMs: 50,
        signal: stop.signal,
        onProgress: () => stop.abort(new Error('operator pressed Ctrl-C')),
      }),
      /Ctrl-C/,
    );
    assert.equal((await generationStatus(analytics.runtime))[0].state, 'BUILDING');
    assert.deepEqual(await summary(t('00:00:00'), `2026-03-02T00:00:00Z`), before, 'generation 2 still answers');
    const resumed = await rebuild(analytics.runtime, { pollMs: 50 });
    assert.deepEqual([resumed.generation, resumed.retired, resumed.resumed, resumed.changedBuckets], [3, 2, true, 0]);
    assert.deepEqual(await summary(t('00:00:00'), `2026-03-02T00:00:00Z`), before);
  });
});
