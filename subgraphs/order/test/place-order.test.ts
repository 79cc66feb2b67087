/**
 * placeOrder against a real order service (Postgres, Kafka): prices from the replica only,
 * OrderPlaced through the outbox, idempotency (also under a race), input checks that write
 * nothing, and the price replica's versioning.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { eventsTopic } from '@swiftcart/platform';
import type { TestStack } from '../../../test/support/stack.ts';
import { drain } from '../../../test/support/drain.ts';
import {
  ADDRESS,
  OrderEventProbe,
  PLACE_ORDER,
  READ_ORDER,
  em,
  orderInput,
  productDiscontinued,
  productEvent,
  produce,
  replicaRow,
  rowCounts,
  seedCatalogue,
  startOrderStack,
  waitFor,
} from './support.ts';

const DEADLINE_MS = 600_000;

describe('placeOrder', () => {
  let stack: TestStack;
  let probe: OrderEventProbe;
  let alice: string;
  let bob: string;

  before(async () => {
    stack = await startOrderStack({ ORDER_DEADLINE_MS: String(DEADLINE_MS) });
    probe = await OrderEventProbe.start(stack.services.order!.runtime.kafka);
    [alice, bob] = await Promise.all([stack.token('alice', ['customer']), stack.token('bob', ['customer'])]);
    await seedCatalogue(stack, [
      { sku: 'MUG-BLUE', amount: 1299 },
      { sku: 'TEE-M', amount: 2400 },
      { sku: 'OLD-LAMP', amount: 5000, status: 'DISCONTINUED' },
      { sku: 'USD-CAP', amount: 1500, currency: 'USD' },
    ]);
  });

  /** Waits until the catalogue consumer has recorded (applied or skipped) every one of these events. */
  async function consumed(ids: readonly string[]): Promise<void> {
    await waitFor(async () => {
      const [row] = await em(stack).execute<{ n: number }[]>(
        `select count(*)::int as n from inbox where consumer = 'order.catalogue' and event_id in (${ids.map(() => '?').join(', ')})`,
        [...ids],
      );
      return row.n === ids.length;
    }, `the catalogue consumer to record ${ids.length} events`);
  }

  after(async () => {
    await probe?.stop();
    await stack?.close();
  });

  test('places a PENDING order priced from the replica and publishes one OrderPlaced', async () => {
    const placedAt = Date.now();
    const result = await stack.graphql(PLACE_ORDER, {
      token: alice,
      variables: {
        input: orderInput(
          [
            { sku: 'TEE-M', quantity: 1 },
            { sku: 'MUG-BLUE', quantity: 3 },
          ],
          { paymentMethod: 'tok_visa' },
        ),
      },
    });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const order = result.data.placeOrder;
    assert.equal(order.status, 'PENDING');
    assert.equal(order.customerId, 'alice');
    assert.equal(order.paymentMethod, 'tok_visa');
    assert.deepEqual(order.shippingAddress, ADDRESS);
    // Lines come back by sku; the prices are the replica's: 3 × 12.99 + 1 × 24.00.
    assert.deepEqual(
      order.items.map((i: any) => [i.sku, i.quantity, i.unitPrice.amount, i.lineTotal.amount]),
      [
        ['MUG-BLUE', 3, 1299, 3897],
        ['TEE-M', 1, 2400, 2400],
      ],
    );
    assert.deepEqual(order.total, { amount: 3 * 1299 + 2400, currency: 'EUR' });
    assert.deepEqual(
      order.timeline.map((t: any) => [t.status, t.eventType, t.eventId, t.reason]),
      [['PENDING', null, null, null]],
    );

    const [placed] = await probe.waitFor(order.id, 'OrderPlaced');
    assert.equal(placed.source, 'order');
    assert.equal(placed.aggregateType, 'Order');
    assert.equal(placed.aggregateId, order.id);
    assert.equal(placed.correlationId, order.id);
    assert.equal(placed.causationId, null);
    const data = placed.data as any;
    assert.equal(data.orderId, order.id);
    assert.equal(data.customerId, 'alice');
    // In the client's order, with the replica's prices.
    assert.deepEqual(data.items, [
      { sku: 'TEE-M', quantity: 1, unitPrice: { amount: 2400, currency: 'EUR' } },
      { sku: 'MUG-BLUE', quantity: 3, unitPrice: { amount: 1299, currency: 'EUR' } },
    ]);
    assert.deepEqual(data.total, { amount: 6297, currency: 'EUR' });
    const deadline = Date.parse(data.deadlineAt);
    assert.ok(deadline >= placedAt + DEADLINE_MS && deadline <= Date.now() + DEADLINE_MS, `deadlineAt ${data.deadlineAt} is now + ORDER_DEADLINE_MS`);

    const [row] = await em(stack).execute<any[]>('select status, deadline_at, shipping_address, payment_method, request_hash from orders where id = ?', [
      order.id,
    ]);
    assert.equal(row.status, 'PENDING');
    assert.equal(new Date(row.deadline_at).toISOString(), data.deadlineAt);
    assert.deepEqual(row.shipping_address, ADDRESS);
    assert.equal(row.payment_method, 'tok_visa');
    assert.match(row.request_hash, /^[0-9a-f]{64}$/);
    // Exactly one event for this order, and it has been published, with its live change.
    assert.deepEqual(
      probe.of(order.id).map((e) => e.type),
      ['OrderPlaced'],
    );
    await waitFor(async () => {
      const rows = await em(stack).execute<{ type: string; topic: string | null }[]>(
        'select type, topic from outbox where aggregateid = ? and published_at is not null order by sequence',
        [order.id],
      );
      return rows.length === 2 ? rows : undefined;
    }, 'the outbox rows to be marked done').then((rows) =>
      assert.deepEqual(
        rows.map((r) => [r.type, r.topic === null]),
        [
          ['OrderPlaced', false],
          ['OrderChanged', true],
        ],
      ),
    );
  });

  test('the client cannot send prices: a unitPrice in the input is refused before any resolver runs', async () => {
    const before = await rowCounts(stack);
    const input = orderInput([{ sku: 'MUG-BLUE', quantity: 1, unitPrice: { amount: 1, currency: 'EUR' } } as any]);
    const result = await stack.graphql(PLACE_ORDER, { token: alice, variables: { input } });
    assert.equal(result.errors?.[0].extensions?.code, 'BAD_USER_INPUT');
    assert.match(result.errors![0].message, /unitPrice/);
    assert.deepEqual(await rowCounts(stack), before);
  });

  test('the same key and input returns the same order, with no new row and no new event', async () => {
    const input = orderInput([{ sku: 'MUG-BLUE', quantity: 2 }]);
    const first = await stack.graphql(PLACE_ORDER, { token: alice, variables: { input } });
    assert.equal(first.errors, undefined);
    const id = first.data.placeOrder.id;
    await probe.waitFor(id, 'OrderPlaced');
    const before = await rowCounts(stack);
    // The same request again, whitespace and line order aside (the hash is over the checked input).
    const again = await stack.graphql(PLACE_ORDER, {
      token: alice,
      variables: { input: { ...input, paymentMethod: ' tok_visa ', shippingAddress: { ...ADDRESS, city: 'Berlin ' } } },
    });
    assert.equal(again.errors, undefined);
    assert.equal(again.data.placeOrder.id, id);
    assert.deepEqual(again.data.placeOrder, first.data.placeOrder);
    assert.deepEqual(await rowCounts(stack), before);
    // Another customer's key space is separate: the same key places bob's own order.
    const bobs = await stack.graphql(PLACE_ORDER, { token: bob, variables: { input } });
    assert.equal(bobs.errors, undefined);
    assert.notEqual(bobs.data.placeOrder.id, id);
    assert.equal(bobs.data.placeOrder.customerId, 'bob');
    await drain(stack);
    assert.equal(probe.of(id).length, 1, 'the retry published nothing');
  });

  test('the same key with other input is IDEMPOTENCY_KEY_REUSED and writes nothing', async () => {
    const idempotencyKey = randomUUID();
    const first = await stack.graphql(PLACE_ORDER, { token: alice, variables: { input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { idempotencyKey }) } });
    assert.equal(first.errors, undefined);
    const before = await rowCounts(stack);
    for (const input of [
      orderInput([{ sku: 'MUG-BLUE', quantity: 2 }], { idempotencyKey }),
      orderInput(
        [
          { sku: 'MUG-BLUE', quantity: 1 },
          { sku: 'TEE-M', quantity: 1 },
        ],
        { idempotencyKey },
      ),
      orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { idempotencyKey, paymentMethod: 'tok_decline' }),
      orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { idempotencyKey, shippingAddress: { ...ADDRESS, line2: 'c/o Babbage' } }),
    ]) {
      const result = await stack.graphql(PLACE_ORDER, { token: alice, variables: { input } });
      assert.equal(result.errors?.[0].extensions?.code, 'IDEMPOTENCY_KEY_REUSED', JSON.stringify(input));
      assert.equal(result.errors?.[0].extensions?.field, 'input.idempotencyKey');
      assert.equal(result.data?.placeOrder ?? null, null);
    }
    assert.deepEqual(await rowCounts(stack), before);
  });

  test('ten concurrent identical placements make one order', async () => {
    const input = orderInput([
      { sku: 'TEE-M', quantity: 2 },
      { sku: 'MUG-BLUE', quantity: 1 },
    ]);
    const before = await rowCounts(stack);
    const results = await Promise.all(Array.from({ length: 10 }, () => stack.graphql(PLACE_ORDER, { token: alice, variables: { input } })));
    for (const result of results) assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const ids = new Set(results.map((r) => r.data.placeOrder.id));
    assert.equal(ids.size, 1, 'every request got the same order');
    const after = await rowCounts(stack);
    assert.equal(after.orders - before.orders, 1);
    assert.equal(after.items - before.items, 2);
    assert.equal(after.transitions - before.transitions, 1);
    assert.equal(after.outbox - before.outbox, 1);
    assert.equal(after.live - before.live, 1, 'one live change (OrderChanged) for the subscribers');
    const [id] = ids;
    await probe.waitFor(id, 'OrderPlaced');
    await drain(stack);
    assert.equal(probe.of(id).length, 1);
  });

  test('bad input is refused with its code and field, and writes nothing', async () => {
    const cases: { name: string; input: unknown; code: string; field?: string; message?: RegExp }[] = [
      { name: 'empty cart', input: orderInput([]), code: 'BAD_USER_INPUT', field: 'input.items' },
      { name: 'quantity 0', input: orderInput([{ sku: 'MUG-BLUE', quantity: 0 }]), code: 'BAD_USER_INPUT', field: 'input.items[0].quantity' },
      {
        name: 'quantity -1',
        input: orderInput([
          { sku: 'TEE-M', quantity: 1 },
          { sku: 'MUG-BLUE', quantity: -1 },
        ]),
        code: 'BAD_USER_INPUT',
        field: 'input.items[1].quantity',
      },
      { name: 'quantity 1001', input: orderInput([{ sku: 'MUG-BLUE', quantity: 1001 }]), code: 'BAD_USER_INPUT', field: 'input.items[0].quantity' },
      {
        name: 'unknown sku',
        input: orderInput([
          { sku: 'MUG-BLUE', quantity: 1 },
          { sku: 'NO-SUCH-SKU', quantity: 1 },
        ]),
        code: 'BAD_USER_INPUT',
        field: 'input.items[1].sku',
        message: /unknown sku/,
      },
      { name: 'discontinued sku', input: orderInput([{ sku: 'OLD-LAMP', quantity: 1 }]), code: 'PRODUCT_UNAVAILABLE', field: 'input.items[0].sku' },
      {
        name: 'duplicate skus',
        input: orderInput([
          { sku: 'MUG-BLUE', quantity: 1 },
          { sku: 'MUG-BLUE', quantity: 2 },
        ]),
        code: 'BAD_USER_INPUT',
        field: 'input.items[1].sku',
      },
      { name: 'malformed sku', input: orderInput([{ sku: 'no spaces allowed', quantity: 1 }]), code: 'BAD_USER_INPUT', field: 'input.items[0].sku' },
      {
        name: 'two currencies',
        input: orderInput([
          { sku: 'MUG-BLUE', quantity: 1 },
          { sku: 'USD-CAP', quantity: 1 },
        ]),
        code: 'BAD_USER_INPUT',
        field: 'input.items[1].sku',
      },
      {
        name: '101 lines',
        input: orderInput(Array.from({ length: 101 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1 }))),
        code: 'BAD_USER_INPUT',
        field: 'input.items',
      },
      {
        name: 'empty idempotency key',
        input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { idempotencyKey: '' }),
        code: 'BAD_USER_INPUT',
        field: 'input.idempotencyKey',
      },
      {
        name: 'long idempotency key',
        input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { idempotencyKey: 'k'.repeat(101) }),
        code: 'BAD_USER_INPUT',
        field: 'input.idempotencyKey',
      },
      {
        name: 'blank payment method',
        input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { paymentMethod: '  ' }),
        code: 'BAD_USER_INPUT',
        field: 'input.paymentMethod',
      },
      {
        name: 'long payment method',
        input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { paymentMethod: 't'.repeat(101) }),
        code: 'BAD_USER_INPUT',
        field: 'input.paymentMethod',
      },
      {
        name: 'lower-case country',
        input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { shippingAddress: { ...ADDRESS, country: 'de' } }),
        code: 'BAD_USER_INPUT',
        field: 'input.shippingAddress.country',
      },
      {
        name: 'empty name',
        input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { shippingAddress: { ...ADDRESS, name: ' ' } }),
        code: 'BAD_USER_INPUT',
        field: 'input.shippingAddress.name',
      },
      {
        name: 'long postal code',
        input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { shippingAddress: { ...ADDRESS, postalCode: '1'.repeat(21) } }),
        code: 'BAD_USER_INPUT',
        field: 'input.shippingAddress.postalCode',
      },
      {
        name: 'long city',
        input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { shippingAddress: { ...ADDRESS, city: 'c'.repeat(101) } }),
        code: 'BAD_USER_INPUT',
        field: 'input.shippingAddress.city',
      },
      {
        name: 'long line2',
        input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { shippingAddress: { ...ADDRESS, line2: 'l'.repeat(201) } }),
        code: 'BAD_USER_INPUT',
        field: 'input.shippingAddress.line2',
      },
    ];
    const before = await rowCounts(stack);
    for (const c of cases) {
      const result = await stack.graphql(PLACE_ORDER, { token: alice, variables: { input: c.input } });
      assert.equal(result.errors?.length, 1, `${c.name}: ${JSON.stringify(result.errors)}`);
      assert.equal(result.errors![0].extensions?.code, c.code, c.name);
      assert.equal(result.errors![0].extensions?.field, c.field, c.name);
      if (c.message) assert.match(result.errors![0].message, c.message, c.name);
      assert.equal(result.data?.placeOrder ?? null, null, c.name);
    }
    assert.deepEqual(await rowCounts(stack), before, 'no order, line, transition or outbox row was written');
  });

  test('placeOrder without a token is UNAUTHENTICATED and writes nothing', async () => {
    const before = await rowCounts(stack);
    const result = await stack.graphql(PLACE_ORDER, { token: null, variables: { input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }]) } });
    assert.equal(result.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    assert.deepEqual(await rowCounts(stack), before);
  });

  test('the replica takes a newer product version and ignores an older one', async () => {
    await seedCatalogue(stack, [{ sku: 'LAMP-1', amount: 1000, version: 2 }]);
    const events = [
      productEvent('ProductUpdated', { sku: 'LAMP-1', amount: 1200, version: 3 }),
      // Stale: older versions arriving late (a replay) must not bring an old price back.
      productEvent('ProductUpdated', { sku: 'LAMP-1', amount: 900, version: 1 }),
      productEvent('ProductCreated', { sku: 'LAMP-1', amount: 800, version: 3 }),
    ];
    await produce(stack, eventsTopic('product'), events);
    await consumed(events.map((e) => e.id));
    assert.deepEqual(await replicaRow(stack, 'LAMP-1'), { price_amount: 1200, currency: 'EUR', status: 'ACTIVE', version: 3 });

    // A new order is priced at the new price.
    const result = await stack.graphql(PLACE_ORDER, { token: alice, variables: { input: orderInput([{ sku: 'LAMP-1', quantity: 2 }]) } });
    assert.equal(result.errors, undefined);
    assert.deepEqual(result.data.placeOrder.total, { amount: 2400, currency: 'EUR' });

    // A newer discontinuation makes it unavailable; one of a sku never seen leaves a tombstone that
    // an older ProductCreated arriving after it cannot revive.
    const later = [
      productDiscontinued('LAMP-1', 4),
      productDiscontinued('GHOST', 5),
      productEvent('ProductCreated', { sku: 'GHOST', amount: 700, version: 1 }),
    ];
    await produce(stack, eventsTopic('product'), later);
    await consumed(later.map((e) => e.id));
    assert.deepEqual(await replicaRow(stack, 'LAMP-1'), { price_amount: 1200, currency: 'EUR', status: 'DISCONTINUED', version: 4 });
    assert.deepEqual(await replicaRow(stack, 'GHOST'), { price_amount: 0, currency: 'XXX', status: 'DISCONTINUED', version: 5 });
    for (const sku of ['LAMP-1', 'GHOST']) {
      const refused = await stack.graphql(PLACE_ORDER, { token: alice, variables: { input: orderInput([{ sku, quantity: 1 }]) } });
      assert.equal(refused.errors?.[0].extensions?.code, 'PRODUCT_UNAVAILABLE', sku);
    }
  });

  test('order(id) shows the shipping address and payment method to the owner only', async () => {
    const placed = await stack.graphql(PLACE_ORDER, {
      token: alice,
      variables: { input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }], { shippingAddress: { ...ADDRESS, line2: ' c/o Babbage ' } }) },
    });
    assert.equal(placed.errors, undefined);
    const id = placed.data.placeOrder.id;
    const mine = await stack.graphql(READ_ORDER, { token: alice, variables: { id } });
    assert.deepEqual(mine.data.order.shippingAddress, { ...ADDRESS, line2: 'c/o Babbage' });
    assert.equal(mine.data.order.paymentMethod, 'tok_visa');
    const theirs = await stack.graphql(`query ($id: ID!) { order(id: $id) { shippingAddress { city } paymentMethod } }`, { token: bob, variables: { id } });
    assert.equal(theirs.errors?.[0].extensions?.code, 'FORBIDDEN');
    assert.equal(theirs.data?.order ?? null, null);
  });
});
