/**
 * `Subscription.stockLevelChanged` straight against the inventory subgraph over graphql-ws, with
 * real PostgreSQL, Redis and Kafka: the current figures first, then every committed change (an
 * admin adjustment, a reservation through the order-event consumer), never a stale version.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { channelName, type RunningService } from '@swiftcart/platform';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { publishOrderEvent } from '../../../test/support/participants.ts';
import { connectLive, type LiveClient } from '../../../test/support/subscriptions.ts';
import { TestRedisServer } from '../../../test/support/redis-server.ts';
import { drain } from '../../../test/support/drain.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { seedStock } from '../src/stock.ts';
import { ADJUST, em } from './support.ts';

const FOLLOW = `subscription ($skus: [ID!]!) {
  stockLevelChanged(skus: $skus) { sku onHand reserved available version updatedAt product { sku } }
}`;

describe('stockLevelChanged over graphql-ws', () => {
  let stack: TestStack;
  let inventory: RunningService;
  let admin: string;
  let live: LiveClient;

  before(async () => {
    stack = await startStack({ services: ['inventory'] });
    inventory = stack.services.inventory!;
    admin = await stack.token('admin-1', ['admin']);
    await seedStock(em(stack), [
      { sku: 'SUB-A', onHand: 10 },
      { sku: 'SUB-R', onHand: 6 },
      { sku: 'SUB-S', onHand: 3 },
    ]);
    // Anonymous: the field is @public, it needs no token.
    live = connectLive(inventory.wsUrl, { headers: stack.subgraphHeaders });
  });
  after(async () => {
    await live?.close();
    await stack?.close();
  });

  const adjust = async (sku: string, delta: number) => {
    const result = await stack.graphql(ADJUST, { variables: { sku, delta, reason: 'test' }, token: admin });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data.adjustStock;
  };

  test('first the current level of every sku in the order asked (zero, version 0, when never stocked), then each change after adjustStock', async () => {
    const probe = live.subscribe(FOLLOW, { skus: ['SUB-NEW', 'SUB-A'] });
    try {
      const first = await probe.nextData();
      assert.deepEqual(first.stockLevelChanged, {
        sku: 'SUB-NEW',
        onHand: 0,
        reserved: 0,
        available: 0,
        version: 0,
        updatedAt: null,
        product: { sku: 'SUB-NEW' },
      });
      const second = (await probe.nextData()).stockLevelChanged;
      assert.deepEqual(
        { ...second, updatedAt: undefined },
        { sku: 'SUB-A', onHand: 10, reserved: 0, available: 10, version: 1, updatedAt: undefined, product: { sku: 'SUB-A' } },
      );

      const changed = await adjust('SUB-A', 5);
      const update = (await probe.nextData()).stockLevelChanged;
      assert.deepEqual(update, { ...changed, product: { sku: 'SUB-A' } });
      assert.equal(update.version, 2);

      const stocked = await adjust('SUB-NEW', 4);
      assert.deepEqual((await probe.nextData()).stockLevelChanged, { ...stocked, product: { sku: 'SUB-NEW' } });
      // Nothing else follows (the relay announces each change again): once it has projected
      // everything, the next change is the next thing delivered.
      await drain(stack);
      const marker = await adjust('SUB-A', 1);
      assert.deepEqual((await probe.nextData()).stockLevelChanged, { ...marker, product: { sku: 'SUB-A' } });
    } finally {
      probe.dispose();
    }
  });

  test('a reservation through the order-event consumer is delivered after it commits', async () => {
    const probe = live.subscribe(FOLLOW, { skus: ['SUB-R'] });
    try {
      assert.equal((await probe.nextData()).stockLevelChanged.reserved, 0);
      const orderId = randomUUID();
      await publishOrderEvent(inventory, 'OrderPlaced', {
        orderId,
        customerId: 'alice',
        items: [{ sku: 'SUB-R', quantity: 2, unitPrice: { amount: 100, currency: 'EUR' } }],
        total: { amount: 200, currency: 'EUR' },
        deadlineAt: new Date(Date.now() + 60_000).toISOString(),
      });
      const reserved = (await probe.nextData(20_000)).stockLevelChanged;
      assert.deepEqual(
        { onHand: reserved.onHand, reserved: reserved.reserved, available: reserved.available, version: reserved.version },
        { onHand: 6, reserved: 2, available: 4, version: 2 },
      );
      // What the subscriber saw is what PostgreSQL holds.
      const [row] = await em(stack).execute<{ reserved: number; version: number }[]>('select reserved, version from stock where sku = ?', ['SUB-R']);
      assert.deepEqual({ reserved: row.reserved, version: row.version }, { reserved: 2, version: 2 });
    } finally {
      probe.dispose();
    }
  });

  test('a message older than what was delivered, or not a figure at all, never reaches the client', async () => {
    const probe = live.subscribe(FOLLOW, { skus: ['SUB-S'] });
    try {
      const current = (await probe.nextData()).stockLevelChanged;
      assert.equal(current.version, 1);
      const channel = channelName(stack.config, 'stock:SUB-S');
      // Published straight on the channel, as a delayed or duplicated announcement would arrive.
      const stale = { sku: 'SUB-S', onHand: 999, reserved: 0, available: 999, version: 1, updatedAt: new Date().toISOString() };
      await inventory.runtime.redis.publish(channel, JSON.stringify(stale));
      await inventory.runtime.redis.publish(channel, JSON.stringify({ ...stale, version: 0 }));
      await inventory.runtime.redis.publish(channel, 'not json');
      await inventory.runtime.redis.publish(channel, JSON.stringify({ ...stale, sku: 'OTHER', version: 7 }));
      // The change, announced after them on the same channel, is the marker: a live query handles its
      // messages one after the other, so whatever they caused would be delivered before it.
      const changed = await adjust('SUB-S', -1);
      assert.deepEqual((await probe.nextData()).stockLevelChanged, { ...changed, product: { sku: 'SUB-S' } });
      assert.equal(probe.results.length, 2, 'nothing but the current figure and the change');
      assert.equal(changed.version, 2);
    } finally {
      probe.dispose();
    }
  });

  test('invalid skus are a BAD_USER_INPUT result, and the connection keeps serving', async () => {
    const cases: [unknown[], string][] = [
      [[], 'skus'],
      [['ok', 'bad sku!'], 'skus[1]'],
      [['DUP', 'DUP'], 'skus[1]'],
      [Array.from({ length: 101 }, (_, i) => `S-${i}`), 'skus'],
    ];
    for (const [skus, field] of cases) {
      const probe = live.subscribe(FOLLOW, { skus });
      const result = await probe.next();
      assert.equal(result.data ?? null, null);
      assert.equal(result.errors?.[0].extensions?.code, 'BAD_USER_INPUT', JSON.stringify(result));
      assert.equal(result.errors?.[0].extensions?.field, field);
      await probe.end();
    }
    // Nothing is left subscribed for them: only this file's earlier subscriptions could hold channels, and they ended.
    const probe = live.subscribe(FOLLOW, { skus: ['SUB-A'] });
    assert.equal((await probe.nextData()).stockLevelChanged.sku, 'SUB-A');
    probe.dispose();
  });

  test('a client that completes lets its Redis channels go', async () => {
    const probe = live.subscribe(FOLLOW, { skus: ['SUB-A', 'SUB-R'] });
    await probe.nextData();
    const channel = channelName(stack.config, 'stock:SUB-A');
    assert.equal(inventory.runtime.live.listenerCount(channel), 1);
    probe.dispose();
    await waitFor(
      () => inventory.runtime.live.listenerCount(channel) === 0,
      `the listeners of ${channel} to go`,
      2_000,
      () => inventory.runtime.live.listenerCount(channel),
      20,
    );
    assert.deepEqual(inventory.runtime.live.channels, []);
  });
});

describe('stockLevelChanged across a Redis restart', () => {
  let redis: TestRedisServer;
  let stack: TestStack;
  let live: LiveClient;

  before(async () => {
    // A Redis of this suite's own, so it can be restarted; the shared one is never touched.
    redis = await TestRedisServer.start();
    stack = await startStack({ services: ['inventory'], env: { REDIS_URL: redis.url } });
    live = connectLive(stack.services.inventory!.wsUrl, { headers: stack.subgraphHeaders });
  });
  after(async () => {
    await live?.close();
    await stack?.close();
    await redis?.stop();
  });

  test('a change committed while Redis is down reaches the subscriber once Redis is back (re-read from PostgreSQL)', async () => {
    const admin = await stack.token('admin-1', ['admin']);
    const probe = live.subscribe(FOLLOW, { skus: ['OUTAGE-1'] });
    try {
      assert.equal((await probe.nextData()).stockLevelChanged.version, 0);
      await redis.stop();
      // PostgreSQL takes the change; its announcement fails (logged), the mutation does not.
      const during = await stack.graphql(ADJUST, { variables: { sku: 'OUTAGE-1', delta: 7, reason: 'delivery during the outage' }, token: admin });
      assert.equal(during.errors, undefined, JSON.stringify(during.errors));
      // Not delivered while Redis is down: its relay has handled the change (its announcement
      // failed), and no other path leads to the subscriber.
      const seen = probe.results.length;
      await drain(stack);
      assert.equal(probe.results.length, seen, `unexpected results: ${JSON.stringify(probe.results.slice(seen))}`);
      await redis.start();
      const recovered = (await probe.nextData(15_000)).stockLevelChanged;
      assert.deepEqual({ onHand: recovered.onHand, version: recovered.version }, { onHand: 7, version: 1 });
      // And the channel is live again.
      const after = await stack.graphql(ADJUST, { variables: { sku: 'OUTAGE-1', delta: 1, reason: 'after' }, token: admin });
      assert.equal(after.errors, undefined, JSON.stringify(after.errors));
      assert.equal((await probe.nextData()).stockLevelChanged.version, 2);
    } finally {
      probe.dispose();
    }
  });
});
