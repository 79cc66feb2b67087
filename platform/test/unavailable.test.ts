/**
 * isUnavailable (errors.ts) on the errors a real PostgreSQL gives: a server that is gone
 * or restarting is "unavailable" (retry, never dead-letter); a statement that fails is not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, isUnavailable, openDatabase } from '@swiftcart/platform';
import { TestPostgresServer } from '../../test/support/postgres-server.ts';
import { isolatedConfig, startStack } from '../../test/support/stack.ts';
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
  assert.deepEqual(rows.map((r) => r.id), [1]);
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
