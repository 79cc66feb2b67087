/**
 * Tests of scripts/infra.ts and scripts/kafka/broker.ts against the real PostgreSQL, Redis and
 * Kafka of this machine (no mocks): run with `node --test test/infra.test.ts`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig, REPO_ROOT, SERVICE_NAMES } from '../platform/src/config.ts';
import { checkRedis, dropDatabases, ensureDatabases, ensureKafka, freePort, kafkaAnswers, portFree } from '../scripts/infra.ts';

interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}
const { Client } = createRequire(import.meta.url)('pg') as { Client: new (options: { connectionString: string }) => PgClient };

/** Names in pg_database that start with `<prefix>_`. */
async function databasesWithPrefix(databaseUrl: string, prefix: string): Promise<string[]> {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname', [`${prefix}_`]);
    return rows.map((row) => String(row.datname));
  } finally {
    await client.end();
  }
}

describe('Kafka', () => {
  test('ensureKafka leaves a broker that answers ApiVersions and Metadata', { timeout: 180_000 }, async () => {
    const config = loadConfig();
    const result = await ensureKafka();
    assert.equal(result.broker, config.kafkaBrokers[0]);
    assert.equal(await kafkaAnswers(config.kafkaBrokers, 5_000), true);
    // A second call finds it answering and starts nothing.
    assert.deepEqual(await ensureKafka(), { started: false, broker: config.kafkaBrokers[0] });
  });

  test('kafkaAnswers is false where nothing listens and where something that is not Kafka listens', async () => {
    assert.equal(await kafkaAnswers(['127.0.0.1:1'], 1_000), false);
    const postgres = new URL(loadConfig().databaseUrl);
    assert.equal(await kafkaAnswers([`${postgres.hostname}:${postgres.port || 5432}`], 2_000), false);
  });
});

describe('PostgreSQL databases', () => {
  const prefix = `swiftcart_t${randomBytes(4).toString('hex')}`;
  const config = { ...loadConfig(), databasePrefix: prefix };
  after(() => dropDatabases(config));

  test('ensureDatabases creates one database per service and dropDatabases removes them', async () => {
    const expected = SERVICE_NAMES.map((service) => `${prefix}_${service}`);
    assert.deepEqual(await databasesWithPrefix(config.databaseUrl, prefix), []);

    const first = await ensureDatabases(config);
    assert.deepEqual(first.created, expected);
    assert.deepEqual(first.existing, []);
    assert.deepEqual(await databasesWithPrefix(config.databaseUrl, prefix), [...expected].sort());

    const again = await ensureDatabases(config);
    assert.deepEqual(again, { created: [], existing: expected });

    assert.deepEqual((await dropDatabases(config)).sort(), [...expected].sort());
    assert.deepEqual(await databasesWithPrefix(config.databaseUrl, prefix), []);
    assert.deepEqual(await dropDatabases(config), []);
  });

  test('concurrent ensureDatabases calls agree', async () => {
    const results = await Promise.all([ensureDatabases(config), ensureDatabases(config), ensureDatabases(config)]);
    const created = results.flatMap((r) => r.created).sort();
    assert.deepEqual(created, SERVICE_NAMES.map((service) => `${prefix}_${service}`).sort());
    await dropDatabases(config);
  });

  test('an unreachable server gives a clear error', async () => {
    await assert.rejects(
      ensureDatabases({ databaseUrl: 'postgresql://postgres@127.0.0.1:1', databasePrefix: prefix }),
      /PostgreSQL does not answer at postgresql:\/\/postgres@127\.0\.0\.1:1\/postgres/,
    );
  });
});

describe('Redis', () => {
  test('checkRedis answers for the configured Redis', async () => {
    await checkRedis(loadConfig());
  });

  test('checkRedis rejects clearly when nothing answers', async () => {
    await assert.rejects(checkRedis({ redisUrl: 'redis://127.0.0.1:1' }), /Redis does not answer at redis:\/\/127\.0\.0\.1:1/);
  });
});

describe('command line', () => {
  const script = path.join(REPO_ROOT, 'scripts', 'infra.ts');

  test('an unknown command exits 2 with the usage on stderr', () => {
    const run = spawnSync(process.execPath, [script, 'no-such-command'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /unknown command: no-such-command/);
    assert.match(run.stderr, /usage: node scripts\/infra\.ts <command>/);
    assert.equal(run.stdout, '');
  });

  test('no command exits 2 with the usage', () => {
    const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /usage:/);
  });

  test('a failed check exits 1 with a clear message', () => {
    const run = spawnSync(process.execPath, [script, 'redis'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:1' },
    });
    assert.equal(run.status, 1);
    assert.match(run.stderr, /redis failed: Redis does not answer at redis:\/\/127\.0\.0\.1:1/);
  });

  test('kafka-status exits 0 when the broker answers', { timeout: 60_000 }, () => {
    const run = spawnSync(process.execPath, [script, 'kafka-status'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /Kafka answers on/);
  });
});

describe('freePort', () => {
  test('gives a bindable port below the ephemeral range, where outgoing connections never take it', async () => {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    assert.equal(new Set(ports).size, ports.length, 'never the same port twice, even while it is free again');
    for (const port of ports) {
      assert.ok(port >= 1024 && port < low, `${port} is below ${low}`);
      assert.equal(await portFree(port), true);
    }
    // A port in use is not free.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(ports[0], '127.0.0.1', resolve));
    try {
      assert.equal(await portFree(ports[0]), false);
    } finally {
      server.close();
    }
  });
});
