/**
 * One order is one trace, read back from a real trace backend: the gateway and the five services
 * as child processes exporting to a Zipkin server of this test's own (test/support/zipkin-server.ts),
 * every span sampled. An order placed through the gateway and followed live to CONFIRMED must be
 * found by its `swiftcart.order_id`, hold spans of the gateway and every service the order reaches, and show the
 * saga's hops in order, each consumer a child of the producer of its event.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ProcessStack, ORDER_FIELDS, orderInput, seedSaga, startProcessStack, waitFor } from '../support/saga.ts';
import { type ZipkinSpan, TestZipkinServer } from '../support/zipkin-server.ts';
import { type LiveClient, connectLive } from '../support/subscriptions.ts';
import { SERVICE_NAMES } from '@swiftcart/platform';

const SKU = { sku: 'TRACE-1', onHand: 100 };
const PLACE = `mutation PlaceOrder($input: PlaceOrderInput!) { placeOrder(input: $input) { ${ORDER_FIELDS} items { product { name } } } }`;
const FOLLOW = 'subscription Order($id: ID!) { orderUpdated(id: $id) { id status version } }';
/** The saga's hops, in order: each event is published by one service and handled by the next. */
const HOPS = [
  { event: 'OrderPlaced', from: 'order', to: 'inventory' },
  { event: 'StockReserved', from: 'inventory', to: 'order' },
  { event: 'PaymentRequested', from: 'order', to: 'payment' },
  { event: 'PaymentAuthorized', from: 'payment', to: 'order' },
  { event: 'OrderConfirmed', from: 'order', to: 'inventory' },
] as const;

const serviceOf = (span: ZipkinSpan) => span.localEndpoint?.serviceName ?? '?';

describe('one trace per order', () => {
  let zipkin: TestZipkinServer;
  let system: ProcessStack;
  let client: LiveClient | undefined;

  before(async () => {
    zipkin = await TestZipkinServer.start();
    system = await startProcessStack(
      {
        OTEL_TRACES_EXPORTER: 'zipkin',
        OTEL_EXPORTER_ZIPKIN_ENDPOINT: zipkin.spansUrl,
        OTEL_TRACES_SAMPLER: 'always_on',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      },
      { gatewayProcess: true, services: SERVICE_NAMES },
    );
    await seedSaga(system, [SKU]);
  });
  after(async () => {
    await client?.close();
    await system?.close();
    await zipkin?.close();
  });

  it('an order placed through the gateway is one trace: the gateway, every service it reaches, every saga hop in order, and the live update', {
    timeout: 120_000,
  }, async () => {
    const token = await system.token('traced', ['customer']);
    const placed = await system.graphql(PLACE, { token, variables: { input: orderInput([{ sku: SKU.sku, quantity: 1 }], 'tok_visa') } });
    assert.equal(placed.errors, undefined, JSON.stringify(placed.errors));
    const orderId: string = placed.data.placeOrder.id;
    client = connectLive(system.gatewayUrl, { token });
    const follow = client.subscribe(FOLLOW, { id: orderId });
    await follow.waitFor((r) => r.data?.orderUpdated.status === 'CONFIRMED', 'CONFIRMED');

    // Spans arrive from six processes, each exporting on its own schedule.
    const spans = await waitFor(
      async () => {
        const traces = await zipkin.tracesTagged('swiftcart.order_id', orderId);
        if (traces.length !== 1) return undefined;
        const trace = traces[0];
        const last = HOPS.at(-1)!;
        // A child can arrive before its parent (each process sends a span once it ends): complete
        // means the last hop and the live update are there, and every parent too.
        const ids = new Set(trace.map((s) => s.id));
        const done =
          trace.some((s) => s.name === `${last.event.toLowerCase()} process` && serviceOf(s) === last.to) &&
          trace.some((s) => s.name === 'live deliver') &&
          trace.filter((s) => !s.parentId || !ids.has(s.parentId)).length === 1;
        return done ? trace : undefined;
      },
      `the trace of order ${orderId} in Zipkin`,
      30_000,
    );

    const byId = new Map(spans.map((s) => [s.id, s]));
    const roots = spans.filter((s) => !s.parentId || !byId.has(s.parentId));
    assert.equal(roots.length, 1, `one root: ${roots.map((s) => `${serviceOf(s)} ${s.name}`).join(', ')}`);
    assert.equal(serviceOf(roots[0]), 'gateway', 'the trace starts at the gateway');
    assert.equal(roots[0].kind, 'SERVER');
    // The saga's five services, and the two that follow its events: notification and analytics.
    assert.deepEqual([...new Set(spans.map(serviceOf))].sort(), [
      'analytics',
      'gateway',
      'inventory',
      'notification',
      'order',
      'payment',
      'product',
      'shipment',
    ]);

    const placeSpan = spans.find((s) => s.tags?.['swiftcart.order_id'] === orderId && serviceOf(s) === 'order' && s.kind === undefined);
    assert.ok(placeSpan, 'the order service tagged the span that placed the order');
    assert.ok(
      spans.some((s) => serviceOf(s) === 'order' && s.name.startsWith('pg.query')),
      'PostgreSQL queries are in the trace',
    );
    assert.ok(
      spans.some((s) => s.name === 'evalsha' || s.name === 'eval'),
      'Redis commands are in the trace',
    );

    /** The one span named `name` of `service`. */
    const one = (service: string, name: string, kind: ZipkinSpan['kind']) => {
      const found = spans.filter((s) => serviceOf(s) === service && s.name === name && s.kind === kind);
      assert.equal(found.length, 1, `one ${kind} span "${name}" in ${service}, got ${found.length}`);
      return found[0];
    };
    let previous: ZipkinSpan | undefined;
    for (const hop of HOPS) {
      const produced = one(hop.from, `${hop.event.toLowerCase()} publish`, 'PRODUCER');
      const consumed = one(hop.to, `${hop.event.toLowerCase()} process`, 'CONSUMER');
      assert.equal(consumed.parentId, produced.id, `${hop.event}: the ${hop.to} consumer is a child of the ${hop.from} producer`);
      assert.equal(consumed.tags?.['swiftcart.order_id'], orderId);
      assert.ok(consumed.timestamp >= produced.timestamp, `${hop.event} is handled after it is published`);
      if (previous) assert.ok(produced.timestamp >= previous.timestamp, `${hop.event} is published after the hop before it was handled`);
      previous = consumed;
    }

    // The live update: published on Redis inside the trace, delivered where the subscriber is.
    const delivered = spans.filter((s) => s.name === 'live deliver');
    assert.ok(delivered.length >= 1, 'a live update was delivered inside the trace');
    assert.ok(delivered.every((s) => serviceOf(s) === 'order' && s.kind === 'CONSUMER'));
  });
});
