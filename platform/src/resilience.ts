/** Thrown by {@link withTimeout} when the work did not settle in time. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Thrown by {@link CircuitBreaker.run} while the circuit is open: the call was not attempted. */
export class CircuitOpenError extends Error {
  override name = 'CircuitOpenError';
}

/** Exponential backoff settings. */
export interface BackoffOptions {
  /** Delay before the first retry. */
  readonly baseMs: number;
  /** No delay exceeds this. */
  readonly maxMs: number;
  /** Random source in [0, 1); tests pass a fixed one. */
  readonly random?: () => number;
}

/**
 * The delay before retry number `attempt` (1-based): exponential with "full jitter", a random
 * value between 0 and min(maxMs, baseMs * 2^(attempt-1)), so retrying clients spread out instead
 * of retrying in lockstep.
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor((options.random ?? Math.random)() * ceiling);
}

/** Resolves after `ms`, or rejects early with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `work` with an AbortSignal that fires after `ms`; rejects with {@link TimeoutError} then,
 * even when `work` ignores the signal (a provider that never answers).
 */
export async function withTimeout<T>(ms: number, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new TimeoutError(`${what} did not answer within ${ms} ms`);
      controller.abort(error);
      reject(error);
    }, ms);
  });
  try {
    return await Promise.race([work(controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Retry settings for {@link retry}. */
export interface RetryOptions extends BackoffOptions {
  /** Total attempts, the first one included. */
  readonly attempts: number;
  /** Whether a failure is worth another attempt (default: every error). */
  readonly retryable?: (error: unknown) => boolean;
  /** Called before each retry with the failure and the delay chosen. */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  readonly signal?: AbortSignal;
}

/** Runs `work` up to `attempts` times with {@link backoffDelay} between attempts; rethrows the last failure. */
export async function retry<T>(work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work(attempt);
    } catch (error) {
      const retryable = options.retryable ? options.retryable(error) : true;
      if (!retryable || attempt >= options.attempts) throw error;
      const delay = backoffDelay(attempt, options);
      options.onRetry?.(error, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}

/** Circuit breaker settings. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. */
  readonly failureThreshold: number;
  /** How long the circuit stays open before one trial call is let through. */
  readonly resetAfterMs: number;
  /** Clock; tests pass a fake one. */
  readonly now?: () => number;
}

/** Where a circuit breaker stands. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * Stops calling a dependency that keeps failing: after `failureThreshold` consecutive failures the
 * circuit opens and calls fail at once with {@link CircuitOpenError}; after `resetAfterMs` one trial
 * call goes through (half-open), and its outcome closes or re-opens the circuit.
 */
export class CircuitBreaker {
  #failures = 0;
  #openedAt: number | null = null;
  #trialInFlight = false;
  readonly #options: CircuitBreakerOptions;

  constructor(options: CircuitBreakerOptions) {
    this.#options = options;
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }

  /** The state as of now. */
  get state(): CircuitState {
    if (this.#openedAt === null) return 'closed';
    return this.#now() - this.#openedAt >= this.#options.resetAfterMs ? 'half-open' : 'open';
  }

  /** Runs `work` unless the circuit is open; records its outcome. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.#trialInFlight)) {
      throw new CircuitOpenError(`circuit open after ${this.#failures} consecutive failures; retry after ${this.#options.resetAfterMs} ms`);
    }
    const trial = state === 'half-open';
    if (trial) this.#trialInFlight = true;
    try {
      const result = await work();
      this.#failures = 0;
      this.#openedAt = null;
      return result;
    } catch (error) {
      this.#failures++;
      if (trial || this.#failures >= this.#options.failureThreshold) this.#openedAt = this.#now();
      throw error;
    } finally {
      if (trial) this.#trialInFlight = false;
    }
  }
}
