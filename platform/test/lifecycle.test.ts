/** A service process's health endpoints and its graceful shutdown, against the real dependencies. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import pg from 'pg';
import { REPO_ROOT, gatewayCredentialHeaders, serviceDatabaseUrl } from '../src/index.ts';
import { NO_API_MESSAGE } from '../src/http.ts';
import { isolatedConfig, startStack, type TestStack } from '../../test/support/stack.ts';
import { dropDatabases, ensureDatabases } from '../../scripts/infra.ts';
import { waitFor } from '../../test/support/saga.ts';

describe('/healthz and /readyz', () => {
  let up: TestStack;
  let kafkaDown: TestStack;
  before(async () => {
    up = await startStack({ services: ['product'] });
    kafkaDown = await startStack({ services: ['product'], env: { KAFKA_BROKERS: '127.0.0.1:1', READINESS_TIMEOUT_MS: '500' } });
  });
  after(async () => {
    await up?.close();
    await kafkaDown?.close();
  });

  const origin = (stack: TestStack) => new URL(stack.services.product!.url).origin;

  it('is live and ready when PostgreSQL, Redis and Kafka answer', async () => {
    const live = await fetch(`${origin(up)}/healthz`);
    assert.equal(live.status, 200);
    const ready = await fetch(`${origin(up)}/readyz`);
    assert.equal(ready.status, 200);
    const body: any = await ready.json();
    assert.equal(body.status, 'ready');
    assert.deepEqual(Object.keys(body.checks).sort(), ['kafka', 'postgres', 'redis']);
  });

  it('is live but not ready, and says why, when Kafka does not answer', async () => {
    assert.equal((await fetch(`${origin(kafkaDown)}/healthz`)).status, 200);
    const ready = await fetch(`${origin(kafkaDown)}/readyz`);
    assert.equal(ready.status, 503);
    const body: any = await ready.json();
    assert.equal(body.status, 'unavailable');
    assert.equal(body.checks.postgres.ok, true);
    assert.equal(body.checks.redis.ok, true);
    assert.equal(body.checks.kafka.ok, false);
    assert.ok(body.checks.kafka.error);
  });

  it('refuses oversized and non-JSON bodies with a clear status', async () => {
    const url = up.services.product!.url;
    const headers = { 'content-type': 'application/json', ...up.subgraphHeaders };
    const big = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query: `{ __typename }`, pad: 'x'.repeat(1_100_000) }) });
    assert.equal(big.status, 413);
    const broken = await fetch(url, { method: 'POST', headers, body: '{"query": ' });
    assert.equal(broken.status, 400);
    assert.equal(((await broken.json()) as any).errors[0].extensions.code, 'BAD_REQUEST');
  });
});

describe('SERVICE_ROLE: an api process and a worker', () => {
  let api: TestStack;
  let worker: TestStack;
  before(async () => {
    [api, worker] = await Promise.all([
      // No broker at all: an api process never needs one.
      startStack({ services: ['order'], env: { SERVICE_ROLE: 'api', KAFKA_BROKERS: '127.0.0.1:1', READINESS_TIMEOUT_MS: '500' } }),
      startStack({ services: ['order'], env: { SERVICE_ROLE: 'worker' } }),
    ]);
  });
  after(async () => {
    await api?.close();
    await worker?.close();
  });

  const readiness = async (stack: TestStack) => {
    const response = await fetch(`${new URL(stack.services.order!.url).origin}/readyz`);
    assert.equal(response.status, 200);
    return Object.keys(((await response.json()) as any).checks).sort();
  };

  it('an api process serves GraphQL and runs no relay, consumer or sweeper, and does not need Kafka to be ready', async () => {
    const order = api.services.order!;
    assert.equal(order.relay, null);
    assert.deepEqual(order.consumers, []);
    const result = await api.graphql('{ __typename }');
    assert.deepEqual(result.data, { __typename: 'Query' });
    assert.deepEqual(await readiness(api), ['postgres', 'redis']);
  });

  it('a worker runs the relay and the consumers, answers its probes, and refuses GraphQL with a clear 404', async () => {
    const order = worker.services.order!;
    assert.ok(order.relay, 'the outbox relay runs');
    assert.deepEqual(order.consumers.map((c) => c.consumer).sort(), ['order.catalogue', 'order.customers', 'order.saga']);
    const response = await fetch(order.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...worker.subgraphHeaders },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { error: NO_API_MESSAGE });
    assert.deepEqual(await readiness(worker), ['kafka', 'postgres', 'redis']);
  });
});

describe('retention is scheduled', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startStack({ services: ['inventory'], env: { OUTBOX_RETENTION_MS: '0', RETENTION_INTERVAL_MS: '200' } });
  });
  after(() => stack?.close());

  it('a service prunes its outbox rows once done, on its own', async () => {
    const admin = await stack.token('root', ['admin']);
    const result = await stack.graphql('mutation { adjustStock(sku: "PRUNE-1", delta: 5, reason: "retention test") { onHand } }', { token: admin });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const db = stack.services.inventory!.runtime.db;
    // The live change is projected, then pruned.
    await waitFor(
      async () => ((await db.fork().execute<{ n: number }[]>('select count(*)::int as n from outbox'))[0].n === 0 ? true : undefined),
      'the outbox to be pruned',
      15_000,
    );
  });
});

describe('graceful shutdown', () => {
  const config = isolatedConfig();
  before(() => ensureDatabases(config, ['product']));
  after(() => dropDatabases(config, ['product']));

  it('a service process exits 0 on SIGTERM, after finishing the request in flight', async () => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'subgraphs/product/src/main.ts')], {
      env: {
        ...process.env,
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        DB_PREFIX: config.databasePrefix,
        REDIS_PREFIX: config.redisPrefix,
        PRODUCT_PORT: '0',
        SUBGRAPH_SECRET: config.subgraphSecret!,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    let shuttingDown = false;
    const url = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const entry = JSON.parse(line);
          if (entry.msg === 'product subgraph ready') resolve(entry.url);
          if (entry.msg === 'shutting down') shuttingDown = true;
        } catch {
          /* not a log line */
        }
      });
      setTimeout(() => reject(new Error('the service did not start within 30 s')), 30_000).unref();
    });
    // The request is held in flight by a lock on its table, taken here, until the shutdown has begun.
    const holder = new pg.Client({ connectionString: serviceDatabaseUrl(config, 'product') });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table product in access exclusive mode');
      const inFlight = fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...gatewayCredentialHeaders(config.subgraphSecret) },
        body: JSON.stringify({ query: '{ products(first: 100) { totalCount } }' }),
      });
      inFlight.catch(() => undefined);
      await waitFor(async () => {
        const { rows } = await holder.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and wait_event_type = 'Lock'`,
        );
        return rows[0].n > 0;
      }, 'the request to wait for the table inside the service');
      const started = Date.now();
      child.kill('SIGTERM');
      await waitFor(() => shuttingDown, 'the service to begin shutting down', 10_000);
      await holder.query('commit');
      const response = await inFlight;
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as any).data.products.totalCount, 0);
      const { code, signal } = await exited;
      assert.equal(signal, null);
      assert.equal(code, 0);
      assert.ok(Date.now() - started < 10_000, `exited within 10 s (took ${Date.now() - started} ms)`);
      await assert.rejects(fetch(url), 'the port is closed');
    } finally {
      await holder.end().catch(() => undefined);
      child.kill('SIGKILL');
    }
  });
});
