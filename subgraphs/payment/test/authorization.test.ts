/** Authorising through the timeout, retries and circuit breaker; the settings from the environment. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { ConfigError, sleep } from '@swiftcart/platform';
import {
  ResilientProvider, createResilientProvider, loadPaymentSettings,
  type ResilientProviderOptions, type RetryNotice,
} from '../src/authorization.ts';
import { MockPaymentProvider, type AuthorizeRequest, type PaymentProvider } from '../src/provider.ts';

const pay = (method: string, amount = 1_000, paymentId = randomUUID()): AuthorizeRequest => ({ paymentId, amount, method });

/** A fake clock for the breaker. */
function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => { now += ms; } };
}

function setup(overrides: Partial<ResilientProviderOptions> = {}, provider: PaymentProvider = new MockPaymentProvider({ latencyMs: 5 })) {
  const time = clock();
  const retries: RetryNotice[] = [];
  const gateway = new ResilientProvider(provider, {
    timeoutMs: 50,
    retry: { attempts: 3, baseMs: 20, maxMs: 100, random: () => 0.99 },
    circuit: { failureThreshold: 5, resetAfterMs: 1_000, now: time.now },
    onRetry: (notice) => retries.push(notice),
    ...overrides,
  });
  return { gateway, time, retries };
}

describe('loadPaymentSettings', () => {
  test('defaults', () => {
    assert.deepEqual(loadPaymentSettings({}), {
      providerLatencyMs: 20, providerJitterMs: 0, declineAbove: undefined, timeoutMs: 1000, retryAttempts: 3,
      retryBaseMs: 100, retryMaxMs: 2000, circuitFailures: 5, circuitResetMs: 10_000,
    });
  });

  test('reads every variable', () => {
    assert.deepEqual(loadPaymentSettings({
      PAYMENT_PROVIDER_LATENCY_MS: '0', PAYMENT_PROVIDER_JITTER_MS: '5', PAYMENT_DECLINE_ABOVE: '100000',
      PAYMENT_TIMEOUT_MS: '250', PAYMENT_RETRY_ATTEMPTS: '5', PAYMENT_RETRY_BASE_MS: '10', PAYMENT_RETRY_MAX_MS: '80',
      PAYMENT_CIRCUIT_FAILURES: '2', PAYMENT_CIRCUIT_RESET_MS: '500',
    }), {
      providerLatencyMs: 0, providerJitterMs: 5, declineAbove: 100_000, timeoutMs: 250, retryAttempts: 5,
      retryBaseMs: 10, retryMaxMs: 80, circuitFailures: 2, circuitResetMs: 500,
    });
  });

  test('a bad value is a ConfigError naming the variable', () => {
    const cases: Record<string, string> = {
      PAYMENT_TIMEOUT_MS: 'soon', PAYMENT_RETRY_ATTEMPTS: '0', PAYMENT_PROVIDER_LATENCY_MS: '-5',
      PAYMENT_RETRY_BASE_MS: '1.5', PAYMENT_CIRCUIT_FAILURES: '0x10', PAYMENT_CIRCUIT_RESET_MS: '0', PAYMENT_DECLINE_ABOVE: 'lots',
    };
    for (const [key, value] of Object.entries(cases)) {
      assert.throws(() => loadPaymentSettings({ [key]: value }), (error: Error) =>
        error instanceof ConfigError && error.message.startsWith(`${key} must be an integer`) && error.message.includes(`"${value}"`), key);
    }
    assert.throws(() => loadPaymentSettings({ PAYMENT_RETRY_BASE_MS: '500', PAYMENT_RETRY_MAX_MS: '100' }), /PAYMENT_RETRY_MAX_MS \(100\) must be at least PAYMENT_RETRY_BASE_MS/);
  });

  test('createResilientProvider wires the mock provider with the settings', async () => {
    const gateway = createResilientProvider(loadPaymentSettings({ PAYMENT_PROVIDER_LATENCY_MS: '0', PAYMENT_DECLINE_ABOVE: '10' }));
    assert.equal((await gateway.authorize(pay('tok_visa', 10))).outcome, 'AUTHORIZED');
    assert.deepEqual(await gateway.authorize(pay('tok_visa', 11)), { outcome: 'DECLINED', reason: 'amount exceeds limit', attempts: 1 });
    assert.equal(gateway.circuitState, 'closed');
  });
});

describe('ResilientProvider', () => {
  test('tok_visa authorises on the first attempt', async () => {
    const { gateway } = setup();
    const outcome = await gateway.authorize(pay('tok_visa'));
    assert.equal(outcome.outcome, 'AUTHORIZED');
    assert.equal(outcome.attempts, 1);
    assert.match((outcome as { providerRef: string }).providerRef, /^auth_/);
  });

  test('a decline is an answer: no retry, attempts 1', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway, retries } = setup({}, provider);
    assert.deepEqual(await gateway.authorize(pay('tok_decline')), { outcome: 'DECLINED', reason: 'card declined', attempts: 1 });
    assert.deepEqual(await gateway.authorize(pay('paypal')), { outcome: 'DECLINED', reason: 'unknown payment method', attempts: 1 });
    assert.equal(provider.authorizeCalls, 2);
    assert.deepEqual(retries, []);
  });

  test('a provider that never answers is retried with backoff, then FAILED in bounded time', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway, retries } = setup({}, provider);
    const started = performance.now();
    const outcome = await gateway.authorize(pay('tok_timeout'));
    const elapsed = performance.now() - started;
    assert.deepEqual(outcome, { outcome: 'FAILED', reason: 'provider timed out after 3 attempts', attempts: 3 });
    assert.equal(provider.authorizeCalls, 3);
    // Full jitter with random 0.99: floor(0.99 * 20) then floor(0.99 * 40).
    assert.deepEqual(retries.map((r) => [r.operation, r.attempt, r.delayMs, (r.error as Error).name]), [
      ['authorize', 1, 19, 'TimeoutError'], ['authorize', 2, 39, 'TimeoutError'],
    ]);
    // 3 timeouts of 50 ms and 58 ms of backoff; bounded well below anything unbounded.
    assert.ok(elapsed >= 3 * 50 + 19 + 39 - 5, `took ${elapsed} ms`);
    assert.ok(elapsed < 700, `took ${elapsed} ms`);
  });

  test('a transient failure is retried and can recover; a persistent one ends FAILED', async () => {
    const { gateway } = setup();
    const flaky = await gateway.authorize(pay('tok_flaky'));
    assert.equal(flaky.outcome, 'AUTHORIZED');
    assert.equal(flaky.attempts, 2);
    assert.deepEqual(await gateway.authorize(pay('tok_unavailable')), { outcome: 'FAILED', reason: 'provider unavailable after 3 attempts', attempts: 3 });
  });

  test('after N failed attempts the circuit opens and fails fast; after the reset a visa call closes it', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const fake = clock();
    const breakerGateway = new ResilientProvider(provider, {
      timeoutMs: 30,
      retry: { attempts: 3, baseMs: 1, maxMs: 1 },
      circuit: { failureThreshold: 3, resetAfterMs: 1_000, now: fake.now },
    });

    assert.deepEqual(await breakerGateway.authorize(pay('tok_timeout')), { outcome: 'FAILED', reason: 'provider timed out after 3 attempts', attempts: 3 });
    assert.equal(breakerGateway.circuitState, 'open');

    const calls = provider.authorizeCalls;
    const started = performance.now();
    const fast = await breakerGateway.authorize(pay('tok_visa'));
    const elapsed = performance.now() - started;
    assert.deepEqual(fast, { outcome: 'FAILED', reason: 'circuit open', attempts: 0 });
    assert.equal(provider.authorizeCalls, calls, 'the provider was not called');
    assert.ok(elapsed < 50, `failed fast in ${elapsed} ms`);
    // Refunds share the circuit.
    assert.deepEqual(await breakerGateway.refund({ providerRef: 'auth_x', amount: 1, refundId: randomUUID() }), { outcome: 'FAILED', reason: 'circuit open', attempts: 0 });

    fake.advance(999);
    assert.equal(breakerGateway.circuitState, 'open');
    fake.advance(1);
    assert.equal(breakerGateway.circuitState, 'half-open');
    const trial = await breakerGateway.authorize(pay('tok_visa'));
    assert.equal(trial.outcome, 'AUTHORIZED');
    assert.equal(trial.attempts, 1);
    assert.equal(breakerGateway.circuitState, 'closed');
  });

  test('a failing half-open trial re-opens the circuit at once', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const fake = clock();
    const gateway = new ResilientProvider(provider, {
      timeoutMs: 20, retry: { attempts: 2, baseMs: 1, maxMs: 1 }, circuit: { failureThreshold: 2, resetAfterMs: 100, now: fake.now },
    });
    await gateway.authorize(pay('tok_timeout'));
    assert.equal(gateway.circuitState, 'open');
    fake.advance(100);
    // The trial times out, re-opens the circuit, and the retry is refused by the open circuit.
    assert.deepEqual(await gateway.authorize(pay('tok_timeout')), { outcome: 'FAILED', reason: 'circuit open', attempts: 1 });
    assert.equal(gateway.circuitState, 'open');
  });

  test('the breaker counts attempts: it can open in the middle of a call, which then stops retrying', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway } = setup({ timeoutMs: 20, retry: { attempts: 3, baseMs: 1, maxMs: 1 } }, provider);
    assert.equal((await gateway.authorize(pay('tok_timeout'))).attempts, 3);
    assert.equal(gateway.circuitState, 'closed');
    assert.deepEqual(await gateway.authorize(pay('tok_timeout')), { outcome: 'FAILED', reason: 'circuit open', attempts: 2 });
    assert.equal(provider.authorizeCalls, 5);
  });

  test('declines and refused requests never open the circuit, and a success resets the count', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway } = setup({ timeoutMs: 20, retry: { attempts: 1, baseMs: 1, maxMs: 1 }, circuit: { failureThreshold: 2, resetAfterMs: 1_000 } }, provider);
    for (let i = 0; i < 5; i++) assert.equal((await gateway.authorize(pay('tok_decline'))).outcome, 'DECLINED');
    const reused = pay('tok_visa');
    await gateway.authorize(reused);
    const refused = await gateway.authorize({ ...reused, amount: 5 });
    assert.equal(refused.outcome, 'FAILED');
    assert.match((refused as { reason: string }).reason, /^provider refused the request: payment id .* already used/);
    assert.equal(refused.attempts, 1);
    await gateway.authorize(pay('tok_timeout'));
    await gateway.authorize(pay('tok_visa'));
    await gateway.authorize(pay('tok_timeout'));
    assert.equal(gateway.circuitState, 'closed', 'the success in between reset the consecutive count');
  });

  test('idempotent by payment id: a retry after a lost answer gets the same provider reference', async () => {
    const mock = new MockPaymentProvider({ latencyMs: 0 });
    let calls = 0;
    // The first answer is lost: the provider decides, but the reply arrives after the timeout.
    const lossy: PaymentProvider = {
      async authorize(request, signal) {
        const answer = await mock.authorize(request);
        if (++calls === 1) await sleep(200, signal);
        return answer;
      },
      refund: (request, signal) => mock.refund(request, signal),
    };
    const { gateway } = setup({}, lossy);
    const request = pay('tok_visa');
    const outcome = await gateway.authorize(request);
    assert.equal(outcome.outcome, 'AUTHORIZED');
    assert.equal(outcome.attempts, 2);
    assert.deepEqual(await mock.authorize(request), { status: 'AUTHORIZED', providerRef: (outcome as { providerRef: string }).providerRef });
    const again = await gateway.authorize(request);
    assert.equal((again as { providerRef: string }).providerRef, (outcome as { providerRef: string }).providerRef);
    assert.equal(again.attempts, 1);
  });

  test('refunds retry with the same refund id, so a lost answer never refunds twice', async () => {
    const mock = new MockPaymentProvider({ latencyMs: 0 });
    let refunds = 0;
    const lossy: PaymentProvider = {
      authorize: (request, signal) => mock.authorize(request, signal),
      async refund(request, signal) {
        const answer = await mock.refund(request);
        if (++refunds === 1) await sleep(200, signal);
        return answer;
      },
    };
    const { gateway } = setup({}, lossy);
    const authorized = await gateway.authorize(pay('tok_visa', 1_000));
    const providerRef = (authorized as { providerRef: string }).providerRef;
    const refund = await gateway.refund({ providerRef, amount: 1_000, refundId: randomUUID() });
    assert.equal(refund.outcome, 'REFUNDED');
    assert.equal(refund.attempts, 2);
    assert.deepEqual(await gateway.refund({ providerRef, amount: 1, refundId: randomUUID() }), {
      outcome: 'FAILED', reason: 'provider refused the request: refund of 1 exceeds the 0 left to refund', attempts: 1,
    });
    await assert.rejects(gateway.refund({ providerRef, amount: 1 } as never), /refundId/);
  });

  test("the caller's abort (shutdown) throws instead of deciding FAILED", async () => {
    const { gateway } = setup({ timeoutMs: 1_000 });
    const reason = new Error('shutting down');
    const controller = new AbortController();
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(gateway.authorize(pay('tok_timeout'), controller.signal), (error) => error === reason);
  });
});
