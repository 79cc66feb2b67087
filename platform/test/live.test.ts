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
import { waitFor } from '../../test/support/wait.ts';

const log = createLogger('live-test', process.env.TEST_LOG_LEVEL ?? 'fatal');

interface Item {
  readonly key: string;
  readonly version: number;
  readonly note?: string;
}

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

/** The next value, failing when the iterator ends or nothing comes within `ms`. */
async function nextValue<T>(iterator: AsyncIterator<T>, ms = 3_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    iterator.next(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no value within ${ms} ms`)), ms);
    }),
  ]);
  clearTimeout(timer);
  assert.equal(result.done, false, 'the iterator ended');
  return result.value as T;
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

  const query = (source: Source, channels: string[], options: { load?: () => Promise<Item[]> } = {}) =>
    liveQuery<Item>({
      feed,
      channels,
      load:
        options.load ??
        (async () => {
          source.loads++;
          return [...source.items.values()];
        }),
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
      assert.deepEqual(
        results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)),
        [],
      );
      assert.equal(fresh.channels.length, 100);
    } finally {
      await fresh.close();
    }
  });

  test('two listeners on one channel cost one SUBSCRIBE, and the channel is UNSUBSCRIBEd only when both are gone', async () => {
    // Redis counts the commands it ran; this Redis is the test's own and its tests run one at a
    // time, so the difference is this test's. (ioredis' MONITOR client once failed here with
    // "Command queue state error" when another connection's INFO came before its MONITOR's reply.)
    const calls = async (): Promise<Record<string, number>> => {
      const info = (await publisher.info('commandstats')) as string;
      return Object.fromEntries([...info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map(([, name, n]) => [name, Number(n)]));
    };
    const before = await calls();
    const ran = async (command: string) => ((await calls())[command] ?? 0) - (before[command] ?? 0);
    const received: string[] = [];
    const listener = (name: string): LiveListener => ({ onMessage: (_c, m) => received.push(`${name}:${m}`), onResubscribed: () => undefined });

    const first = await feed.subscribe(['rc:one'], listener('a'));
    const second = await feed.subscribe(['rc:one', 'rc:one'], listener('b'));
    assert.deepEqual(second.channels, ['rc:one']);
    assert.equal(feed.listenerCount('rc:one'), 2);
    assert.deepEqual(await publisher.call('PUBSUB', 'NUMSUB', 'rc:one'), ['rc:one', 1]);
    await publisher.publish('rc:one', 'hello');
    await waitFor(() => received.length === 2, 'both listeners to hear it');
    assert.deepEqual(received.sort(), ['a:hello', 'b:hello']);

    first.dispose();
    first.dispose();
    assert.equal(feed.listenerCount('rc:one'), 1);
    await publisher.publish('rc:one', 'again');
    await waitFor(() => received.length === 3, 'the remaining listener to hear it');
    assert.equal(received[2], 'b:again');

    second[Symbol.dispose]();
    await waitFor(async () => ((await publisher.call('PUBSUB', 'NUMSUB', 'rc:one')) as unknown[])[1] === 0, 'the channel to be unsubscribed');
    assert.equal(await ran('subscribe'), 1);
    assert.equal(await ran('unsubscribe'), 1);
    assert.deepEqual(feed.channels, []);
  });

  test('a live query yields the current state first, then only higher versions per key', async () => {
    const source = new Source();
    source.set('a', 1);
    source.set('b', 0);
    const iterator = await query(source, ['vq:a', 'vq:b']);
    try {
      assert.deepEqual(
        [await nextValue(iterator), await nextValue(iterator)],
        [
          { key: 'a', version: 1, note: undefined },
          { key: 'b', version: 0, note: undefined },
        ],
      );
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
      feed,
      channels: ['cq:x', 'cq:y'],
      load: async () => [...source.items.values()],
      fromMessage: (_channel, message) => {
        arrived++;
        return itemsOf(message);
      },
      keyOf: (item) => item.key,
      versionOf: (item) => item.version,
      log,
    });
    try {
      await nextValue(iterator);
      await nextValue(iterator);
      for (let v = 1; v <= 200; v++) await publish('cq:x', { key: 'x', version: v });
      for (let v = 1; v <= 5; v++) await publish('cq:y', { key: 'y', version: v });
      await waitFor(() => arrived === 205, 'all 205 messages to arrive');
      assert.deepEqual(await nextValue(iterator), { key: 'x', version: 200 });
      assert.deepEqual(await nextValue(iterator), { key: 'y', version: 5 });
      // Nothing else was buffered: a change published now is the next value, and it would come after anything waiting.
      await publish('cq:x', { key: 'x', version: 201 });
      assert.deepEqual(await nextValue(iterator), { key: 'x', version: 201 }, 'nothing else was buffered');
    } finally {
      await iterator.return();
    }
  });

  test('a change published while the state loads is not lost: it replaces the stale loaded item', async () => {
    // The feed hands a message to every listener of its channel at once: when this one has it, the query has it too.
    let heard = false;
    const witness = await feed.subscribe(['race:k'], {
      onMessage: () => {
        heard = true;
      },
      onResubscribed: () => undefined,
    });
    const iterator = await query(new Source(), ['race:k'], {
      load: async () => {
        // The subscription is already in place: this change, committed "during" the read, arrives before the read ends.
        await publish('race:k', { key: 'k', version: 8 });
        await waitFor(() => heard, 'the change to reach the feed', 5_000, undefined, 5);
        return [{ key: 'k', version: 7 }];
      },
    });
    try {
      assert.deepEqual(await nextValue(iterator), { key: 'k', version: 8 });
      // The stale 7 is never sent after 8: a change published now is the next value, and 7 would come before it.
      await publish('race:k', { key: 'k', version: 9 });
      assert.deepEqual(await nextValue(iterator), { key: 'k', version: 9 }, 'the stale 7 is never sent after 8');
    } finally {
      await iterator.return();
      witness.dispose();
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

    await assert.rejects(
      query(source, ['fail:w'], {
        load: async () => {
          throw new Error('database down');
        },
      }),
      /database down/,
    );
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
      await waitFor(async () => (await publisher.ping().catch(() => '')) === 'PONG', 'the publisher to reconnect', 10_000);
      assert.deepEqual(await publisher.call('PUBSUB', 'NUMSUB', 'restart:r'), ['restart:r', 1]);
      await publish('restart:r', { key: 'r', version: 6 });
      assert.deepEqual(await nextValue(iterator), { key: 'r', version: 6 });
    } finally {
      watcher.dispose();
      await iterator.return();
    }
  });
});
