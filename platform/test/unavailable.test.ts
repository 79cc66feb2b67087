/**
 * isUnavailable (errors.ts) on the errors a real PostgreSQL and a real Redis give: a server that
 * is gone or restarting is "unavailable" (retry, never dead-letter); a statement that fails is not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createLogger, createRedis, isUnavailable, openDatabase } from '@swiftcart/platform';
import { TestPostgresServer } from '../../test/support/postgres-server.ts';
import { TestRedisServer } from '../../test/support/redis-server.ts';
import { isolatedConfig, startStack } from '../../test/support/stack.ts';
import { waitFor } from '../../test/support/wait.ts';
import { ensureDatabases } from '../../scripts/infra.ts';
import { loadServiceModule } from '../../scripts/services.ts';

async function failure(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  assert.fail('expected the statement to fail');
}

test('a crashed, stopped or refusing server is unavailable; a failing statement is not', async () => {
  await using postgres = await TestPostgresServer.start();
  const config = isolatedConfig({ DATABASE_URL: postgres.url });
  await ensureDatabases(config, ['order']);
  const { entities } = await loadServiceModule('order');
  await using db = await openDatabase({ config, service: 'order', entities, migrations: [], log: createLogger('test', 'fatal') });
  await db.fork().execute('create table t (id int primary key)');
  await db.fork().execute('insert into t values (1)');

  const syntax = await failure(() => db.fork().execute('selec 1'));
  const duplicate = await failure(() => db.fork().execute('insert into t values (1)'));
  assert.equal(isUnavailable(syntax), false, String(syntax));
  assert.equal(isUnavailable(duplicate), false, String(duplicate));

  // Pooled connections are cut mid-life by an immediate shutdown, then nothing listens.
  await postgres.stop('SIGQUIT');
  const cut = await failure(() => db.fork().execute('select 1'));
  const refused = await failure(() => db.fork().execute('select 1'));
  assert.equal(isUnavailable(cut), true, String(cut));
  assert.equal(isUnavailable(refused), true, String(refused));

  // Back again: the same pool works without being reopened.
  await postgres.startProcess();
  const rows = await db.fork().execute<{ id: number }[]>('select id from t');
  assert.deepEqual(
    rows.map((r) => r.id),
    [1],
  );
});

test('a request whose database is down is SERVICE_UNAVAILABLE with a retry delay, and works again once it is back', async () => {
  await using postgres = await TestPostgresServer.start();
  await using stack = await startStack({ services: ['order'], env: { DATABASE_URL: postgres.url } });
  const token = await stack.token('c-unavailable', ['customer']);
  const query = '{ myOrders(first: 1) { edges { node { id } } } }';
  assert.equal((await stack.graphql(query, { token })).errors, undefined);

  await postgres.stop('SIGQUIT');
  const down = await stack.graphql(query, { token });
  assert.equal(down.errors?.[0].extensions?.code, 'SERVICE_UNAVAILABLE', JSON.stringify(down.errors));
  assert.equal(down.errors?.[0].extensions?.retryAfterSeconds, 2);
  assert.match(down.errors![0].message, /the order service is briefly unavailable/);

  await postgres.startProcess();
  const back = await stack.graphql(query, { token });
  assert.equal(back.errors, undefined, JSON.stringify(back.errors));
});

test('transactions cut by a restart give their connections back: the pool serves again once the server is back', { timeout: 60_000 }, async () => {
  await using postgres = await TestPostgresServer.start();
  const config = isolatedConfig({ DATABASE_URL: postgres.url });
  await ensureDatabases(config, ['order']);
  const { entities } = await loadServiceModule('order');
  const poolSize = 2;
  await using db = await openDatabase({ config, service: 'order', entities, migrations: [], log: createLogger('test', 'fatal'), poolSize });

  // Every connection of the pool is inside a transaction when the server goes away: the statement,
  // then the rollback, fail on a dead connection. A connection not given back after a failed
  // rollback (kysely before 0.29.9) leaves the pool empty for good, and every later request waits.
  const inFlight = Array.from({ length: poolSize }, () => failure(() => db.fork().transactional((em) => em.execute('select pg_sleep(30)'))));
  await waitForBackends(postgres, poolSize);
  await postgres.restart();
  for (const error of await Promise.all(inFlight)) assert.equal(isUnavailable(error), true, String(error));

  const served = await Promise.all(
    Array.from({ length: poolSize * 2 }, (_, i) =>
      db.fork().transactional(async (em) => {
        const [row] = await em.execute<{ n: number }[]>(`select ${i}::int as n`);
        return row.n;
      }),
    ),
  );
  assert.deepEqual(served, [0, 1, 2, 3]);
});

/** Resolves once `count` backends run pg_sleep on the server. */
async function waitForBackends(postgres: TestPostgresServer, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: `${postgres.url}/postgres` });
  await client.connect();
  try {
    let running = 0;
    await waitFor(
      async () => {
        const { rows } = await client.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where query like 'select pg_sleep%' and state = 'active'",
        );
        running = rows[0].n;
        return running >= count;
      },
      `${count} transactions to reach the server`,
      10_000,
      () => `${running} running`,
    );
  } finally {
    await client.end();
  }
}

test('a statement that waits longer than DB_CONNECT_TIMEOUT_MS for a pooled connection fails as unavailable', async () => {
  const config = isolatedConfig({ DB_CONNECT_TIMEOUT_MS: '300' });
  await ensureDatabases(config, ['order']);
  await using db = await openDatabase({
    config,
    service: 'order',
    entities: (await loadServiceModule('order')).entities,
    migrations: [],
    log: createLogger('test', 'fatal'),
    poolSize: 1,
  });
  let release!: () => void;
  let holding!: () => void;
  const inside = new Promise<void>((resolve) => {
    holding = resolve;
  });
  const held = db.fork().transactional(
    () =>
      new Promise<void>((resolve) => {
        release = resolve;
        holding();
      }),
  );
  await inside;
  const started = Date.now();
  const waited = await failure(() => db.fork().execute('select 1'));
  assert.equal(isUnavailable(waited), true, String(waited));
  assert.ok(Date.now() - started < 5_000, 'it gave up instead of waiting on');
  release();
  await held;
  assert.deepEqual(await db.fork().execute('select 1 as n'), [{ n: 1 }]);
});

test('a Redis that is gone is unavailable: a cut connection, and commands refused while it reconnects', async () => {
  const server = await TestRedisServer.start();
  const redis = createRedis({ redisUrl: server.url, redisPrefix: 'unavailable:' }, createLogger('test', 'fatal'), 'unavailable-test');
  try {
    assert.equal(await redis.set('k', 'v'), 'OK');
    await server.stop();
    const errors: unknown[] = [];
    await waitFor(
      async () => {
        errors.push(await failure(() => redis.get('k')));
        return errors.length >= 3 || undefined;
      },
      'three refused commands',
      30_000,
    );
    for (const error of errors) assert.equal(isUnavailable(error), true, `${(error as Error).name}: ${(error as Error).message}`);
    assert.equal(isUnavailable(new Error('ERR wrong number of arguments for command')), false);
  } finally {
    redis.disconnect();
  }
});
