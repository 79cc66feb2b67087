/**
 * The payment circuit breaker end to end (issue 9, item 7): one customer whose card times out
 * cannot open it for everyone, and a provider that fails for everyone still opens it. Real
 * services, PostgreSQL, Redis and Kafka, orders placed through the gateway.
 *
 * The breaker runs with its production defaults (at least 50 % failed of at least 20 attempts in
 * 10 s, open for 10 s); only the provider's timeout is shortened so the test is quick.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestStack } from '../support/stack.ts';
import { type SagaSystem, placeOrder, seedSaga, startSagaStack, statusChanges, systemOf, waitForOrder, waitForStatus } from '../support/saga.ts';

const SKU = 'BRK-1';
const SETTLED = ['CONFIRMED', 'CANCELLED', 'REJECTED'];
const ATTEMPTS = 3;

describe('payment circuit breaker through the gateway', () => {
  let stack: TestStack;
  let system: SagaSystem;

  before(async () => {
    stack = await startSagaStack({
      PAYMENT_TIMEOUT_MS: '300',
      PAYMENT_RETRY_ATTEMPTS: String(ATTEMPTS),
      PAYMENT_RETRY_BASE_MS: '20',
      PAYMENT_RETRY_MAX_MS: '100',
      PAYMENT_CIRCUIT_THRESHOLD_PERCENT: '50',
      PAYMENT_CIRCUIT_MIN_CALLS: '20',
      // Wide enough that a loaded machine (nine services beside the test) still counts every
      // attempt of the test in one window, and finds the circuit still open for the last order.
      PAYMENT_CIRCUIT_WINDOW_MS: '60000',
      PAYMENT_CIRCUIT_RESET_MS: '60000',
    });
    system = systemOf(stack);
    await seedSaga(system, [{ sku: SKU, onHand: 100, priceAmount: 700 }]);
  });
  after(() => stack?.close());

  /** Places one order of `SKU` per method and waits until each one has settled; returns them fully read. */
  async function settle(token: string, methods: readonly string[]): Promise<any[]> {
    const placed = await Promise.all(methods.map((method) => placeOrder(system, token, [{ sku: SKU, quantity: 1 }], method)));
    return Promise.all(
      placed.map(async (order) => {
        await waitForStatus(system, token, order.id, SETTLED, 30_000);
        return waitForOrder(system, token, order.id, 'its payment settled', (o) => o.payment && o.payment.status !== 'PENDING');
      }),
    );
  }

  it("one customer's tok_timeout orders do not cancel another customer's tok_visa order placed right after", async () => {
    const mallory = await stack.token('breaker-mallory', ['customer']);
    const alice = await stack.token('breaker-alice', ['customer']);

    // Three orders, nine timed-out attempts: the old breaker opened after five consecutive failures.
    const timedOut = await settle(mallory, ['tok_timeout', 'tok_timeout', 'tok_timeout']);
    for (const order of timedOut) {
      assert.equal(order.status, 'CANCELLED', JSON.stringify(order.timeline));
      assert.deepEqual(
        { status: order.payment.status, attempts: order.payment.attempts, failureReason: order.payment.failureReason },
        { status: 'FAILED', attempts: ATTEMPTS, failureReason: `provider timed out after ${ATTEMPTS} attempts` },
        'every attempt reached the provider and timed out: the circuit never opened',
      );
    }

    const [visa] = await settle(alice, ['tok_visa']);
    assert.equal(visa.status, 'CONFIRMED', JSON.stringify(visa.timeline));
    assert.equal(visa.customerId, 'breaker-alice');
    assert.deepEqual(
      { status: visa.payment.status, attempts: visa.payment.attempts, failureReason: visa.payment.failureReason },
      { status: 'AUTHORIZED', attempts: 1, failureReason: null },
    );
  });

  it('a provider failing for everyone (at least 50 % of at least 20 attempts) opens the circuit: the next order fails fast', async () => {
    const customers = await Promise.all(['breaker-bob', 'breaker-carol', 'breaker-dave'].map((sub) => stack.token(sub, ['customer'])));
    // 9 orders, 27 failed attempts within the window: with the 9 failures and 1 success before, far above 50 %.
    const failed = (await Promise.all(customers.map((token) => settle(token, ['tok_timeout', 'tok_timeout', 'tok_timeout'])))).flat();
    const reasons = failed.map((order) => order.payment.failureReason);
    assert.ok(
      failed.every((order) => order.status === 'CANCELLED'),
      JSON.stringify(failed.map((o) => o.status)),
    );
    assert.ok(
      reasons.some((reason) => reason === 'circuit open'),
      `once enough attempts failed, the breaker refused the remaining ones: ${JSON.stringify(reasons)}`,
    );

    const erin = await stack.token('breaker-erin', ['customer']);
    const [visa] = await settle(erin, ['tok_visa']);
    assert.equal(visa.status, 'CANCELLED', JSON.stringify(visa.timeline));
    assert.deepEqual(
      { status: visa.payment.status, attempts: visa.payment.attempts, failureReason: visa.payment.failureReason },
      { status: 'FAILED', attempts: 0, failureReason: 'circuit open' },
      'the provider was not called',
    );
    const change = statusChanges(visa.timeline).at(-1);
    assert.equal(change.eventType, 'PaymentFailed');
    assert.match(change.reason ?? '', /circuit open/);
  });
});
