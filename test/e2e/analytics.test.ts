/**
 * Sales figures through the gateway, from a real saga: orders placed through `placeOrder` are
 * confirmed, rejected for stock, declined by the payment provider or cancelled and refunded, and
 * the analytics service's `salesSummary` and `topProducts` must say what the order and payment
 * databases say; a rebuild from the topics must say it again; `salesUpdated` follows it live over
 * graphql-ws; and only admins may see any of it. Real services, PostgreSQL, Redis and Kafka, one
 * stack for the whole file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestStack } from '../support/stack.ts';
import { type LiveClient, connectLive } from '../support/subscriptions.ts';
import {
  CANCEL_ORDER,
  SAGA_SERVICES,
  type SagaSystem,
  drainSystem,
  placeOrder,
  pool,
  startSeededSaga,
  tryPlaceOrder,
  waitForAll,
  waitForStatus,
} from '../support/saga.ts';
import { rebuild } from '../../subgraphs/analytics/src/generations.ts';

const FIGURES = `granularity start currency ordersPlaced ordersConfirmed ordersCancelled ordersRejected
  revenue { amount currency } refunds { amount currency } unitsSold version`;
const SUMMARY = `query ($from: DateTime!, $to: DateTime!, $granularity: SalesGranularity!, $currency: String) {
  salesSummary(from: $from, to: $to, granularity: $granularity, currency: $currency) { ${FIGURES} }
}`;
const TOP = `query ($from: DateTime!, $to: DateTime!, $first: Int) {
  topProducts(from: $from, to: $to, first: $first) { product { sku name } unitsSold revenue { amount currency } }
}`;
const SALES_UPDATED = `subscription ($granularity: SalesGranularity!, $currency: String) { salesUpdated(granularity: $granularity, currency: $currency) { ${FIGURES} } }`;

/** Every DAY bucket a test run's events can fall in, however long it runs. */
const around = () => ({ from: new Date(Date.now() - 2 * 86_400_000).toISOString(), to: new Date(Date.now() + 86_400_000).toISOString() });

describe('sales figures through the gateway', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let admin: string;
  let alice: string;
  const clients: LiveClient[] = [];
  const live = (token: string | null) => {
    const client = connectLive(stack.gateway!.url, { token });
    clients.push(client);
    return client;
  };
  const query = async (document: string, variables: Record<string, unknown>, token: string | null = admin) => {
    const result = await stack.graphql(document, { token, variables });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data;
  };

  before(async () => {
    ({ stack, system, admin } = await startSeededSaga(
      [
        { sku: 'AN-1', onHand: 100, priceAmount: 1_000 },
        { sku: 'AN-2', onHand: 3, priceAmount: 2_500 },
        { sku: 'AN-3', onHand: 100, priceAmount: 399 },
      ],
      {},
      [...SAGA_SERVICES, 'analytics'],
    ));
    alice = await stack.token('analytics-alice', ['customer']);
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await stack?.close();
  });

  it('is for admins: UNAUTHENTICATED without a token, FORBIDDEN for a customer, over HTTP and over graphql-ws', async () => {
    const variables = { ...around(), granularity: 'DAY' };
    assert.equal((await stack.graphql(SUMMARY, { token: null, variables })).errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    const forbidden = await stack.graphql(SUMMARY, { token: alice, variables });
    assert.equal(forbidden.errors?.[0].extensions?.code, 'FORBIDDEN');
    assert.equal(forbidden.data?.salesSummary, undefined);
    assert.equal((await stack.graphql(TOP, { token: alice, variables: around() })).errors?.[0].extensions?.code, 'FORBIDDEN');

    const asCustomer = live(alice).subscribe(SALES_UPDATED, { granularity: 'HOUR' });
    await asCustomer.end();
    assert.deepEqual(
      asCustomer.results.flatMap((r) => r.errors ?? []).map((e) => e.extensions?.code),
      ['FORBIDDEN'],
    );
    assert.equal(asCustomer.results.filter((r) => r.data).length, 0, 'no figures before the refusal');
    const anonymous = live(null).subscribe(SALES_UPDATED, { granularity: 'HOUR' });
    await anonymous.end();
    assert.deepEqual(
      anonymous.results.flatMap((r) => r.errors ?? []).map((e) => e.extensions?.code),
      ['UNAUTHENTICATED'],
    );
  });

  it('answers bad arguments with BAD_USER_INPUT and the argument at fault, through the gateway', async () => {
    const { from, to } = around();
    const cases: [string, Record<string, unknown>, string][] = [
      [SUMMARY, { from: to, to: from, granularity: 'HOUR' }, 'to'],
      [SUMMARY, { from: '2020-01-01T00:00:00Z', to, granularity: 'HOUR' }, 'to'],
      [SUMMARY, { from, to, granularity: 'DAY', currency: 'euro' }, 'currency'],
      [TOP, { from, to, first: 500 }, 'first'],
    ];
    for (const [document, variables, field] of cases) {
      const result = await stack.graphql(document, { token: admin, variables });
      assert.equal(result.errors?.[0].extensions?.code, 'BAD_USER_INPUT', JSON.stringify(result.errors));
      assert.equal(result.errors?.[0].extensions?.field, field, JSON.stringify(result.errors));
    }
    const subscription = live(admin).subscribe(SALES_UPDATED, { granularity: 'HOUR', currency: 'E' });
    await subscription.end();
    assert.deepEqual(
      subscription.results.flatMap((r) => r.errors ?? []).map((e) => [e.extensions?.code, e.extensions?.field]),
      [['BAD_USER_INPUT', 'currency']],
    );
  });

  it('salesUpdated sends the current hour first, then a newer version once an order is confirmed', async () => {
    const sub = live(admin).subscribe(SALES_UPDATED, { granularity: 'HOUR' });
    const first = (await sub.next(10_000)).data.salesUpdated;
    assert.equal(first.granularity, 'HOUR');
    assert.equal(first.currency, 'EUR');
    assert.equal(new Date(first.start).getTime() % 3_600_000, 0);
    assert.ok(Date.now() - new Date(first.start).getTime() < 2 * 3_600_000, `the current hour, got ${first.start}`);

    const order = await placeOrder(system, alice, [{ sku: 'AN-1', quantity: 2 }], 'tok_visa');
    await waitForStatus(system, alice, order.id, ['CONFIRMED']);
    // The hour may turn meanwhile: then the confirmation lands in the next bucket, with its own versions.
    const confirmed = await sub.waitFor(({ data }) => {
      const bucket = data?.salesUpdated;
      return bucket && (bucket.start > first.start || bucket.ordersConfirmed > first.ordersConfirmed);
    }, 'a bucket with the confirmed order');
    const bucket = confirmed.data.salesUpdated;
    assert.ok(bucket.version > (bucket.start === first.start ? first.version : 0), JSON.stringify({ first, bucket }));
    assert.ok(bucket.revenue.amount >= 2_000 && bucket.unitsSold >= 2, JSON.stringify(bucket));
    const versions = new Map<string, number>();
    for (const result of sub.results) {
      const { start, version } = result.data.salesUpdated;
      assert.ok(version > (versions.get(start) ?? -1), `versions of ${start} only grow`);
      versions.set(start, version);
    }
    sub.dispose();
  });

  it('after a burst of orders, the figures are what the order and payment databases say, and a rebuild says it again', async () => {
    // Confirmed; short of stock (AN-2 has 3); declined by the provider; several lines.
    const orders = [
      ...Array.from({ length: 8 }, () => ({ items: [{ sku: 'AN-1', quantity: 1 }], method: 'tok_visa' })),
      ...Array.from({ length: 7 }, () => ({ items: [{ sku: 'AN-2', quantity: 1 }], method: 'tok_visa' })),
      ...Array.from({ length: 4 }, () => ({ items: [{ sku: 'AN-3', quantity: 2 }], method: 'tok_decline' })),
      ...Array.from({ length: 3 }, () => ({
        items: [
          { sku: 'AN-1', quantity: 1 },
          { sku: 'AN-3', quantity: 3 },
        ],
        method: 'tok_visa',
      })),
    ];
    const placed = await pool(orders, 8, async ({ items, method }) => {
      const result = await tryPlaceOrder(system, alice, items, method);
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      return result.data.placeOrder.id as string;
    });
    const statuses = await waitForAll(system, admin, placed);
    const counts = [...statuses.values()].reduce<Record<string, number>>((c, s) => ({ ...c, [s]: (c[s] ?? 0) + 1 }), {});
    assert.deepEqual(counts, { CONFIRMED: 14, REJECTED: 4, CANCELLED: 4 }, 'AN-2 has stock for 3 orders; tok_decline is declined');
    // A confirmed order cancelled by its customer: counted confirmed, then cancelled, and refunded.
    const refunded = placed[0];
    const cancelled = await stack.graphql(CANCEL_ORDER, { token: alice, variables: { id: refunded, reason: 'changed my mind' } });
    assert.equal(cancelled.errors, undefined, JSON.stringify(cancelled.errors));
    await drainSystem(system);

    const [orderFigures] = await system.em('order').execute<Record<string, string>[]>(`
      with confirmed as (select distinct order_id from order_transition where status = 'CONFIRMED')
      select count(*) as placed,
             count(*) filter (where o.status = 'REJECTED') as rejected,
             count(*) filter (where o.status = 'CANCELLED') as cancelled,
             count(c.order_id) as confirmed,
             coalesce(sum(o.total_amount) filter (where c.order_id is not null), 0) as revenue,
             (select coalesce(sum(i.quantity), 0) from order_item i join confirmed c2 on c2.order_id = i.order_id) as units
      from orders o left join confirmed c on c.order_id = o.id`);
    const [{ refunds }] = await system.em('payment').execute<{ refunds: string }[]>('select coalesce(sum(amount), 0) as refunds from refund');
    assert.ok(Number(refunds) > 0, 'the cancelled order was refunded');

    const days = (await query(SUMMARY, { ...around(), granularity: 'DAY' })).salesSummary as any[];
    const sum = (field: string) => days.reduce((total, d) => total + (typeof d[field] === 'object' ? d[field].amount : d[field]), 0);
    assert.deepEqual(
      {
        placed: sum('ordersPlaced'),
        confirmed: sum('ordersConfirmed'),
        rejected: sum('ordersRejected'),
        cancelled: sum('ordersCancelled'),
        revenue: sum('revenue'),
        refunds: sum('refunds'),
        units: sum('unitsSold'),
      },
      Object.fromEntries(Object.entries({ ...orderFigures, refunds }).map(([k, v]) => [k, Number(v)])),
      'salesSummary against the order and payment databases',
    );
    // The hours say what the days say.
    const now = Date.now();
    const hours = (
      await query(SUMMARY, { from: new Date(now - 24 * 3_600_000).toISOString(), to: new Date(now + 3_600_000).toISOString(), granularity: 'HOUR' })
    ).salesSummary as any[];
    assert.equal(
      hours.reduce((n, h) => n + h.ordersPlaced, 0),
      Number(orderFigures.placed),
    );

    const bySku = await system.em('order').execute<{ sku: string; units: string; revenue: string }[]>(`
      select i.sku, sum(i.quantity) as units, sum(i.quantity * i.unit_price_amount) as revenue
      from order_item i where exists (select 1 from order_transition t where t.order_id = i.order_id and t.status = 'CONFIRMED')
      group by i.sku order by sum(i.quantity) desc, i.sku collate "C"`);
    const top = (await query(TOP, { ...around(), first: 10 })).topProducts as any[];
    assert.deepEqual(
      top.map((p) => [p.product.sku, p.unitsSold, p.revenue.amount]),
      bySku.map((r) => [r.sku, Number(r.units), Number(r.revenue)]),
    );
    assert.equal(top.find((p) => p.product.sku === 'AN-1')?.product.name, 'Saga AN-1', 'the name from the product subgraph');

    // Recomputed from the topics, with a new consumer group, while the service keeps running.
    const before = { days, hours, top };
    const result = await rebuild(stack.services.analytics!.runtime, { pollMs: 100 });
    assert.equal(result.changedBuckets, 0);
    assert.ok(result.events >= Number(orderFigures.placed) * 2, `${result.events} events counted`);
    const after = {
      days: (await query(SUMMARY, { ...around(), granularity: 'DAY' })).salesSummary,
      hours: (await query(SUMMARY, { from: new Date(now - 24 * 3_600_000).toISOString(), to: new Date(now + 3_600_000).toISOString(), granularity: 'HOUR' }))
        .salesSummary,
      top: (await query(TOP, { ...around(), first: 10 })).topProducts,
    };
    assert.deepEqual(after, before, 'the same figures, versions included');
  });
});
