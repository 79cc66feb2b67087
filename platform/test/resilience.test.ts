/** The platform's cockatiel policies: backoff, retry, timeout, the failure-rate breaker, and running them under a signal. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BrokenCircuitError,
  CircuitState,
  TaskCancelledError,
  exponentialBackoff,
  failureRateBreaker,
  retryPolicy,
  runPolicy,
  sleep,
  timeoutPolicy,
  type IBackoff,
} from '../src/resilience.ts';

/** The first `count` delays of a fresh walk through `backoff`. */
function delays(backoff: ReturnType<typeof exponentialBackoff>, count: number): number[] {
  const out: number[] = [];
  let step: IBackoff<unknown> | undefined;
  for (let i = 0; i < count; i++) {
    step = step ? step.next(undefined) : backoff.next(undefined);
    out.push(step.duration);
  }
  return out;
}

class Down extends Error {}
class Declined extends Error {}

describe('exponentialBackoff', () => {
  it('grows exponentially up to the cap, with full jitter below each ceiling', () => {
    const backoff = exponentialBackoff({ baseMs: 100, maxMs: 1_000 });
    const ceilings = [100, 200, 400, 800, 1_000, 1_000, 1_000];
    const highest = ceilings.map(() => 0);
    const fourth = new Set<number>();
    for (let run = 0; run < 300; run++) {
      delays(backoff, ceilings.length).forEach((delay, i) => {
        assert.ok(Number.isInteger(delay) && delay >= 0 && delay < ceilings[i], `delay ${i + 1} = ${delay}, ceiling ${ceilings[i]}`);
        highest[i] = Math.max(highest[i], delay);
      });
      fourth.add(delays(backoff, 4)[3]);
    }
    // The ceilings are reached (nearly) and not passed: the delays double until the cap.
    highest.forEach((max, i) => assert.ok(max >= ceilings[i] * 0.9, `delay ${i + 1} never came near ${ceilings[i]}: ${max}`));
    assert.ok(fourth.size > 50, 'jitter spreads retries');
    assert.throws(() => exponentialBackoff({ baseMs: 100, maxMs: 50 }), RangeError);
  });
});

describe('retryPolicy', () => {
  it('stops at the first success, rethrows the last failure after the last attempt, and skips what is not retryable', async () => {
    const seen: number[] = [];
    const ok = await runPolicy(retryPolicy({ attempts: 5, baseMs: 1, maxMs: 2 }), ({ attempt }) => {
      seen.push(attempt);
      if (attempt < 2) throw new Down(`fail ${attempt}`);
      return 'ok';
    });
    assert.equal(ok, 'ok');
    assert.deepEqual(seen, [0, 1, 2], 'the context counts attempts from 0');

    const retries: [string, number, number][] = [];
    await assert.rejects(
      runPolicy(
        retryPolicy({
          attempts: 4,
          baseMs: 10,
          maxMs: 20,
          onRetry: (error, attempt, delay) => retries.push([(error as Error).message, attempt, delay]),
        }),
        ({ attempt }) => {
          throw new Down(`fail ${attempt}`);
        },
      ),
      /fail 3/,
    );
    assert.deepEqual(
      retries.map(([message, attempt]) => [message, attempt]),
      [
        ['fail 0', 1],
        ['fail 1', 2],
        ['fail 2', 3],
      ],
    );
    retries.forEach(([, attempt, delay]) => assert.ok(delay >= 0 && delay < Math.min(20, 10 * 2 ** (attempt - 1)), `delay ${delay}`));

    let permanent = 0;
    await assert.rejects(
      runPolicy(retryPolicy({ attempts: 4, baseMs: 1, maxMs: 2, retryable: (e) => !(e instanceof TypeError) }), () => {
        permanent++;
        throw new TypeError('bad');
      }),
      TypeError,
    );
    assert.equal(permanent, 1, 'a non-retryable error is not retried');
    assert.throws(() => retryPolicy({ attempts: 0, baseMs: 1, maxMs: 1 }), RangeError);
  });
});

describe('runPolicy', () => {
  it('an abort during a backoff rejects at once with its reason, and the work is not started again', async (t) => {
    // The backoff's timer is the clock here: it only elapses when the test ticks it.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const controller = new AbortController();
    const reason = new Error('shutting down');
    // The abort comes as the first backoff starts.
    const policy = retryPolicy({ attempts: 5, baseMs: 10_000, maxMs: 10_000, onRetry: () => controller.abort(reason) });
    const gaveUp = new Promise<unknown>((resolve) => policy.onGiveUp(resolve));
    let calls = 0;
    await assert.rejects(
      runPolicy(
        policy,
        () => {
          calls++;
          throw new Down('down');
        },
        controller.signal,
      ),
      (error) => error === reason,
      'rejected while the backoff timer had not elapsed',
    );
    // cockatiel ends its loop once the backoff is over; the work never ran again.
    t.mock.timers.tick(10_000);
    await gaveUp;
    assert.equal(calls, 1);
    await assert.rejects(
      runPolicy(policy, () => 'never', controller.signal),
      (error) => error === reason,
      'an aborted signal runs nothing',
    );
  });

  it('an attempt under way when the signal aborts finishes, and its outcome is the result', async () => {
    const controller = new AbortController();
    const result = runPolicy(
      retryPolicy({ attempts: 3, baseMs: 1, maxMs: 1 }),
      async () => {
        controller.abort(new Error('stop'));
        await sleep(20);
        return 'committed';
      },
      controller.signal,
    );
    assert.equal(await result, 'committed');
  });
});

describe('timeoutPolicy', () => {
  it('rejects with TaskCancelledError when the work never settles, and aborts the work’s signal', async () => {
    let aborted = false;
    const started = performance.now();
    await assert.rejects(
      runPolicy(timeoutPolicy(50), ({ signal }) => {
        signal.addEventListener('abort', () => {
          aborted = true;
        });
        return new Promise(() => {});
      }),
      TaskCancelledError,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 45 && elapsed < 500, `took ${elapsed} ms`);
    assert.equal(aborted, true);
    assert.equal(await runPolicy(timeoutPolicy(50), async () => 7), 7);
    assert.throws(() => timeoutPolicy(0), RangeError);
  });
});

describe('failureRateBreaker', () => {
  const failing = async (): Promise<never> => {
    throw new Down('down');
  };
  const working = async () => 'up';
  /** Runs `count` calls of `work` through the breaker, swallowing their failures. */
  const call = async (breaker: ReturnType<typeof failureRateBreaker>, work: () => Promise<unknown>, count = 1) => {
    for (let i = 0; i < count; i++)
      await breaker.execute(work).catch((error) => {
        if (error instanceof BrokenCircuitError) throw error;
      });
  };
  const settings = { thresholdPercent: 50, minimumCalls: 20, windowMs: 10_000, halfOpenAfterMs: 1_000 };

  it('stays closed below the minimum number of calls, however many of them fail', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const breaker = failureRateBreaker(settings);
    await call(breaker, failing, 19);
    assert.equal(breaker.state, CircuitState.Closed, '19 failures of 19 calls');
    await call(breaker, failing);
    assert.equal(breaker.state, CircuitState.Open, '20 failures of 20 calls');
  });

  it('opens at the threshold percentage, not below it', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const below = failureRateBreaker(settings);
    await call(below, working, 11);
    await call(below, failing, 10);
    assert.equal(below.state, CircuitState.Closed, '10 failures of 21 calls (48 %)');

    const at = failureRateBreaker(settings);
    await call(at, working, 10);
    await call(at, failing, 9);
    assert.equal(at.state, CircuitState.Closed, '9 failures of 19 calls: too few calls');
    await call(at, failing);
    assert.equal(at.state, CircuitState.Open, '10 failures of 20 calls (50 %)');
  });

  it('samples only what isFailure says is a failure; other errors pass through uncounted', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const breaker = failureRateBreaker({ ...settings, isFailure: (error) => error instanceof Down });
    for (let i = 0; i < 50; i++)
      await assert.rejects(
        breaker.execute(async () => {
          throw new Declined('no');
        }),
        Declined,
      );
    await call(breaker, failing, 19);
    assert.equal(breaker.state, CircuitState.Closed, 'the 50 other errors were not sampled: 19 calls');
    await call(breaker, failing);
    assert.equal(breaker.state, CircuitState.Open);
  });

  it('forgets calls older than the window, even after a quiet spell', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const stale = failureRateBreaker(settings);
    await call(stale, failing, 19);
    t.mock.timers.tick(10_000);
    await call(stale, failing);
    assert.equal(stale.state, CircuitState.Closed, '19 failures a window ago and 1 now are 1 call in the window');

    const recent = failureRateBreaker(settings);
    await call(recent, failing, 19);
    t.mock.timers.tick(5_000);
    await call(recent, failing);
    assert.equal(recent.state, CircuitState.Open, '20 failures within the window');
  });

  it('fails fast while open, lets one trial through after halfOpenAfterMs, and closes on success or re-opens on failure', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const breaker = failureRateBreaker(settings);
    await call(breaker, failing, 20);
    let calls = 0;
    await assert.rejects(
      breaker.execute(() => {
        calls++;
        return 'up';
      }),
      BrokenCircuitError,
    );
    assert.equal(calls, 0, 'no call while open');

    t.mock.timers.tick(999);
    await assert.rejects(breaker.execute(working), BrokenCircuitError);
    t.mock.timers.tick(1);
    await assert.rejects(breaker.execute(failing), Down);
    assert.equal(breaker.state, CircuitState.Open, 'a failed trial re-opens');
    await assert.rejects(breaker.execute(working), BrokenCircuitError);

    t.mock.timers.tick(1_000);
    assert.equal(await breaker.execute(working), 'up');
    assert.equal(breaker.state, CircuitState.Closed);
    await call(breaker, failing, 18);
    assert.equal(breaker.state, CircuitState.Closed, 'closing started the sampling over: the trial and 18 failures are 19 calls');
  });

  it('refuses settings out of range', () => {
    assert.throws(() => failureRateBreaker({ ...settings, thresholdPercent: 0 }), RangeError);
    assert.throws(() => failureRateBreaker({ ...settings, thresholdPercent: 101 }), RangeError);
    assert.throws(() => failureRateBreaker({ ...settings, minimumCalls: 0 }), RangeError);
    assert.throws(() => failureRateBreaker({ ...settings, windowMs: 50 }), RangeError);
  });
});
