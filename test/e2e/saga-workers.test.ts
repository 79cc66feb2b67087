/**
 * Consumers apart from the API (`npm start -- --workers`), end to end: every service runs as an
 * api process (SERVICE_ROLE=api: GraphQL only) and a worker (SERVICE_ROLE=worker: outbox relay,
 * consumers, deadline sweeper), as child processes against the same databases, Kafka and Redis.
 *
 * The order service's worker is killed with SIGKILL. Its api process goes on taking orders: they
 * are written with their outbox rows and wait PENDING, since nothing relays them. Admission control
 * runs beside the API, so once they have waited past the threshold placeOrder answers OVERLOADED.
 * The worker comes back: it relays what the api process wrote, every accepted order is CONFIRMED,
 * and placeOrder admits again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  type ProcessStack,
  PLACE_ORDER,
  assertAppliedOnce,
  countRows,
  orderInput,
  placeOrder,
  seedSaga,
  startProcessStack,
  waitFor,
  waitForAll,
  waitForStock,
} from '../support/saga.ts';

const SKU = { sku: 'WORKERS-1', onHand: 500, priceAmount: 1000 };
const MAX_LAG_MS = 1_500;

describe('every service as an api process and a worker', () => {
  let system: ProcessStack;

  before(async () => {
    // A killed worker's partitions wait for its session to time out before the restarted one gets them.
    system = await startProcessStack(
      { ORDER_ADMISSION_MAX_LAG_MS: String(MAX_LAG_MS), ORDER_ADMISSION_PROBE_MS: '50', KAFKA_SESSION_TIMEOUT_MS: '10000' },
      { workers: true },
    );
    await seedSaga(system, [SKU]);
  });
  after(() => system?.close());

  it('the api process takes orders while its worker is down; the worker relays them when back; all CONFIRMED once', { timeout: 180_000 }, async () => {
    assert.deepEqual(
      Object.values(system.replicas)
        .flat()
        .map((c) => c.role),
      Array(system.services.length).fill('api'),
    );
    assert.deepEqual(
      Object.values(system.workers)
        .flat()
        .map((c) => c.role),
      Array(system.services.length).fill('worker'),
    );
    const customer = await system.token('workers-customer', ['customer']);
    const admin = await system.token('root', ['admin']);
    const place = () => placeOrder(system, customer, [{ sku: SKU.sku, quantity: 1 }], 'tok_visa');

    const before = await Promise.all(Array.from({ length: 5 }, place));
    await waitForAll(
      system,
      admin,
      before.map((o) => o.id),
      ['CONFIRMED'],
      60_000,
    );

    await system.killChild(system.workers.order[0], 'SIGKILL');
    const during = await Promise.all(Array.from({ length: 5 }, place));
    assert.deepEqual(
      during.map((o) => o.status),
      Array(5).fill('PENDING'),
      'accepted by the api process alone',
    );
    const unrelayed = await countRows(
      system,
      'order',
      'outbox',
      `published_at is null and aggregateid in (${during.map(() => '?').join(', ')})`,
      during.map((o) => o.id),
    );
    assert.ok(unrelayed >= during.length, `${unrelayed} outbox rows of the new orders wait for a relay`);

    const refused = await waitFor(
      async () => {
        const result = await system.graphql(PLACE_ORDER, { token: customer, variables: { input: orderInput([{ sku: SKU.sku, quantity: 1 }], 'tok_visa') } });
        if (!result.errors) {
          during.push(result.data.placeOrder);
          return undefined;
        }
        return result.errors[0];
      },
      'placeOrder to be refused while the orders wait',
      20_000,
    );
    assert.equal(refused.extensions?.code, 'OVERLOADED', JSON.stringify(refused));

    await system.restartChild(system.workers.order[0]);
    const accepted = [...before, ...during].map((o) => o.id);
    const statuses = await waitForAll(system, admin, accepted, ['CONFIRMED', 'CANCELLED', 'REJECTED'], 60_000);
    assert.deepEqual([...new Set(statuses.values())], ['CONFIRMED']);
    await waitFor(async () => ((await place().catch(() => null)) ? true : undefined), 'placeOrder to admit again', 20_000);
    await waitForStock(system, SKU.sku, { onHand: SKU.onHand - accepted.length - 1, reserved: 0 });
    await assertAppliedOnce(system, { confirmed: accepted.length + 1, linesPerOrder: 1 });
  });
});
