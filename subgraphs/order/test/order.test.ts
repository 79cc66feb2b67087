import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { encodeCursor } from '@swiftcart/platform';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { Order, OrderItem, OrderTransition, type OrderStatus } from '../src/entities.ts';

const ORDER_FIELDS = `
  id customerId status createdAt updatedAt
  items { sku quantity unitPrice { amount currency } lineTotal { amount currency } product { sku } }
  total { amount currency }
  timeline { status at eventType eventId reason }`;
const ORDER = `query ($id: ID!) { order(id: $id) { ${ORDER_FIELDS} } }`;
const MY_ORDERS = `query ($first: Int, $after: String) {
  myOrders(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id createdAt total { amount } } } }
}`;

interface Fixture {
  readonly id?: string;
  readonly customerId: string;
  readonly createdAt: Date;
  readonly status?: OrderStatus;
  readonly items?: readonly { sku: string; quantity: number; unitPriceAmount: number }[];
  readonly timeline?: readonly { status: OrderStatus; at: Date; eventType?: string; eventId?: string; reason?: string }[];
}

/** Inserts one order with its lines and timeline through the order service's own EntityManager. */
async function insertOrder(stack: TestStack, fixture: Fixture): Promise<string> {
  const em = stack.services.order!.runtime.db.fork();
  const id = fixture.id ?? randomUUID();
  const items = fixture.items ?? [{ sku: 'SKU-1', quantity: 1, unitPriceAmount: 500 }];
  em.create(Order, {
    id,
    customerId: fixture.customerId,
    status: fixture.status ?? 'PENDING',
    currency: 'EUR',
    totalAmount: items.reduce((sum, item) => sum + item.quantity * item.unitPriceAmount, 0),
    idempotencyKey: randomUUID(),
    requestHash: 'hash',
    // Far ahead of the real clock, whatever createdAt says: the deadline sweeper must leave fixtures alone.
    deadlineAt: new Date(Date.now() + 24 * 3_600_000),
    shippingAddress: { name: 'Ada Lovelace', line1: 'Hauptstraße 1', line2: null, city: 'Berlin', postalCode: '10115', country: 'DE' },
    paymentMethod: 'tok_visa',
    createdAt: fixture.createdAt,
    updatedAt: fixture.createdAt,
  });
  for (const item of items) em.create(OrderItem, { order: id, ...item });
  for (const t of fixture.timeline ?? [{ status: 'PENDING' as const, at: fixture.createdAt }]) {
    em.create(OrderTransition, { order: id, status: t.status, at: t.at, eventType: t.eventType ?? null, eventId: t.eventId ?? null, reason: t.reason ?? null });
  }
  await em.flush();
  return id;
}

describe('order subgraph', () => {
  let stack: TestStack;
  let url: string;
  let alice: string;
  let bob: string;
  let admin: string;
  let aliceOrder: string;
  const reservedEvent = randomUUID();
  const paidEvent = randomUUID();
  const placedAt = new Date('2026-11-20T10:00:00.000Z');

  before(async () => {
    // The sweeper sweeps once at start and then not again during this file, so it adds no queries.
    stack = await startStack({ services: ['order', 'payment', 'shipment'], countQueries: true, env: { ORDER_SWEEP_INTERVAL_MS: '3600000' } });
    url = stack.services.order!.url;
    [alice, bob, admin] = await Promise.all([stack.token('alice', ['customer']), stack.token('bob', ['customer']), stack.token('root', ['admin'])]);
    aliceOrder = await insertOrder(stack, {
      customerId: 'alice',
      createdAt: placedAt,
      status: 'CONFIRMED',
      items: [
        { sku: 'MUG-1', quantity: 2, unitPriceAmount: 1250 },
        { sku: 'TEE-9', quantity: 1, unitPriceAmount: 1999 },
      ],
      // Inserted out of order on purpose: the timeline must come back oldest first.
      timeline: [
        { status: 'CONFIRMED', at: new Date('2026-11-20T10:00:02.000Z'), eventType: 'PaymentAuthorized', eventId: paidEvent },
        { status: 'PENDING', at: placedAt },
        {
          status: 'AWAITING_PAYMENT',
          at: new Date('2026-11-20T10:00:01.000Z'),
          eventType: 'StockReserved',
          eventId: reservedEvent,
          reason: 'all lines reserved',
        },
      ],
    });
  });

  after(async () => {
    await stack?.close();
  });

  test('order(id) shows the owner the lines, the total and the timeline oldest first', async () => {
    const result = await stack.graphql(ORDER, { url, token: alice, variables: { id: aliceOrder } });
    assert.equal(result.errors, undefined);
    const order = result.data.order;
    assert.equal(order.id, aliceOrder);
    assert.equal(order.customerId, 'alice');
    assert.equal(order.status, 'CONFIRMED');
    assert.equal(order.createdAt, placedAt.toISOString());
    assert.deepEqual(order.items, [
      { sku: 'MUG-1', quantity: 2, unitPrice: { amount: 1250, currency: 'EUR' }, lineTotal: { amount: 2500, currency: 'EUR' }, product: { sku: 'MUG-1' } },
      { sku: 'TEE-9', quantity: 1, unitPrice: { amount: 1999, currency: 'EUR' }, lineTotal: { amount: 1999, currency: 'EUR' }, product: { sku: 'TEE-9' } },
    ]);
    assert.deepEqual(order.total, { amount: 4499, currency: 'EUR' });
    assert.deepEqual(order.timeline, [
      { status: 'PENDING', at: '2026-11-20T10:00:00.000Z', eventType: null, eventId: null, reason: null },
      { status: 'AWAITING_PAYMENT', at: '2026-11-20T10:00:01.000Z', eventType: 'StockReserved', eventId: reservedEvent, reason: 'all lines reserved' },
      { status: 'CONFIRMED', at: '2026-11-20T10:00:02.000Z', eventType: 'PaymentAuthorized', eventId: paidEvent, reason: null },
    ]);
  });

  test('order(id) accepts the id in upper case', async () => {
    const result = await stack.graphql(ORDER, { url, token: alice, variables: { id: aliceOrder.toUpperCase() } });
    assert.equal(result.errors, undefined);
    assert.equal(result.data.order.id, aliceOrder);
  });

  test('order(id) is FORBIDDEN for another customer, with no data', async () => {
    const result = await stack.graphql(ORDER, { url, token: bob, variables: { id: aliceOrder } });
    assert.equal(result.errors?.length, 1);
    assert.equal(result.errors[0].extensions?.code, 'FORBIDDEN');
    assert.deepEqual(result.errors[0].path, ['order']);
    assert.equal(result.data?.order ?? null, null);
  });

  test('order(id) is readable by an admin', async () => {
    const result = await stack.graphql(ORDER, { url, token: admin, variables: { id: aliceOrder } });
    assert.equal(result.errors, undefined);
    assert.equal(result.data.order.customerId, 'alice');
    assert.deepEqual(result.data.order.total, { amount: 4499, currency: 'EUR' });
  });

  test('order(id) without a token is UNAUTHENTICATED', async () => {
    const result = await stack.graphql(ORDER, { url, variables: { id: aliceOrder } });
    assert.equal(result.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    assert.equal(result.data?.order ?? null, null);
  });

  test('order(id) with an id that is no UUID is BAD_USER_INPUT', async () => {
    const result = await stack.graphql(ORDER, { url, token: alice, variables: { id: 'not-a-uuid' } });
    assert.equal(result.errors?.[0].extensions?.code, 'BAD_USER_INPUT');
    assert.equal(result.errors?.[0].extensions?.field, 'id');
  });

  test('order(id) of an unknown order is null without an error', async () => {
    const result = await stack.graphql(ORDER, { url, token: alice, variables: { id: randomUUID() } });
    assert.equal(result.errors, undefined);
    assert.equal(result.data.order, null);
  });

  test('myOrders pages newest first, without duplicates or gaps', async () => {
    const carol = await stack.token('carol', ['customer']);
    const base = Date.parse('2026-11-21T08:00:00.000Z');
    const ids = [];
    // Two orders share one instant, so the id must break the tie for the cursor to be exact.
    for (const offset of [0, 60_000, 120_000, 120_000, 180_000]) {
      ids.push(await insertOrder(stack, { customerId: 'carol', createdAt: new Date(base + offset) }));
    }
    await insertOrder(stack, { customerId: 'dave', createdAt: new Date(base + 90_000) });
    const expected = [ids[4], ...[ids[2], ids[3]].sort(), ids[1], ids[0]];

    const seen: string[] = [];
    const pages: number[] = [];
    let cursor: string | null = null;
    let hasNextPage = true;
    while (hasNextPage) {
      const result: any = await stack.graphql(MY_ORDERS, { url, token: carol, variables: { first: 2, after: cursor } });
      assert.equal(result.errors, undefined);
      const page = result.data.myOrders;
      assert.equal(page.totalCount, 5);
      pages.push(page.edges.length);
      seen.push(...page.edges.map((edge: any) => edge.node.id));
      assert.equal(page.pageInfo.endCursor, page.edges.at(-1).cursor);
      ({ hasNextPage, endCursor: cursor } = page.pageInfo);
      assert.ok(pages.length <= 3, 'more pages than orders allow');
    }
    assert.deepEqual(pages, [2, 2, 1]);
    assert.deepEqual(seen, expected);
    assert.equal(new Set(seen).size, 5);
  });

  test('myOrders of a customer without orders is an empty page', async () => {
    const erin = await stack.token('erin', ['customer']);
    const result = await stack.graphql(MY_ORDERS, { url, token: erin, variables: { first: 5 } });
    assert.equal(result.errors, undefined);
    assert.deepEqual(result.data.myOrders, { totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] });
  });

  test('myOrders without a token is UNAUTHENTICATED', async () => {
    const result = await stack.graphql(MY_ORDERS, { url, variables: { first: 2 } });
    assert.equal(result.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
  });

  test('myOrders refuses malformed cursors and page sizes outside 1..100', async () => {
    for (const variables of [
      { first: 2, after: 'not a cursor!' },
      { first: 2, after: encodeCursor('no-separator') },
      { first: 2, after: encodeCursor(`yesterday|${randomUUID()}`) },
      { first: 2, after: encodeCursor(`${new Date().toISOString()}|not-a-uuid`) },
      { first: 0 },
      { first: 101 },
      { first: -1 },
    ]) {
      const result = await stack.graphql(MY_ORDERS, { url, token: alice, variables });
      assert.equal(result.errors?.[0].extensions?.code, 'BAD_USER_INPUT', JSON.stringify(variables));
      assert.equal(result.errors?.[0].extensions?.field, 'after' in variables ? 'after' : 'first');
    }
  });

  test('_entities resolves Order references in one batch of three queries, under the ownership rule', async () => {
    const second = await insertOrder(stack, { customerId: 'alice', createdAt: new Date('2026-11-22T09:00:00.000Z') });
    const bobs = await insertOrder(stack, { customerId: 'bob', createdAt: new Date('2026-11-22T09:30:00.000Z') });
    const unknown = randomUUID();
    const query = `query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Order { id customerId total { amount } timeline { status } } } }`;
    const representations = [aliceOrder, second, unknown, bobs].map((id) => ({ __typename: 'Order', id }));
    const db = stack.services.order!.runtime.db;
    // The outbox relay polls on the same pool; these reads must be the only queries counted.
    await stack.services.order!.relay?.stop();
    const before = db.queryCount;
    const result = await stack.graphql(query, { url, token: alice, variables: { representations } });
    assert.equal(db.queryCount - before, 3, 'orders, lines and transitions: one query each for the whole batch');
    assert.equal(result.data._entities[0].id, aliceOrder);
    assert.equal(result.data._entities[0].total.amount, 4499);
    assert.equal(result.data._entities[1].id, second);
    assert.deepEqual(result.data._entities[1].timeline, [{ status: 'PENDING' }]);
    assert.equal(result.data._entities[2], null);
    assert.equal(result.data._entities[3], null);
    assert.equal(result.errors?.length, 1);
    assert.equal(result.errors[0].extensions?.code, 'FORBIDDEN');
    assert.deepEqual(result.errors[0].path, ['_entities', 3]);

    const asAdmin = await stack.graphql(query, { url, token: admin, variables: { representations } });
    assert.equal(asAdmin.errors, undefined);
    assert.equal(asAdmin.data._entities[3].customerId, 'bob');
  });

  test('the migration created every table and the myOrders index', async () => {
    const em = stack.services.order!.runtime.db.fork();
    const tables = await em
      .getConnection()
      .execute<{ table_name: string }[]>(`select table_name from information_schema.tables where table_schema = 'public' order by table_name`);
    const names = tables.map((t) => t.table_name);
    for (const table of ['catalogue_price', 'order_item', 'order_transition', 'orders']) assert.ok(names.includes(table), `${table} exists`);
    const indexes = await em.getConnection().execute<{ indexdef: string }[]>(`select indexdef from pg_indexes where indexname = 'orders_customer_created_idx'`);
    assert.match(indexes[0].indexdef, /\(customer_id, created_at DESC, id\)/);
    const columns = await em.getConnection().execute<{ column_name: string; data_type: string; is_nullable: string; column_default: string | null }[]>(
      `select column_name, data_type, is_nullable, column_default from information_schema.columns
       where table_name = 'orders' and column_name in ('shipping_address', 'payment_method') order by column_name`,
    );
    assert.deepEqual(columns, [
      { column_name: 'payment_method', data_type: 'text', is_nullable: 'NO', column_default: null },
      { column_name: 'shipping_address', data_type: 'jsonb', is_nullable: 'NO', column_default: null },
    ]);
    await assert.rejects(
      em.getConnection().execute(`insert into order_item (order_id, sku, quantity, unit_price_amount) values ('${aliceOrder}', 'ZERO', 0, 1)`),
      /order_item_quantity_check/,
    );
  });
});
