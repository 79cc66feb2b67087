/** Authorising through the timeout, retries and failure-rate circuit breaker; the settings from the configuration. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { ConfigError, TaskCancelledError, parseSettings, sleep } from '@swiftcart/platform';
import {
  ResilientProvider,
  createResilientProvider,
  paymentSettings,
  type CircuitStatus,
  type ResilientProviderOptions,
  type RetryNotice,
} from '../src/authorization.ts';
import { MockPaymentProvider, type AuthorizeRequest, type PaymentProvider } from '../src/provider.ts';

const pay = (method: string, amount = 1_000, paymentId = randomUUID()): AuthorizeRequest => ({ paymentId, amount, method });

/** The default breaker: at least 50 % failed of at least 20 attempts in 10 s, open for 1 s in these tests. */
const CIRCUIT = { thresholdPercent: 50, minimumCalls: 20, windowMs: 10_000, halfOpenAfterMs: 1_000 };

function setup(overrides: Partial<ResilientProviderOptions> = {}, provider: PaymentProvider = new MockPaymentProvider({ latencyMs: 5 })) {
  const retries: RetryNotice[] = [];
  const changes: CircuitStatus[] = [];
  const gateway = new ResilientProvider(provider, {
    timeoutMs: 50,
    retry: { attempts: 3, baseMs: 20, maxMs: 100 },
    circuit: CIRCUIT,
    onRetry: (notice) => retries.push(notice),
    onCircuitChange: (status) => changes.push(status),
    ...overrides,
  });
  return { gateway, retries, changes };
}

/** Authorises `count` payments with `method`, one after another; returns the outcomes. */
async function authorizeMany(gateway: ResilientProvider, method: string, count: number) {
  const outcomes = [];
  for (let i = 0; i < count; i++) outcomes.push(await gateway.authorize(pay(method)));
  return outcomes;
}

/** The payment settings as the platform parses them at start-up. */
const loadPaymentSettings = (env: NodeJS.ProcessEnv) => parseSettings(paymentSettings, env);

describe('paymentSettings', () => {
  test('defaults', () => {
    assert.deepEqual(loadPaymentSettings({}), {
      providerLatencyMs: 20,
      providerJitterMs: 0,
      declineAbove: undefined,
      timeoutMs: 1000,
      retryAttempts: 3,
      retryBaseMs: 100,
      retryMaxMs: 2000,
      circuitThresholdPercent: 50,
      circuitMinCalls: 20,
      circuitWindowMs: 10_000,
      circuitResetMs: 10_000,
    });
  });

  test('reads every variable', () => {
    assert.deepEqual(
      loadPaymentSettings({
        PAYMENT_PROVIDER_LATENCY_MS: '0',
        PAYMENT_PROVIDER_JITTER_MS: '5',
        PAYMENT_DECLINE_ABOVE: '100000',
        PAYMENT_TIMEOUT_MS: '250',
        PAYMENT_RETRY_ATTEMPTS: '5',
        PAYMENT_RETRY_BASE_MS: '10',
        PAYMENT_RETRY_MAX_MS: '80',
        PAYMENT_CIRCUIT_THRESHOLD_PERCENT: '75',
        PAYMENT_CIRCUIT_MIN_CALLS: '40',
        PAYMENT_CIRCUIT_WINDOW_MS: '30000',
        PAYMENT_CIRCUIT_RESET_MS: '500',
      }),
      {
        providerLatencyMs: 0,
        providerJitterMs: 5,
        declineAbove: 100_000,
        timeoutMs: 250,
        retryAttempts: 5,
        retryBaseMs: 10,
        retryMaxMs: 80,
        circuitThresholdPercent: 75,
        circuitMinCalls: 40,
        circuitWindowMs: 30_000,
        circuitResetMs: 500,
      },
    );
  });

  test('a bad value is a ConfigError naming the variable', () => {
    const cases: Record<string, string> = {
      PAYMENT_TIMEOUT_MS: 'soon',
      PAYMENT_RETRY_ATTEMPTS: '0',
      PAYMENT_PROVIDER_LATENCY_MS: '-5',
      PAYMENT_RETRY_BASE_MS: '1.5',
      PAYMENT_CIRCUIT_THRESHOLD_PERCENT: '0',
      PAYMENT_CIRCUIT_MIN_CALLS: '0x10',
      PAYMENT_CIRCUIT_WINDOW_MS: '99',
      PAYMENT_CIRCUIT_RESET_MS: '0',
      PAYMENT_DECLINE_ABOVE: 'lots',
    };
    for (const [key, value] of Object.entries(cases)) {
      assert.throws(
        () => loadPaymentSettings({ [key]: value }),
        (error: Error) => error instanceof ConfigError && error.message.startsWith(`${key} must be an integer`) && error.message.includes(`"${value}"`),
        key,
      );
    }
    assert.throws(
      () => loadPaymentSettings({ PAYMENT_CIRCUIT_THRESHOLD_PERCENT: '101' }),
      /PAYMENT_CIRCUIT_THRESHOLD_PERCENT must be an integer from 1 to 100/,
    );
    assert.throws(
      () => loadPaymentSettings({ PAYMENT_RETRY_BASE_MS: '500', PAYMENT_RETRY_MAX_MS: '100' }),
      /PAYMENT_RETRY_MAX_MS \(100\) must be at least PAYMENT_RETRY_BASE_MS/,
    );
  });

  test('the replaced PAYMENT_CIRCUIT_FAILURES is refused, naming its replacements', () => {
    assert.throws(
      () => loadPaymentSettings({ PAYMENT_CIRCUIT_FAILURES: '5' }),
      (error: Error) =>
        error instanceof ConfigError &&
        /^PAYMENT_CIRCUIT_FAILURES is no longer read/.test(error.message) &&
        error.message.includes('PAYMENT_CIRCUIT_THRESHOLD_PERCENT') &&
        error.message.includes('PAYMENT_CIRCUIT_MIN_CALLS'),
    );
  });

  test('createResilientProvider wires the mock provider with the settings', async () => {
    const gateway = createResilientProvider(loadPaymentSettings({ PAYMENT_PROVIDER_LATENCY_MS: '0', PAYMENT_DECLINE_ABOVE: '10' }));
    assert.equal((await gateway.authorize(pay('tok_visa', 10))).outcome, 'AUTHORIZED');
    assert.deepEqual(await gateway.authorize(pay('tok_visa', 11)), { outcome: 'DECLINED', reason: 'amount exceeds limit', attempts: 1 });
    assert.equal(gateway.circuitState, 'closed');
  });

  test('createResilientProvider: the circuit settings decide when it opens', async () => {
    const gateway = createResilientProvider(
      loadPaymentSettings({
        PAYMENT_PROVIDER_LATENCY_MS: '0',
        PAYMENT_RETRY_ATTEMPTS: '1',
        PAYMENT_CIRCUIT_MIN_CALLS: '4',
        PAYMENT_CIRCUIT_THRESHOLD_PERCENT: '75',
      }),
    );
    await authorizeMany(gateway, 'tok_visa', 1);
    await authorizeMany(gateway, 'tok_unavailable', 2);
    assert.equal(gateway.circuitState, 'closed', '2 failures of 3 attempts: too few');
    await authorizeMany(gateway, 'tok_unavailable', 1);
    assert.equal(gateway.circuitState, 'open', '3 failures of 4 attempts (75 %)');
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
    assert.deepEqual(
      retries.map((r) => [r.operation, r.attempt, r.error instanceof TaskCancelledError]),
      [
        ['authorize', 1, true],
        ['authorize', 2, true],
      ],
      'both retries follow a timeout',
    );
    // Full jitter below 20 ms, then below 40 ms.
    assert.ok(retries[0].delayMs >= 0 && retries[0].delayMs < 20, `first delay ${retries[0].delayMs}`);
    assert.ok(retries[1].delayMs >= 0 && retries[1].delayMs < 40, `second delay ${retries[1].delayMs}`);
    // 3 timeouts of 50 ms and the backoff; bounded well below anything unbounded.
    const backoff = retries[0].delayMs + retries[1].delayMs;
    assert.ok(elapsed >= 3 * 50 + backoff - 5, `took ${elapsed} ms`);
    assert.ok(elapsed < 700, `took ${elapsed} ms`);
  });

  test('a transient failure is retried and can recover; a persistent one ends FAILED', async () => {
    const { gateway } = setup();
    const flaky = await gateway.authorize(pay('tok_flaky'));
    assert.equal(flaky.outcome, 'AUTHORIZED');
    assert.equal(flaky.attempts, 2);
    assert.deepEqual(await gateway.authorize(pay('tok_unavailable')), { outcome: 'FAILED', reason: 'provider unavailable after 3 attempts', attempts: 3 });
  });

  test('a few timed-out payments do not open the circuit: the next customer is authorised', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway, changes } = setup({ timeoutMs: 20, retry: { attempts: 3, baseMs: 1, maxMs: 1 } }, provider);
    // Six attempts that time out: the old breaker (5 consecutive failures) opened here.
    for (const outcome of await authorizeMany(gateway, 'tok_timeout', 2)) {
      assert.deepEqual(outcome, { outcome: 'FAILED', reason: 'provider timed out after 3 attempts', attempts: 3 });
    }
    assert.equal(gateway.circuitState, 'closed');
    const next = await gateway.authorize(pay('tok_visa'));
    assert.equal(next.outcome, 'AUTHORIZED');
    assert.deepEqual(changes, []);
  });

  test('the circuit opens when the provider fails for at least 50 % of at least 20 attempts, and then fails fast', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway, changes } = setup({ retry: { attempts: 1, baseMs: 1, maxMs: 1 } }, provider);
    await authorizeMany(gateway, 'tok_visa', 10);
    for (const outcome of await authorizeMany(gateway, 'tok_unavailable', 9)) assert.equal(outcome.outcome, 'FAILED');
    assert.equal(gateway.circuitState, 'closed', '9 failed of 19 attempts: too few attempts');
    assert.deepEqual(await gateway.authorize(pay('tok_unavailable')), { outcome: 'FAILED', reason: 'provider unavailable after 1 attempt', attempts: 1 });
    assert.equal(gateway.circuitState, 'open', '10 failed of 20 attempts (50 %)');
    assert.deepEqual(changes, ['open']);

    const calls = provider.authorizeCalls;
    const started = performance.now();
    const fast = await gateway.authorize(pay('tok_visa'));
    const elapsed = performance.now() - started;
    assert.deepEqual(fast, { outcome: 'FAILED', reason: 'circuit open', attempts: 0 });
    assert.equal(provider.authorizeCalls, calls, 'the provider was not called');
    assert.ok(elapsed < 50, `failed fast in ${elapsed} ms`);
    // Refunds share the circuit.
    assert.deepEqual(await gateway.refund({ providerRef: 'auth_x', amount: 1, refundId: randomUUID() }), {
      outcome: 'FAILED',
      reason: 'circuit open',
      attempts: 0,
    });
  });

  test('below 50 % failures the circuit stays closed, however many attempts', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway } = setup({ retry: { attempts: 1, baseMs: 1, maxMs: 1 } }, provider);
    for (let round = 0; round < 10; round++) {
      await authorizeMany(gateway, 'tok_visa', 11);
      await authorizeMany(gateway, 'tok_unavailable', 10);
    }
    assert.equal(gateway.circuitState, 'closed', '100 failed of 210 attempts (48 %)');
  });

  test('declines never open the circuit: they are answers, and they count as healthy attempts', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway, changes } = setup({ retry: { attempts: 1, baseMs: 1, maxMs: 1 } }, provider);
    for (const outcome of await authorizeMany(gateway, 'tok_decline', 100)) assert.equal(outcome.outcome, 'DECLINED');
    assert.equal(gateway.circuitState, 'closed', '100 declines of 100 attempts');
    await authorizeMany(gateway, 'tok_unavailable', 99);
    assert.equal(gateway.circuitState, 'closed', '99 failed of 199 attempts: the declines were healthy answers');
    await authorizeMany(gateway, 'tok_unavailable', 1);
    assert.equal(gateway.circuitState, 'open', '100 failed of 200 attempts (50 %)');
    assert.deepEqual(changes, ['open']);
  });

  test('refused requests (4xx) are neither retried nor sampled', async () => {
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway } = setup({ retry: { attempts: 3, baseMs: 1, maxMs: 1 } }, provider);
    const reused = pay('tok_visa');
    await gateway.authorize(reused);
    for (let i = 0; i < 30; i++) {
      const refused = await gateway.authorize({ ...reused, amount: 5 });
      assert.equal(refused.outcome, 'FAILED');
      assert.match((refused as { reason: string }).reason, /^provider refused the request: payment id .* already used/);
      assert.equal(refused.attempts, 1);
    }
    // Sampled so far: the one visa attempt. 19 failures make 20 attempts at 95 %.
    await authorizeMany(gateway, 'tok_unavailable', 6);
    assert.equal(gateway.circuitState, 'closed', '18 failed of 19 sampled attempts');
    await gateway.authorize(pay('tok_unavailable'));
    assert.equal(gateway.circuitState, 'open');
  });

  test('after the reset time one trial goes through: success closes the circuit, failure re-opens it', async (t) => {
    // The breaker's clock is Date: the test moves it.
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const { gateway, changes } = setup(
      {
        timeoutMs: 20,
        retry: { attempts: 2, baseMs: 1, maxMs: 1 },
        circuit: { ...CIRCUIT, minimumCalls: 2, halfOpenAfterMs: 100 },
      },
      provider,
    );
    await gateway.authorize(pay('tok_timeout'));
    assert.equal(gateway.circuitState, 'open');
    t.mock.timers.tick(99);
    assert.deepEqual(await gateway.authorize(pay('tok_visa')), { outcome: 'FAILED', reason: 'circuit open', attempts: 0 });
    t.mock.timers.tick(1);
    // The trial times out and re-opens the circuit; the retry is refused by the open circuit.
    assert.deepEqual(await gateway.authorize(pay('tok_timeout')), { outcome: 'FAILED', reason: 'circuit open', attempts: 1 });
    assert.equal(gateway.circuitState, 'open');
    t.mock.timers.tick(100);
    const trial = await gateway.authorize(pay('tok_visa'));
    assert.equal(trial.outcome, 'AUTHORIZED');
    assert.equal(trial.attempts, 1);
    assert.equal(gateway.circuitState, 'closed');
    assert.deepEqual(changes, ['open', 'half-open', 'open', 'half-open', 'closed']);
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
      outcome: 'FAILED',
      reason: 'provider refused the request: refund of 1 exceeds the 0 left to refund',
      attempts: 1,
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

  test("the caller's abort during a backoff ends the call at once", async (t) => {
    // Timers only elapse when the test ticks them: the rejection comes while the backoff is pending.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const reason = new Error('shutting down');
    const controller = new AbortController();
    const provider = new MockPaymentProvider({ latencyMs: 0 });
    const gateway = new ResilientProvider(provider, {
      timeoutMs: 1_000,
      retry: { attempts: 3, baseMs: 10_000, maxMs: 10_000 },
      circuit: CIRCUIT,
      onRetry: () => controller.abort(reason),
    });
    await assert.rejects(gateway.authorize(pay('tok_unavailable'), controller.signal), (error) => error === reason);
    assert.equal(provider.authorizeCalls, 1);
    // The backoff ends; what cockatiel does then runs on promises, settled before the next turn of the event loop.
    t.mock.timers.tick(10_000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(provider.authorizeCalls, 1, 'the provider is not called after the abort');
  });
});
