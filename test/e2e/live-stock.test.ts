/**
 * Live stock levels through the gateway, over real graphql-ws clients: the current level first,
 * then changes with fields from the product subgraph; one upstream subscription and one `rest`
 * execution per event shared by 500 clients; a slow client cut off without harming the others.
 * Real services, PostgreSQL, Redis and Kafka.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { parsePrometheus, LIVE_METRIC_NAMES } from '../../gateway/src/live-metrics.ts';
import type { TestStack } from '../support/stack.ts';
import { type LiveClient, connectLive, wsUrl } from '../support/subscriptions.ts';
import { type SagaSystem, placeOrder, startSeededSaga, waitFor, pool } from '../support/saga.ts';

/** The skus the slow client follows (50 subscriptions each); the healthy client follows the first. */
const SLOW_SKUS = ['SLOW-1', 'SLOW-2', 'SLOW-3', 'SLOW-4'];
const STOCK = `subscription Stock($skus: [ID!]!) { stockLevelChanged(skus: $skus) { sku available version product { name } } }`;
/**
 * The slow client's subscription also selects the product's description, which the test makes 4,000
 * characters long: each message is then a few KB, so the kernel's socket buffers (megabytes on
 * loopback) fill within a few rounds of changes even when a loaded machine makes each round slow.
 */
const SLOW_STOCK = `subscription SlowStock($skus: [ID!]!) { stockLevelChanged(skus: $skus) { sku available version product { name description } } }`;
const LONG_DESCRIPTION = 'A description long enough to fill socket buffers quickly. '.repeat(70).slice(0, 4_000);
const UPDATE_DESCRIPTION = `mutation Describe($sku: ID!, $description: String!) { updateProduct(sku: $sku, input: { description: $description }) { sku } }`;
const ADJUST = `mutation Adjust($sku: ID!, $delta: Int!) { adjustStock(sku: $sku, delta: $delta, reason: "live test") { sku available version } }`;

/** The gateway's live figures, read the way an operator would: GET /metrics. */
async function liveMetrics(gatewayUrl: string): Promise<Record<keyof typeof LIVE_METRIC_NAMES, number>> {
  const response = await fetch(new URL('/metrics', gatewayUrl));
  assert.equal(response.status, 200);
  const values = parsePrometheus(await response.text());
  return Object.fromEntries(Object.entries(LIVE_METRIC_NAMES).map(([key, name]) => [key, values.get(name) ?? NaN])) as never;
}

describe('stockLevelChanged through the gateway', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let admin: string;
  const clients: LiveClient[] = [];

  before(async () => {
    ({ stack, system, admin } = await startSeededSaga(
      [{ sku: 'LIVE-1', onHand: 10, priceAmount: 500 }, { sku: 'SHARE-1', onHand: 100 }, ...SLOW_SKUS.map((sku) => ({ sku, onHand: 1_000 }))],
      { LIVE_CLIENT_QUEUE_LIMIT: '64' },
    ));
    for (const sku of SLOW_SKUS) {
      const described = await stack.graphql(UPDATE_DESCRIPTION, { token: admin, variables: { sku, description: LONG_DESCRIPTION } });
      assert.equal(described.errors, undefined, JSON.stringify(described.errors));
    }
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await stack?.close();
  });

  async function adjust(sku: string, delta: number): Promise<{ available: number; version: number }> {
    const result = await stack.graphql(ADJUST, { token: admin, variables: { sku, delta } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data.adjustStock;
  }

  it('sends the current level first, then the level an order left, with the product name from the product subgraph', async () => {
    const customer = await stack.token('live-shopper', ['customer']);
    const client = connectLive(stack.gateway!.url, { token: customer });
    clients.push(client);
    const sub = client.subscribe(STOCK, { skus: ['LIVE-1'] });
    const first = await sub.waitFor(() => true, 'the current level');
    assert.deepEqual(first, {
      data: { stockLevelChanged: { sku: 'LIVE-1', available: 10, version: first.data!.stockLevelChanged.version, product: { name: 'Saga LIVE-1' } } },
    });

    await placeOrder(system, customer, [{ sku: 'LIVE-1', quantity: 3 }], 'tok_visa');
    const reduced = await sub.waitFor((r) => r.data?.stockLevelChanged.available === 7, 'the level reduced by the order');
    assert.equal(reduced.errors, undefined);
    assert.equal(reduced.data!.stockLevelChanged.product.name, 'Saga LIVE-1', 'the product name comes from the product subgraph');
    assert.ok(reduced.data!.stockLevelChanged.version > first.data!.stockLevelChanged.version);
    const versions = sub.results.map((r) => r.data!.stockLevelChanged.version);
    assert.deepEqual(
      versions,
      [...versions].sort((a, b) => a - b),
      'versions never go backwards',
    );
    sub.dispose();
  });

  it('500 clients on one sku share one upstream subscription, and rest runs once per event', async () => {
    const before = await liveMetrics(stack.gateway!.url);
    // Half anonymous, half with their own tokens: stock is @public, so credentials do not split the sharing.
    const tokens = await Promise.all(Array.from({ length: 250 }, (_, i) => stack.token(`sharer-${i}`, ['customer'])));
    const sharers = await pool(
      Array.from({ length: 500 }, (_, i) => i),
      50,
      async (i) => {
        const client = connectLive(stack.gateway!.url, { token: i % 2 ? tokens[i >> 1] : null });
        clients.push(client);
        const sub = client.subscribe(STOCK, { skus: ['SHARE-1'] });
        await sub.waitFor(() => true, `the current level for client ${i}`);
        return { client, sub };
      },
    );
    const joined = await liveMetrics(stack.gateway!.url);
    assert.equal(joined.subscriptions - before.subscriptions, 500);
    assert.equal(joined.upstreamSubscriptions - before.upstreamSubscriptions, 1, 'exactly one upstream subscription for 500 identical ones');
    assert.equal(joined.restExecutions - before.restExecutions, 1, 'the current level was shaped once and replayed to the other 499');
    for (const { sub } of sharers) assert.equal(sub.results[0].data.stockLevelChanged.available, 100);

    const changed = [await adjust('SHARE-1', -5), await adjust('SHARE-1', -5)];
    await pool(sharers, 100, ({ sub }) => sub.waitFor((r) => r.data?.stockLevelChanged.version === changed[1].version, 'the second change'));
    const after = await liveMetrics(stack.gateway!.url);
    assert.equal(after.eventsReceived - joined.eventsReceived, 2, 'two events from the one upstream');
    assert.equal(after.restExecutions - joined.restExecutions, 2, 'rest ran once per event, not once per client');
    assert.ok(after.messagesSent - joined.messagesSent >= 1_000, `1,000 messages out, got ${after.messagesSent - joined.messagesSent}`);
    for (const { sub } of sharers) {
      assert.deepEqual(
        sub.results.map((r) => r.data.stockLevelChanged.available),
        [100, 95, 90],
      );
    }

    await Promise.all(sharers.map(({ client }) => client.close()));
    await waitFor(
      async () => {
        const m = await liveMetrics(stack.gateway!.url);
        return m.subscriptions === before.subscriptions && m.upstreamSubscriptions === before.upstreamSubscriptions && m.connections <= before.connections
          ? m
          : undefined;
      },
      'the gateway to release every subscription, upstream and connection',
      10_000,
    );
  });

  it('closes a client that does not read with 1008 and a reason, while the others keep receiving every change', async () => {
    const before = await liveMetrics(stack.gateway!.url);
    const healthy = connectLive(stack.gateway!.url);
    clients.push(healthy);
    const watched = healthy.subscribe(STOCK, { skus: ['SLOW-1'] });
    await watched.waitFor(() => true, 'the current level');

    // The slow client speaks the protocol by hand and subscribes 50 times over to each slow sku, one
    // sku at a time (each burst of 50 current levels within the limit of 64 waiting messages),
    // waits for its current levels, then stops reading.
    const slow = new WebSocket(wsUrl(stack.gateway!.url), 'graphql-transport-ws');
    const closed = new Promise<{ code: number; reason: string }>((resolve) => slow.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise((resolve) => slow.once('open', resolve));
    slow.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    await new Promise((resolve) => slow.once('message', resolve));
    let received = 0;
    const counted: (() => void)[] = [];
    slow.on('message', () => {
      received++;
      counted.shift()?.();
    });
    for (const [k, sku] of SLOW_SKUS.entries()) {
      const target = 50 * (k + 1);
      const initial = new Promise<void>((resolve) => {
        const check = () => {
          if (received >= target) resolve();
          else counted.push(check);
        };
        check();
      });
      for (let i = 0; i < 50; i++)
        slow.send(JSON.stringify({ id: `${sku}-${i}`, type: 'subscribe', payload: { query: SLOW_STOCK, variables: { skus: [sku] } } }));
      await initial;
    }
    assert.equal((await liveMetrics(stack.gateway!.url)).slowClientsClosed, before.slowClientsClosed, 'not cut off while it reads');
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();

    // Every round changes each slow sku once, concurrently (200 messages of a few KB for the slow
    // client), so the kernel's socket buffers fill within seconds even when each adjustment is slow; SLOW-1's
    // changes stay one after another, as the healthy client checks.
    let last = 0;
    const deadline = Date.now() + 60_000;
    let outcome: { code: number; reason: string } | undefined;
    void closed.then((c) => {
      outcome = c;
    });
    while (!outcome && Date.now() < deadline) {
      const delta = last % 2 ? 1 : -1;
      [last] = (await Promise.all(SLOW_SKUS.map((sku) => adjust(sku, delta)))).map((r) => r.version);
      if ((await liveMetrics(stack.gateway!.url)).slowClientsClosed > before.slowClientsClosed) break;
    }
    const metrics = await liveMetrics(stack.gateway!.url);
    assert.equal(metrics.slowClientsClosed - before.slowClientsClosed, 1, 'the slow client was cut off');
    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    const close = await closed;
    assert.equal(close.code, 1008);
    assert.match(close.reason, /Slow client: more than 64 messages waiting/);

    await watched.waitFor((r) => r.data?.stockLevelChanged.version === last, 'the last change at the healthy client');
    const versions = watched.results.map((r) => r.data.stockLevelChanged.version);
    for (let i = 1; i < versions.length; i++) assert.equal(versions[i], versions[i - 1] + 1, `no change skipped: ${versions.join(',')}`);
    await waitFor(
      async () => {
        const m = await liveMetrics(stack.gateway!.url);
        return m.subscriptions === before.subscriptions + 1 ? m : undefined;
      },
      "the slow client's 200 subscriptions to be released",
      10_000,
    );
  });
});
