/**
 * Losing Redis loses carts, never orders (ADR 0021, docs/operations.md § Carts and Redis): every
 * service and the gateway on a Redis of the test's own, which is stopped and then started again
 * empty. While it is away the cart answers SERVICE_UNAVAILABLE and changes nothing; afterwards the
 * cart is empty, and the order placed from it is still there and completes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestRedisServer } from '../support/redis-server.ts';
import { SAGA_SERVICES, type SagaSystem, startSeededSaga, waitFor, waitForReplica, waitForStatus } from '../support/saga.ts';
import type { TestStack } from '../support/stack.ts';

const ADD = `mutation ($sku: ID!, $quantity: Int!) { addToCart(sku: $sku, quantity: $quantity) { itemCount } }`;
const MY_CART = `query { myCart { itemCount items { sku quantity } } }`;
const CHECKOUT = `mutation ($input: CheckoutInput!) { checkout(input: $input) { id } }`;
const HOME = { name: 'Redis Loser', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' };

describe('losing Redis', () => {
  let redis: TestRedisServer;
  let stack: TestStack;
  let system: SagaSystem;

  before(async () => {
    redis = await TestRedisServer.start();
    ({ stack, system } = await startSeededSaga([{ sku: 'LOSS-A', onHand: 50 }], { REDIS_URL: redis.url }, [...SAGA_SERVICES, 'cart']));
    await waitForReplica(system, ['LOSS-A'], 20_000, 'cart');
  });
  after(async () => {
    await stack?.close();
    await redis?.[Symbol.asyncDispose]();
  });

  it('loses the carts, never the orders', async () => {
    const token = await stack.token('redis-loser', ['customer']);
    const graphql = (query: string, variables: Record<string, unknown> = {}) => stack.graphql(query, { token, variables });
    assert.equal((await graphql(ADD, { sku: 'LOSS-A', quantity: 2 })).errors, undefined);
    const placed = await graphql(CHECKOUT, { input: { idempotencyKey: 'before-the-loss', shippingAddress: HOME, paymentMethod: 'tok_visa' } });
    assert.equal(placed.errors, undefined, JSON.stringify(placed.errors));
    const orderId = placed.data.checkout.id as string;
    assert.equal((await graphql(ADD, { sku: 'LOSS-A', quantity: 3 })).errors, undefined);
    assert.equal((await graphql(MY_CART)).data.myCart.itemCount, 3);

    await redis.stop();
    for (const [query, variables] of [
      [MY_CART, {}],
      [ADD, { sku: 'LOSS-A', quantity: 1 }],
    ] as const) {
      const answer = await graphql(query, variables);
      assert.equal(answer.errors?.[0]?.extensions?.code, 'SERVICE_UNAVAILABLE', JSON.stringify(answer.errors));
    }

    await redis.start();
    const cart = await waitFor(
      async () => {
        const answer = await graphql(MY_CART);
        return answer.errors ? undefined : answer.data.myCart;
      },
      'the cart service to answer again',
      30_000,
    );
    assert.deepEqual(cart, { itemCount: 0, items: [] }, 'the cart went with Redis');
    const order = await waitForStatus(system, token, orderId, ['CONFIRMED'], 30_000);
    assert.deepEqual(
      order.items.map((i: { sku: string; quantity: number }) => [i.sku, i.quantity]),
      [['LOSS-A', 2]],
      'the order placed from it stands, and completes',
    );
  });
});
