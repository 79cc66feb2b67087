/**
 * Scale-out, end to end at a small scale: two replicas of every service as child processes against
 * the same databases, Kafka and Redis, the gateway in this process spreading its calls over them.
 * Mid-load one replica of each service is killed with SIGKILL and not restarted: the survivors take
 * over its partitions (after KAFKA_SESSION_TIMEOUT_MS), its outbox relay (the advisory lock dies
 * with its session) and its share of the gateway's calls. Customers retry a failed placement with
 * the same idempotency key, as a client should. Every order must end CONFIRMED, exactly once, with
 * stock conserved.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  type ProcessStack,
  assertAppliedOnce,
  assertConserved,
  countBy,
  countRows,
  placeOrder,
  seedSaga,
  sleep,
  startProcessStack,
  stockOf,
  waitForAll,
  waitForConfirmedAt,
  waitForStock,
} from '../support/saga.ts';

const SKU = { sku: 'REPLICAS-1', onHand: 100_000, priceAmount: 1000 };
const CUSTOMERS = 4;
/** Each customer's pause between orders: a steady stream, not a flood. */
const THINK_MS = 150;
/** A customer's wait before sending a failed placement again (same idempotency key). */
const RETRY_MS = 250;
/** Attempts of one placement before the customer gives up (and the test fails). */
const MAX_ATTEMPTS = 20;
/** The survivors get a dead replica's partitions this long after its last heartbeat. */
const SESSION_TIMEOUT_MS = 10_000;

describe('two replicas of every service, one of each killed mid-load', () => {
  let system: ProcessStack;

  before(async () => {
    system = await startProcessStack({ KAFKA_SESSION_TIMEOUT_MS: String(SESSION_TIMEOUT_MS) }, { replicas: 2 });
    await seedSaga(system, [SKU], 60_000);
  });
  after(async () => {
    await system?.close();
  });

  it('every order ends CONFIRMED once, stock is conserved, nothing applies twice', { timeout: 300_000 }, async (t) => {
    const admin = await system.token('root', ['admin']);
    const tokens = await Promise.all(Array.from({ length: CUSTOMERS }, (_, i) => system.token(`replicas-${i}`, ['customer'])));
    const accepted: string[] = [];
    const failures: string[] = [];
    /** Idempotency keys of placements that never succeeded. */
    const given: string[] = [];
    let placing = true;
    const customers = tokens.map(async (token) => {
      while (placing) {
        const key = randomUUID();
        for (let attempt = 1; ; attempt++) {
          try {
            accepted.push((await placeOrder(system, token, [{ sku: SKU.sku, quantity: 1 }], 'tok_visa', key)).id);
            break;
          } catch (error) {
            failures.push((error as Error).message);
            if (attempt === MAX_ATTEMPTS) {
              given.push(key);
              break;
            }
            await sleep(RETRY_MS);
          }
        }
        await sleep(THINK_MS);
      }
    });
    try {
      await waitForConfirmedAt(system, admin, accepted, 0, 30, 60_000);

      // The first replica of each: the one the gateway tries first and, as often as not, the
      // active relay and the owner of some partitions.
      await Promise.all(system.services.map((name) => system.kill(name, 'SIGKILL', 0)));
      const placedBeforeKill = accepted.length;
      // Placing goes on until orders placed well after the kill are through too.
      await waitForConfirmedAt(system, admin, accepted, placedBeforeKill + 20, 5, 120_000);
      placing = false;
      await Promise.all(customers);

      assert.deepEqual(given, [], `placements that failed ${MAX_ATTEMPTS} times: ${[...new Set(failures)].slice(0, 3).join('; ')}`);
      const unique = [...new Set(accepted)];
      assert.equal(unique.length, accepted.length, 'a retried placement returned the order it had placed, not a second one');
      const statuses = await waitForAll(system, admin, accepted, ['CONFIRMED', 'CANCELLED', 'REJECTED'], 120_000);
      const counts = countBy([...statuses.values()]);
      t.diagnostic(
        `${accepted.length} orders (${accepted.length - placedBeforeKill} after the kill): ${JSON.stringify(counts)}; ${failures.length} placements sent again`,
      );
      assert.deepEqual(counts, { CONFIRMED: accepted.length }, 'every order confirmed, none cancelled by the lost replicas');
      assert.equal(await countRows(system, 'order', 'orders'), accepted.length, 'no order the customers do not know of');

      const stock = await waitForStock(system, SKU.sku, { reserved: 0 }, 30_000);
      assertConserved(SKU.sku, SKU.onHand, stock, accepted.length);
      assert.deepEqual(await stockOf(system, SKU.sku), { onHand: SKU.onHand - accepted.length, reserved: 0, available: SKU.onHand - accepted.length });
      await assertAppliedOnce(system, { confirmed: accepted.length, linesPerOrder: 1 });
    } catch (error) {
      const output = Object.values(system.replicas)
        .flat()
        .flatMap((c) => c.output.slice(-8));
      throw new Error(`${(error as Error).message}\n${output.join('\n')}`, { cause: error });
    } finally {
      placing = false;
      await Promise.all(customers);
    }
  });
});
