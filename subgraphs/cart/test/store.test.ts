/**
 * The cart store on a real Redis: its scripts under concurrency (nothing lost, limits held),
 * checkout's take-out (once per key, lines added meanwhile kept), the TTL renewed by every change,
 * and a version published on the cart's channel for every change and only then.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { waitFor } from '../../../test/support/wait.ts';
import { type CartChange, CartStore } from '../src/store.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `swiftcart-test:${randomBytes(4).toString('hex')}:`;
const TTL_MS = 600_000;
const PRICE = { amount: 500, currency: 'EUR' };
const LIMITS = { maxQuantity: 1_000, maxLines: 5 };

describe('CartStore on Redis', () => {
  const connections: Redis[] = [];
  let stores: CartStore[];
  let subscriber: Redis;
  let store: CartStore;

  before(() => {
    // Two connections, as two service replicas would have.
    for (let i = 0; i < 2; i++) connections.push(new Redis(REDIS_URL, { keyPrefix: PREFIX }));
    stores = connections.map((redis) => new CartStore({ redis, config: { redisPrefix: PREFIX }, ttlMs: TTL_MS }));
    store = stores[0];
    subscriber = new Redis(REDIS_URL);
  });
  after(async () => {
    const keys = await connections[0].keys(`${PREFIX}*`);
    if (keys.length) await connections[0].del(...keys.map((k) => k.slice(PREFIX.length)));
    for (const redis of [...connections, subscriber]) redis.disconnect();
  });

  it('loses no unit when 200 adds of one sku race over two connections', async () => {
    await Promise.all(Array.from({ length: 200 }, (_, i) => stores[i % 2].add('race', { sku: 'A', quantity: 1, price: PRICE }, LIMITS)));
    const cart = await store.read('race');
    assert.deepEqual(
      cart.lines.map((l) => [l.sku, l.quantity]),
      [['A', 200]],
    );
  });

  it('holds the line limit when 20 new skus race for 5 places', async () => {
    const changes = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % 2].add('lines', { sku: `S${i}`, quantity: 1, price: PRICE }, LIMITS)));
    assert.equal(changes.filter((c) => c.refused === undefined).length, 5);
    assert.ok(changes.filter((c) => c.refused !== undefined).every((c) => c.refused === 'LINE_LIMIT'));
    assert.equal((await store.read('lines')).lines.length, 5);
  });

  it('refuses units beyond the per-line limit and leaves the line as it was', async () => {
    await store.add('units', { sku: 'U', quantity: 8, price: PRICE }, { ...LIMITS, maxQuantity: 10 });
    assert.deepEqual(await store.add('units', { sku: 'U', quantity: 3, price: PRICE }, { ...LIMITS, maxQuantity: 10 }), {
      refused: 'QUANTITY_LIMIT',
      limit: 10,
      quantity: 8,
    });
    assert.equal((await store.read('units')).lines[0].quantity, 8);
  });

  it('keeps the lines in the order they were first added, with the price of the latest add', async () => {
    await store.add('order', { sku: 'X', quantity: 1, price: PRICE }, LIMITS);
    await store.add('order', { sku: 'Y', quantity: 1, price: PRICE }, LIMITS);
    await store.add('order', { sku: 'X', quantity: 1, price: { amount: 700, currency: 'EUR' } }, LIMITS);
    const cart = await store.read('order');
    assert.deepEqual(
      cart.lines.map((l) => [l.sku, l.quantity, l.priceWhenAdded.amount]),
      [
        ['X', 2, 700],
        ['Y', 1, 500],
      ],
    );
  });

  it('takes the ordered units out once per checkout key, keeping what was added meanwhile', async () => {
    await store.add('checkout', { sku: 'A', quantity: 2, price: PRICE }, LIMITS);
    await store.add('checkout', { sku: 'B', quantity: 1, price: PRICE }, LIMITS);
    const ordered = (await store.read('checkout')).lines.map((l) => ({ sku: l.sku, quantity: l.quantity }));
    // Another tab adds while the order is being placed.
    await store.add('checkout', { sku: 'A', quantity: 1, price: PRICE }, LIMITS);
    await store.add('checkout', { sku: 'C', quantity: 4, price: PRICE }, LIMITS);
    assert.equal(await store.takeOrdered('checkout', 'key-1', 'order-1', ordered), 'order-1');
    const left = () => store.read('checkout').then((c) => c.lines.map((l) => [l.sku, l.quantity]));
    assert.deepEqual(await left(), [
      ['A', 1],
      ['C', 4],
    ]);
    assert.equal(await store.takeOrdered('checkout', 'key-1', 'order-2', ordered), 'order-1', 'the first order of a key stands');
    assert.deepEqual(await left(), [
      ['A', 1],
      ['C', 4],
    ]);
    assert.deepEqual(await store.checkoutRecord('checkout', 'key-1'), { placed: 'order-1' });
    assert.equal(await store.checkoutRecord('checkout', 'key-2'), null);
  });

  it('records the request a checkout key is placing once, answers it to a second begin, and forgets it only while unchanged', async () => {
    const request = { items: [{ sku: 'A', quantity: 2 }], paymentMethod: 'tok_visa' };
    assert.equal(await store.beginCheckout('begin', 'k', request), null);
    assert.deepEqual(await store.beginCheckout('begin', 'k', { other: true }), { placing: request }, 'the first request stands');
    assert.deepEqual(await store.checkoutRecord('begin', 'k'), { placing: request });
    await store.abandonCheckout('begin', 'k', { other: true });
    assert.deepEqual(await store.checkoutRecord('begin', 'k'), { placing: request }, 'another request does not forget it');
    await store.abandonCheckout('begin', 'k', request);
    assert.equal(await store.checkoutRecord('begin', 'k'), null);
    await store.beginCheckout('begin', 'k2', request);
    await store.takeOrdered('begin', 'k2', 'order-9', request.items);
    assert.deepEqual(await store.beginCheckout('begin', 'k2', request), { placed: 'order-9' }, 'a placed key is never begun again');
    await store.abandonCheckout('begin', 'k2', request);
    assert.deepEqual(await store.checkoutRecord('begin', 'k2'), { placed: 'order-9' }, 'nor forgotten');
  });

  it('lets one checkout at a time hold the cart, and only its holder let it go', async () => {
    assert.equal(await store.lock('locked', 'first', 10_000), true);
    assert.equal(await stores[1].lock('locked', 'second', 10_000), false);
    await store.unlock('locked', 'second');
    assert.equal(await stores[1].lock('locked', 'second', 10_000), false, 'not let go by another');
    await store.unlock('locked', 'first');
    assert.equal(await stores[1].lock('locked', 'second', 10_000), true);
  });

  it('renews the TTL of the cart with each change, and gives a checkout record the same', async () => {
    await store.add('ttl', { sku: 'A', quantity: 1, price: PRICE }, LIMITS);
    const redis = connections[0];
    for (const key of ['cart:{ttl}:lines', 'cart:{ttl}:meta']) {
      await redis.pexpire(key, 1_000);
    }
    await store.add('ttl', { sku: 'B', quantity: 1, price: PRICE }, LIMITS);
    await store.takeOrdered('ttl', 'k', 'o', []);
    for (const key of ['cart:{ttl}:lines', 'cart:{ttl}:meta', 'cart:{ttl}:checkout:k']) {
      const ttl = await redis.pttl(key);
      assert.ok(ttl > TTL_MS - 10_000 && ttl <= TTL_MS, `${key}: ${ttl} ms`);
    }
  });

  it('publishes a growing version for every change and none for a change that changes nothing', async () => {
    const messages: number[] = [];
    subscriber.on('message', (channel, message) => {
      if (channel === store.channel('live')) messages.push((JSON.parse(message) as { version: number }).version);
    });
    await subscriber.subscribe(store.channel('live'));
    const versions: number[] = [];
    const record = async (change: Promise<CartChange>) => {
      const done = await change;
      assert.equal(done.refused, undefined);
      versions.push((done as { version: number }).version);
    };
    await record(store.add('live', { sku: 'A', quantity: 1, price: PRICE }, LIMITS));
    await record(store.set('live', 'A', 3, 1_000));
    await record(store.set('live', 'A', 3, 1_000));
    await record(store.remove('live', 'NOT-THERE'));
    await record(store.clear('live'));
    await record(store.clear('live'));
    assert.ok(versions[0] < versions[1] && versions[1] < versions[4], `versions ${versions}`);
    assert.deepEqual([versions[2], versions[3], versions[5]], [versions[1], versions[1], versions[4]], 'a no-op keeps the version');
    await waitFor(
      async () => messages.length >= 3 || undefined,
      'three messages',
      5_000,
      () => messages,
    );
    assert.deepEqual(messages, [versions[0], versions[1], versions[4]]);
    assert.equal((await store.read('live')).version, versions[4]);
  });
});
