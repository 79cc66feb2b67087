/** The platform's Redis, cache, Kafka and health modules against the real servers. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CacheAside, checkReadiness, createKafka, createLogger, createRedis, type KafkaClient, type Redis, type IncomingMessage } from '../src/index.ts';
import { clearRedisPrefix, isolatedConfig } from '../../test/support/stack.ts';

const config = isolatedConfig();
const log = createLogger('platform-test', 'fatal');

describe('cache-aside on real Redis', () => {
  let redis: Redis;
  before(() => {
    redis = createRedis(config, log, 'test');
  });
  after(async () => {
    await clearRedisPrefix(config);
    await redis.quit();
  });

  it('loads misses once, then serves hits without the loader', async () => {
    const cache = new CacheAside<{ v: number }>(redis, { namespace: 'c1', ttlSeconds: 30, log });
    let loads = 0;
    const load = async (keys: readonly string[]) => {
      loads++;
      return new Map(keys.filter((k) => k !== 'absent').map((k) => [k, { v: k.length }]));
    };
    const first = await cache.getMany(['a', 'bb', 'absent'], load);
    assert.deepEqual(
      [...first],
      [
        ['a', { v: 1 }],
        ['bb', { v: 2 }],
        ['absent', null],
      ],
    );
    const second = await cache.getMany(['a', 'bb'], async () => {
      throw new Error('must not load');
    });
    assert.deepEqual(second.get('bb'), { v: 2 });
    assert.equal(loads, 1);
    assert.deepEqual(cache.stats, { hits: 2, misses: 3 });
    assert.ok((await redis.ttl('cache:c1:v:a')) > 0, 'values carry a TTL');
  });

  it('never caches a value read before an invalidation that committed after it', async () => {
    const cache = new CacheAside<string>(redis, { namespace: 'c2', ttlSeconds: 30, log });
    // The reader sees the old row, then a writer commits and invalidates before the reader fills the cache.
    const stale = await cache.get('k', async () => {
      await cache.invalidate(['k']);
      return 'old';
    });
    assert.equal(stale, 'old');
    assert.equal(await cache.get('k', async () => 'new'), 'new', 'the stale fill was refused');
  });

  it('a shared generation invalidates every key behind it', async () => {
    const pages = new CacheAside<number>(redis, { namespace: 'c3', ttlSeconds: 30, log, generationOf: () => 'all' });
    await pages.get('p1', async () => 1);
    await pages.get('p2', async () => 2);
    await pages.invalidate(['all']);
    assert.equal(await pages.get('p1', async () => 10), 10);
    assert.equal(await pages.get('p2', async () => 20), 20);
  });
});

describe('Kafka module on the real broker', () => {
  let kafka: KafkaClient;
  before(() => {
    kafka = createKafka(config, log, 'platform-test');
  });
  after(() => kafka.close());

  it('creates topics, publishes with keys and headers, and consumes them in order per key', async () => {
    const topic = `platform.test.${randomUUID().slice(0, 8)}.v1`;
    await kafka.ensureTopics([{ name: topic, partitions: 3 }]);
    await kafka.ensureTopics([{ name: topic, partitions: 3 }]);
    const sent = Array.from({ length: 30 }, (_, i) => ({ key: `order-${i % 3}`, value: JSON.stringify({ i }), headers: { type: 'Tested', id: String(i) } }));
    await kafka.publish(topic, sent);
    const received: IncomingMessage[] = [];
    const done = new Promise<void>((resolve) => {
      void kafka.consume(`g-${randomUUID()}`, [topic], async (message) => {
        received.push(message);
        if (received.length === sent.length) resolve();
      });
    });
    await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${received.length} of 30 arrived`)), 30_000))]);
    assert.equal(received[0].topic, kafka.topic(topic));
    assert.ok(kafka.topic(topic).startsWith(config.kafkaTopicPrefix));
    for (const key of ['order-0', 'order-1', 'order-2']) {
      const order = received.filter((m) => m.key === key).map((m) => JSON.parse(m.value!).i as number);
      assert.equal(order.length, 10);
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
        `${key} stays in order`,
      );
      assert.equal(new Set(received.filter((m) => m.key === key).map((m) => m.partition)).size, 1, `${key} stays on one partition`);
    }
    assert.equal(received.find((m) => m.headers.id === '7')?.headers.type, 'Tested');
  });

  it('replaces a consumer kafkajs gives up on: an error it calls non-retriable does not stop consuming', async () => {
    const topic = `platform.test.${randomUUID().slice(0, 8)}.v1`;
    await kafka.ensureTopics([{ name: topic, partitions: 1 }]);
    await kafka.publish(topic, [
      { key: 'k', value: 'first' },
      { key: 'k', value: 'second' },
    ]);
    const seen: string[] = [];
    let thrown = false;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    // kafkajs crashes a consumer for good on such an error (as on a group coordinator not found
    // while a broker starts): without a replacement, nothing after it would ever be handled.
    const subscription = await kafka.consume(`g-${randomUUID()}`, [topic], async (message) => {
      seen.push(message.value!);
      if (message.value === 'first' && !thrown) {
        thrown = true;
        throw Object.assign(new Error('given up on'), { retriable: false });
      }
      if (message.value === 'second') finish();
    });
    try {
      await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${JSON.stringify(seen)} arrived`)), 30_000))]);
      assert.deepEqual(seen, ['first', 'first', 'second'], 'the replacement starts again from the last committed offset');
    } finally {
      await subscription.stop();
    }
  });

  it('answers a ping, and a client of an absent broker fails its ping within the timeout', async () => {
    await kafka.ping(5_000);
    const absent = createKafka({ ...config, kafkaBrokers: ['127.0.0.1:1'] }, log, 'absent');
    const started = Date.now();
    await assert.rejects(absent.ping(1_000));
    assert.ok(Date.now() - started < 5_000);
    await absent.close();
  });

  it('creates topics with KAFKA_REPLICATION_FACTOR copies: more than the brokers there are is refused', async () => {
    const wanting = createKafka(
      isolatedConfig({ KAFKA_TOPIC_PREFIX: config.kafkaTopicPrefix, KAFKA_REPLICATION_FACTOR: '3', KAFKA_MIN_INSYNC_REPLICAS: '2' }),
      log,
      'platform-test-replicated',
    );
    try {
      const topic = `platform.test.${randomUUID().slice(0, 8)}.v1`;
      await assert.rejects(
        wanting.ensureTopics([{ name: topic }]),
        /could not create topics: .*Replication-factor is invalid/,
        'one local broker cannot hold three copies',
      );
      assert.equal(await kafka.hasTopic(topic), false, 'nothing half-created');
    } finally {
      await wanting.close();
    }
  });

  it('creates a topic with KAFKA_PARTITIONS partitions, and leaves one with fewer as it is, saying so once', async () => {
    const topic = `platform.test.${randomUUID().slice(0, 8)}.v1`;
    const warnings: { topic: string; partitions: number; wanted: number }[] = [];
    const capture = {
      write: (line: string) => {
        const entry = JSON.parse(line);
        if (/fewer partitions/.test(entry.msg)) warnings.push(entry);
      },
    };
    const wider = createKafka(
      isolatedConfig({ KAFKA_TOPIC_PREFIX: config.kafkaTopicPrefix, KAFKA_PARTITIONS: '5' }),
      createLogger('platform-test', 'warn', capture),
      'platform-test-wide',
    );
    try {
      await kafka.ensureTopics([{ name: topic }]);
      assert.equal((await kafka.topicOffsets(topic)).length, config.kafkaPartitions);
      await wider.ensureTopics([{ name: topic }]);
      await wider.ensureTopics([{ name: topic }]);
      assert.equal((await wider.topicOffsets(topic)).length, config.kafkaPartitions, 'an existing topic is not grown');
      assert.deepEqual(
        warnings.map((w) => [w.topic, w.partitions, w.wanted]),
        [[kafka.topic(topic), config.kafkaPartitions, 5]],
      );
      const created = `platform.test.${randomUUID().slice(0, 8)}.v1`;
      await wider.ensureTopics([{ name: created }]);
      assert.equal((await wider.topicOffsets(created)).length, 5);
    } finally {
      await wider.close();
    }
  });
});

describe('readiness', () => {
  it('is ready only when every check passes, and reports each', async () => {
    const ok = await checkReadiness({ a: async () => {}, b: async () => {} }, 500);
    assert.equal(ok.status, 'ready');
    const down = await checkReadiness(
      {
        a: async () => {},
        b: async () => {
          throw new Error('refused');
        },
        c: () => new Promise(() => {}),
      },
      200,
    );
    assert.equal(down.status, 'unavailable');
    assert.equal(down.checks.a.ok, true);
    assert.equal(down.checks.b.error, 'refused');
    assert.match(down.checks.c.error!, /no answer within 200 ms/);
  });
});
