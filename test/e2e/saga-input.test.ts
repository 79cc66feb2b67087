/**
 * What placeOrder and cancelOrder refuse, and idempotent placement, end to end through the gateway.
 * Every refusal must come with a clear error and write nothing: no order row, no line, no timeline
 * entry, no outbox event (counted in the order database before and after).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { TestStack } from '../support/stack.ts';
import {
  type SagaSystem,
  CANCEL_ORDER,
  READ_ORDER,
  countRows,
  dispatchWhenReady,
  orderDbCounts,
  orderInput,
  placeOrder,
  pool,
  drainSystem,
  quiesce,
  startSeededSaga,
  stockOf,
  tryPlaceOrder,
  waitFor,
  waitForStatus,
  PLACE_ORDER,
} from '../support/saga.ts';

const MY_ORDERS = `query Mine { myOrders(first: 10) { totalCount edges { node { id status items { sku quantity } } } } }`;

describe('order saga: idempotency and bad input through the gateway', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let admin: string;

  before(async () => {
    ({ stack, system, admin } = await startSeededSaga([
      { sku: 'IDEM-1', onHand: 100, priceAmount: 500 },
      { sku: 'IDEM-2', onHand: 100, priceAmount: 700 },
      { sku: 'BAD-1', onHand: 50, priceAmount: 100 },
      { sku: 'GONE-1', onHand: 50, priceAmount: 100 },
    ]));
  });
  after(() => stack?.close());

  /**
   * Asserts that `run` fails with `code` (and a message matching `message`) and changes no row of
   * the order database, once the system has drained. Call {@link quiesce} first, so no saga in
   * flight writes in the meantime.
   */
  async function refused(what: string, run: () => Promise<any>, code: string, message?: RegExp): Promise<void> {
    const before = await orderDbCounts(system);
    const result = await run();
    const error = result.errors?.[0];
    assert.equal(error?.extensions?.code, code, `${what}: expected ${code}, got ${JSON.stringify(result.errors ?? result.data)}`);
    assert.ok(typeof error.message === 'string' && error.message.length > 10, `${what}: a clear message, got "${error?.message}"`);
    if (message) assert.match(error.message, message, `${what}: message`);
    assert.equal(result.data?.placeOrder ?? result.data?.cancelOrder ?? null, null, `${what}: no order returned`);
    await drainSystem(system);
    assert.deepEqual(await orderDbCounts(system), before, `${what}: nothing written (orders, lines, timeline, outbox)`);
  }

  it('the same key and input twice is one order: same id, once in myOrders, one OrderPlaced', async () => {
    const token = await stack.token('idem-customer', ['customer']);
    const key = `checkout-${randomUUID()}`;
    const items = [{ sku: 'IDEM-1', quantity: 2 }];
    const first = await placeOrder(system, token, items, 'tok_visa', key);
    const ordersAfterFirst = await orderDbCounts(system);
    const second = await placeOrder(system, token, items, 'tok_visa', key);
    assert.equal(second.id, first.id, 'a retry gets the first order back');
    assert.deepEqual(second.items, first.items);
    assert.deepEqual(second.total, first.total);
    const mine = await system.graphql(MY_ORDERS, { token });
    assert.equal(mine.errors, undefined, JSON.stringify(mine.errors));
    assert.equal(mine.data.myOrders.totalCount, 1);
    assert.deepEqual(
      mine.data.myOrders.edges.map((e: any) => e.node.id),
      [first.id],
    );
    assert.equal(await countRows(system, 'order', 'orders', 'customer_id = ?', ['idem-customer']), 1);
    assert.equal(await countRows(system, 'order', 'outbox', `aggregateid = ? and type = 'OrderPlaced'`, [first.id]), 1);
    assert.equal((await orderDbCounts(system)).orders, ordersAfterFirst.orders, 'the retry wrote no order');
    // The one order runs its saga once: stock is reserved (then committed) for 2 units, not 4.
    await waitForStatus(system, token, first.id, ['CONFIRMED']);
    await waitFor(async () => ((await stockOf(system, 'IDEM-1')).onHand === 98 ? true : undefined), 'IDEM-1 committed');
    await drainSystem(system);
    assert.deepEqual(await stockOf(system, 'IDEM-1'), { onHand: 98, reserved: 0, available: 98 });
  });

  it('the same key with other input is IDEMPOTENCY_KEY_REUSED and writes nothing', async () => {
    const token = await stack.token('idem-reuse', ['customer']);
    const key = `checkout-${randomUUID()}`;
    const first = await placeOrder(system, token, [{ sku: 'IDEM-1', quantity: 1 }], 'tok_visa', key);
    await quiesce(system);
    await refused('another quantity', () => tryPlaceOrder(system, token, [{ sku: 'IDEM-1', quantity: 2 }], 'tok_visa', key), 'IDEMPOTENCY_KEY_REUSED');
    await refused('another sku', () => tryPlaceOrder(system, token, [{ sku: 'IDEM-2', quantity: 1 }], 'tok_visa', key), 'IDEMPOTENCY_KEY_REUSED');
    await refused('another payment method', () => tryPlaceOrder(system, token, [{ sku: 'IDEM-1', quantity: 1 }], 'tok_decline', key), 'IDEMPOTENCY_KEY_REUSED');
    const mine = await system.graphql(MY_ORDERS, { token });
    assert.deepEqual(
      mine.data.myOrders.edges.map((e: any) => e.node.id),
      [first.id],
    );
    assert.deepEqual(mine.data.myOrders.edges[0].node.items, [{ sku: 'IDEM-1', quantity: 1 }], 'the first order is untouched');
    // The key belongs to one customer: another customer may use the same key for their own order.
    const other = await stack.token('idem-other', ['customer']);
    const theirs = await placeOrder(system, other, [{ sku: 'IDEM-1', quantity: 2 }], 'tok_visa', key);
    assert.notEqual(theirs.id, first.id);
  });

  it('concurrent retries of one placement (same key and input) create exactly one order', async () => {
    const token = await stack.token('idem-racer', ['customer']);
    const input = orderInput([{ sku: 'IDEM-2', quantity: 1 }], 'tok_visa', `race-${randomUUID()}`);
    const results = await Promise.all(Array.from({ length: 8 }, () => system.graphql(PLACE_ORDER, { token, variables: { input } })));
    for (const result of results) assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const ids = new Set(results.map((r) => r.data.placeOrder.id));
    assert.equal(ids.size, 1, `one order id for all retries, got ${[...ids].join(', ')}`);
    assert.equal(await countRows(system, 'order', 'orders', 'customer_id = ?', ['idem-racer']), 1);
    assert.equal(await countRows(system, 'order', 'outbox', `aggregateid = ? and type = 'OrderPlaced'`, [[...ids][0]]), 1);
  });

  it('bad placements get a clear error and write nothing', async () => {
    const token = await stack.token('bad-customer', ['customer']);
    const place =
      (input: Record<string, unknown>, as: string | null = token) =>
      () =>
        system.graphql(PLACE_ORDER, { token: as, variables: { input } });
    const base = orderInput([{ sku: 'BAD-1', quantity: 1 }], 'tok_visa');
    const stockBefore = await stockOf(system, 'BAD-1');
    await quiesce(system);

    await refused('empty cart', place({ ...base, items: [] }), 'BAD_USER_INPUT', /items/);
    await refused('quantity 0', place({ ...base, items: [{ sku: 'BAD-1', quantity: 0 }] }), 'BAD_USER_INPUT', /quantity/);
    await refused('quantity -1', place({ ...base, items: [{ sku: 'BAD-1', quantity: -1 }] }), 'BAD_USER_INPUT', /quantity/);
    await refused('quantity 1001', place({ ...base, items: [{ sku: 'BAD-1', quantity: 1001 }] }), 'BAD_USER_INPUT', /quantity/);
    await refused(
      'a sku twice',
      place({
        ...base,
        items: [
          { sku: 'BAD-1', quantity: 1 },
          { sku: 'BAD-1', quantity: 2 },
        ],
      }),
      'BAD_USER_INPUT',
      /BAD-1/,
    );
    await refused('unknown sku', place({ ...base, items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }] }), 'BAD_USER_INPUT', /NO-SUCH-SKU/);
    await refused(
      'unknown sku beside a good one',
      place({
        ...base,
        items: [
          { sku: 'BAD-1', quantity: 1 },
          { sku: 'NO-SUCH-SKU', quantity: 1 },
        ],
      }),
      'BAD_USER_INPUT',
      /NO-SUCH-SKU/,
    );
    await refused('invalid sku', place({ ...base, items: [{ sku: 'no spaces allowed', quantity: 1 }] }), 'BAD_USER_INPUT', /sku/);
    await refused('empty idempotency key', place({ ...base, idempotencyKey: '' }), 'BAD_USER_INPUT', /idempotencyKey/);
    await refused('empty payment method', place({ ...base, paymentMethod: ' ' }), 'BAD_USER_INPUT', /paymentMethod/);
    await refused('empty recipient', place({ ...base, shippingAddress: { ...base.shippingAddress, name: '' } }), 'BAD_USER_INPUT', /name/);
    await refused('bad country', place({ ...base, shippingAddress: { ...base.shippingAddress, country: 'Germany' } }), 'BAD_USER_INPUT', /country/);
    await refused('no token', place(base, null), 'UNAUTHENTICATED');

    await drainSystem(system);
    assert.deepEqual(await stockOf(system, 'BAD-1'), stockBefore, 'no refusal reached inventory');
  });

  it('a discontinued product cannot be ordered (PRODUCT_UNAVAILABLE) and nothing is written', async () => {
    const discontinued = await system.graphql(`mutation { discontinueProduct(sku: "GONE-1") { sku status } }`, { token: admin });
    assert.equal(discontinued.errors, undefined, JSON.stringify(discontinued.errors));
    await waitFor(
      async () => ((await countRows(system, 'order', 'catalogue_price', `sku = 'GONE-1' and status = 'DISCONTINUED'`)) === 1 ? true : undefined),
      'the replica to see GONE-1 discontinued',
    );
    const token = await stack.token('gone-customer', ['customer']);
    await quiesce(system);
    await refused('discontinued sku', () => tryPlaceOrder(system, token, [{ sku: 'GONE-1', quantity: 1 }], 'tok_visa'), 'PRODUCT_UNAVAILABLE', /GONE-1/);
  });

  it("another customer's order: order(id) and cancelOrder are FORBIDDEN and change nothing", async () => {
    const alice = await stack.token('alice', ['customer']);
    const bob = await stack.token('bob', ['customer']);
    const order = await placeOrder(system, alice, [{ sku: 'BAD-1', quantity: 1 }], 'tok_visa');
    const confirmed = await waitForStatus(system, alice, order.id, ['CONFIRMED', 'CANCELLED', 'REJECTED']);
    assert.equal(confirmed.status, 'CONFIRMED');
    await quiesce(system);

    const read = await system.graphql(READ_ORDER, { token: bob, variables: { id: order.id } });
    assert.equal(read.errors?.[0]?.extensions?.code, 'FORBIDDEN', JSON.stringify(read));
    assert.equal(read.data?.order ?? null, null, 'nothing of the order leaks');
    await refused(
      "cancelling another customer's order",
      () => system.graphql(CANCEL_ORDER, { token: bob, variables: { id: order.id, reason: 'mine now' } }),
      'FORBIDDEN',
    );
    await refused('cancelling without a token', () => system.graphql(CANCEL_ORDER, { token: null, variables: { id: order.id } }), 'UNAUTHENTICATED');
    await refused('cancelling an unknown order', () => system.graphql(CANCEL_ORDER, { token: alice, variables: { id: randomUUID() } }), 'NOT_FOUND');
    await refused(
      'cancelling with an id that is no UUID',
      () => system.graphql(CANCEL_ORDER, { token: alice, variables: { id: 'order-1' } }),
      'BAD_USER_INPUT',
    );
    assert.equal((await waitForStatus(system, alice, order.id, ['CONFIRMED'])).status, 'CONFIRMED');
  });

  it('cancelling a shipped order is ORDER_NOT_CANCELLABLE and changes nothing', async () => {
    const token = await stack.token('shipped-customer', ['customer']);
    const order = await placeOrder(system, token, [{ sku: 'BAD-1', quantity: 2 }], 'tok_visa');
    assert.equal((await waitForStatus(system, token, order.id, ['CONFIRMED', 'CANCELLED', 'REJECTED'])).status, 'CONFIRMED');
    await dispatchWhenReady(system, admin, token, order.id, 'UPS', '1Z999AA10123456784');
    const shipped = await waitForStatus(system, token, order.id, ['SHIPPED']);
    await quiesce(system);
    await refused(
      'customer cancels a shipped order',
      () => system.graphql(CANCEL_ORDER, { token, variables: { id: order.id } }),
      'ORDER_NOT_CANCELLABLE',
      /SHIPPED/,
    );
    await refused('admin cancels a shipped order', () => system.graphql(CANCEL_ORDER, { token: admin, variables: { id: order.id } }), 'ORDER_NOT_CANCELLABLE');
    const after = await waitForStatus(system, token, order.id, ['SHIPPED']);
    assert.ok(after.timeline.length >= shipped.timeline.length);
    assert.equal(after.timeline.filter((e: any) => e.status === 'CANCELLED').length, 0);
    assert.equal(after.shipment.status, 'DISPATCHED');
    assert.equal(after.payment.status, 'AUTHORIZED', 'no refund for a shipped order');
  });

  it('many different customers placing at once each get their own order', async () => {
    const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => stack.token(`crowd-${i}`, ['customer'])));
    const orders = await pool(tokens, 10, (token) => placeOrder(system, token, [{ sku: 'IDEM-2', quantity: 1 }], 'tok_visa', 'same-key-for-everyone'));
    assert.equal(new Set(orders.map((o) => o.id)).size, 10);
  });
});
