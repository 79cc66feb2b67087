import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { ConfigError, DEVELOPMENT_JWT_SECRET, loadConfig, serviceDatabaseUrl } from '../src/config.ts';

const PRODUCTION_JWT = 'config-test-production-jwt-secret-0123456789';

describe('config', () => {
  it('has defaults that work on a developer machine', () => {
    const config = loadConfig({});
    assert.equal(config.env, 'development');
    assert.equal(config.gatewayPort, 4000);
    assert.deepEqual(config.kafkaBrokers, ['127.0.0.1:9092']);
    assert.equal(config.jwtSecret, DEVELOPMENT_JWT_SECRET);
    assert.equal(config.servicePorts.inventory, 4002);
    assert.equal(serviceDatabaseUrl(config, 'order'), 'postgresql://postgres@127.0.0.1:5432/swiftcart_order');
    assert.ok(config.supergraphPath.endsWith('schema/supergraph.graphql'));
    assert.equal(config.serviceRole, 'all', 'one process serves the API and runs the workers');
    assert.deepEqual([config.kafkaReplicationFactor, config.kafkaMinInsyncReplicas], [1, 1], 'the local single broker');
    assert.deepEqual(
      [config.outboxRetentionMs, config.inboxRetentionMs, config.kafkaRetentionMs, config.retentionIntervalMs],
      [3_600_000, 8 * 86_400_000, 7 * 86_400_000, 60_000],
      'an hour of outbox, eight days of inbox, a week of Kafka',
    );
    assert.equal(config.kafkaPartitions, Math.max(3, availableParallelism()), 'one partition per core, at least 3');
  });

  it('requires SUBGRAPH_SECRET in production only; elsewhere unset means none', () => {
    assert.equal(loadConfig({}).subgraphSecret, null);
    assert.equal(loadConfig({ SUBGRAPH_SECRET: '' }).subgraphSecret, null);
    const secret = 'g'.repeat(32);
    assert.equal(loadConfig({ SUBGRAPH_SECRET: secret }).subgraphSecret, secret);
    assert.equal(loadConfig({ NODE_ENV: 'production', JWT_SECRET: PRODUCTION_JWT, SUBGRAPH_SECRET: secret }).subgraphSecret, secret);
  });

  it('accepts a previous JWT and subgraph secret while they are rotated, after the current ones', () => {
    const [jwt, jwtOld, sub, subOld] = ['j', 'k', 's', 't'].map((c) => c.repeat(32));
    assert.deepEqual(loadConfig({ JWT_SECRET: jwt }).acceptedJwtSecrets, [jwt]);
    assert.deepEqual(loadConfig({}).acceptedSubgraphSecrets, []);
    const rotating = loadConfig({ JWT_SECRET: jwt, JWT_PREVIOUS_SECRET: jwtOld, SUBGRAPH_SECRET: sub, SUBGRAPH_PREVIOUS_SECRET: subOld });
    assert.equal(rotating.jwtSecret, jwt);
    assert.deepEqual(rotating.acceptedJwtSecrets, [jwt, jwtOld]);
    assert.equal(rotating.subgraphSecret, sub);
    assert.deepEqual(rotating.acceptedSubgraphSecrets, [sub, subOld]);
  });

  it('reads overrides', () => {
    const config = loadConfig({ GATEWAY_PORT: '5000', KAFKA_BROKERS: 'a:1, b:2', PRODUCT_URL: 'http://p:9/graphql', DB_PREFIX: 'x_y' });
    assert.equal(config.gatewayPort, 5000);
    assert.deepEqual(config.kafkaBrokers, ['a:1', 'b:2']);
    assert.deepEqual(config.subgraphUrls.product, ['http://p:9/graphql']);
    assert.deepEqual(
      loadConfig({ ORDER_URL: 'http://o1:1/graphql, http://o2:2/graphql' }).subgraphUrls.order,
      ['http://o1:1/graphql', 'http://o2:2/graphql'],
      'one URL per replica',
    );
    assert.equal(serviceDatabaseUrl(config, 'payment'), 'postgresql://postgres@127.0.0.1:5432/x_y_payment');
    assert.equal(loadConfig({ SERVICE_ROLE: 'worker' }).serviceRole, 'worker');
    assert.equal(loadConfig({ SERVICE_ROLE: ' api ' }).serviceRole, 'api');
    assert.equal(loadConfig({ KAFKA_PARTITIONS: '12' }).kafkaPartitions, 12);
    const durable = loadConfig({ KAFKA_REPLICATION_FACTOR: '3', KAFKA_MIN_INSYNC_REPLICAS: '2' });
    assert.deepEqual([durable.kafkaReplicationFactor, durable.kafkaMinInsyncReplicas], [3, 2]);
  });

  const bad: [string, NodeJS.ProcessEnv, RegExp][] = [
    ['a port that is no number', { GATEWAY_PORT: 'abc' }, /GATEWAY_PORT must be an integer/],
    ['a port out of range', { ORDER_PORT: '70000' }, /ORDER_PORT must be an integer from 0 to 65535/],
    ['a broker without port', { KAFKA_BROKERS: 'localhost' }, /KAFKA_BROKERS entries must be host:port/],
    ['a database URL of the wrong kind', { DATABASE_URL: 'mysql://x' }, /DATABASE_URL must use postgresql:/],
    ['a session timeout the broker refuses', { KAFKA_SESSION_TIMEOUT_MS: '1000' }, /KAFKA_SESSION_TIMEOUT_MS must be an integer from 6000 to 300000/],
    ['an unknown service role', { SERVICE_ROLE: 'workers' }, /SERVICE_ROLE must be one of all, api, worker, got "workers"/],
    ['no partitions', { KAFKA_PARTITIONS: '0' }, /KAFKA_PARTITIONS must be an integer from 1 to 1000/],
    [
      'an inbox that forgets before Kafka does',
      { KAFKA_RETENTION_MS: '86400000', INBOX_RETENTION_MS: '86400000' },
      /INBOX_RETENTION_MS \(86400000\) must be longer than KAFKA_RETENTION_MS \(86400000\)/,
    ],
    [
      'more in-sync replicas than copies',
      { KAFKA_REPLICATION_FACTOR: '2', KAFKA_MIN_INSYNC_REPLICAS: '3' },
      /KAFKA_MIN_INSYNC_REPLICAS \(3\) must not exceed KAFKA_REPLICATION_FACTOR \(2\)/,
    ],
    ['a replica URL that is no URL', { ORDER_URL: 'http://o1:1/graphql,o2' }, /ORDER_URL must be a URL, got "o2"/],
    ['a short JWT secret', { JWT_SECRET: 'short' }, /at least 32 bytes/],
    ['the development secret in production', { NODE_ENV: 'production' }, /JWT_SECRET must be set in production/],
    ['a DB prefix with SQL in it', { DB_PREFIX: 'x"; drop' }, /DB_PREFIX must be/],
    ['a subgraph URL that is no URL', { INVENTORY_URL: 'nope' }, /INVENTORY_URL must be a URL/],
    ['production without SUBGRAPH_SECRET', { NODE_ENV: 'production', JWT_SECRET: PRODUCTION_JWT }, /SUBGRAPH_SECRET must be set in production/],
    ['a short SUBGRAPH_SECRET', { SUBGRAPH_SECRET: 's'.repeat(31) }, /SUBGRAPH_SECRET must be at least 32 bytes/],
    ['a SUBGRAPH_SECRET with a space', { SUBGRAPH_SECRET: `${'s'.repeat(32)} x` }, /SUBGRAPH_SECRET must be printable ASCII/],
    [
      'a SUBGRAPH_SECRET that is the JWT secret',
      { JWT_SECRET: PRODUCTION_JWT, SUBGRAPH_SECRET: PRODUCTION_JWT },
      /SUBGRAPH_SECRET must differ from JWT_SECRET/,
    ],
    [
      'a previous JWT secret that is the current one',
      { JWT_SECRET: PRODUCTION_JWT, JWT_PREVIOUS_SECRET: PRODUCTION_JWT },
      /JWT_PREVIOUS_SECRET must differ from JWT_SECRET/,
    ],
    ['a short previous JWT secret', { JWT_PREVIOUS_SECRET: 'short' }, /JWT_PREVIOUS_SECRET must be at least 32 bytes/],
    ['a previous subgraph secret alone', { SUBGRAPH_PREVIOUS_SECRET: 'p'.repeat(32) }, /SUBGRAPH_PREVIOUS_SECRET needs SUBGRAPH_SECRET/],
    [
      'a previous subgraph secret that is the current one',
      { SUBGRAPH_SECRET: 'p'.repeat(32), SUBGRAPH_PREVIOUS_SECRET: 'p'.repeat(32) },
      /SUBGRAPH_PREVIOUS_SECRET must differ from SUBGRAPH_SECRET/,
    ],
    [
      'a previous subgraph secret that signs tokens',
      { JWT_SECRET: PRODUCTION_JWT, SUBGRAPH_SECRET: 'p'.repeat(32), SUBGRAPH_PREVIOUS_SECRET: PRODUCTION_JWT },
      /SUBGRAPH_PREVIOUS_SECRET must differ from the JWT secrets/,
    ],
    [
      'a subgraph secret that is the previous JWT secret',
      { JWT_PREVIOUS_SECRET: 'q'.repeat(32), SUBGRAPH_SECRET: 'q'.repeat(32) },
      /SUBGRAPH_SECRET must differ from JWT_PREVIOUS_SECRET/,
    ],
    ['a pool size in hexadecimal', { DB_POOL_SIZE: '0x10' }, /^DB_POOL_SIZE must be an integer from 1 to 500, got "0x10"$/],
    ['a pool size in exponent notation', { DB_POOL_SIZE: '1e3' }, /^DB_POOL_SIZE must be an integer from 1 to 500, got "1e3"$/],
    ['a pool size with a decimal point', { DB_POOL_SIZE: '1.0' }, /^DB_POOL_SIZE must be an integer from 1 to 500, got "1.0"$/],
    ['a log level pino does not have', { LOG_LEVEL: 'verbose' }, /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"$/],
    ['a Redis URL of the wrong kind', { REDIS_URL: 'http://127.0.0.1:6379' }, /^REDIS_URL must use redis: or rediss:, got "http:\/\/127.0.0.1:6379"$/],
  ];
  it('names every variable at fault at once', () => {
    assert.throws(() => loadConfig({ GATEWAY_PORT: 'abc', DB_POOL_SIZE: '0', SERVICE_ROLE: 'both' }), {
      name: 'ConfigError',
      message:
        'GATEWAY_PORT must be an integer from 0 to 65535, got "abc"; SERVICE_ROLE must be one of all, api, worker, got "both"; DB_POOL_SIZE must be an integer from 1 to 500, got "0"',
    });
  });

  it('keeps an empty prefix where empty means none, and reads blank numbers as unset', () => {
    const config = loadConfig({ REDIS_PREFIX: '', KAFKA_TOPIC_PREFIX: '', DB_POOL_SIZE: ' ', LOG_LEVEL: 'DEBUG', NODE_ENV: 'staging' });
    assert.deepEqual([config.redisPrefix, config.kafkaTopicPrefix, config.databasePoolSize, config.logLevel, config.env], ['', '', 10, 'debug', 'development']);
    assert.equal(loadConfig({ NODE_ENV: 'test' }).logLevel, 'warn');
  });

  for (const [name, env, message] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && message.test(error.message),
      );
    });
  }
});
