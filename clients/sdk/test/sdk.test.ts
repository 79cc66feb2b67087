/**
 * @swiftcart/sdk against the real platform: every service and the gateway in this process, on
 * PostgreSQL, Redis and Kafka, reached only the way an app would, through the SDK (global fetch
 * and global WebSocket, nothing injected). Browsing and search, the order lifecycle, the typed
 * error codes, the subscriptions including closing them, and the admin's sales figures.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { TestStack } from '../../../test/support/stack.ts';
import { SHIPPING_ADDRESS, type SagaSystem, distinctStatuses, seedSaga, startSagaStack, systemOf, waitFor } from '../../../test/support/saga.ts';
import { storefront } from '../examples/storefront.ts';
import { type PlaceOrderInput, type SwiftCartClient, ClientErrorCode, ErrorCode, SwiftCartError, createClient } from '../src/index.ts';
import { SERVICE_NAMES } from '@swiftcart/platform';

const CATALOGUE = [
  { sku: 'SDK-A1', onHand: 50 },
  { sku: 'SDK-A2', onHand: 50 },
  { sku: 'SDK-A3', onHand: 50 },
  { sku: 'SDK-A4', onHand: 50 },
  { sku: 'SDK-A5', onHand: 50 },
  { sku: 'SDK-B1', onHand: 5, priceAmount: 2500 },
  { sku: 'SDK-B2', onHand: 0, priceAmount: 2600 },
  { sku: 'SDK-LIVE', onHand: 10, priceAmount: 700 },
  { sku: 'SDK-ORDER', onHand: 100, priceAmount: 1250 },
];
const SKUS = CATALOGUE.map((c) => c.sku).sort();

/** The promise's value, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The SwiftCartError `promise` rejects with. */
async function failure(promise: Promise<unknown>): Promise<SwiftCartError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SwiftCartError, `expected a SwiftCartError, got ${(error as Error)?.stack ?? error}`);
    return error;
  }
  assert.fail('expected a SwiftCartError, the call succeeded');
}

/** The live figures this file checks. */
function pick(metrics: { subscriptions: number; connections: number }) {
  return { subscriptions: metrics.subscriptions, connections: metrics.connections };
}

const eq = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function orderInput(sku: string, quantity: number): PlaceOrderInput {
  return { idempotencyKey: randomUUID(), items: [{ sku, quantity }], shippingAddress: SHIPPING_ADDRESS, paymentMethod: 'tok_visa' };
}

describe('@swiftcart/sdk through the gateway', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let url: string;
  let anonymous: SwiftCartClient;
  let alice: SwiftCartClient;
  let bob: SwiftCartClient;
  const clients: SwiftCartClient[] = [];
  const client = (token?: string | (() => string | null)) => {
    const created = createClient({ url, token });
    clients.push(created);
    return created;
  };

  before(async () => {
    stack = await startSagaStack({}, SERVICE_NAMES);
    system = systemOf(stack);
    url = stack.gateway!.url;
    await seedSaga(system, CATALOGUE);
    anonymous = client();
    alice = client(await stack.token('sdk-alice', ['customer']));
    bob = client(await stack.token('sdk-bob', ['customer']));
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await stack?.close();
  });

  describe('products', () => {
    it('browseProducts pages through the whole catalogue in sku order with `after`', async () => {
      const seen: string[] = [];
      let after: string | null = null;
      let pages = 0;
      for (;;) {
        const { products }: Awaited<ReturnType<SwiftCartClient['browseProducts']>> = await anonymous.browseProducts({ first: 4, after });
        pages++;
        assert.equal(products.totalCount, SKUS.length);
        assert.ok(products.edges.length <= 4);
        seen.push(...products.edges.map((e) => e.node.sku));
        if (!products.pageInfo.hasNextPage) break;
        assert.equal(products.pageInfo.endCursor, products.edges.at(-1)!.cursor);
        after = products.pageInfo.endCursor;
      }
      assert.equal(pages, 3);
      assert.deepEqual(seen, SKUS);
      const { products } = await anonymous.browseProducts({ first: 1 });
      assert.deepEqual(products.edges[0].node, {
        sku: 'SDK-A1',
        name: 'Saga SDK-A1',
        status: 'ACTIVE',
        price: { amount: 1000, currency: 'EUR' },
        stock: { available: 50, version: products.edges[0].node.stock.version },
      });
    });

    it('searchProducts matches the sku or name case-insensitively and narrows by price', async () => {
      const bySku = await anonymous.searchProducts({ filter: { search: 'sdk-b' } });
      assert.deepEqual(
        bySku.products.edges.map((e) => e.node.sku),
        ['SDK-B1', 'SDK-B2'],
      );
      assert.equal(bySku.products.totalCount, 2);
      const byName = await anonymous.searchProducts({ filter: { search: 'saga sdk-a' }, first: 2 });
      assert.deepEqual(
        byName.products.edges.map((e) => e.node.sku),
        ['SDK-A1', 'SDK-A2'],
      );
      assert.equal(byName.products.totalCount, 5);
      assert.equal(byName.products.pageInfo.hasNextPage, true);
      const pricey = await anonymous.searchProducts({ filter: { search: 'SDK', minPrice: 2000, maxPrice: 2550 } });
      assert.deepEqual(
        pricey.products.edges.map((e) => [e.node.sku, e.node.price.amount, e.node.stock.available]),
        [['SDK-B1', 2500, 5]],
      );
    });

    it('product reads one product with its description and stock, and null for an unknown sku', async () => {
      const { product } = await anonymous.product({ sku: 'SDK-B1' });
      assert.ok(product);
      assert.equal(product.description, 'saga test product SDK-B1');
      assert.equal(product.name, 'Saga SDK-B1');
      assert.deepEqual(product.price, { amount: 2500, currency: 'EUR' });
      assert.equal(product.stock.available, 5);
      assert.ok(product.stock.version >= 1);
      assert.match(product.stock.updatedAt!, /^\d{4}-\d\d-\d\dT/);
      assert.deepEqual(await anonymous.product({ sku: 'SDK-NOPE' }), { product: null });
    });
  });

  describe('orders', () => {
    it('places an order, finds it in myOrders, reads it with timeline, payment and shipment, and cancels it', async () => {
      const { placeOrder: placed } = await alice.placeOrder({ input: orderInput('SDK-ORDER', 2) });
      assert.equal(placed.status, 'PENDING');
      assert.equal(placed.version, 1);
      assert.deepEqual(placed.total, { amount: 2500, currency: 'EUR' });
      assert.deepEqual(
        placed.items.map((i) => [i.sku, i.quantity, i.unitPrice.amount, i.lineTotal.amount, i.product.name]),
        [['SDK-ORDER', 2, 1250, 2500, 'Saga SDK-ORDER']],
      );
      assert.deepEqual(
        placed.timeline.map((t) => [t.status, t.eventType]),
        [['PENDING', null]],
      );
      assert.equal(placed.shippingAddress.city, SHIPPING_ADDRESS.city);

      const { myOrders } = await alice.myOrders({ first: 10 });
      assert.ok(
        myOrders.edges.some((e) => e.node.id === placed.id && e.node.total.amount === 2500),
        JSON.stringify(myOrders),
      );
      assert.equal(
        (await bob.myOrders()).myOrders.edges.some((e) => e.node.id === placed.id),
        false,
        "bob does not see alice's order",
      );

      const confirmed = await waitFor(async () => {
        const { order } = await alice.order({ id: placed.id });
        return order?.status === 'CONFIRMED' && order.shipment ? order : undefined;
      }, `order ${placed.id} confirmed with its shipment`);
      assert.deepEqual(distinctStatuses(confirmed.timeline), ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED']);
      assert.equal(confirmed.timeline[1].eventType, 'StockReserved');
      assert.equal(confirmed.payment?.status, 'AUTHORIZED');
      assert.equal(confirmed.shipment?.status, 'PENDING');
      assert.equal(confirmed.shipment?.carrier, null);
      assert.ok(confirmed.version > placed.version);

      const { cancelOrder: cancelled } = await alice.cancelOrder({ id: placed.id, reason: 'changed my mind' });
      assert.equal(cancelled.status, 'CANCELLED');
      assert.equal(cancelled.timeline.at(-1)!.status, 'CANCELLED');
      // Timeline-only entries (e.g. "shipment created" arriving late) may follow the cancellation.
      const cancellation = cancelled.timeline.find((t) => t.status === 'CANCELLED');
      assert.equal(cancellation?.reason, 'changed my mind', JSON.stringify(cancelled.timeline));
      const compensated = await waitFor(async () => {
        const { order } = await alice.order({ id: placed.id });
        return order?.payment?.status === 'REFUNDED' && order.shipment?.status === 'CANCELLED' ? order : undefined;
      }, `order ${placed.id} refunded and its shipment cancelled`);
      assert.equal(compensated.status, 'CANCELLED');
    });

    it('types the error codes: UNAUTHENTICATED, FORBIDDEN, BAD_USER_INPUT', async () => {
      const noToken = await failure(anonymous.placeOrder({ input: orderInput('SDK-ORDER', 1) }));
      assert.equal(noToken.code, ErrorCode.Unauthenticated);
      assert.equal(noToken.errors.length, 1);
      assert.equal(noToken.status, 200);

      const { placeOrder: order } = await alice.placeOrder({ input: orderInput('SDK-ORDER', 1) });
      const readByBob = await failure(bob.order({ id: order.id }));
      assert.equal(readByBob.code, ErrorCode.Forbidden);
      assert.deepEqual(readByBob.errors[0].path, ['order']);
      assert.equal((await failure(bob.cancelOrder({ id: order.id }))).code, 'FORBIDDEN');

      const unknownSku = await failure(alice.placeOrder({ input: orderInput('SDK-MISSING', 1) }));
      assert.equal(unknownSku.code, ErrorCode.BadUserInput);
      assert.equal(unknownSku.extensions.field, 'input.items[0].sku');

      const badToken = await failure(client('not-a-jwt').browseProducts());
      assert.equal(badToken.code, 'UNAUTHENTICATED');
      assert.equal(badToken.status, 401);

      const offline = await failure(createClient({ url: 'http://127.0.0.1:9/graphql' }).browseProducts());
      assert.equal(offline.code, ClientErrorCode.NetworkError);
    });

    it('a token function follows sign-in and sign-out without a new client', async () => {
      const session: { token: string | null } = { token: null };
      const storefront = client(() => session.token);
      assert.equal((await failure(storefront.myOrders())).code, 'UNAUTHENTICATED');
      session.token = await stack.token('sdk-alice', ['customer']);
      const { myOrders } = await storefront.myOrders();
      assert.ok(myOrders.totalCount >= 2, `alice has her orders: ${myOrders.totalCount}`);
      session.token = null;
      assert.equal((await failure(storefront.myOrders())).code, 'UNAUTHENTICATED');
    });
  });

  describe('the README example', () => {
    it('runs end to end: browse, search, live stock, place, follow to CONFIRMED, an error by code', async () => {
      const lines: string[] = [];
      const result = await within(
        storefront({
          url,
          token: await stack.token('sdk-reader', ['customer']),
          sku: 'SDK-A3',
          log: (...values) => lines.push(values.join(' ')),
        }),
        30_000,
        'the example to finish',
      );
      assert.equal(result.status, 'CONFIRMED', lines.join('\n'));
      assert.ok(lines.includes('SDK-A1 Saga SDK-A1 1000 50'), lines.join('\n'));
      assert.ok(lines.includes('1 match SDK-A3'), lines.join('\n'));
      assert.ok(
        lines.some((l) => /^SDK-A3: 50 available \(v\d+\)$/.test(l)),
        lines.join('\n'),
      );
      assert.ok(
        lines.some((l) => l.startsWith(`order ${result.id}: CONFIRMED`) && l.endsWith('payment AUTHORIZED')),
        lines.join('\n'),
      );
      assert.ok(
        lines.some((l) => l.startsWith('fix input.items[0].sku: ')),
        lines.join('\n'),
      );
      await waitFor(
        () => (eq(pick(stack.gateway!.metrics()), { subscriptions: 0, connections: 0 }) ? true : undefined),
        'the example to end its subscriptions and sockets',
        5_000,
        () => stack.gateway!.metrics(),
      );
    });
  });

  describe('subscriptions', () => {
    it('stockLevelChanged yields the current level, then the level an order left', async () => {
      const changes = anonymous.stockLevelChanged({ skus: ['SDK-LIVE'] });
      const first = await within(changes.next(), 10_000, 'current level');
      assert.equal(first.done, false);
      const current = first.value!.stockLevelChanged;
      assert.deepEqual({ sku: current.sku, available: current.available }, { sku: 'SDK-LIVE', available: 10 });

      await alice.placeOrder({ input: orderInput('SDK-LIVE', 3) });
      const versions = [current.version];
      for await (const { stockLevelChanged: level } of changes) {
        assert.ok(level.version > versions.at(-1)!, `versions only grow: ${versions} then ${level.version}`);
        versions.push(level.version);
        if (level.available === 7) break; // leaving the loop calls return()
      }
      assert.ok(versions.length >= 2);
      await waitFor(() => (stack.gateway!.metrics().subscriptions === 0 ? true : undefined), 'the subscription to end at the gateway', 5_000);
    });

    it('orderUpdated yields the order as it moves up to CONFIRMED, with its payment', async () => {
      const { placeOrder: placed } = await alice.placeOrder({ input: orderInput('SDK-ORDER', 1) });
      const seen: { status: string; version: number; payment: string | null }[] = [];
      await within(
        (async () => {
          for await (const { orderUpdated: order } of alice.orderUpdated({ id: placed.id })) {
            assert.equal(order.id, placed.id);
            seen.push({ status: order.status, version: order.version, payment: order.payment?.status ?? null });
            if (order.status === 'CONFIRMED') break;
          }
        })(),
        20_000,
        `order ${placed.id} to reach CONFIRMED; seen ${JSON.stringify(seen)}`,
      );
      const statuses = seen.map((s) => s.status);
      const order = ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED'];
      assert.deepEqual(
        [...new Set(statuses)],
        order.filter((s) => statuses.includes(s)),
        `statuses in saga order: ${statuses}`,
      );
      assert.equal(statuses.at(-1), 'CONFIRMED');
      assert.equal(seen.at(-1)!.payment, 'AUTHORIZED');
      const versions = seen.map((s) => s.version);
      assert.deepEqual(
        versions,
        [...new Set(versions)].sort((a, b) => a - b),
        `versions only grow: ${versions}`,
      );
    });

    it("orderUpdated fails with FORBIDDEN for another customer's order, UNAUTHENTICATED without or with a refused token", async () => {
      const { placeOrder: placed } = await alice.placeOrder({ input: orderInput('SDK-ORDER', 1) });
      const forbidden = await failure(within(bob.orderUpdated({ id: placed.id }).next(), 10_000, 'FORBIDDEN'));
      assert.equal(forbidden.code, ErrorCode.Forbidden);
      assert.equal(forbidden.errors[0].extensions?.code, 'FORBIDDEN');
      const anonymousError = await failure(within(anonymous.orderUpdated({ id: placed.id }).next(), 10_000, 'UNAUTHENTICATED'));
      assert.equal(anonymousError.code, ErrorCode.Unauthenticated);
      const refused = await failure(within(client('not-a-jwt').orderUpdated({ id: placed.id }).next(), 10_000, 'the refused token'));
      assert.equal(refused.code, 'UNAUTHENTICATED');
      assert.equal(refused.closeCode, 4403);
    });

    it('return() ends one subscription at once, even while next() waits; a socket closes after its last one', async () => {
      await waitFor(() => (stack.gateway!.metrics().connections === 0 ? true : undefined), 'earlier sockets to close', 5_000);
      const quiet = anonymous.stockLevelChanged({ skus: ['SDK-A1'] });
      const neighbour = anonymous.stockLevelChanged({ skus: ['SDK-A2'] }); // the same token: the same socket
      const { placeOrder: placed } = await alice.placeOrder({ input: orderInput('SDK-ORDER', 1) });
      const followed = alice.orderUpdated({ id: placed.id });
      assert.equal((await within(quiet.next(), 10_000, 'the current level')).value!.stockLevelChanged.available, 50);
      assert.equal((await within(neighbour.next(), 10_000, 'the current level')).value!.stockLevelChanged.sku, 'SDK-A2');
      assert.equal((await within(followed.next(), 10_000, 'the current order')).value!.orderUpdated.id, placed.id);
      assert.deepEqual(pick(stack.gateway!.metrics()), { subscriptions: 3, connections: 2 }, 'one socket per token');

      const waiting = quiet.next(); // nothing changes for SDK-A1, so this waits
      assert.deepEqual(await within(quiet.return(), 5_000, 'return()'), { done: true, value: undefined });
      assert.deepEqual(await within(waiting, 5_000, 'the waiting next() to finish'), { done: true, value: undefined });
      await waitFor(
        () => (stack.gateway!.metrics().subscriptions === 2 ? true : undefined),
        'the returned subscription to end at the gateway',
        5_000,
        () => stack.gateway!.metrics(),
      );
      assert.equal(stack.gateway!.metrics().connections, 2, 'the anonymous socket stays open for the neighbour');

      await neighbour.return();
      await waitFor(
        () => (stack.gateway!.metrics().connections === 1 ? true : undefined),
        'the anonymous socket to close after its last subscription',
        5_000,
        () => stack.gateway!.metrics(),
      );
      await followed.return();
      await waitFor(
        () => (eq(pick(stack.gateway!.metrics()), { subscriptions: 0, connections: 0 }) ? true : undefined),
        'every subscription and socket to close',
        5_000,
        () => stack.gateway!.metrics(),
      );
      assert.deepEqual(await quiet.next(), { done: true, value: undefined }, 'a returned subscription stays done');
    });
  });

  describe('sales (admin only)', () => {
    it('salesSummary, topProducts and salesUpdated are FORBIDDEN to a customer', async () => {
      const to = new Date(Date.now() + 3_600_000).toISOString();
      const from = new Date(Date.now() - 3_600_000).toISOString();
      assert.equal((await failure(alice.salesSummary({ from, to, granularity: 'HOUR' }))).code, ErrorCode.Forbidden);
      assert.equal((await failure(alice.topProducts({ from, to }))).code, ErrorCode.Forbidden);
      assert.equal((await failure(within(alice.salesUpdated({ granularity: 'HOUR' }).next(), 10_000, 'FORBIDDEN'))).code, ErrorCode.Forbidden);
    });

    it('an admin follows the current hour live as an order is confirmed, and reads it in salesSummary and topProducts', async () => {
      const admin = client(await stack.token('sdk-admin', ['admin']));
      const updates = admin.salesUpdated({ granularity: 'HOUR' });
      const first = (await within(updates.next(), 10_000, 'the current bucket')).value!.salesUpdated;
      assert.equal(first.granularity, 'HOUR');
      assert.equal(Date.parse(first.start) % 3_600_000, 0, `a whole hour: ${first.start}`);
      assert.equal(first.revenue.currency, first.currency);

      // SDK-A4 is this test's alone: 2 units at 10.00.
      const { placeOrder: placed } = await alice.placeOrder({ input: orderInput('SDK-A4', 2) });
      let last = first;
      await within(
        (async () => {
          for await (const { salesUpdated: bucket } of updates) {
            assert.ok(bucket.start !== last.start || bucket.version >= last.version, `versions of ${bucket.start} never go back`);
            last = bucket;
            const sameHour = bucket.start === first.start;
            if (bucket.ordersConfirmed >= (sameHour ? first.ordersConfirmed + 1 : 1) && bucket.revenue.amount >= (sameHour ? first.revenue.amount : 0) + 2000)
              break;
          }
        })(),
        20_000,
        `order ${placed.id} confirmed in the live bucket; last ${JSON.stringify(last)}`,
      );
      assert.ok(last.version > 0);

      const from = first.start;
      const to = new Date(Date.parse(first.start) + 2 * 3_600_000).toISOString();
      const { salesSummary } = await admin.salesSummary({ from, to, granularity: 'HOUR' });
      assert.deepEqual(
        salesSummary.map((b) => b.start),
        [from, new Date(Date.parse(from) + 3_600_000).toISOString()],
        'one bucket per hour, the empty one too',
      );
      const summarised = salesSummary.find((b) => b.start === last.start)!;
      assert.ok(summarised.version >= last.version && summarised.ordersConfirmed >= last.ordersConfirmed, JSON.stringify(summarised));

      // Earlier tests' orders may settle in the same hour, so the bucket alone does not prove this one counted: its product does.
      const a4 = await waitFor(
        async () => (await admin.topProducts({ from, to, first: 100 })).topProducts.find((p) => p.product.sku === 'SDK-A4'),
        'SDK-A4 in topProducts',
        10_000,
      );
      assert.deepEqual(a4, { product: { sku: 'SDK-A4', name: 'Saga SDK-A4' }, unitsSold: 2, revenue: { amount: 2000, currency: first.currency } });

      const bad = await failure(admin.salesSummary({ from: to, to: from, granularity: 'HOUR' }));
      assert.equal(bad.code, ErrorCode.BadUserInput);
    });
  });

  describe('notifications', () => {
    it('myNotifications and orderNotifications list the messages about my order; another customer gets FORBIDDEN', async () => {
      // A customer of this test alone, without an e-mail address: the messages are SKIPPED, and say why.
      const dana = client(await stack.token('sdk-dana', ['customer']));
      await dana.me();
      const { placeOrder: placed } = await dana.placeOrder({ input: orderInput('SDK-A5', 1) });
      const { order } = await waitFor(
        async () => {
          const found = await dana.orderNotifications({ id: placed.id });
          return found.order?.notifications.some((n) => n.kind === 'ORDER_PLACED' && n.status === 'SKIPPED') ? found : undefined;
        },
        'the ORDER_PLACED message recorded as SKIPPED',
        20_000,
      );
      const message = order!.notifications.find((n) => n.kind === 'ORDER_PLACED')!;
      assert.deepEqual([message.channel, message.recipient, message.statusReason, message.attempts], ['EMAIL', null, 'the profile has no e-mail address', 0]);
      assert.match(message.subject, new RegExp(placed.id.slice(0, 8).toUpperCase()));
      const { myNotifications } = await dana.myNotifications({ first: 20 });
      assert.ok(myNotifications.edges.some((e) => e.node.id === message.id && e.node.order.id === placed.id));
      assert.equal((await failure(alice.orderNotifications({ id: placed.id }))).code, ErrorCode.Forbidden);
    });
  });
});
