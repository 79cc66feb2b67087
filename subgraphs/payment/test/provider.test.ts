/** The mock payment provider: test cards, decline rules, latency, idempotency, refunds. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { type TestContext, describe, test } from 'node:test';
import { MockPaymentProvider, ProviderRequestError, TransientProviderError, type AuthorizeRequest } from '../src/provider.ts';

const pay = (method: string, amount = 1_000, paymentId = randomUUID()): AuthorizeRequest => ({ paymentId, amount, method });
/**
 * 'pending' when `promise` is still pending once every timer it could have set has run: with the
 * test's mock timers on (before the call), no clock is waited for, and nothing scheduled is missed.
 */
async function afterEveryTimer(t: TestContext, promise: Promise<unknown>): Promise<'pending' | 'settled'> {
  let state: 'pending' | 'settled' = 'pending';
  promise.then(
    () => {
      state = 'settled';
    },
    () => {
      state = 'settled';
    },
  );
  // A timer's callback may set the next one: run them until none is left (setImmediate is not mocked).
  for (let round = 0; round < 10; round++) {
    t.mock.timers.runAll();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return state;
}

describe('MockPaymentProvider', () => {
  test('tok_visa authorises after the configured latency, with a provider reference', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 30 });
    const started = performance.now();
    const answer = await provider.authorize(pay('tok_visa'));
    assert.ok(performance.now() - started >= 28, 'the latency is applied');
    assert.equal(answer.status, 'AUTHORIZED');
    assert.match((answer as { providerRef: string }).providerRef, /^auth_[0-9a-f-]{36}$/);
    assert.equal(provider.authorizeCalls, 1);
  });

  test('jitter adds up to jitterMs of latency', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 10, jitterMs: 40, random: () => 0.999 });
    const started = performance.now();
    await provider.authorize(pay('tok_visa'));
    assert.ok(performance.now() - started >= 48);
  });

  test('tok_decline and unknown methods decline; declineAbove and extra rules decline too', async () => {
    const provider = new MockPaymentProvider({
      latencyMs: 0,
      declineAbove: 50_000,
      declineRules: [(r) => (r.amount === 4_242 ? 'suspected fraud' : undefined)],
    });
    assert.deepEqual(await provider.authorize(pay('tok_decline')), { status: 'DECLINED', reason: 'card declined' });
    assert.deepEqual(await provider.authorize(pay('tok_mastercard')), { status: 'DECLINED', reason: 'unknown payment method' });
    assert.deepEqual(await provider.authorize(pay('tok_visa', 50_001)), { status: 'DECLINED', reason: 'amount exceeds limit' });
    assert.equal((await provider.authorize(pay('tok_visa', 50_000))).status, 'AUTHORIZED');
    assert.deepEqual(await provider.authorize(pay('tok_visa', 4_242)), { status: 'DECLINED', reason: 'suspected fraud' });
    assert.deepEqual(await provider.authorize(pay('tok_visa', -1)), { status: 'DECLINED', reason: 'invalid amount' });
  });

  test('tok_timeout never answers; it settles only when the caller aborts', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const controller = new AbortController();
    const pending = provider.authorize(pay('tok_timeout'), controller.signal);
    assert.equal(await afterEveryTimer(t, pending), 'pending');
    const reason = new Error('gave up');
    controller.abort(reason);
    await assert.rejects(pending, (error) => error === reason);
    assert.equal(await afterEveryTimer(t, provider.authorize(pay('tok_timeout'))), 'pending', 'without a signal it never settles');
  });

  test('the same payment id gets the same answer and the same provider reference', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const visa = pay('tok_visa');
    const first = await provider.authorize(visa);
    assert.deepEqual(await provider.authorize({ ...visa }), first);
    const declined = pay('tok_decline');
    assert.deepEqual(await provider.authorize(declined), await provider.authorize(declined));
    await assert.rejects(provider.authorize({ ...visa, amount: visa.amount + 1 }), ProviderRequestError);
    const other = await provider.authorize(pay('tok_visa'));
    assert.notEqual((other as { providerRef: string }).providerRef, (first as { providerRef: string }).providerRef);
  });

  test('a decision is recorded on arrival: a caller that aborted during the latency gets it on retry', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 60 });
    const request = pay('tok_visa');
    await assert.rejects(provider.authorize(request, AbortSignal.timeout(10)));
    const retried = await provider.authorize(request);
    assert.equal(retried.status, 'AUTHORIZED');
    assert.deepEqual(await provider.authorize(request), retried);
  });

  test('tok_unavailable always fails transiently; tok_flaky fails once per payment id, then authorises', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    await assert.rejects(provider.authorize(pay('tok_unavailable')), TransientProviderError);
    const flaky = pay('tok_flaky');
    await assert.rejects(provider.authorize(flaky), TransientProviderError);
    const answer = await provider.authorize(flaky);
    assert.equal(answer.status, 'AUTHORIZED');
    assert.deepEqual(await provider.authorize(flaky), answer);
  });

  test('refunds up to the authorised amount, idempotently by refund id', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const answer = await provider.authorize(pay('tok_visa', 1_000));
    assert.equal(answer.status, 'AUTHORIZED');
    const providerRef = (answer as { providerRef: string }).providerRef;

    const refundId = randomUUID();
    const first = await provider.refund({ providerRef, amount: 600, refundId });
    assert.match(first.refundRef, /^refund_/);
    assert.deepEqual(await provider.refund({ providerRef, amount: 600, refundId }), first, 'the same refund id refunds once');
    await assert.rejects(provider.refund({ providerRef, amount: 500 }), /exceeds the 400 left/);
    assert.match((await provider.refund({ providerRef, amount: 400 })).refundRef, /^refund_/);
    await assert.rejects(provider.refund({ providerRef, amount: 1 }), /exceeds the 0 left/);
    await assert.rejects(provider.refund({ providerRef: 'auth_nope', amount: 1 }), /no authorisation/);
    await assert.rejects(provider.refund({ providerRef, amount: 10, refundId }), /already used/);
    assert.equal(provider.refundCalls, 7);
  });

  test('rejects nonsensical settings', () => {
    assert.throws(() => new MockPaymentProvider({ latencyMs: -1 }), /latencyMs/);
  });
});
