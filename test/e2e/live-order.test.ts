/**
 * orderUpdated through the gateway over real graphql-ws clients: the full federated order (status
 * from the order subgraph, payment and shipment from theirs) from PENDING to SHIPPED with no
 * reload; refusals (another customer, no token, a bad token, malformed or unknown selections);
 * queries over the same socket; and a schema reload that ends subscriptions so clients resubscribe.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGateway, type RunningGateway } from '../../gateway/src/gateway.ts';
import type { TestStack } from '../support/stack.ts';
import { type LiveClient, connectLive } from '../support/subscriptions.ts';
import { type SagaSystem, DISPATCH_SHIPMENT, placeOrder, startSeededSaga, waitForOrder } from '../support/saga.ts';

const ORDER = `subscription Order($id: ID!) { orderUpdated(id: $id) { id status version payment { status } shipment { status } } }`;

describe('orderUpdated through the gateway', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let admin: string;
  const clients: LiveClient[] = [];
  const live = (token?: string | null, url = stack.gateway!.url) => {
    const client = connectLive(url, { token });
    clients.push(client);
    return client;
  };

  before(async () => {
    // A provider slow enough for AWAITING_PAYMENT to be seen live.
    ({ stack, system, admin } = await startSeededSaga([{ sku: 'ORD-LIVE-1', onHand: 20 }], { PAYMENT_PROVIDER_LATENCY_MS: '500' }));
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await stack?.close();
  });

  it('follows an order from PENDING through CONFIRMED to SHIPPED, with payment and shipment from their subgraphs', async () => {
    const token = await stack.token('follower', ['customer']);
    const placed = await placeOrder(system, token, [{ sku: 'ORD-LIVE-1', quantity: 1 }], 'tok_visa');
    const sub = live(token).subscribe(ORDER, { id: placed.id });
    const first = await sub.waitFor(() => true, 'the current order');
    assert.equal(first.errors, undefined, JSON.stringify(first.errors));
    assert.equal(first.data.orderUpdated.id, placed.id);

    const confirmed = await sub.waitFor((r) => r.data?.orderUpdated.status === 'CONFIRMED', 'CONFIRMED');
    assert.equal(confirmed.data.orderUpdated.payment.status, 'AUTHORIZED', 'payment { status } resolved by the payment subgraph');

    await waitForOrder(system, token, placed.id, 'shipment created', (o) => o.shipment?.status === 'PENDING');
    const dispatched = await stack.graphql(DISPATCH_SHIPMENT, { token: admin, variables: { orderId: placed.id, carrier: 'DHL', trackingNumber: 'JD0001' } });
    assert.equal(dispatched.errors, undefined, JSON.stringify(dispatched.errors));
    const shipped = await sub.waitFor((r) => r.data?.orderUpdated.status === 'SHIPPED', 'SHIPPED');
    assert.equal(shipped.data.orderUpdated.shipment.status, 'DISPATCHED', 'shipment { status } resolved by the shipment subgraph');

    const statuses = sub.results.map((r) => r.data.orderUpdated.status);
    const versions = sub.results.map((r) => r.data.orderUpdated.version);
    assert.deepEqual(
      versions,
      [...new Set(versions)].sort((a, b) => a - b),
      `versions strictly increase: ${versions}`,
    );
    const order = ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED'];
    const seen = [...new Set(statuses)];
    assert.deepEqual(
      seen,
      order.filter((s) => seen.includes(s)),
      `statuses in saga order: ${statuses}`,
    );
    // The subscription starts after placeOrder answered: its first state is whatever the saga has
    // reached by then, PENDING or, on a busy machine, already AWAITING_PAYMENT.
    assert.ok(['PENDING', 'AWAITING_PAYMENT'].includes(seen[0]) && seen.includes('CONFIRMED') && seen.includes('SHIPPED'), `saw ${statuses}`);
    for (const result of sub.results) assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  });

  it("refuses another customer's order with FORBIDDEN and sends nothing of it; an admin may follow it", async () => {
    const owner = await stack.token('owner', ['customer']);
    const placed = await placeOrder(system, owner, [{ sku: 'ORD-LIVE-1', quantity: 1 }], 'tok_visa');

    const intruder = live(await stack.token('intruder', ['customer'])).subscribe(ORDER, { id: placed.id });
    await intruder.end();
    assert.equal(intruder.results.length, 1, JSON.stringify(intruder.results));
    assert.equal(intruder.results[0].data ?? null, null, 'no order data');
    assert.deepEqual(
      intruder.results[0].errors!.map((e) => e.extensions?.code),
      ['FORBIDDEN'],
    );
    assert.doesNotMatch(JSON.stringify(intruder.results), /owner|ORD-LIVE-1/, 'nothing of the order leaks');

    const anonymous = live(null).subscribe(ORDER, { id: placed.id });
    await anonymous.end();
    assert.deepEqual(
      anonymous.results.flatMap((r) => r.errors ?? []).map((e) => e.extensions?.code),
      ['UNAUTHENTICATED'],
    );

    const overseer = live(admin).subscribe(ORDER, { id: placed.id });
    const seen = await overseer.waitFor(() => true, 'the order for the admin');
    assert.equal(seen.data.orderUpdated.id, placed.id);
    overseer.dispose();
  });

  it('closes a connection with a bad token with 4403 Forbidden', async () => {
    const client = connectLive(stack.gateway!.url, { token: 'not-a-jwt' });
    clients.push(client);
    const sub = client.subscribe(ORDER, { id: '00000000-0000-7000-8000-000000000000' });
    const closed = await client.closed();
    assert.equal(closed.code, 4403);
    assert.equal(sub.results.length, 0);
  });

  it('answers a malformed document, an unknown field and bad variables with coded errors', async () => {
    const client = live(null);
    const malformed = client.subscribe('subscription { stockLevelChanged(skus: ["A"]) { available ');
    const unknown = client.subscribe('subscription { stockLevelChanged(skus: ["A"]) { available shoeSize } }');
    const badVariables = client.subscribe(ORDER, { id: 42.5 });
    for (const sub of [malformed, unknown, badVariables]) await sub.end();
    const codes = (sub: { error: unknown }) => (sub.error as { extensions?: { code?: string } }[]).map((e) => e.extensions?.code);
    assert.deepEqual(codes(malformed), ['GRAPHQL_PARSE_FAILED']);
    assert.deepEqual(codes(unknown), ['GRAPHQL_VALIDATION_FAILED']);
    assert.match((unknown.error as { message: string }[])[0].message, /shoeSize/);
    assert.deepEqual(codes(badVariables), ['BAD_USER_INPUT']);
  });

  it('runs queries over the same socket, and keeps HTTP queries working', async () => {
    const token = await stack.token('socket-reader', ['customer']);
    const sub = live(token).subscribe(`query { stockLevel(sku: "ORD-LIVE-1") { sku onHand product { name } } }`);
    await sub.end();
    assert.equal(sub.results[0].data.stockLevel.product.name, 'Saga ORD-LIVE-1');
    const http = await stack.graphql(`{ stockLevel(sku: "ORD-LIVE-1") { onHand } }`);
    assert.equal(http.data.stockLevel.onHand, sub.results[0].data.stockLevel.onHand);
  });

  it('ends live subscriptions with SUBSCRIPTION_SCHEMA_RELOAD when the supergraph changes', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'swiftcart-reload-'));
    const supergraphPath = path.join(dir, 'supergraph.graphql');
    await copyFile(stack.config.supergraphPath, supergraphPath);
    let gateway: RunningGateway | undefined;
    try {
      gateway = await startGateway({
        config: stack.config,
        port: 0,
        supergraphPath,
        subgraphUrls: Object.fromEntries(Object.entries(stack.services).map(([name, s]) => [name, s!.url])),
      });
      const sub = live(null, gateway.url).subscribe(`subscription { stockLevelChanged(skus: ["ORD-LIVE-1"]) { available } }`);
      await sub.waitFor(() => true, 'the current level');
      assert.equal(await gateway.reloadSupergraph(), false, 'an unchanged file is no reload');
      await writeFile(supergraphPath, `${await readFile(supergraphPath, 'utf8')}\n# reloaded\n`);
      assert.equal(await gateway.reloadSupergraph(), true);
      await sub.end();
      assert.equal(sub.completed, true, 'completed, so the client can subscribe again');
      assert.deepEqual(
        sub.results.at(-1)!.errors!.map((e) => e.extensions?.code),
        ['SUBSCRIPTION_SCHEMA_RELOAD'],
      );
      assert.equal(gateway.metrics().upstreamSubscriptions, 0);

      const again = live(null, gateway.url).subscribe(`subscription { stockLevelChanged(skus: ["ORD-LIVE-1"]) { available } }`);
      await again.waitFor((r) => typeof r.data?.stockLevelChanged.available === 'number', 'the level after resubscribing');
      again.dispose();
    } finally {
      await gateway?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
