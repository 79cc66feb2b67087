/**
 * Live stock through the gateway when parts fail underneath it: a restart of Redis (a dedicated
 * redis-server, never the shared one) and a restart of the owning subgraph on the same port, with
 * clients subscribed throughout; and the connection hygiene of the endpoint (init timeout, pings).
 * The gateway must neither crash nor leak: its figures return to zero when the clients leave.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startService } from '@swiftcart/platform';
import { startGateway } from '../../gateway/src/gateway.ts';
import { seedProducts } from '../../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../../subgraphs/inventory/src/stock.ts';
import { TestRedisServer } from '../support/redis-server.ts';
import { type TestStack, loadServiceModule, startStack } from '../support/stack.ts';
import { type LiveClient, connectLive, wsUrl } from '../support/subscriptions.ts';
import { waitFor } from '../support/saga.ts';

const STOCK = `subscription Stock($skus: [ID!]!) { stockLevelChanged(skus: $skus) { sku available version product { name } } }`;
const ADJUST = `mutation Adjust($sku: ID!, $delta: Int!) { adjustStock(sku: $sku, delta: $delta, reason: "recovery test") { available version } }`;

describe('live stock when Redis or the inventory subgraph restarts', () => {
  let redis: TestRedisServer;
  let stack: TestStack;
  let admin: string;
  const clients: LiveClient[] = [];

  before(async () => {
    redis = await TestRedisServer.start();
    stack = await startStack({
      services: ['product', 'inventory'],
      gateway: true,
      env: { REDIS_URL: redis.url, LIVE_KEEP_ALIVE_MS: '300', LIVE_CONNECTION_INIT_TIMEOUT_MS: '300' },
    });
    admin = await stack.token('root', ['admin']);
    await seedProducts(
      stack.services.product!.runtime.db.fork(),
      ['REC-1', 'REC-2'].map((sku) => ({
        sku,
        name: `Recovery ${sku}`,
        description: 'recovery test product',
        priceAmount: 100,
        currency: 'EUR',
      })),
    );
    await seedStock(stack.services.inventory!.runtime.db.fork(), [
      { sku: 'REC-1', onHand: 50 },
      { sku: 'REC-2', onHand: 50 },
    ]);
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await stack?.close();
    await redis?.stop();
  });

  async function adjust(sku: string, delta: number): Promise<{ available: number; version: number }> {
    const result = await stack.graphql(ADJUST, { token: admin, variables: { sku, delta } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data.adjustStock;
  }

  function subscriber(sku: string) {
    const client = connectLive(stack.gateway!.url);
    clients.push(client);
    return { client, sub: client.subscribe(STOCK, { skus: [sku] }) };
  }

  it('recovers from a Redis restart: the change made while Redis was down arrives once it is back', async () => {
    const { sub } = subscriber('REC-1');
    await sub.waitFor((r) => r.data?.stockLevelChanged.available === 50, 'the current level');

    await redis.stop();
    // The change commits in PostgreSQL; its announcement is lost with Redis.
    const whileDown = await adjust('REC-1', -4);
    assert.equal(whileDown.available, 46);
    await redis.start();

    const recovered = await sub.waitFor((r) => r.data?.stockLevelChanged.version === whileDown.version, 'the change made while Redis was down', 20_000);
    assert.equal(recovered.data.stockLevelChanged.available, 46);
    assert.equal(recovered.data.stockLevelChanged.product.name, 'Recovery REC-1');
    const after = await adjust('REC-1', -1);
    await sub.waitFor((r) => r.data?.stockLevelChanged.version === after.version, 'a change after the restart');
    assert.equal(stack.gateway!.metrics().upstreamSubscriptions, 1);
    sub.dispose();
  });

  it('recovers from a restart of the inventory subgraph on the same port', async () => {
    const subscribers = [subscriber('REC-2'), subscriber('REC-2'), subscriber('REC-2')];
    for (const { sub } of subscribers) await sub.waitFor(() => true, 'the current level');
    const metrics = stack.gateway!.metrics();
    assert.equal(metrics.upstreamSubscriptions, 1);

    const inventory = stack.services.inventory!;
    const port = Number(new URL(inventory.url).port);
    await inventory.close();
    // While it is down, the gateway keeps its clients and retries its connection.
    stack.services.inventory = await startService(await loadServiceModule('inventory'), { config: stack.config, port });
    const changed = await adjust('REC-2', -7);
    for (const { sub } of subscribers) {
      const seen = await sub.waitFor((r) => r.data?.stockLevelChanged.version === changed.version, 'the change after the restart', 30_000);
      assert.equal(seen.data.stockLevelChanged.available, 43);
    }
    const after = stack.gateway!.metrics();
    assert.ok(after.upstreamReconnects > metrics.upstreamReconnects, 'the gateway reconnected to the subgraph');
    assert.equal(after.upstreamSubscriptions, 1, 'still one shared upstream subscription');
    for (const { sub } of subscribers) {
      const versions = sub.results.map((r) => r.data.stockLevelChanged.version);
      assert.deepEqual(
        versions,
        [...versions].sort((a, b) => a - b),
        `never an older version after a newer one: ${versions}`,
      );
    }
  });

  it('ends subscriptions with SUBSCRIPTION_UPSTREAM_FAILED when the subgraph stays away', async () => {
    const gateway = await startGateway({
      config: stack.config,
      port: 0,
      live: { upstreamRetryAttempts: 1 },
      subgraphUrls: Object.fromEntries(Object.entries(stack.services).map(([name, s]) => [name, s!.url])),
    });
    const inventory = stack.services.inventory!;
    const port = Number(new URL(inventory.url).port);
    try {
      const client = connectLive(gateway.url);
      clients.push(client);
      const sub = client.subscribe(STOCK, { skus: ['REC-1'] });
      await sub.waitFor(() => true, 'the current level');
      await inventory.close();
      await sub.end(20_000);
      assert.equal(sub.completed, true, 'completed after the error, so the client can decide to subscribe again');
      assert.deepEqual(
        sub.results.at(-1)!.errors!.map((e) => e.extensions?.code),
        ['SUBSCRIPTION_UPSTREAM_FAILED'],
      );
      assert.match(sub.results.at(-1)!.errors![0].message, /inventory/);
      assert.equal(gateway.metrics().upstreamSubscriptions, 0);
      assert.equal(gateway.metrics().subscriptions, 0);
    } finally {
      stack.services.inventory = await startService(await loadServiceModule('inventory'), { config: stack.config, port });
      await gateway.close();
    }
  });

  it('closes a connection that never sends connection_init (4408) and one that stops answering pings', async () => {
    const baseline = stack.gateway!.metrics().connections;
    const silent = new WebSocket(wsUrl(stack.gateway!.url), 'graphql-transport-ws');
    const silentClosed = new Promise<number>((resolve) => silent.on('close', (code) => resolve(code)));
    assert.equal(await silentClosed, 4408);

    const deaf = new WebSocket(wsUrl(stack.gateway!.url), 'graphql-transport-ws');
    await new Promise((resolve) => deaf.once('open', resolve));
    deaf.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    await new Promise((resolve) => deaf.once('message', resolve));
    const deafClosed = new Promise<number>((resolve) => deaf.on('close', (code) => resolve(code)));
    // A paused socket reads no pings, so it answers none: the gateway must drop it.
    (deaf as unknown as { _socket: { pause(): void } })._socket.pause();
    const started = Date.now();
    await waitFor(async () => (stack.gateway!.metrics().connections === baseline + 1 ? true : undefined), 'only the deaf connection beside the clients', 5_000);
    await waitFor(async () => (stack.gateway!.metrics().connections === baseline ? true : undefined), 'the deaf connection to be dropped', 5_000);
    assert.ok(Date.now() - started < 5_000);
    (deaf as unknown as { _socket: { resume(): void } })._socket.resume();
    await deafClosed;
  });

  it('releases everything when the clients leave, and keeps serving', async () => {
    await Promise.all(clients.map((c) => c.close()));
    await waitFor(
      async () => {
        const m = stack.gateway!.metrics();
        return m.connections === 0 && m.subscriptions === 0 && m.upstreamSubscriptions === 0 ? m : undefined;
      },
      'connections, subscriptions and upstream subscriptions back to 0',
      10_000,
    );
    const answer = await stack.graphql(`{ stockLevel(sku: "REC-2") { available } }`);
    assert.equal(answer.data.stockLevel.available, 43);
  });
});
