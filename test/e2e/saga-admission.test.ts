/**
 * Back-pressure instead of cancellation, end to end (services as child processes, the gateway in
 * this process): while the saga lags, here because inventory is stopped and nothing reserves stock,
 * placeOrder is refused at once with OVERLOADED, HTTP 503 and Retry-After; nothing of a refused
 * order is stored. Once inventory is back and the backlog clears, every accepted order is CONFIRMED
 * and placeOrder admits new orders again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  type ProcessStack,
  PLACE_ORDER,
  countRows,
  orderInput,
  placeOrder,
  seedSaga,
  startProcessStack,
  waitFor,
  waitForAll,
  waitForStock,
} from '../support/saga.ts';

const SKU = { sku: 'ADMIT-1', onHand: 200, priceAmount: 1000 };
const MAX_LAG_MS = 1_000;

/** placeOrder over plain HTTP, to see the status and headers the gateway answers with. */
async function postPlaceOrder(system: ProcessStack, token: string, idempotencyKey: string) {
  const response = await fetch(system.gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: PLACE_ORDER, variables: { input: orderInput([{ sku: SKU.sku, quantity: 1 }], 'tok_visa', idempotencyKey) } }),
  });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as any };
}

describe('placeOrder admission while the saga lags', () => {
  let system: ProcessStack;

  before(async () => {
    system = await startProcessStack({
      ORDER_ADMISSION_MAX_LAG_MS: String(MAX_LAG_MS),
      ORDER_ADMISSION_PROBE_MS: '50',
    });
    await seedSaga(system, [SKU]);
  });
  after(() => system?.close());

  it('refuses with OVERLOADED (503, Retry-After) while orders wait, confirms every accepted one, and admits again when caught up', async () => {
    const customer = await system.token('admission-customer', ['customer']);
    const admin = await system.token('root', ['admin']);
    // Inventory stops cleanly (it leaves its consumer group, so it rejoins at once when back).
    await system.kill('inventory', 'SIGTERM');
    const accepted = [await placeOrder(system, customer, [{ sku: SKU.sku, quantity: 1 }], 'tok_visa')];

    // The order waits PENDING; once it has waited longer than the threshold, the door closes.
    let refused!: Awaited<ReturnType<typeof postPlaceOrder>>;
    let refusedKey = '';
    await waitFor(
      async () => {
        refusedKey = randomUUID();
        const attempt = await postPlaceOrder(system, customer, refusedKey);
        if (attempt.status === 200) {
          accepted.push(attempt.body.data.placeOrder);
          return undefined;
        }
        refused = attempt;
        return true;
      },
      'placeOrder to be refused',
      15_000,
    );
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.retryAfter) >= 1, `Retry-After: ${refused.retryAfter}`);
    const [error] = refused.body.errors;
    assert.equal(error.extensions.code, 'OVERLOADED');
    assert.equal(error.extensions.retryAfterSeconds, Number(refused.retryAfter));
    assert.match(error.message, /not placed/);
    assert.equal(refused.body.data, null);
    // Nothing of the refused order was stored.
    assert.equal(await countRows(system, 'order', 'orders', 'idempotency_key = ?', [refusedKey]), 0);
    // A bad request is still a bad request, not "busy".
    const bad = await system.graphql(PLACE_ORDER, { token: customer, variables: { input: orderInput([{ sku: SKU.sku, quantity: 0 }], 'tok_visa') } });
    assert.equal(bad.errors?.[0].extensions?.code, 'BAD_USER_INPUT');

    // Inventory comes back: the backlog clears, every accepted order is CONFIRMED, none cancelled.
    await system.restart('inventory');
    const statuses = await waitForAll(
      system,
      admin,
      accepted.map((o) => o.id),
      ['CONFIRMED', 'CANCELLED', 'REJECTED'],
      60_000,
    );
    assert.deepEqual([...new Set(statuses.values())], ['CONFIRMED']);

    // And the door opens again: the refused request, retried with its key, is placed now.
    const retried = await waitFor(
      async () => {
        const attempt = await postPlaceOrder(system, customer, refusedKey);
        return attempt.status === 200 ? attempt : undefined;
      },
      'placeOrder to be admitted again',
      15_000,
    );
    assert.equal(retried.body.errors, undefined);
    const [final] = (await waitForAll(system, admin, [retried.body.data.placeOrder.id], ['CONFIRMED', 'CANCELLED', 'REJECTED'], 30_000)).values();
    assert.equal(final, 'CONFIRMED');
    await waitForStock(system, SKU.sku, { onHand: SKU.onHand - accepted.length - 1, reserved: 0 });
  });
});
