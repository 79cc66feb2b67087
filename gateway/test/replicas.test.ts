/**
 * Subgraph calls spread over replicas (gateway/src/replicas.ts) through the real keep-alive
 * fetcher, against real HTTP servers: round robin, failover on a refused connection only, and a
 * refused replica tried again after its pause (clock injected). `--replicas` parsing of npm start.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../../scripts/infra.ts';
import { DEFAULT_SERVICE_PORTS, serviceInstances } from '@swiftcart/platform';
import { startOptions } from '../../scripts/start.ts';
import { createKeepAliveFetcher } from '../src/fetcher.ts';
import { REFUSED_REPLICA_PAUSE_MS, ReplicaSet, spreadingFetcher } from '../src/replicas.ts';

/** A replica that answers with its name; `reset` makes it drop the connection after reading the request. */
async function replica(name: string): Promise<{ url: string; calls: number; reset: boolean; close(): Promise<void> }> {
  const state = { url: '', calls: 0, reset: false, close: async () => {} };
  const server = http.createServer((req, res) => {
    state.calls++;
    req.resume();
    req.on('end', () => (state.reset ? req.socket.destroy() : res.end(name)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

describe('spreading subgraph calls over replicas', () => {
  const base = createKeepAliveFetcher();
  let a: Awaited<ReturnType<typeof replica>>;
  let b: Awaited<ReturnType<typeof replica>>;
  let dead: string;
  before(async () => {
    [a, b] = await Promise.all([replica('a'), replica('b')]);
    dead = `http://127.0.0.1:${await freePort()}/graphql`;
  });
  after(async () => {
    base.close();
    await Promise.all([a.close(), b.close()]);
  });

  const call = async (fetcher: ReturnType<typeof spreadingFetcher>, url: string) => (await fetcher(url, { method: 'POST', body: '{}' })).text();

  test('calls to a subgraph take turns over its replicas; other URLs pass through', async () => {
    // Filled after the fetcher is made, as the gateway does while it builds its data sources.
    const sets = new Map<string, ReplicaSet>();
    const fetcher = spreadingFetcher(base, sets);
    sets.set(a.url, new ReplicaSet([a.url, b.url]));
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await call(fetcher, a.url));
    assert.deepEqual(answers, ['a', 'b', 'a', 'b', 'a', 'b']);
    assert.equal(await call(fetcher, b.url), 'b', 'a URL that heads no replica set goes where it says');
  });

  test('a refused connection goes to the next replica, which is then asked first until the pause is over', async () => {
    let now = 1_000_000;
    const set = new ReplicaSet([dead, a.url], () => now);
    const fetcher = spreadingFetcher(base, new Map([[dead, set]]));
    const before = a.calls;
    assert.deepEqual([await call(fetcher, dead), await call(fetcher, dead), await call(fetcher, dead)], ['a', 'a', 'a'], 'no call fails');
    assert.equal(a.calls - before, 3);
    assert.deepEqual(set.order(), [1, 0], 'the refusing replica is last while paused');
    now += REFUSED_REPLICA_PAUSE_MS + 1;
    assert.deepEqual([set.order(), set.order()].map((o) => o[0]).sort(), [0, 1], 'after the pause it takes its turn again');
  });

  test('every replica refusing fails the call with the connection error', async () => {
    const fetcher = spreadingFetcher(base, new Map([[dead, new ReplicaSet([dead, dead])]]));
    await assert.rejects(call(fetcher, dead), /ECONNREFUSED/);
  });

  test('a request that reached a replica is not sent again elsewhere (a mutation must not run twice)', async () => {
    const fetcher = spreadingFetcher(base, new Map([[a.url, new ReplicaSet([a.url, b.url])]]));
    b.reset = true;
    const [beforeA, beforeB] = [a.calls, b.calls];
    try {
      assert.equal(await call(fetcher, a.url), 'a');
      await assert.rejects(call(fetcher, a.url), /socket hang up|ECONNRESET/);
    } finally {
      b.reset = false;
    }
    assert.equal(a.calls - beforeA, 1, 'the failed call was not retried on a');
    assert.equal(b.calls - beforeB, 1);
  });
});

describe('npm start --replicas and --workers', () => {
  test('reads --replicas N, --replicas=N or REPLICAS, default 1, and refuses anything but 1 to 8', () => {
    const replicas = (argv: string[], env: NodeJS.ProcessEnv = {}) => startOptions(argv, env).replicas;
    assert.equal(replicas([]), 1);
    assert.equal(replicas(['--replicas', '3']), 3);
    assert.equal(replicas(['--no-storefront', '--replicas=2']), 2);
    assert.equal(replicas([], { REPLICAS: '4' }), 4);
    assert.equal(replicas(['--replicas', '2'], { REPLICAS: '4' }), 2, 'the flag wins');
    for (const bad of ['0', '9', '1.5', 'two']) assert.throws(() => replicas(['--replicas', bad]), /REPLICAS must be an integer from 1 to 8/);
    assert.throws(() => replicas(['--replicas']), /argument missing/);
    assert.throws(() => replicas(['--replica', '2']), /Unknown option '--replica'/, 'a misspelt option is refused, not ignored');
    assert.deepEqual(startOptions(['--no-storefront'], {}), { replicas: 1, workers: false, storefront: false, zipkin: true, prometheus: true, maildev: true });
    assert.deepEqual(startOptions(['--workers', '--replicas', '2'], {}), {
      replicas: 2,
      workers: true,
      storefront: true,
      zipkin: true,
      prometheus: true,
      maildev: true,
    });
    assert.deepEqual(startOptions(['--no-zipkin', '--no-prometheus', '--no-maildev'], {}), {
      replicas: 1,
      workers: false,
      storefront: true,
      zipkin: false,
      prometheus: false,
      maildev: false,
    });
  });

  test('runs replica k on port + 20·k and, with --workers, its worker on that port + 10', () => {
    const order = (options: { replicas: number; workers: boolean }) =>
      serviceInstances(options, DEFAULT_SERVICE_PORTS)
        .filter((i) => i.service === 'order')
        .map(({ name, role, port }) => `${name} ${role} ${port}`);
    assert.deepEqual(order({ replicas: 1, workers: false }), ['order all 4003']);
    assert.deepEqual(order({ replicas: 2, workers: false }), ['order all 4003', 'order-2 all 4023']);
    assert.deepEqual(order({ replicas: 2, workers: true }), ['order api 4003', 'order-worker worker 4013', 'order-2 api 4023', 'order-worker-2 worker 4033']);
    const ports = serviceInstances({ replicas: 8, workers: true }, DEFAULT_SERVICE_PORTS).map((i) => i.port);
    assert.equal(new Set(ports).size, ports.length, 'no two processes share a port');
    assert.ok(!ports.includes(4000), "none takes the gateway's port");
    assert.throws(
      () => serviceInstances({ replicas: 1, workers: true }, { ...DEFAULT_SERVICE_PORTS, order: 4011 }),
      /product-worker and order would both listen on port 4011/,
      'a moved port that lands on a worker is refused',
    );
  });
});
