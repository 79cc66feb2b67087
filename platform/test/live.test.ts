/**
 * The live feed and live queries (platform/src/live.ts) against a real Redis of the test's own
 * (test/support/redis-server.ts), which the last suite stops and restarts: one SUBSCRIBE per channel
 * whatever the number of listeners, versions only growing, coalescing while the consumer is slow,
 * and recovery after a Redis outage.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createLogger, LiveFeed, liveQuery, type LiveIterator, type LiveListener } from '../src/index.ts';
import { TestRedisServer } from '../../test/support/redis-server.ts';

const log = createLogger('live-test', process.env.TEST_LOG_LEVEL ?? 'fatal');

interface Item { readonly key: string; readonly version: number; readonly note?: string }

/** The source of truth of a live query under test: items by key, read by `load`. */
class Source {
  readonly items = new Map<string, Item>();
  loads = 0;
  set(key: string, version: number, note?: string): Item {
    const item = { key, version, note };
    this.items.set(key, item);
    return item;
  }
}

/** Polls until `check` holds; fails after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The next value, failing when the iterator ends or nothing comes within `ms`. */
async function nextValue<T>(iterator: AsyncIterator<T>, ms = 3_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    iterator.next(),
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no value within ${ms} ms`)), ms); }),
  ]);
  clearTimeout(timer);
  assert.equal(result.done, false, 'the iterator ended');
  return result.value as T;
}

/** Whether `iterator.next()` stays pending for `ms` (the pending call is left to the caller's return()). */
async function staysPending<T>(pending: Promise<IteratorResult<T>>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const winner = await Promise.race([pending.then(() => 'value'), new Promise((resolve) => { timer = setTimeout(() => resolve('pending'), ms); })]);
  clearTimeout(timer);
  return winner === 'pending';
}

const itemsOf = (message: string): Item[] => [JSON.parse(message) as Item];

describe('live feed and live queries', () => {
  let redisServer: TestRedisServer;
  let publisher: Redis;
  let feed: LiveFeed;

  before(async () => {
    redisServer = await TestRedisServer.start();
    publisher = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
    publisher.on('error', () => undefined);
    feed = new LiveFeed({ redisUrl: redisServer.url, log, name: 'live-test' });
  });
  after(async () => {
    await feed?.close();
    publisher?.disconnect();
    await redisServer?.stop();
  });

  const publish = (channel: string, item: Item) => publisher.publish(channel, JSON.stringify(item));

  const query = (source: Source, channels: string[], options: { load?: () => Promise<Item[]> } = {}) => liveQuery<Item>({
    feed,
    channels,
    load: options.load ?? (async () => { source.loads++; return [...source.items.values()]; }),
    fromMessage: (_channel, message) => itemsOf(message),
    keyOf: (item) => item.key,
    versionOf: (item) => item.version,
    log,
  });

  test('a burst of subscriptions on a brand-new feed all succeed (no race with the connection handshake)', async () => {
    // ioredis's ready check (INFO) used to race the first SUBSCRIBEs: "Connection in subscriber mode".
    const fresh = new LiveFeed({ redisUrl: redisServer.url, log, name: 'live-burst' });
    try {
      // Spread over the handshake: some before the socket connects, some during, some after.
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) {
        pending.push(fresh.subscribe([`burst:${i}`], { onMessage: () => undefined, onResubscribed: () => undefined }));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const results = await Promise.allSettled(pending);
      assert.deepEqual(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), []);
      assert.equal(fresh.channels.length, 100);
    } finally {
      await fresh.close();
    }
  });

  test('two listeners on one channel cost one SUBSCRIBE, and the channel is UNSUBSCRIBEd only when both are gone', async () => {
    // monitor() opens a second connection in MONITOR mode; both are closed below.
    const admin = new Redis(redisServer.url);
    const monitor = await admin.monitor();
    const commands: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => commands.push(args.map(String)));
    try {
      const received: string[] = [];
      const listener = (name: string): LiveListener => ({ onMessage: (_c, m) => received.push(`${name}:${m}`), onResubscribed: () => undefined });
      const count = (verb: string) => commands.filter((c) => c[0].toLowerCase() === verb && c.includes('rc:one')).length;

      const first = await feed.subscribe(['rc:one'], listener('a'));
      const second = await feed.subscribe(['rc:one', 'rc:one'], listener('b'));
      assert.deepEqual(second.channels, ['rc:one']);
      assert.equal(feed.listenerCount('rc:one'), 2);
      assert.deepEqual(await publisher.call('PUBSUB', 'NUMSUB', 'rc:one'), ['rc:one', 1]);
      await publisher.publish('rc:one', 'hello');
      await until('both listeners to hear it', () => received.length === 2);
      assert.deepEqual(received.sort(), ['a:hello', 'b:hello']);

      first.dispose();
      first.dispose();
      assert.equal(feed.listenerCount('rc:one'), 1);
      await publisher.publish('rc:one', 'again');
      await until('the remaining listener to hear it', () => received.length === 3);
      assert.equal(received[2], 'b:again');

      second[Symbol.dispose]();
      await until('the channel to be unsubscribed', async () => ((await publisher.call('PUBSUB', 'NUMSUB', 'rc:one')) as unknown[])[1] === 0);
      // MONITOR lines come on their own connection, so they may trail the replies seen above.
      await until('MONITOR to show the UNSUBSCRIBE', () => count('unsubscribe') > 0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(count('subscribe'), 1, `SUBSCRIBEs seen: ${JSON.stringify(commands)}`);
      assert.equal(count('unsubscribe'), 1);
      assert.deepEqual(feed.channels, []);
    } finally {
      monitor.disconnect();
      admin.disconnect();
    }
  });

  test('a live query yields the current state first, then only higher versions per key', async () => {
    const source = new Source();
    source.set('a', 1);
    source.set('b', 0);
    const iterator = await query(source, ['vq:a', 'vq:b']);
    try {
      assert.deepEqual([await nextValue(iterator), await nextValue(iterator)], [{ key: 'a', version: 1, note: undefined }, { key: 'b', version: 0, note: undefined }]);
      await publish('vq:a', { key: 'a', version: 1, note: 'duplicate' });
      await publish('vq:a', { key: 'a', version: 3 });
      assert.deepEqual(await nextValue(iterator), { key: 'a', version: 3 });
      await publish('vq:a', { key: 'a', version: 2, note: 'late' });
      await publish('vq:b', { key: 'b', version: 1 });
      assert.deepEqual(await nextValue(iterator), { key: 'b', version: 1 });
      await publish('vq:a', { key: 'a', version: 4 });
      assert.deepEqual(await nextValue(iterator), { key: 'a', version: 4 });
    } finally {
      await iterator.return();
    }
    assert.deepEqual(feed.channels, []);
  });

  test('while the consumer is slow, only the newest version per key waits, each key in its turn', async () => {
    const source = new Source();
    source.set('x', 0);
    source.set('y', 0);
    let arrived = 0;
    const iterator = await liveQuery<Item>({
      feed, channels: ['cq:x', 'cq:y'],
      load: async () => [...source.items.values()],
      fromMessage: (_channel, message) => { arrived++; return itemsOf(message); },
      keyOf: (item) => item.key, versionOf: (item) => item.version, log,
    });
    try {
      await nextValue(iterator);
      await nextValue(iterator);
      for (let v = 1; v <= 200; v++) await publish('cq:x', { key: 'x', version: v });
      for (let v = 1; v <= 5; v++) await publish('cq:y', { key: 'y', version: v });
      await until('all 205 messages to arrive', () => arrived === 205);
      assert.deepEqual(await nextValue(iterator), { key: 'x', version: 200 });
      assert.deepEqual(await nextValue(iterator), { key: 'y', version: 5 });
      assert.ok(await staysPending(iterator.next(), 200), 'nothing else was buffered');
    } finally {
      await iterator.return();
    }
  });

  test('a change published while the state loads is not lost: it replaces the stale loaded item', async () => {
    const iterator = await query(new Source(), ['race:k'], {
      load: async () => {
        // The subscription is already in place: this change, committed "during" the read, arrives.
        await publish('race:k', { key: 'k', version: 8 });
        await new Promise((resolve) => setTimeout(resolve, 100));
        return [{ key: 'k', version: 7 }];
      },
    });
    try {
      assert.deepEqual(await nextValue(iterator), { key: 'k', version: 8 });
      assert.ok(await staysPending(iterator.next(), 200), 'the stale 7 is never sent after 8');
    } finally {
      await iterator.return();
    }
  });

  test('return() while waiting ends the pending next() and lets the channels go; a failing first load holds nothing', async () => {
    const source = new Source();
    source.set('w', 1);
    const iterator: LiveIterator<Item> = await query(source, ['ret:w']);
    await nextValue(iterator);
    const waiting = iterator.next();
    assert.equal(feed.listenerCount('ret:w'), 1);
    await iterator.return();
    assert.deepEqual(await waiting, { done: true, value: undefined });
    assert.equal(feed.listenerCount('ret:w'), 0);
    assert.deepEqual(await iterator.next(), { done: true, value: undefined });

    await assert.rejects(query(source, ['fail:w'], { load: async () => { throw new Error('database down'); } }), /database down/);
    assert.equal(feed.listenerCount('fail:w'), 0);
  });

  test('after a Redis restart the feed resubscribes and the query re-reads the state it missed', async () => {
    const source = new Source();
    source.set('r', 1);
    const iterator = await query(source, ['restart:r']);
    const resubscribed: number[] = [];
    const watcher = await feed.subscribe(['restart:other'], { onMessage: () => undefined, onResubscribed: () => resubscribed.push(Date.now()) });
    try {
      assert.deepEqual(await nextValue(iterator), { key: 'r', version: 1, note: undefined });
      const loadsBefore = source.loads;

      await redisServer.stop();
      // Committed while Redis is down: its announcement is lost for good.
      source.set('r', 5, 'changed during the outage');
      await redisServer.start();

      assert.deepEqual(await nextValue(iterator, 15_000), { key: 'r', version: 5, note: 'changed during the outage' });
      assert.ok(source.loads > loadsBefore, 'the state was re-read');
      assert.equal(resubscribed.length, 1, 'every listener heard of the recovery once');
      // The channel is live again on the new server.
      await until('the publisher to reconnect', async () => (await publisher.ping().catch(() => '')) === 'PONG', 10_000);
      assert.deepEqual(await publisher.call('PUBSUB', 'NUMSUB', 'restart:r'), ['restart:r', 1]);
      await publish('restart:r', { key: 'r', version: 6 });
      assert.deepEqual(await nextValue(iterator), { key: 'r', version: 6 });
    } finally {
      watcher.dispose();
      await iterator.return();
    }
  });
});
