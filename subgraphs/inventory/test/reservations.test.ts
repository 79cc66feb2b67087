/**
 * Reservations for the order saga against real PostgreSQL: all lines or none, idempotent
 * reserve/commit/release, and no oversell or deadlock under concurrency.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { EntityManager } from '@swiftcart/platform';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import {
  commitReservation,
  findReservations,
  mergeLines,
  releaseReservation,
  reserveAll,
  type ReservationLine,
  type ReserveResult,
} from '../src/reservations.ts';
import { seedStock } from '../src/stock.ts';
import { em, stockRow } from './support.ts';

describe('reservations', () => {
  let stack: TestStack;
  /** Runs `work` in its own transaction, as an event handler would. */
  const inTx = <T>(work: (tx: EntityManager) => Promise<T>): Promise<T> => em(stack).transactional(work);
  const reserve = (orderId: string, items: readonly ReservationLine[]) => inTx((tx) => reserveAll(tx, orderId, items));
  const commit = (orderId: string) => inTx((tx) => commitReservation(tx, orderId));
  const release = (orderId: string) => inTx((tx) => releaseReservation(tx, orderId));
  const reservations = (orderId: string) => findReservations(em(stack), orderId);

  before(async () => {
    stack = await startStack({ services: ['inventory'] });
  });
  after(() => stack?.close());

  test('reserves every line, merging duplicate skus, and returns the new figures', async () => {
    await seedStock(em(stack), [
      { sku: 'RES-A', onHand: 10 },
      { sku: 'RES-B', onHand: 5 },
    ]);
    const order = randomUUID();
    const result = await reserve(order, [
      { sku: 'RES-B', quantity: 2 },
      { sku: 'RES-A', quantity: 3 },
      { sku: 'RES-B', quantity: 1 },
    ]);
    assert.equal(result.ok, true);
    assert.equal(result.replayed, false);
    assert.ok(result.ok);
    assert.deepEqual(result.items, [
      { sku: 'RES-A', quantity: 3 },
      { sku: 'RES-B', quantity: 3 },
    ]);
    assert.deepEqual(
      result.stock.map(({ sku, onHand, reserved, available, version }) => ({ sku, onHand, reserved, available, version })),
      [
        { sku: 'RES-A', onHand: 10, reserved: 3, available: 7, version: 2 },
        { sku: 'RES-B', onHand: 5, reserved: 3, available: 2, version: 2 },
      ],
    );
    assert.ok(result.stock.every((s) => typeof s.updatedAt === 'string'));
    assert.deepEqual(await reservations(order), [
      { sku: 'RES-A', quantity: 3, status: 'RESERVED' },
      { sku: 'RES-B', quantity: 3, status: 'RESERVED' },
    ]);
    assert.deepEqual(await stockRow(stack, 'RES-A'), { on_hand: 10, reserved: 3, version: 2 });
  });

  test('all or none: one short line (or an unknown sku) reserves nothing and reports the shortages', async () => {
    await seedStock(em(stack), [
      { sku: 'AON-A', onHand: 10 },
      { sku: 'AON-B', onHand: 4 },
    ]);
    await reserve(randomUUID(), [{ sku: 'AON-B', quantity: 1 }]); // 3 left
    const order = randomUUID();
    const result = await reserve(order, [
      { sku: 'AON-A', quantity: 5 },
      { sku: 'AON-B', quantity: 4 },
      { sku: 'AON-NEVER', quantity: 1 },
    ]);
    assert.deepEqual(result, {
      ok: false,
      shortages: [
        { sku: 'AON-B', requested: 4, available: 3 },
        { sku: 'AON-NEVER', requested: 1, available: 0 },
      ],
      stock: [],
      replayed: false,
    });
    assert.deepEqual(await reservations(order), []);
    assert.deepEqual(await stockRow(stack, 'AON-A'), { on_hand: 10, reserved: 0, version: 1 }, 'the line that fitted was not reserved either');
    assert.deepEqual(await stockRow(stack, 'AON-B'), { on_hand: 4, reserved: 1, version: 2 });
    assert.equal(await stockRow(stack, 'AON-NEVER'), undefined);

    // Exactly what is available fits.
    const exact = await reserve(randomUUID(), [
      { sku: 'AON-A', quantity: 10 },
      { sku: 'AON-B', quantity: 3 },
    ]);
    assert.equal(exact.ok, true);
    assert.deepEqual(await stockRow(stack, 'AON-B'), { on_hand: 4, reserved: 4, version: 3 });
  });

  test('reserving again for the same order returns the existing reservation and reserves nothing twice', async () => {
    await seedStock(em(stack), [{ sku: 'IDEM-A', onHand: 10 }]);
    const order = randomUUID();
    const first = await reserve(order, [{ sku: 'IDEM-A', quantity: 4 }]);
    const again = await reserve(order, [{ sku: 'IDEM-A', quantity: 4 }]);
    const different = await reserve(order, [{ sku: 'IDEM-A', quantity: 9 }]);
    assert.equal(first.replayed, false);
    for (const replay of [again, different]) {
      assert.deepEqual(replay, { ok: true, items: [{ sku: 'IDEM-A', quantity: 4 }], stock: [], replayed: true });
    }
    assert.deepEqual(await stockRow(stack, 'IDEM-A'), { on_hand: 10, reserved: 4, version: 2 });
    assert.equal((await reservations(order)).length, 1);
  });

  test('10 concurrent deliveries of the same order reserve once', async () => {
    await seedStock(em(stack), [{ sku: 'DUP-A', onHand: 100 }]);
    const order = randomUUID();
    const results = await Promise.all(Array.from({ length: 10 }, () => reserve(order, [{ sku: 'DUP-A', quantity: 7 }])));
    assert.ok(results.every((r) => r.ok));
    assert.equal(results.filter((r) => !r.replayed).length, 1);
    assert.deepEqual(await stockRow(stack, 'DUP-A'), { on_hand: 100, reserved: 7, version: 2 });
  });

  test('commit takes the units out of stock, once; releasing a committed reservation (a cancellation before shipping) restocks them', async () => {
    await seedStock(em(stack), [
      { sku: 'COM-A', onHand: 10 },
      { sku: 'COM-B', onHand: 10 },
    ]);
    const order = randomUUID();
    await reserve(order, [
      { sku: 'COM-A', quantity: 2 },
      { sku: 'COM-B', quantity: 3 },
    ]);
    const committed = await commit(order);
    assert.deepEqual(committed.items, [
      { sku: 'COM-A', quantity: 2 },
      { sku: 'COM-B', quantity: 3 },
    ]);
    assert.deepEqual(
      committed.stock.map(({ sku, onHand, reserved, available, version }) => ({ sku, onHand, reserved, available, version })),
      [
        { sku: 'COM-A', onHand: 8, reserved: 0, available: 8, version: 3 },
        { sku: 'COM-B', onHand: 7, reserved: 0, available: 7, version: 3 },
      ],
    );
    assert.deepEqual(await commit(order), { orderId: order, items: [], stock: [] }, 'a second commit is a no-op');
    assert.deepEqual(await stockRow(stack, 'COM-A'), { on_hand: 8, reserved: 0, version: 3 });
    const released = await release(order);
    assert.deepEqual(released.items, [
      { sku: 'COM-A', quantity: 2 },
      { sku: 'COM-B', quantity: 3 },
    ]);
    assert.deepEqual(
      released.stock.map(({ sku, onHand, reserved }) => ({ sku, onHand, reserved })),
      [
        { sku: 'COM-A', onHand: 10, reserved: 0 },
        { sku: 'COM-B', onHand: 10, reserved: 0 },
      ],
      'the committed units are back on hand',
    );
    assert.deepEqual(await release(order), { orderId: order, items: [], stock: [] }, 'a second release is a no-op');
    assert.deepEqual(await commit(order), { orderId: order, items: [], stock: [] }, 'a released reservation is never committed');
    assert.deepEqual(await reserve(order, [{ sku: 'COM-A', quantity: 2 }]).then((r) => r.replayed), true);
    assert.deepEqual(await stockRow(stack, 'COM-A'), { on_hand: 10, reserved: 0, version: 4 });
    assert.deepEqual(await reservations(order), [
      { sku: 'COM-A', quantity: 2, status: 'RELEASED' },
      { sku: 'COM-B', quantity: 3, status: 'RELEASED' },
    ]);
  });

  test('release gives the units back, once; a released reservation is neither committed nor reserved again', async () => {
    await seedStock(em(stack), [{ sku: 'REL-A', onHand: 6 }]);
    const order = randomUUID();
    await reserve(order, [{ sku: 'REL-A', quantity: 6 }]);
    const released = await release(order);
    assert.deepEqual(released.items, [{ sku: 'REL-A', quantity: 6 }]);
    assert.deepEqual(
      released.stock.map(({ onHand, reserved, available }) => ({ onHand, reserved, available })),
      [{ onHand: 6, reserved: 0, available: 6 }],
    );
    assert.deepEqual((await release(order)).items, []);
    assert.deepEqual((await commit(order)).items, []);
    assert.equal((await reserve(order, [{ sku: 'REL-A', quantity: 6 }])).replayed, true);
    assert.deepEqual(await stockRow(stack, 'REL-A'), { on_hand: 6, reserved: 0, version: 3 });
    assert.deepEqual(await reservations(order), [{ sku: 'REL-A', quantity: 6, status: 'RELEASED' }]);
    // Commit or release of an order that never reserved anything is a no-op too.
    assert.deepEqual((await commit(randomUUID())).items, []);
    assert.deepEqual((await release(randomUUID())).items, []);
  });

  test('the caller owns the transaction: a rollback after reserveAll leaves nothing behind', async () => {
    await seedStock(em(stack), [{ sku: 'TX-A', onHand: 3 }]);
    const order = randomUUID();
    await assert.rejects(
      inTx(async (tx) => {
        const result = await reserveAll(tx, order, [{ sku: 'TX-A', quantity: 2 }]);
        assert.equal(result.ok, true);
        throw new Error('outbox write failed');
      }),
      /outbox write failed/,
    );
    assert.deepEqual(await stockRow(stack, 'TX-A'), { on_hand: 3, reserved: 0, version: 1 });
    assert.deepEqual(await reservations(order), []);
  });

  test('refuses to run outside a transaction, and rejects malformed lines', async () => {
    await assert.rejects(reserveAll(em(stack), randomUUID(), [{ sku: 'X', quantity: 1 }]), /inside the caller's transaction/);
    await assert.rejects(commitReservation(em(stack), randomUUID()), /inside the caller's transaction/);
    await assert.rejects(reserve(randomUUID(), []), /at least one line/);
    await assert.rejects(reserve(randomUUID(), [{ sku: 'X', quantity: 0 }]), /quantity must be a whole number/);
    await assert.rejects(reserve(randomUUID(), [{ sku: 'X', quantity: 1.5 }]), /quantity must be a whole number/);
    await assert.rejects(reserve('', [{ sku: 'X', quantity: 1 }]), /orderId/);
    await assert.rejects(
      reserve(randomUUID(), [
        { sku: 'X', quantity: 2_000_000_000 },
        { sku: 'X', quantity: 2_000_000_000 },
      ]),
      /more than/,
    );
  });

  test('NO OVERSELL: 200 concurrent orders of 1 unit for 50 on hand: exactly 50 reserved', async () => {
    await seedStock(em(stack), [{ sku: 'HOT-1', onHand: 50 }]);
    const results = await Promise.all(Array.from({ length: 200 }, () => reserve(randomUUID(), [{ sku: 'HOT-1', quantity: 1 }])));
    const ok = results.filter((r) => r.ok);
    const refused = results.filter((r): r is Extract<ReserveResult, { ok: false }> => !r.ok);
    assert.equal(ok.length, 50);
    assert.equal(refused.length, 150);
    assert.ok(refused.every((r) => r.shortages.length === 1 && r.shortages[0].requested === 1 && r.shortages[0].available === 0));
    // Each success saw a distinct figure: reserved went 1, 2, ..., 50 with no gaps or repeats.
    assert.deepEqual(
      ok.map((r) => r.stock[0].reserved).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    assert.ok(ok.every((r) => r.stock[0].available >= 0));
    assert.deepEqual(await stockRow(stack, 'HOT-1'), { on_hand: 50, reserved: 50, version: 51 });
    const [count] = await em(stack).execute<{ n: number; units: number }[]>(
      `select count(*)::integer as n, coalesce(sum(quantity), 0)::integer as units from reservation where sku = 'HOT-1' and status = 'RESERVED'`,
    );
    assert.deepEqual(count, { n: 50, units: 50 });
  });

  test('two skus, mixed orders, commits and releases under concurrency: no deadlock, no oversell, units conserved', async () => {
    const initial = { 'MIX-A': 40, 'MIX-B': 25 } as Record<string, number>;
    await seedStock(
      em(stack),
      Object.entries(initial).map(([sku, onHand]) => ({ sku, onHand })),
    );
    // Orders list the skus in both orders, so a writer that locked rows in line order would deadlock.
    const orders = Array.from({ length: 150 }, (_, i) => {
      const q = 1 + (i % 2);
      const items: ReservationLine[] =
        i % 3 === 0
          ? [{ sku: 'MIX-A', quantity: q }]
          : i % 3 === 1
            ? [
                { sku: 'MIX-B', quantity: q },
                { sku: 'MIX-A', quantity: 1 },
              ]
            : [
                { sku: 'MIX-A', quantity: 1 },
                { sku: 'MIX-B', quantity: q },
              ];
      return { id: randomUUID(), items, then: (['commit', 'release', 'hold', 'commit'] as const)[i % 4] };
    });
    const outcomes = await Promise.allSettled(
      orders.map(async (order) => {
        const result = await reserve(order.id, order.items);
        if (result.ok && order.then === 'commit') await commit(order.id);
        if (result.ok && order.then === 'release') await release(order.id);
        return result;
      }),
    );
    const failures = outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason));
    assert.deepEqual(failures, [], 'no deadlock or other error');
    const results = outcomes.map((o) => (o as PromiseFulfilledResult<ReserveResult>).value);
    assert.ok(
      results.some((r) => !r.ok),
      'the test should exhaust the stock',
    );

    // Refused orders hold nothing; accepted ones hold every line, in the expected status.
    for (const [i, order] of orders.entries()) {
      const rows = await reservations(order.id);
      if (!results[i].ok) {
        assert.deepEqual(rows, []);
        continue;
      }
      const status = order.then === 'commit' ? 'COMMITTED' : order.then === 'release' ? 'RELEASED' : 'RESERVED';
      assert.deepEqual(
        rows.map((r) => ({ sku: r.sku, quantity: r.quantity })),
        mergeLines(order.items),
      );
      assert.ok(
        rows.every((r) => r.status === status),
        `${order.id}: ${JSON.stringify(rows)}`,
      );
    }

    const totals = await em(stack).execute<{ sku: string; status: string; units: number }[]>(
      `select sku, status, sum(quantity)::integer as units from reservation where sku like 'MIX-%' group by sku, status`,
    );
    const units = (sku: string, status: string) => totals.find((t) => t.sku === sku && t.status === status)?.units ?? 0;
    for (const sku of Object.keys(initial)) {
      const row = (await stockRow(stack, sku))!;
      const available = row.on_hand - row.reserved;
      assert.ok(available >= 0 && row.reserved >= 0, `${sku}: ${JSON.stringify(row)}`);
      assert.equal(row.reserved, units(sku, 'RESERVED'), `${sku}: reserved matches the RESERVED rows`);
      assert.equal(row.on_hand, initial[sku] - units(sku, 'COMMITTED'), `${sku}: on hand dropped by what was committed`);
      assert.equal(initial[sku], available + row.reserved + units(sku, 'COMMITTED'), `${sku}: initial = available + reserved + sold`);
    }
  });
});
