/**
 * `Subscription.orderUpdated` straight against the order subgraph over graphql-ws, with real
 * PostgreSQL, Redis and Kafka: the owner (or an admin) gets the order now, then the order after
 * every committed change, from a mutation, the saga consumer or the deadline sweeper, in version
 * order; everybody else gets an error and nothing of the order.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { channelName, eventsTopic, type AnyEventEnvelope, type RunningService } from '@swiftcart/platform';
import type { TestStack } from '../../../test/support/stack.ts';
import { drain } from '../../../test/support/drain.ts';
import { connectLive, type LiveClient } from '../../../test/support/subscriptions.ts';
import { CANCEL_ORDER, OrderEventProbe, PLACE_ORDER, em, orderInput, participantEvent, produce, seedCatalogue, startOrderStack, waitFor } from './support.ts';

const FOLLOW = `subscription ($id: ID!) {
  orderUpdated(id: $id) { id customerId status version updatedAt timeline { status eventType reason } items { sku quantity } }
}`;

describe('orderUpdated over graphql-ws', () => {
  let stack: TestStack;
  let order: RunningService;
  let probe: OrderEventProbe;
  let alice: string;
  let bob: string;
  let admin: string;
  const clients: LiveClient[] = [];

  before(async () => {
    // A short deadline with a fast sweeper: the expiry test needs it; the others cancel or advance in time.
    stack = await startOrderStack({ ORDER_DEADLINE_MS: '4000', ORDER_SWEEP_INTERVAL_MS: '50' });
    order = stack.services.order!;
    probe = await OrderEventProbe.start(order.runtime.kafka);
    [alice, bob, admin] = await Promise.all([stack.token('alice', ['customer']), stack.token('bob', ['customer']), stack.token('root', ['admin'])]);
    await seedCatalogue(stack, [{ sku: 'LIVE-MUG', amount: 1299 }]);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await probe?.stop();
    await stack?.close();
  });

  const connect = (token?: string | null) => {
    const client = connectLive(order.wsUrl, { token, headers: stack.subgraphHeaders });
    clients.push(client);
    return client;
  };

  async function place(token = alice): Promise<{ id: string; placed: AnyEventEnvelope }> {
    const result = await stack.graphql(PLACE_ORDER, { token, variables: { input: orderInput([{ sku: 'LIVE-MUG', quantity: 2 }]) } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const id = result.data.placeOrder.id as string;
    const [placed] = await probe.waitFor(id, 'OrderPlaced');
    return { id, placed };
  }

  async function waitForStatus(id: string, status: string): Promise<void> {
    await waitFor(async () => {
      const [row] = await em(stack).execute<{ status: string }[]>('select status from orders where id = ?', [id]);
      return row.status === status;
    }, `order ${id} to be ${status}`);
  }

  test('the owner gets the order now, then the order after cancelOrder, with a higher version', async () => {
    const { id } = await place();
    const follow = connect(alice).subscribe(FOLLOW, { id });
    try {
      const current = (await follow.nextData()).orderUpdated;
      assert.equal(current.id, id);
      assert.equal(current.status, 'PENDING');
      assert.equal(current.version, 1);
      assert.deepEqual(current.items, [{ sku: 'LIVE-MUG', quantity: 2 }]);

      const cancelled = await stack.graphql(CANCEL_ORDER, { token: alice, variables: { id, reason: 'changed my mind' } });
      assert.equal(cancelled.errors, undefined, JSON.stringify(cancelled.errors));
      const next = (await follow.nextData()).orderUpdated;
      assert.equal(next.status, 'CANCELLED');
      assert.equal(next.version, 2);
      assert.deepEqual(
        next.timeline.map((t: { status: string }) => t.status),
        ['PENDING', 'CANCELLED'],
      );
      assert.equal(next.updatedAt, cancelled.data.cancelOrder.updatedAt);
      await follow.nothingWithin(200);
    } finally {
      follow.dispose();
    }
  });

  test('every saga step from the consumer is delivered in version order, timeline-only entries (shipment created) included', async () => {
    const { id, placed } = await place();
    const follow = connect(alice).subscribe(FOLLOW, { id });
    try {
      assert.equal((await follow.nextData()).orderUpdated.version, 1);
      const shipmentId = randomUUID();
      const reserved = participantEvent('inventory', 'StockReserved', { orderId: id, items: [{ sku: 'LIVE-MUG', quantity: 2 }] }, placed);
      const authorized = participantEvent('payment', 'PaymentAuthorized', {
        orderId: id,
        paymentId: randomUUID(),
        amount: { amount: 2598, currency: 'EUR' },
        providerRef: 'mock_ch_live',
      });
      // One topic after the other: the saga ignores a payment for an order not yet reserved.
      await produce(stack, eventsTopic('inventory'), [reserved]);
      await waitForStatus(id, 'AWAITING_PAYMENT');
      await produce(stack, eventsTopic('payment'), [authorized]);
      await waitForStatus(id, 'CONFIRMED');
      await produce(stack, eventsTopic('shipment'), [
        participantEvent('shipment', 'ShipmentCreated', { orderId: id, shipmentId }),
        participantEvent('shipment', 'ShipmentDispatched', { orderId: id, shipmentId, carrier: 'DHL', trackingNumber: 'LIVE1' }),
        participantEvent('shipment', 'ShipmentDelivered', { orderId: id, shipmentId }),
      ]);
      // Coalescing may skip versions when the client is slow, never reorder them; so read until DELIVERED.
      const seen: { status: string; version: number; entries: number }[] = [];
      while (seen.at(-1)?.status !== 'DELIVERED') {
        const update = (await follow.nextData(20_000)).orderUpdated;
        seen.push({ status: update.status, version: update.version, entries: update.timeline.length });
      }
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i].version > seen[i - 1].version, `versions grow: ${JSON.stringify(seen)}`);
      const last = seen.at(-1)!;
      // PENDING, AWAITING_PAYMENT, CONFIRMED, "shipment created", SHIPPED, DELIVERED: six entries, six versions.
      assert.equal(last.entries, 6);
      assert.equal(last.version, 6, 'the timeline-only entry raised the version too');
      const [row] = await em(stack).execute<{ version: number }[]>('select version from orders where id = ?', [id]);
      assert.equal(row.version, 6);
      await follow.nothingWithin(200);
    } finally {
      follow.dispose();
    }
  });

  test("the deadline sweeper's cancellation is delivered", async () => {
    const { id } = await place();
    const follow = connect(alice).subscribe(FOLLOW, { id });
    try {
      assert.equal((await follow.nextData()).orderUpdated.status, 'PENDING');
      const expired = (await follow.nextData(15_000)).orderUpdated;
      assert.equal(expired.status, 'CANCELLED');
      assert.equal(expired.version, 2);
      assert.match(expired.timeline.at(-1).reason, /deadline/);
    } finally {
      follow.dispose();
    }
  });

  test('the order channel carries { id, status, version } once the change has committed', async () => {
    const subscriber = new Redis(stack.config.redisUrl);
    try {
      const messages: { channel: string; message: any; committedVersion: number | undefined }[] = [];
      /** The ids of the messages in the order they arrived, and the reads they started. */
      const arrived: string[] = [];
      const reads: Promise<unknown>[] = [];
      subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
        const parsed = JSON.parse(message);
        arrived.push(parsed.id);
        // What PostgreSQL shows the moment the message arrives: the change must already be there.
        reads.push(
          em(stack)
            .execute<{ version: number }[]>('select version from orders where id = ?', [parsed.id])
            .then(([row]) => messages.push({ channel, message: parsed, committedVersion: row?.version })),
        );
      });
      await subscriber.psubscribe(channelName(stack.config, 'order:*'));
      const { id } = await place();
      await waitFor(() => messages.some((m) => m.message.id === id), 'the placement announcement');
      await stack.graphql(CANCEL_ORDER, { token: alice, variables: { id } });
      await waitFor(() => messages.filter((m) => m.message.id === id).length === 2, 'the cancellation announcement');
      const channel = channelName(stack.config, `order:${id}`);
      assert.deepEqual(
        messages.filter((m) => m.message.id === id),
        [
          { channel, message: { id, status: 'PENDING', version: 1 }, committedVersion: 1 },
          { channel, message: { id, status: 'CANCELLED', version: 2 }, committedVersion: 2 },
        ],
      );
      // Cancelling again changes nothing, so nothing is announced: once the relay has projected
      // everything, a marker published on the channels is the next message to arrive.
      await stack.graphql(CANCEL_ORDER, { token: alice, variables: { id } });
      await drain(stack);
      const marker = randomUUID();
      const from = arrived.length;
      await order.runtime.redis.publish(channelName(stack.config, `order:${marker}`), JSON.stringify({ id: marker }));
      await waitFor(() => arrived.includes(marker), 'the marker on the order channels');
      assert.deepEqual(arrived.slice(from), [marker], 'nothing announced before the marker');
      await Promise.all(reads);
      assert.equal(messages.filter((m) => m.message.id === id).length, 2);
    } finally {
      subscriber.disconnect();
    }
  });

  test("an admin may follow anybody's order", async () => {
    const { id } = await place();
    const follow = connect(admin).subscribe(FOLLOW, { id });
    try {
      const current = (await follow.nextData()).orderUpdated;
      assert.equal(current.customerId, 'alice');
      await stack.graphql(CANCEL_ORDER, { token: admin, variables: { id } });
      assert.equal((await follow.nextData()).orderUpdated.status, 'CANCELLED');
    } finally {
      follow.dispose();
    }
  });

  test('refusals come as one error result with their code, nothing of the order, and hold no Redis channel', async () => {
    const { id } = await place();
    const cases: { token: string | null; id: string; code: string }[] = [
      { token: bob, id, code: 'FORBIDDEN' },
      { token: null, id, code: 'UNAUTHENTICATED' },
      { token: alice, id: 'not-a-uuid', code: 'BAD_USER_INPUT' },
      { token: alice, id: randomUUID(), code: 'NOT_FOUND' },
    ];
    for (const { token, id: asked, code } of cases) {
      const follow = connect(token).subscribe(FOLLOW, { id: asked });
      const result = await follow.next();
      assert.equal(result.data ?? null, null, `${code}: no data`);
      assert.equal(result.errors?.length, 1);
      assert.equal(result.errors?.[0].extensions?.code, code, JSON.stringify(result.errors));
      assert.doesNotMatch(JSON.stringify(result), /LIVE-MUG|tok_visa/);
      await follow.end();
      assert.equal(follow.results.length, 1);
      assert.equal(order.runtime.live.listenerCount(channelName(stack.config, `order:${asked.toLowerCase()}`)), 0, `${code}: no channel held`);
    }
  });

  test('a stale or foreign message on the channel never brings an older version', async () => {
    const { id } = await place();
    const follow = connect(alice).subscribe(FOLLOW, { id });
    try {
      assert.equal((await follow.nextData()).orderUpdated.version, 1);
      // A duplicate announcement: the order is re-read and found unchanged, so nothing is sent.
      await order.runtime.redis.publish(channelName(stack.config, `order:${id}`), JSON.stringify({ id, status: 'PENDING', version: 1 }));
      await order.runtime.redis.publish(channelName(stack.config, `order:${id}`), 'garbage');
      // The cancellation, announced after them on the same channel, is the marker: a live query
      // handles its messages one after the other, so whatever they caused would be sent before it.
      await stack.graphql(CANCEL_ORDER, { token: alice, variables: { id } });
      assert.equal((await follow.nextData()).orderUpdated.version, 2);
      assert.equal(follow.results.length, 2, 'nothing but the current order and the cancellation');
    } finally {
      follow.dispose();
    }
  });
});
