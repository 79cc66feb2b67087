/**
 * isDatabaseUnavailable (database.ts) on the errors a real PostgreSQL gives: a server that is gone
 * or restarting is "unavailable" (retry, never dead-letter); a statement that fails is not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, isDatabaseUnavailable, openDatabase } from '@swiftcart/platform';
import { TestPostgresServer } from '../../test/support/postgres-server.ts';
import { isolatedConfig } from '../../test/support/stack.ts';
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
  assert.equal(isDatabaseUnavailable(syntax), false, String(syntax));
  assert.equal(isDatabaseUnavailable(duplicate), false, String(duplicate));

  // Pooled connections are cut mid-life by an immediate shutdown, then nothing listens.
  await postgres.stop('SIGQUIT');
  const cut = await failure(() => db.fork().execute('select 1'));
  const refused = await failure(() => db.fork().execute('select 1'));
  assert.equal(isDatabaseUnavailable(cut), true, String(cut));
  assert.equal(isDatabaseUnavailable(refused), true, String(refused));

  // Back again: the same pool works without being reopened.
  await postgres.startProcess();
  const rows = await db.fork().execute<{ id: number }[]>('select id from t');
  assert.deepEqual(rows.map((r) => r.id), [1]);
});
