/**
 * Crash safety, end to end: the five services run as child processes (`node subgraphs/<name>/src/main.ts`),
 * the gateway in this process. Thirty orders are placed; while their sagas are in flight the
 * inventory, order and payment processes are killed hard (SIGKILL: no graceful shutdown, no offset commit,
 * transactions cut off), then started again. Every order must still reach a settled state, exactly
 * as many as there is stock for must be confirmed, and every unit must be accounted for.
 *
 * A restarted consumer rejoins its group only when the broker has given up on the killed member
 * (its 30 s session timeout), so this file takes about a minute.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  type ProcessStack,
  assertAppliedOnce,
  assertConserved,
  countBy,
  countRows,
  placeOrder,
  pool,
  seedSaga,
  startProcessStack,
  stockOf,
  waitFor,
  waitForAll,
  waitForStock,
} from '../support/saga.ts';

const LIMITED = { sku: 'CRASH-1', onHand: 20, priceAmount: 1000 };
const PLENTY = { sku: 'CRASH-2', onHand: 100, priceAmount: 250 };
const ORDERS = 30;
/** Killed together: the reserving, the orchestrating and the paying process. */
const KILLED = ['inventory', 'order', 'payment'] as const;

describe('order saga crash safety (services as child processes)', () => {
  let system: ProcessStack;

  before(async () => {
    system = await startProcessStack({
      // Long enough that the deadline never decides an order here: recovery must come from the events.
      ORDER_DEADLINE_MS: '300000',
      // A slower provider keeps sagas in flight when the processes die.
      PAYMENT_PROVIDER_LATENCY_MS: '150',
    });
    await seedSaga(system, [LIMITED, PLENTY]);
  });
  after(() => system?.close());

  it('SIGKILL inventory, order and payment mid-saga, restart them: every order settles, nothing is lost or done twice', async (t) => {
    const admin = await system.token('root', ['admin']);
    const tokens = await Promise.all(Array.from({ length: ORDERS }, (_, i) => system.token(`crash-${i}`, ['customer'])));
    // Two lines per order: a reservation touches two stock rows in one transaction.
    const orders = await pool(tokens, ORDERS, (token) =>
      placeOrder(
        system,
        token,
        [
          { sku: LIMITED.sku, quantity: 1 },
          { sku: PLENTY.sku, quantity: 1 },
        ],
        'tok_visa',
      ),
    );
    const ids = orders.map((o) => o.id);
    // The sagas are under way: inventory has answered for at least one order.
    await waitFor(
      async () => (await countRows(system, 'order', 'orders', `id in (?) and status <> 'PENDING'`, [ids])) > 0,
      'a saga to move past PENDING',
      20_000,
      undefined,
      10,
    );
    await Promise.all(KILLED.map((name) => system.kill(name)));

    // What was in flight when they died (read straight from the order database).
    const atKill = await system
      .em('order')
      .execute<{ status: string; n: number }[]>(`select status, count(*)::int as n from orders where id in (?) group by status`, [ids]);
    const inFlight = atKill.filter((r) => r.status === 'PENDING' || r.status === 'AWAITING_PAYMENT').reduce((sum, r) => sum + Number(r.n), 0);
    assert.ok(inFlight > 0, `some sagas must be in flight at the kill, got ${JSON.stringify(atKill)}`);
    t.diagnostic(`at the kill: ${JSON.stringify(Object.fromEntries(atKill.map((r) => [r.status, r.n])))}`);
    const killedAt = Date.now();

    await Promise.all(KILLED.map((name) => system.restart(name)));
    let statuses: Map<string, string>;
    try {
      statuses = await waitForAll(system, admin, ids, ['CONFIRMED', 'REJECTED', 'CANCELLED'], 75_000);
      await waitForStock(system, LIMITED.sku, { reserved: 0 }, 20_000);
      await waitForStock(system, PLENTY.sku, { reserved: 0 }, 20_000);
    } catch (error) {
      const output = Object.values(system.children).flatMap((c) => c.output.slice(-15));
      throw new Error(`${(error as Error).message}\nin flight at the kill: ${JSON.stringify(atKill)}\n${output.join('\n')}`, { cause: error });
    }
    const counts = countBy([...statuses.values()]);
    t.diagnostic(`settled ${Date.now() - killedAt} ms after the kill: ${JSON.stringify(counts)}`);
    assert.equal(counts.CONFIRMED, LIMITED.onHand, `as many confirmed as there were units: ${JSON.stringify(counts)} (at the kill: ${JSON.stringify(atKill)})`);
    assert.equal(counts.REJECTED, ORDERS - LIMITED.onHand, `the rest rejected: ${JSON.stringify(counts)}`);

    // Stock conserved on both skus: what left the warehouse is exactly what confirmed orders bought.
    const limited = await stockOf(system, LIMITED.sku);
    const plenty = await stockOf(system, PLENTY.sku);
    assertConserved(LIMITED.sku, LIMITED.onHand, limited, counts.CONFIRMED);
    assertConserved(PLENTY.sku, PLENTY.onHand, plenty, counts.CONFIRMED);
    assert.deepEqual(limited, { onHand: 0, reserved: 0, available: 0 });
    assert.deepEqual(plenty, { onHand: PLENTY.onHand - counts.CONFIRMED, reserved: 0, available: PLENTY.onHand - counts.CONFIRMED });

    await assertAppliedOnce(system, { confirmed: counts.CONFIRMED, linesPerOrder: 2 });
  });
});
