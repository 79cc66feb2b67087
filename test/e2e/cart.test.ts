/**
 * The cart through the gateway, with every service running: lines priced from the cart's catalogue
 * replica and resolved through federation (product name, price, live stock), limits, concurrent
 * changes, warnings, checkout through the order service to CONFIRMED, the live cart of two tabs,
 * and carts that outlive a restart of the cart service. Real PostgreSQL, Redis and Kafka.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startService } from '@swiftcart/platform';
import { CartStore } from '../../subgraphs/cart/src/store.ts';
import type { TestStack } from '../support/stack.ts';
import { loadServiceModule, postGraphQL } from '../support/stack.ts';
import { SAGA_SERVICES, type SagaSystem, startSeededSaga, waitFor, waitForReplica, waitForStatus } from '../support/saga.ts';
import { connectLive } from '../support/subscriptions.ts';

const CART_FIELDS = `items { sku quantity priceWhenAdded { amount } unitPrice { amount } lineTotal { amount } product { sku name price { amount } stock { available } } }
  subtotal { amount currency } itemCount updatedAt version warnings { sku reason message available }`;
const MY_CART = `query { myCart { ${CART_FIELDS} } }`;
const ADD = `mutation ($sku: ID!, $quantity: Int!) { addToCart(sku: $sku, quantity: $quantity) { itemCount items { sku quantity } } }`;
const UPDATE = `mutation ($sku: ID!, $quantity: Int!) { updateCartItem(sku: $sku, quantity: $quantity) { itemCount items { sku quantity } } }`;
const REMOVE = `mutation ($sku: ID!) { removeFromCart(sku: $sku) { itemCount items { sku quantity } } }`;
const CLEAR = `mutation { clearCart { itemCount items { sku } } }`;
const CHECKOUT = `mutation ($input: CheckoutInput!) { checkout(input: $input) { id status total { amount currency } items { sku quantity unitPrice { amount } } } }`;
const CART_UPDATED = `subscription { cartUpdated { itemCount items { sku quantity product { name } } } }`;
const HOME = { name: 'Cart Tester', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' };

/** Skus seeded for this suite; the catalogue's prices in cents. */
const SKUS = [
  { sku: 'CART-A', onHand: 100, priceAmount: 1250 },
  { sku: 'CART-B', onHand: 100, priceAmount: 399 },
  { sku: 'CART-C', onHand: 100, priceAmount: 100 },
  { sku: 'CART-D', onHand: 100, priceAmount: 100 },
  { sku: 'CART-LOW', onHand: 2, priceAmount: 500 },
  { sku: 'CART-PRICE', onHand: 100, priceAmount: 1000 },
  { sku: 'CART-GONE', onHand: 100, priceAmount: 1000 },
  { sku: 'CART-OLD', onHand: 100, priceAmount: 1000 },
];

describe('the cart through the gateway', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let admin: string;

  /** A token for a customer no other test uses. */
  const customer = async (label: string) => stack.token(`cart-${label}-${randomUUID().slice(0, 8)}`, ['customer']);
  const ok = async (query: string, token: string, variables: Record<string, unknown> = {}) => {
    const result = await stack.graphql(query, { token, variables });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data;
  };
  const code = async (query: string, token: string | null, variables: Record<string, unknown> = {}) => {
    const result = await stack.graphql(query, { token, variables });
    return result.errors?.[0]?.extensions;
  };

  before(async () => {
    // Small limits, so the tests reach them.
    ({ stack, system, admin } = await startSeededSaga(SKUS, { CART_MAX_LINES: '4', CART_MAX_QUANTITY: '30', CART_TTL_SECONDS: '3600' }, [
      ...SAGA_SERVICES,
      'cart',
    ]));
    await waitForReplica(
      system,
      SKUS.map((s) => s.sku),
      20_000,
      'cart',
    );
    const gone = await stack.graphql(`mutation { discontinueProduct(sku: "CART-OLD") { status } }`, { token: admin });
    assert.equal(gone.errors, undefined, JSON.stringify(gone.errors));
    await waitFor(
      async () => {
        const rows = await system.em('cart').execute<{ status: string }[]>(`select status from catalogue_price where sku = 'CART-OLD'`);
        return rows[0]?.status === 'DISCONTINUED' || undefined;
      },
      "CART-OLD discontinued in the cart's replica",
      20_000,
    );
  });
  after(() => stack?.close());

  it('an empty cart for a new customer; UNAUTHENTICATED without a token', async () => {
    const token = await customer('empty');
    const { myCart } = await ok(MY_CART, token);
    assert.deepEqual(myCart, { items: [], subtotal: { amount: 0, currency: 'EUR' }, itemCount: 0, updatedAt: null, version: 0, warnings: [] });
    assert.equal((await code(MY_CART, null))?.code, 'UNAUTHENTICATED');
  });

  it('lines carry the product through federation (name, price, live stock), and add up', async () => {
    const token = await customer('lines');
    await ok(ADD, token, { sku: 'CART-A', quantity: 2 });
    await ok(ADD, token, { sku: 'CART-B', quantity: 1 });
    const added = await ok(ADD, token, { sku: 'CART-A', quantity: 1 });
    assert.deepEqual(added.addToCart.items, [
      { sku: 'CART-A', quantity: 3 },
      { sku: 'CART-B', quantity: 1 },
    ]);
    const { myCart } = await ok(MY_CART, token);
    assert.equal(myCart.itemCount, 4);
    assert.deepEqual(myCart.subtotal, { amount: 3 * 1250 + 399, currency: 'EUR' });
    assert.deepEqual(myCart.items[0].product, { sku: 'CART-A', name: 'Saga CART-A', price: { amount: 1250 }, stock: { available: 100 } });
    assert.deepEqual(myCart.items[0].lineTotal, { amount: 3750 });
    assert.ok(Date.parse(myCart.updatedAt) > Date.now() - 60_000);
    assert.deepEqual(myCart.warnings, []);
    await ok(REMOVE, token, { sku: 'CART-B' });
    const after = (await ok(MY_CART, token)).myCart;
    assert.ok(Number.isInteger(after.version) && after.version > myCart.version, `version ${myCart.version} then ${after.version}`);
  });

  it('two tabs adding at once lose nothing', async () => {
    const token = await customer('race');
    await Promise.all([
      ...Array.from({ length: 20 }, () => ok(ADD, token, { sku: 'CART-A', quantity: 1 })),
      ...['CART-B', 'CART-C', 'CART-D'].map((sku) => ok(ADD, token, { sku, quantity: 2 })),
    ]);
    const { myCart } = await ok(MY_CART, token);
    assert.deepEqual(Object.fromEntries(myCart.items.map((i: any) => [i.sku, i.quantity])), { 'CART-A': 20, 'CART-B': 2, 'CART-C': 2, 'CART-D': 2 });
    assert.equal(myCart.itemCount, 26);
  });

  it('refuses unknown, discontinued and malformed skus, bad quantities and more than the limits, changing nothing', async () => {
    const token = await customer('limits');
    await ok(ADD, token, { sku: 'CART-A', quantity: 25 });
    const cases: [string, Record<string, unknown>, string, Record<string, unknown>?][] = [
      [ADD, { sku: 'NO-SUCH-SKU', quantity: 1 }, 'BAD_USER_INPUT', { field: 'sku' }],
      [ADD, { sku: 'bad sku!', quantity: 1 }, 'BAD_USER_INPUT', { field: 'sku' }],
      [ADD, { sku: 'CART-OLD', quantity: 1 }, 'PRODUCT_UNAVAILABLE'],
      [ADD, { sku: 'CART-B', quantity: 0 }, 'BAD_USER_INPUT', { field: 'quantity' }],
      [ADD, { sku: 'CART-A', quantity: 6 }, 'CART_LIMIT_EXCEEDED', { limit: 30 }],
      [UPDATE, { sku: 'CART-A', quantity: 31 }, 'CART_LIMIT_EXCEEDED', { limit: 30 }],
      [UPDATE, { sku: 'CART-A', quantity: -1 }, 'BAD_USER_INPUT', { field: 'quantity' }],
      [UPDATE, { sku: 'CART-B', quantity: 1 }, 'NOT_FOUND'],
      [REMOVE, { sku: '' }, 'BAD_USER_INPUT', { field: 'sku' }],
    ];
    for (const [query, variables, expected, extensions] of cases) {
      const got = await code(query, token, variables);
      assert.equal(got?.code, expected, `${JSON.stringify(variables)}: ${JSON.stringify(got)}`);
      for (const [key, value] of Object.entries(extensions ?? {})) assert.equal(got?.[key], value, `${JSON.stringify(variables)} ${key}`);
    }
    for (const sku of ['CART-B', 'CART-C', 'CART-D']) await ok(ADD, token, { sku, quantity: 1 });
    const full = await code(ADD, token, { sku: 'CART-LOW', quantity: 1 });
    assert.equal(full?.code, 'CART_LIMIT_EXCEEDED');
    assert.equal(full?.limit, 4);
    const { myCart } = await ok(MY_CART, token);
    assert.deepEqual(
      myCart.items.map((i: any) => [i.sku, i.quantity]),
      [
        ['CART-A', 25],
        ['CART-B', 1],
        ['CART-C', 1],
        ['CART-D', 1],
      ],
    );
  });

  it('updateCartItem sets a quantity (0 removes), removeFromCart and clearCart empty it', async () => {
    const token = await customer('edit');
    await ok(ADD, token, { sku: 'CART-A', quantity: 1 });
    await ok(ADD, token, { sku: 'CART-B', quantity: 1 });
    assert.deepEqual((await ok(UPDATE, token, { sku: 'CART-A', quantity: 7 })).updateCartItem.items, [
      { sku: 'CART-A', quantity: 7 },
      { sku: 'CART-B', quantity: 1 },
    ]);
    assert.deepEqual((await ok(UPDATE, token, { sku: 'CART-B', quantity: 0 })).updateCartItem.items, [{ sku: 'CART-A', quantity: 7 }]);
    assert.deepEqual(
      (await ok(REMOVE, token, { sku: 'CART-C' })).removeFromCart.items,
      [{ sku: 'CART-A', quantity: 7 }],
      'removing a sku not in the cart changes nothing',
    );
    assert.deepEqual((await ok(REMOVE, token, { sku: 'CART-A' })).removeFromCart, { itemCount: 0, items: [] });
    await ok(ADD, token, { sku: 'CART-C', quantity: 3 });
    assert.deepEqual((await ok(CLEAR, token)).clearCart, { itemCount: 0, items: [] });
  });

  it('warns of a line out of stock, a price changed since it was added, and a product discontinued', async () => {
    const token = await customer('warn');
    await ok(ADD, token, { sku: 'CART-LOW', quantity: 3 });
    await ok(ADD, token, { sku: 'CART-PRICE', quantity: 1 });
    await ok(ADD, token, { sku: 'CART-GONE', quantity: 1 });
    const repriced = await stack.graphql(`mutation { updateProduct(sku: "CART-PRICE", input: { price: { amount: 1500, currency: "EUR" } }) { sku } }`, {
      token: admin,
    });
    assert.equal(repriced.errors, undefined, JSON.stringify(repriced.errors));
    const gone = await stack.graphql(`mutation { discontinueProduct(sku: "CART-GONE") { sku } }`, { token: admin });
    assert.equal(gone.errors, undefined, JSON.stringify(gone.errors));
    const cart = await waitFor(
      async () => {
        const { myCart } = await ok(MY_CART, token);
        return myCart.warnings.length === 3 ? myCart : undefined;
      },
      'three warnings',
      20_000,
    );
    assert.deepEqual(
      cart.warnings.map((w: any) => [w.sku, w.reason, w.available]),
      [
        ['CART-LOW', 'OUT_OF_STOCK', 2],
        ['CART-PRICE', 'PRICE_CHANGED', null],
        ['CART-GONE', 'DISCONTINUED', null],
      ],
    );
    assert.match(cart.warnings[1].message, /10\.00 EUR to 15\.00 EUR/);
    // The stock is asked for early when the selection names warnings, through a fragment too.
    const viaFragment = await ok(`query { myCart { ...Warned } } fragment Warned on Cart { warnings { sku reason available } }`, token);
    assert.deepEqual(
      viaFragment.myCart.warnings.map((w: any) => [w.sku, w.reason, w.available]),
      cart.warnings.map((w: any) => [w.sku, w.reason, w.available]),
    );
    const line = cart.items.find((i: any) => i.sku === 'CART-PRICE');
    assert.deepEqual([line.priceWhenAdded.amount, line.unitPrice.amount], [1000, 1500]);
    // Adding units again is agreeing to the new price.
    await ok(ADD, token, { sku: 'CART-PRICE', quantity: 1 });
    const after = (await ok(MY_CART, token)).myCart;
    assert.deepEqual(
      after.warnings.map((w: any) => w.reason),
      ['OUT_OF_STOCK', 'DISCONTINUED'],
    );
  });

  it('checkout places the order at the order service prices, takes the lines out, is idempotent, and reaches CONFIRMED', async () => {
    const token = await customer('checkout');
    assert.equal((await code(CHECKOUT, token, { input: { idempotencyKey: 'k0', shippingAddress: HOME, paymentMethod: 'tok_visa' } }))?.code, 'CART_EMPTY');
    await ok(ADD, token, { sku: 'CART-A', quantity: 2 });
    await ok(ADD, token, { sku: 'CART-B', quantity: 1 });
    // A refused checkout leaves the cart as it was.
    const refused = await code(CHECKOUT, token, { input: { idempotencyKey: 'k1', shippingAddress: { ...HOME, country: 'XX' }, paymentMethod: 'tok_visa' } });
    assert.equal(refused?.code, 'BAD_USER_INPUT');
    assert.equal((await ok(MY_CART, token)).myCart.itemCount, 3);
    const input = { idempotencyKey: `checkout-${randomUUID()}`, shippingAddress: HOME, paymentMethod: 'tok_visa' };
    const { checkout } = await ok(CHECKOUT, token, { input });
    assert.equal(checkout.status, 'PENDING');
    assert.deepEqual(checkout.total, { amount: 2 * 1250 + 399, currency: 'EUR' });
    assert.deepEqual(
      checkout.items.map((i: any) => [i.sku, i.quantity, i.unitPrice.amount]),
      [
        ['CART-A', 2, 1250],
        ['CART-B', 1, 399],
      ],
    );
    assert.equal((await ok(MY_CART, token)).myCart.itemCount, 0, 'the ordered lines left the cart');
    const again = await ok(CHECKOUT, token, { input });
    assert.equal(again.checkout.id, checkout.id, 'the same key answers the same order, the cart being empty now');
    const confirmed = await waitForStatus(system, token, checkout.id, ['CONFIRMED'], 20_000);
    assert.equal(confirmed.status, 'CONFIRMED');
  });

  it('two checkouts of one cart at once place one order: the same key answers it, another key finds the cart empty', async () => {
    const token = await customer('twice');
    await ok(ADD, token, { sku: 'CART-C', quantity: 2 });
    const input = (key: string) => ({ input: { idempotencyKey: key, shippingAddress: HOME, paymentMethod: 'tok_visa' } });
    const sameKey = await Promise.all([
      stack.graphql(CHECKOUT, { token, variables: input('same') }),
      stack.graphql(CHECKOUT, { token, variables: input('same') }),
    ]);
    assert.deepEqual(
      sameKey.map((r) => r.errors),
      [undefined, undefined],
    );
    assert.equal(sameKey[0].data.checkout.id, sameKey[1].data.checkout.id);
    await ok(ADD, token, { sku: 'CART-C', quantity: 1 });
    const otherKeys = await Promise.all([
      stack.graphql(CHECKOUT, { token, variables: input('one') }),
      stack.graphql(CHECKOUT, { token, variables: input('two') }),
    ]);
    const outcomes = otherKeys.map((r) => r.errors?.[0]?.extensions?.code ?? 'ORDER').sort();
    assert.deepEqual(outcomes, ['CART_EMPTY', 'ORDER']);
    const { myOrders } = await ok(`query { myOrders(first: 10) { totalCount } }`, token);
    assert.equal(myOrders.totalCount, 2, 'one order per checkout that found lines');
  });

  it('a checkout retried after an unknown outcome sends what it sent before, whatever the cart has become', async () => {
    const token = await customer('retry');
    await ok(ADD, token, { sku: 'CART-A', quantity: 1 });
    await ok(ADD, token, { sku: 'CART-B', quantity: 2 });
    const key = `retry-${randomUUID()}`;
    // The first attempt recorded its request and reached the order service, then lost the answer.
    const request = {
      idempotencyKey: key,
      items: [
        { sku: 'CART-A', quantity: 1 },
        { sku: 'CART-B', quantity: 2 },
      ],
      shippingAddressId: null,
      shippingAddress: HOME,
      paymentMethod: 'tok_visa',
    };
    const sub = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub as string;
    const cart = stack.services.cart!.runtime;
    const store = new CartStore({ redis: cart.redis, config: cart.config, ttlMs: 3_600_000 });
    assert.equal(await store.beginCheckout(sub, key, request), null);
    const first = await ok(`mutation ($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }`, token, { input: request });
    // Meanwhile another tab changed the cart and the form changed its address.
    await ok(ADD, token, { sku: 'CART-D', quantity: 5 });
    await ok(UPDATE, token, { sku: 'CART-B', quantity: 3 });
    const retried = await ok(CHECKOUT, token, { input: { idempotencyKey: key, shippingAddress: { ...HOME, city: 'Hamburg' }, paymentMethod: 'tok_visa' } });
    assert.equal(retried.checkout.id, first.placeOrder.id, 'the same order, no second one');
    assert.deepEqual(
      (await ok(MY_CART, token)).myCart.items.map((i: any) => [i.sku, i.quantity]),
      [
        ['CART-B', 1],
        ['CART-D', 5],
      ],
      'exactly the ordered units left the cart',
    );
    const { myOrders } = await ok(`query { myOrders(first: 10) { totalCount } }`, token);
    assert.equal(myOrders.totalCount, 1);
  });

  it('every cart operation needs a token with the customer or admin role', async () => {
    const noRoles = await stack.token('cart-no-roles', []);
    const operations: [string, Record<string, unknown>][] = [
      [MY_CART, {}],
      [ADD, { sku: 'CART-A', quantity: 1 }],
      [UPDATE, { sku: 'CART-A', quantity: 1 }],
      [REMOVE, { sku: 'CART-A' }],
      [CLEAR, {}],
      [CHECKOUT, { input: { idempotencyKey: 'k', shippingAddress: HOME, paymentMethod: 'tok_visa' } }],
    ];
    for (const [query, variables] of operations) {
      assert.equal((await code(query, null, variables))?.code, 'UNAUTHENTICATED', query);
      assert.equal((await code(query, noRoles, variables))?.code, 'FORBIDDEN', query);
    }
    for (const [token, expected] of [
      [null, 'UNAUTHENTICATED'],
      [noRoles, 'FORBIDDEN'],
    ] as const) {
      const live = connectLive(stack.gateway!.url, { token });
      try {
        const probe = live.subscribe(CART_UPDATED);
        await probe.end();
        assert.deepEqual(
          probe.results.flatMap((r) => r.errors ?? []).map((e) => e.extensions?.code),
          [expected],
        );
        assert.ok(
          probe.results.every((r) => (r.data ?? null) === null),
          'no cart sent',
        );
      } finally {
        await live.close();
      }
    }
  });

  it("cartUpdated shows every change to a second tab, and only the customer's own cart", async () => {
    const token = await customer('live');
    const other = await customer('live-other');
    const live = connectLive(stack.gateway!.url, { token });
    try {
      const probe = live.subscribe(CART_UPDATED);
      assert.deepEqual(await probe.nextData(), { cartUpdated: { itemCount: 0, items: [] } });
      await ok(ADD, token, { sku: 'CART-A', quantity: 2 });
      const first = await probe.waitFor((r) => r.data?.cartUpdated.itemCount === 2, 'the added line');
      assert.deepEqual(first.data.cartUpdated.items, [{ sku: 'CART-A', quantity: 2, product: { name: 'Saga CART-A' } }]);
      await ok(ADD, other, { sku: 'CART-B', quantity: 5 });
      await ok(UPDATE, token, { sku: 'CART-A', quantity: 4 });
      await probe.waitFor((r) => r.data?.cartUpdated.itemCount === 4, 'the new quantity');
      assert.ok(!probe.results.some((r) => r.data?.cartUpdated.itemCount === 5), "another customer's change never shows");
      await ok(CLEAR, token);
      await probe.waitFor((r) => r.data?.cartUpdated.itemCount === 0 && probe.results.indexOf(r) > 0, 'the cleared cart');
    } finally {
      await live.close();
    }
  });

  it('keeps a cart for the configured TTL from its last change, and through a restart of the cart service', async () => {
    const token = await customer('restart');
    await ok(ADD, token, { sku: 'CART-D', quantity: 3 });
    const redis = new Redis(stack.config.redisUrl, { keyPrefix: stack.config.redisPrefix });
    try {
      const keys = (await redis.keys(`${stack.config.redisPrefix}cart:{cart-restart-*}:*`)).map((k) => k.slice(stack.config.redisPrefix.length));
      assert.ok(keys.length >= 2, `the cart's keys: ${keys.join(', ')}`);
      for (const key of keys) {
        const ttl = await redis.pttl(key);
        assert.ok(ttl > 3_590_000 && ttl <= 3_600_000, `${key} expires in ${ttl} ms`);
      }
    } finally {
      redis.disconnect();
    }
    const cart = stack.services.cart!;
    const config = cart.runtime.config;
    await cart.close();
    const restarted = await startService(await loadServiceModule('cart'), { config, port: 0 });
    try {
      const result = await postGraphQL(restarted.url, `query { myCart { items { sku quantity } } }`, {}, token, stack.subgraphHeaders);
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      assert.deepEqual(
        result.data.myCart.items.map((i: any) => [i.sku, i.quantity]),
        [['CART-D', 3]],
      );
    } finally {
      await restarted.close();
    }
  });
});
