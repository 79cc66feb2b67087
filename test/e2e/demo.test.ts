/**
 * `npm run demo` against a real stack: the order it places is followed live to CONFIRMED, the
 * saga's Kafka events of that order (and only those) are printed with topic and key, and the
 * timeline and the stock before and after come last. Bad arguments exit 2, an absent platform 1.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { main, runDemo } from '../../scripts/demo.ts';
import type { TestStack } from '../support/stack.ts';
import { seedSaga, startSagaStack, systemOf } from '../support/saga.ts';

describe('npm run demo', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startSagaStack();
    await seedSaga(systemOf(stack), [{ sku: 'DEMO-1', onHand: 9, priceAmount: 1500 }]);
  });
  after(() => stack?.close());

  it('places an order, shows its status changes and saga events live, then its timeline and stock', async () => {
    const lines: string[] = [];
    const result = await runDemo({
      config: stack.config,
      url: stack.gateway!.url,
      sku: 'DEMO-1',
      quantity: 2,
      payment: 'tok_visa',
      timeoutMs: 30_000,
      print: (line) => lines.push(line),
    });
    const output = lines.join('\n');
    assert.equal(result.finalStatus, 'CONFIRMED');
    assert.deepEqual(
      result.statuses.filter((s) => s === 'PENDING' || s === 'CONFIRMED'),
      ['PENDING', 'CONFIRMED'].filter((s) => result.statuses.includes(s)),
    );
    assert.ok(result.statuses.includes('CONFIRMED'), `statuses seen live: ${result.statuses}`);
    assert.equal(result.stockBefore - result.stockAfter, 2, 'two units sold');
    for (const e of result.events) assert.equal(e.key, result.orderId, "only this order's events");
    const types = result.events.map((e) => `${e.topic} ${e.type}`);
    for (const expected of [
      'order.events.v1 OrderPlaced',
      'inventory.events.v1 StockReserved',
      'payment.events.v1 PaymentAuthorized',
      'shipment.events.v1 ShipmentCreated',
    ]) {
      assert.ok(types.includes(expected), `saw ${types.join(', ')}`);
    }
    assert.match(output, new RegExp(`placed order ${result.orderId}`));
    assert.match(output, /kafka order\.events\.v1\s+key [0-9a-f]{8}…\s+OrderPlaced/);
    assert.match(output, /live\s+orderUpdated\s+v\d+\s+CONFIRMED \(payment AUTHORIZED/);
    assert.match(output, /Timeline of order/);
    assert.match(output, /Stock of DEMO-1: available 9 before, 7 after \(-2\)/);
    assert.deepEqual(result.timeline.map((t) => t.status)[0], 'PENDING');
    assert.ok(output.indexOf('Timeline of order') > output.lastIndexOf('kafka '), 'the timeline comes after the events');
  });

  it('exits 2 on bad arguments and 1 when the platform does not answer', async () => {
    const errors: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => {
      errors.push(args.join(' '));
    };
    try {
      assert.equal(await main(['--quantity', '0']), 2);
      assert.equal(await main(['--nope']), 2);
      assert.equal(await main(['--url', 'http://127.0.0.1:1/graphql', '--timeout', '5']), 1);
    } finally {
      console.error = original;
    }
    assert.match(errors.join('\n'), /--quantity must be a whole number from 1 to 1000/);
    assert.match(errors.join('\n'), /does not answer at http:\/\/127\.0\.0\.1:1\/graphql.*npm start/s);
  });
});
