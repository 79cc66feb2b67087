import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, CircuitOpenError, TimeoutError, backoffDelay, retry, withTimeout } from '../src/resilience.ts';

describe('resilience', () => {
  it('backoff grows exponentially up to the cap, with full jitter', () => {
    const top = () => 0.999999;
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, { baseMs: 100, maxMs: 1_000, random: top })), [99, 199, 399, 799, 999, 999]);
    assert.equal(backoffDelay(3, { baseMs: 100, maxMs: 1_000, random: () => 0 }), 0);
    const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(4, { baseMs: 100, maxMs: 10_000 })));
    assert.ok(spread.size > 10, 'jitter spreads retries');
  });

  it('retry stops at the first success, and rethrows the last failure after the last attempt', async () => {
    let calls = 0;
    assert.equal(await retry(async (n) => { calls++; if (n < 3) throw new Error(`fail ${n}`); return 'ok'; }, { attempts: 5, baseMs: 1, maxMs: 2 }), 'ok');
    assert.equal(calls, 3);
    const delays: number[] = [];
    await assert.rejects(retry(async (n) => { throw new Error(`fail ${n}`); }, { attempts: 4, baseMs: 1, maxMs: 2, onRetry: (_e, _a, d) => delays.push(d) }), /fail 4/);
    assert.equal(delays.length, 3);
    let permanent = 0;
    await assert.rejects(retry(async () => { permanent++; throw new TypeError('bad'); }, { attempts: 4, baseMs: 1, maxMs: 2, retryable: (e) => !(e instanceof TypeError) }));
    assert.equal(permanent, 1, 'a non-retryable error is not retried');
  });

  it('withTimeout rejects with TimeoutError even when the work never settles, and aborts its signal', async () => {
    let aborted = false;
    const started = Date.now();
    await assert.rejects(withTimeout(50, 'provider', (signal) => { signal.addEventListener('abort', () => { aborted = true; }); return new Promise(() => {}); }), TimeoutError);
    assert.ok(Date.now() - started < 500);
    assert.equal(aborted, true);
    assert.equal(await withTimeout(50, 'fast', async () => 7), 7);
  });

  it('the circuit opens after the threshold, fails fast, lets one trial through after the reset time, and closes on success', async () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 3, resetAfterMs: 1_000, now: () => now });
    let calls = 0;
    const failing = async () => { calls++; throw new Error('down'); };
    for (let i = 0; i < 3; i++) await assert.rejects(breaker.run(failing), /down/);
    assert.equal(breaker.state, 'open');
    await assert.rejects(breaker.run(failing), CircuitOpenError);
    assert.equal(calls, 3, 'no call while open');
    now = 1_000;
    assert.equal(breaker.state, 'half-open');
    await assert.rejects(breaker.run(failing), /down/);
    assert.equal(breaker.state, 'open', 'a failed trial re-opens');
    now = 2_000;
    assert.equal(await breaker.run(async () => 'up'), 'up');
    assert.equal(breaker.state, 'closed');
  });
});
