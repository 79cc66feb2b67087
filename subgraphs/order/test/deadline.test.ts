/**
 * The saga's deadline against a real order service with ORDER_DEADLINE_MS=500 and the default
 * sweep interval (1 s): an order the participants leave waiting is cancelled within about 2 s and
 * compensated through OrderCancelled; an order that moved on in time is left alone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { type AnyEventEnvelope, eventsTopic } from '@swiftcart/platform';
import type { TestStack } from '../../../test/support/stack.ts';
import { drain } from '../../../test/support/drain.ts';
import { DEADLINE_REASON } from '../src/saga.ts';
import { startDeadlineSweeper } from '../src/sweeper.ts';
import { announcerOf } from '../src/service.ts';
import { OrderEventProbe, PLACE_ORDER, READ_ORDER, em, orderInput, participantEvent, produce, seedCatalogue, startOrderStack, waitFor } from './support.ts';

describe('order deadline', () => {
  let stack: TestStack;
  let probe: OrderEventProbe;
  let alice: string;

  before(async () => {
    stack = await startOrderStack({ ORDER_DEADLINE_MS: '500' });
    probe = await OrderEventProbe.start(stack.services.order!.runtime.kafka);
    alice = await stack.token('alice', ['customer']);
    await seedCatalogue(stack, [{ sku: 'MUG-BLUE', amount: 1299 }]);
  });

  after(async () => {
    await probe?.stop();
    await stack?.close();
  });

  async function place(): Promise<{ id: string; placedAt: number; placed: Promise<AnyEventEnvelope[]> }> {
    const placedAt = Date.now();
    const result = await stack.graphql(PLACE_ORDER, { token: alice, variables: { input: orderInput([{ sku: 'MUG-BLUE', quantity: 1 }]) } });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const id = result.data.placeOrder.id as string;
    return { id, placedAt, placed: probe.waitFor(id, 'OrderPlaced') };
  }

  async function statusOf(id: string): Promise<string> {
    const [row] = await em(stack).execute<{ status: string }[]>('select status from orders where id = ?', [id]);
    return row.status;
  }

  test('an order left PENDING is CANCELLED within about 2 s, with OrderCancelled', async () => {
    const { id, placedAt } = await place();
    await waitFor(async () => (await statusOf(id)) === 'CANCELLED', 'the deadline to cancel the order', 2_500, undefined, 25);
    const elapsed = Date.now() - placedAt;
    assert.ok(elapsed >= 500, `not before the deadline (${elapsed} ms)`);

    const result = await stack.graphql(READ_ORDER, { token: alice, variables: { id } });
    assert.deepEqual(
      result.data.order.timeline.map((t: any) => [t.status, t.eventType, t.eventId, t.reason]),
      [
        ['PENDING', null, null, null],
        ['CANCELLED', null, null, DEADLINE_REASON],
      ],
    );
    const [cancelled] = await probe.waitFor(id, 'OrderCancelled');
    assert.deepEqual(cancelled.data, { orderId: id, customerId: 'alice', reason: 'deadline passed', previousStatus: 'PENDING' });
    assert.equal(cancelled.causationId, null);
    assert.equal(cancelled.correlationId, id);
    assert.deepEqual(
      probe.of(id).map((e) => e.type),
      ['OrderPlaced', 'OrderCancelled'],
    );
  });

  test('an order AWAITING_PAYMENT expires too, and a late PaymentAuthorized changes nothing', async () => {
    const { id, placed } = await place();
    const [orderPlaced] = await placed;
    await produce(stack, eventsTopic('inventory'), [
      participantEvent('inventory', 'StockReserved', { orderId: id, items: [{ sku: 'MUG-BLUE', quantity: 1 }] }, orderPlaced),
    ]);
    const [cancelled] = await probe.waitFor(id, 'OrderCancelled', 1, 5_000);
    // Whether payment was requested before the deadline depends on timing; either way it ends CANCELLED.
    assert.equal((cancelled.data as any).reason, 'deadline passed');
    assert.equal(await statusOf(id), 'CANCELLED');
    const late = participantEvent('payment', 'PaymentAuthorized', {
      orderId: id,
      paymentId: randomUUID(),
      amount: { amount: 1299, currency: 'EUR' },
      providerRef: 'late',
    });
    await produce(stack, eventsTopic('payment'), [late]);
    await waitFor(async () => {
      const [row] = await em(stack).execute<{ n: number }[]>(`select count(*)::int as n from inbox where consumer = 'order.saga' and event_id = ?`, [late.id]);
      return row.n === 1;
    }, 'the late PaymentAuthorized to be consumed');
    assert.equal(await statusOf(id), 'CANCELLED');
    assert.equal(probe.of(id, 'OrderConfirmed').length, 0);
  });

  test('an order that moved on before its deadline is left alone', async () => {
    const { id, placed } = await place();
    // Confirm it before the sweeper sees it: straight in the database, as the consumer would.
    await em(stack).execute(`update orders set status = 'CONFIRMED' where id = ? and status = 'PENDING'`, [id]);
    await placed;
    // A sweep whose clock is a minute on, long past the order's deadline: it leaves the order alone.
    const runtime = stack.services.order!.runtime;
    const sweeper = startDeadlineSweeper({
      db: runtime.db,
      log: runtime.log,
      registry: runtime.events,
      announcer: announcerOf(runtime),
      intervalMs: 3_600_000,
      now: () => new Date(Date.now() + 60_000),
    });
    try {
      assert.equal(await sweeper.sweep(), 0);
    } finally {
      await sweeper[Symbol.asyncDispose]();
    }
    await drain(stack);
    assert.equal(await statusOf(id), 'CONFIRMED');
    assert.equal(probe.of(id, 'OrderCancelled').length, 0);
  });

  test('a sweep skips an order another transaction holds instead of waiting for it; released, it is cancelled once', async () => {
    const { id } = await place();
    const runtime = stack.services.order!.runtime;
    // Hold the row lock as a consumer would, while a second sweeper (its clock a minute ahead) sweeps.
    await runtime.db.fork().transactional(async (tx) => {
      await tx.execute('select id from orders where id = ? for update', [id]);
      const sweeper = startDeadlineSweeper({
        db: runtime.db,
        log: runtime.log,
        registry: runtime.events,
        announcer: announcerOf(runtime),
        intervalMs: 3_600_000,
        now: () => new Date(Date.now() + 60_000),
      });
      try {
        const started = Date.now();
        assert.equal(await sweeper.sweep(), 0);
        assert.ok(Date.now() - started < 1_000, 'the sweep did not wait for the lock');
      } finally {
        // Also waits for the sweep it started with, which skipped the order too.
        await sweeper[Symbol.asyncDispose]();
      }
      assert.equal(await statusOf(id), 'PENDING');
    });
    // Released: the service's sweeper expires it, exactly once.
    await waitFor(async () => (await statusOf(id)) === 'CANCELLED', 'the order to be cancelled once unlocked', 2_500, undefined, 25);
    await probe.waitFor(id, 'OrderCancelled');
    await drain(stack);
    assert.equal(probe.of(id, 'OrderCancelled').length, 1);
    const [row] = await em(stack).execute<{ n: number }[]>(`select count(*)::int as n from order_transition where order_id = ? and status = 'CANCELLED'`, [id]);
    assert.equal(row.n, 1);
  });

  test('one sweep pages through every overdue order in batches, each expired once', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await place()).id);
    // Out of the service sweeper's reach (due tomorrow), in reach of a sweeper whose clock is ten days ahead.
    await em(stack).execute(`update orders set deadline_at = now() + interval '1 day' where id in (?, ?, ?) and status = 'PENDING'`, ids);
    const runtime = stack.services.order!.runtime;
    const sweeper = startDeadlineSweeper({
      db: runtime.db,
      log: runtime.log,
      registry: runtime.events,
      announcer: announcerOf(runtime),
      intervalMs: 3_600_000,
      batchSize: 1,
      now: () => new Date(Date.now() + 10 * 24 * 3_600_000),
    });
    try {
      await waitFor(
        async () => {
          const statuses = await Promise.all(ids.map(statusOf));
          return statuses.every((s) => s === 'CANCELLED');
        },
        'the sweeper to expire all three',
        5_000,
      );
      assert.equal(await sweeper.sweep(), 0, 'nothing is left');
    } finally {
      await sweeper[Symbol.asyncDispose]();
    }
    for (const id of ids) {
      const [cancelled] = await probe.waitFor(id, 'OrderCancelled');
      assert.equal((cancelled.data as any).reason, DEADLINE_REASON);
    }
    const [row] = await em(stack).execute<{ n: number }[]>(
      `select count(*)::int as n from order_transition where order_id in (?, ?, ?) and status = 'CANCELLED'`,
      ids,
    );
    assert.equal(row.n, 3);
  });
});
