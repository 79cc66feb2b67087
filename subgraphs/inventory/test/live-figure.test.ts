/**
 * The live stock figure in Redis: after an adjustment commits, the hash `stock:<sku>` holds it and
 * subscribers of the sku's channel receive it. Run with `node --test subgraphs/inventory/test/`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { drain } from '../../../test/support/drain.ts';
import { ledgerOf } from '../src/service.ts';
import { ADJUST } from './support.ts';

describe('live stock figure', () => {
  let stack: TestStack;
  let admin: string;
  let subscriber: Redis;
  let reader: Redis;
  const received: { channel: string; message: any }[] = [];

  before(async () => {
    stack = await startStack({ services: ['inventory'] });
    admin = await stack.token('admin-1', ['admin']);
    subscriber = new Redis(stack.config.redisUrl);
    subscriber.on('message', (channel: string, message: string) => received.push({ channel, message: JSON.parse(message) }));
    reader = new Redis(stack.config.redisUrl, { keyPrefix: stack.config.redisPrefix });
  });
  after(async () => {
    subscriber?.disconnect();
    reader?.disconnect();
    await stack?.close();
  });

  /** Resolves with the next message on `channel` received after `from`, or rejects after `ms`. */
  async function nextMessage(channel: string, from: number, ms = 2_000): Promise<any> {
    const hit = await waitFor(() => received.slice(from).find((m) => m.channel === channel), `a message on ${channel}`, ms, undefined, 10);
    return hit.message;
  }

  /**
   * The messages on `channel` since `from` once everything published before this call has arrived:
   * the relay has projected every change (drain), then a marker published on the channel came back.
   */
  async function settledSince(channel: string, from: number): Promise<any[]> {
    await drain(stack);
    const marker = randomUUID();
    await stack.services.inventory!.runtime.redis.publish(channel, JSON.stringify({ marker }));
    await waitFor(() => received.slice(from).some((m) => m.message?.marker === marker), `the marker on ${channel}`);
    return received
      .slice(from)
      .filter((m) => m.channel === channel && m.message?.marker !== marker)
      .map((m) => m.message);
  }

  test('after commit, the new figure is in the Redis hash and published with its new version', async () => {
    const channel = `${stack.config.redisPrefix}stock:LIVE-1`;
    await subscriber.subscribe(channel);

    let from = received.length;
    const first = await stack.graphql(ADJUST, { variables: { sku: 'LIVE-1', delta: 8, reason: 'delivery' }, token: admin });
    assert.equal(first.errors, undefined, JSON.stringify(first.errors));
    const message1 = await nextMessage(channel, from);
    assert.deepEqual(message1, first.data.adjustStock);
    assert.deepEqual(message1, { sku: 'LIVE-1', onHand: 8, reserved: 0, available: 8, version: 1, updatedAt: first.data.adjustStock.updatedAt });

    from = received.length;
    const second = await stack.graphql(ADJUST, { variables: { sku: 'LIVE-1', delta: -3, reason: 'breakage' }, token: admin });
    const message2 = await nextMessage(channel, from);
    assert.deepEqual(message2, { sku: 'LIVE-1', onHand: 5, reserved: 0, available: 5, version: 2, updatedAt: second.data.adjustStock.updatedAt });
    assert.deepEqual(await reader.hgetall('stock:LIVE-1'), {
      onHand: '5',
      reserved: '0',
      available: '5',
      version: '2',
      updatedAt: second.data.adjustStock.updatedAt,
    });
  });

  test('a refused adjustment publishes nothing and leaves the hash alone', async () => {
    const channel = `${stack.config.redisPrefix}stock:LIVE-1`;
    const from = received.length;
    const refused = await stack.graphql(ADJUST, { variables: { sku: 'LIVE-1', delta: -50, reason: 'too many' }, token: admin });
    assert.equal(refused.errors?.[0].extensions?.code, 'INSUFFICIENT_STOCK');
    assert.deepEqual(await settledSince(channel, from), [], 'nothing published');
    assert.equal(await reader.hget('stock:LIVE-1', 'version'), '2');
  });

  test('an announcement older than the hash changes nothing and is not published', async () => {
    const channel = `${stack.config.redisPrefix}stock:LIVE-1`;
    const from = received.length;
    await ledgerOf(stack.services.inventory!.runtime).announce({
      sku: 'LIVE-1',
      onHand: 99,
      reserved: 0,
      available: 99,
      version: 1,
      updatedAt: new Date().toISOString(),
    });
    assert.deepEqual(await settledSince(channel, from), [], 'nothing published');
    assert.equal(await reader.hget('stock:LIVE-1', 'onHand'), '5');
  });

  test('subscribers of one sku hear nothing about another', async () => {
    const other = `${stack.config.redisPrefix}stock:LIVE-2`;
    const channel = `${stack.config.redisPrefix}stock:LIVE-1`;
    await subscriber.subscribe(other);
    const from = received.length;
    const result = await stack.graphql(ADJUST, { variables: { sku: 'LIVE-2', delta: 1, reason: 'delivery' }, token: admin });
    assert.equal(result.errors, undefined);
    assert.equal((await nextMessage(other, from)).version, 1);
    assert.equal(received.slice(from).filter((m) => m.channel === channel).length, 0);
  });
});
