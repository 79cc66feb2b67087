/**
 * The platform's retry, backoff, timeout and circuit-breaker policies: thin factories over
 * cockatiel, so every service retries, backs off, times out and breaks circuits the same way.
 *
 * - {@link exponentialBackoff}: capped exponential backoff with full jitter, so clients that fail
 *   together do not retry in lockstep.
 * - {@link retryPolicy}: a number of attempts with that backoff, for the errors that are worth it.
 * - {@link timeoutPolicy}: rejects when the work takes too long, even when it ignores its signal,
 *   and aborts that signal so the work can stop.
 * - {@link failureRateBreaker}: opens on a dependency's failure rate over a time window, never
 *   on a handful of failures.
 * - {@link runPolicy}: runs work through any of these (or a `wrap` of them) and gives up at once
 *   when the caller's signal aborts.
 * - {@link withTimeout} and {@link waitAtMost}: bound the wait for a promise that has no signal
 *   to abort (a health probe, a flush, sockets closing), without a policy.
 */
import {
  ExponentialBackoff,
  SamplingBreaker,
  TimeoutStrategy,
  circuitBreaker,
  fullJitterGenerator,
  handleAll,
  handleWhen,
  retry,
  timeout,
  type CircuitBreakerPolicy,
  type CircuitState,
  type IBackoffFactory,
  type IBreaker,
  type IDefaultPolicyContext,
  type IPolicy,
  type RetryPolicy,
  type TimeoutPolicy,
} from 'cockatiel';

export { BrokenCircuitError, CircuitState, TaskCancelledError, wrap } from 'cockatiel';
export type { CircuitBreakerPolicy, IBackoff, IBackoffFactory, IPolicy, RetryPolicy, TimeoutPolicy } from 'cockatiel';

/** Exponential backoff settings. */
export interface BackoffOptions {
  /** The ceiling of the first delay. */
  readonly baseMs: number;
  /** No delay exceeds this. */
  readonly maxMs: number;
}

/**
 * Capped exponential backoff with full jitter: delay number n (1-based) is a random whole number
 * of milliseconds in [0, min(maxMs, baseMs · 2^(n-1))). Each `next()` walks one step further.
 */
export function exponentialBackoff(options: BackoffOptions): IBackoffFactory<unknown> {
  if (!(options.baseMs >= 0) || !(options.maxMs >= options.baseMs)) {
    throw new RangeError(`backoff needs 0 <= baseMs <= maxMs, got ${options.baseMs} and ${options.maxMs}`);
  }
  return new ExponentialBackoff({ generator: fullJitterGenerator, initialDelay: options.baseMs, maxDelay: options.maxMs });
}

/** Settings of {@link retryPolicy}. */
export interface RetryOptions extends BackoffOptions {
  /** Total attempts, the first one included. */
  readonly attempts: number;
  /** Whether a failure is worth another attempt (default: every error). */
  readonly retryable?: (error: unknown) => boolean;
  /** Called before each backoff with the failure, the number of the attempt that failed (1-based) and the delay chosen. */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/**
 * A policy that runs work up to `attempts` times with {@link exponentialBackoff} between
 * attempts, as long as the failure is `retryable` and the caller's signal has not aborted; it
 * rethrows the last failure. The work's context has `attempt`, 0 for the first try.
 */
export function retryPolicy(options: RetryOptions): RetryPolicy {
  if (!Number.isSafeInteger(options.attempts) || options.attempts < 1) {
    throw new RangeError(`retry attempts must be a whole number from 1, got ${options.attempts}`);
  }
  const policy = retry(options.retryable ? handleWhen(options.retryable) : handleAll, {
    maxAttempts: options.attempts - 1,
    backoff: exponentialBackoff(options),
  });
  const { onRetry } = options;
  if (onRetry) policy.onRetry((event) => onRetry('error' in event ? event.error : event.value, event.attempt, event.delay));
  return policy;
}

/**
 * A policy that gives the work an AbortSignal which aborts after `ms` (or when the caller's does),
 * and rejects with cockatiel's `TaskCancelledError` then, even when the work ignores the signal
 * (a dependency that never answers).
 */
export function timeoutPolicy(ms: number): TimeoutPolicy {
  if (!(ms > 0)) throw new RangeError(`timeout must be above 0 ms, got ${ms}`);
  return timeout(ms, TimeoutStrategy.Aggressive);
}

/** Settings of {@link failureRateBreaker}. */
export interface FailureRateBreakerOptions {
  /** The circuit opens when at least this percentage (1–100) of the sampled calls failed. */
  readonly thresholdPercent: number;
  /** ...and at least this many calls were sampled: fewer say nothing about the dependency. */
  readonly minimumCalls: number;
  /** The sliding window sampled, in milliseconds. */
  readonly windowMs: number;
  /** How long the circuit stays open before one trial call is let through. */
  readonly halfOpenAfterMs: number;
  /**
   * Which errors are failures of the dependency (default: every error). Other errors pass through
   * and are not sampled; a call that returns, whatever it returns, is a success.
   */
  readonly isFailure?: (error: unknown) => boolean;
}

/**
 * A circuit breaker that opens on the failure rate of the last `windowMs`: once at least
 * `minimumCalls` calls were sampled and at least `thresholdPercent` of them failed, calls fail at
 * once with `BrokenCircuitError` for `halfOpenAfterMs`; then one trial call goes through (calls
 * arriving meanwhile wait for it), and its outcome closes or re-opens the circuit. An error that
 * is not a failure counts as a success of the trial: the dependency answered. Share one instance
 * among all calls to a dependency.
 */
export function failureRateBreaker(options: FailureRateBreakerOptions): CircuitBreakerPolicy {
  const { thresholdPercent, minimumCalls, windowMs, halfOpenAfterMs } = options;
  if (!(thresholdPercent >= 1 && thresholdPercent <= 100)) throw new RangeError(`thresholdPercent must be from 1 to 100, got ${thresholdPercent}`);
  if (!Number.isSafeInteger(minimumCalls) || minimumCalls < 1) throw new RangeError(`minimumCalls must be a whole number from 1, got ${minimumCalls}`);
  if (!(windowMs >= 100)) throw new RangeError(`windowMs must be at least 100, got ${windowMs}`);
  if (!(halfOpenAfterMs > 0)) throw new RangeError(`halfOpenAfterMs must be above 0, got ${halfOpenAfterMs}`);
  return circuitBreaker(options.isFailure ? handleWhen(options.isFailure) : handleAll, {
    halfOpenAfter: halfOpenAfterMs,
    breaker: new WindowedSamplingBreaker(thresholdPercent, minimumCalls, windowMs),
  });
}

/** The bookkeeping `SamplingBreaker` exposes through its (serialisable) `state`. */
interface SamplingState {
  windows: { startedAt: number; failures: number; successes: number }[];
  currentWindow: number;
  currentFailures: number;
  currentSuccesses: number;
}

/**
 * cockatiel's `SamplingBreaker`, with two corrections:
 * - It opens when failures exceed the threshold and the calls reach `duration · minimumRps`; the
 *   settings here are "at least", so both are nudged below the next whole count (the counts are
 *   whole numbers, so the nudge changes nothing else).
 * - It advances its ring of time slots by one slot per call, so after a quiet spell slots older
 *   than the window still count (19 failures, a minute of silence, 1 failure: it opens). Here the
 *   slots older than the window are emptied before each call is recorded.
 */
class WindowedSamplingBreaker implements IBreaker {
  readonly #inner: SamplingBreaker;
  readonly #windowMs: number;

  constructor(thresholdPercent: number, minimumCalls: number, windowMs: number) {
    this.#windowMs = windowMs;
    this.#inner = new SamplingBreaker({
      threshold: thresholdPercent / 100 - 1e-9,
      duration: windowMs,
      minimumRps: ((minimumCalls - 0.5) * 1000) / windowMs,
    });
  }

  get state(): unknown {
    return this.#inner.state;
  }

  set state(value: unknown) {
    this.#inner.state = value;
  }

  success(state: CircuitState): void {
    this.#expire();
    this.#inner.success(state);
  }

  failure(state: CircuitState): boolean {
    this.#expire();
    return this.#inner.failure(state);
  }

  #expire(): void {
    const cutoff = Date.now() - this.#windowMs;
    const state = this.#inner.state as SamplingState;
    let expired = false;
    for (const slot of state.windows) {
      if (slot.startedAt === 0 || slot.startedAt > cutoff) continue;
      state.currentFailures -= slot.failures;
      state.currentSuccesses -= slot.successes;
      slot.failures = 0;
      slot.successes = 0;
      slot.startedAt = 0;
      expired = true;
    }
    if (expired) this.#inner.state = state;
  }
}

/**
 * Runs `work` through `policy` with the caller's `signal`. cockatiel hands the signal on (the work
 * gets it in its context) and stops retrying once it has aborted, but sleeps out a backoff already
 * under way; here an abort during a backoff rejects at once with the signal's reason, so a
 * shutdown does not wait for it, and `work` is not started again. An attempt under way when the
 * signal aborts is left to finish (or to give up on its signal), and its outcome is the result.
 */
export function runPolicy<T, C extends IDefaultPolicyContext>(
  policy: IPolicy<C, unknown>,
  work: (context: C) => PromiseLike<T> | T,
  signal?: AbortSignal,
): Promise<T> {
  if (!signal) return policy.execute(work) as Promise<T>;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    let running = 0;
    const onAbort = () => {
      if (running === 0) reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const attempt = async (context: C): Promise<T> => {
      signal.throwIfAborted();
      running++;
      try {
        return await work(context);
      } finally {
        running--;
      }
    };
    (policy.execute(attempt, signal) as Promise<T>).then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Resolves after `ms`, or rejects early with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Settles as `promise` does, or rejects with `new Error(message)` once `ms` have passed first. The
 * work itself goes on (it has no signal to abort); only the wait for it ends. The timer is cleared
 * as soon as either settles, so it never holds a process open.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits for `promise` for at most `ms`: true when it settled in time, false when the time ran out
 * first. Never rejects (a rejection counts as settled), for waits that are worth a moment but must
 * never hold a shutdown or a start-up: spans flushing, sockets closing, a connection getting ready.
 */
export async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const given = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      given,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
