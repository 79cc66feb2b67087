/**
 * Outages don't cancel orders (ADR 0012), end to end at a small scale: the five services as child
 * processes on a Kafka broker of this test's own (test/support/kafka-broker.ts), the gateway in this
 * process, the default order deadline. Customers place orders without pause; mid-load the broker is
 * killed with SIGKILL and stays away for OUTAGE_MS while they go on placing, then it starts again on
 * the same data. Every accepted order must end CONFIRMED (none cancelled by the outage), stock must
 * be conserved, and no event may be applied twice.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  type ProcessStack,
  assertAppliedOnce,
  assertConserved,
  countBy,
  placeOrder,
  seedSaga,
  sleep,
  startProcessStack,
  statusesOf,
  stockOf,
  waitFor,
  waitForAll,
  waitForConfirmedAt,
  waitForStock,
} from '../support/saga.ts';
import { TestKafkaBroker } from '../support/kafka-broker.ts';

const SKU = { sku: 'OUTAGE-1', onHand: 100_000, priceAmount: 1000 };
const CUSTOMERS = 4;
/** Each customer's pause between orders: a steady stream of about 15 orders/s, not a flood. */
const THINK_MS = 200;
/** How long the broker stays dead; the time the broker then needs to start comes on top. */
const OUTAGE_MS = 10_000;

describe('a Kafka outage under load', () => {
  let kafka: TestKafkaBroker;
  let system: ProcessStack;

  before(async () => {
    kafka = await TestKafkaBroker.start();
    // The default ORDER_DEADLINE_MS: what is under test is that the platform's own defaults ride it out.
    system = await startProcessStack({ KAFKA_BROKERS: kafka.broker });
    await seedSaga(system, [SKU], 60_000);
  });
  after(async () => {
    await system?.close();
    await kafka?.close();
  });

  it('kills the broker mid-load: every accepted order ends CONFIRMED, stock is conserved, nothing applies twice', { timeout: 300_000 }, async (t) => {
    const admin = await system.token('root', ['admin']);
    const tokens = await Promise.all(Array.from({ length: CUSTOMERS }, (_, i) => system.token(`outage-${i}`, ['customer'])));
    const accepted: string[] = [];
    const failures: string[] = [];
    let placing = true;
    const customers = tokens.map(async (token) => {
      while (placing) {
        try {
          accepted.push((await placeOrder(system, token, [{ sku: SKU.sku, quantity: 1 }], 'tok_visa')).id);
        } catch (error) {
          failures.push((error as Error).message);
        }
        await sleep(THINK_MS);
      }
    });
    try {
      // Sagas are flowing before the broker dies: some orders are already through.
      await waitFor(
        async () => {
          const statuses = await statusesOf(system, admin, accepted.slice(0, 30));
          return [...statuses.values()].filter((s) => s === 'CONFIRMED').length >= 10 ? true : undefined;
        },
        'orders to be confirmed before the outage',
        30_000,
      );

      await kafka.kill();
      const killedAt = Date.now();
      const placedBefore = accepted.length;
      // Time is the subject here: the outage lasts this long whatever happens meanwhile.
      await sleep(OUTAGE_MS);
      const placedDuring = accepted.length - placedBefore;
      await kafka.restart();
      const downMs = Date.now() - killedAt;
      // Placing goes on until orders placed after the restart are through too.
      await waitForConfirmedAt(system, admin, accepted, accepted.length, 5, 120_000);
      placing = false;
      await Promise.all(customers);

      const statuses = await waitForAll(system, admin, accepted, ['CONFIRMED', 'CANCELLED', 'REJECTED'], 120_000);
      const counts = countBy([...statuses.values()]);
      t.diagnostic(
        `broker down ${downMs} ms; ${accepted.length} orders accepted (${placedDuring} while it was down): ${JSON.stringify(counts)}; ${failures.length} placements failed`,
      );
      assert.ok(placedDuring > 0, 'orders were placed while Kafka was down');
      assert.deepEqual(counts, { CONFIRMED: accepted.length }, 'every accepted order confirmed, none cancelled by the outage');
      assert.deepEqual(failures, [], 'placeOrder does not need Kafka');

      const stock = await waitForStock(system, SKU.sku, { reserved: 0 }, 30_000);
      assertConserved(SKU.sku, SKU.onHand, stock, accepted.length);
      assert.deepEqual(await stockOf(system, SKU.sku), { onHand: SKU.onHand - accepted.length, reserved: 0, available: SKU.onHand - accepted.length });
      await assertAppliedOnce(system, { confirmed: accepted.length, linesPerOrder: 1 });
    } catch (error) {
      const output = Object.values(system.children).flatMap((c) => c.output.slice(-10));
      throw new Error(`${(error as Error).message}\n${output.join('\n')}`, { cause: error });
    } finally {
      placing = false;
      await Promise.all(customers);
    }
  });
});
