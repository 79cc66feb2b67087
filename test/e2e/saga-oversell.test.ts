/**
 * No oversell under contention, end to end: 200 customers order one unit each of a sku with 50
 * units, through the gateway, 25 at a time. Exactly 50 orders are confirmed, the figures never go
 * wrong while it runs, and every unit is accounted for at the end.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestStack } from '../support/stack.ts';
import {
  type SagaSystem,
  type StockFigures,
  assertConserved,
  countBy,
  countRows,
  placeOrder,
  pool,
  seedSaga,
  sleep,
  startSagaStack,
  stockOf,
  systemOf,
  waitForAll,
  waitForStock,
} from '../support/saga.ts';

const SKU = 'HOT-1';
const UNITS = 50;
const ORDERS = 200;
const CONCURRENCY = 25;

describe('order saga: no oversell', () => {
  let stack: TestStack;
  let system: SagaSystem;

  before(async () => {
    // A long deadline: every order must be decided by stock, not cut short by the sweeper.
    stack = await startSagaStack({ ORDER_DEADLINE_MS: '120000' });
    system = systemOf(stack);
    await seedSaga(system, [{ sku: SKU, onHand: UNITS, priceAmount: 4999 }]);
  });
  after(() => stack?.close());

  it(`${ORDERS} concurrent one-unit orders for ${UNITS} units: exactly ${UNITS} CONFIRMED, never oversold, stock conserved`, async () => {
    const admin = await stack.token('root', ['admin']);
    const tokens = await Promise.all(Array.from({ length: ORDERS }, (_, i) => stack.token(`buyer-${i}`, ['customer'])));
    assert.deepEqual(await stockOf(system, SKU), { onHand: UNITS, reserved: 0, available: UNITS });

    // Watch the figures while the orders run.
    const violations: StockFigures[] = [];
    let samples = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const s = await stockOf(system, SKU).catch(() => null);
        if (s) {
          samples++;
          if (s.available < 0 || s.reserved < 0 || s.onHand < 0 || s.reserved > s.onHand || s.available !== s.onHand - s.reserved || s.onHand > UNITS)
            violations.push(s);
        }
        await sleep(25);
      }
    })();

    const orders = await pool(tokens, CONCURRENCY, (token, i) => placeOrder(system, token, [{ sku: SKU, quantity: 1 }], 'tok_visa', `hot-${i}`));
    assert.equal(new Set(orders.map((o) => o.id)).size, ORDERS, 'every customer got an order');
    const ids = orders.map((o) => o.id);

    let statuses: Map<string, string>;
    try {
      statuses = await waitForAll(system, admin, ids, ['CONFIRMED', 'REJECTED', 'CANCELLED'], 60_000);
      await waitForStock(system, SKU, { reserved: 0 }, 15_000); // the commits of the confirmed orders
    } finally {
      watching = false;
      await watcher;
    }
    const counts = countBy([...statuses.values()]);
    assert.deepEqual(violations, [], `figures went wrong during the run (${samples} samples)`);
    assert.ok(samples > 10, `the watcher sampled the figures (${samples} samples)`);
    assert.equal(counts.CONFIRMED, UNITS, `exactly ${UNITS} confirmed: ${JSON.stringify(counts)}`);
    assert.equal(counts.REJECTED, ORDERS - UNITS, `the rest rejected: ${JSON.stringify(counts)}`);

    const stock = await stockOf(system, SKU);
    assert.deepEqual(stock, { onHand: 0, reserved: 0, available: 0 });
    const sold = UNITS - stock.onHand;
    assert.equal(sold, counts.CONFIRMED, 'units sold = units of confirmed orders');
    assertConserved(SKU, UNITS, stock, counts.CONFIRMED);
    // Inventory's own books agree: one committed reservation per confirmed order, nothing still held.
    assert.equal(await countRows(system, 'inventory', 'reservation', `sku = ? and status = 'COMMITTED'`, [SKU]), UNITS);
    assert.equal(await countRows(system, 'inventory', 'reservation', `sku = ? and status = 'RESERVED'`, [SKU]), 0);
  });
});
