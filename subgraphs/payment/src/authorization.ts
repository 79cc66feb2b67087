/**
 * Talking to the payment provider safely (DESIGN.md §6): every call runs behind a timeout, is
 * retried with full-jitter exponential backoff when the provider did not decide (timeout or
 * transient failure; never on a decline), and goes through one circuit breaker shared by every
 * call of the service, so a provider that keeps failing is not called at all until it has had
 * time to recover.
 *
 * Composition: `retry( breaker.run( withTimeout( provider ) ) )`. The breaker sees every attempt,
 * so it opens after `circuitFailures` consecutive failed attempts, even in the middle of one
 * authorisation's retries; an open circuit is not retried (the outcome is FAILED "circuit open").
 * Only failures that say something about the provider's health count: timeouts, transient and
 * unexpected errors. A decline or a refused request (4xx) is an answer and counts as a success.
 *
 * Retries reuse the payment id (and refund id), the provider's idempotency key, so an attempt whose
 * answer was lost to the timeout is never charged or refunded twice.
 */
import {
  CircuitBreaker, CircuitOpenError, ConfigError, TimeoutError, integerVar, retry, withTimeout,
  type CircuitBreakerOptions, type CircuitState,
} from '@swiftcart/platform';
import {
  MockPaymentProvider, ProviderRequestError, TransientProviderError,
  type AuthorizeRequest, type PaymentProvider, type RefundRequest,
} from './provider.ts';

/** How the payment service talks to its provider; see {@link loadPaymentSettings}. */
export interface PaymentSettings {
  /** PAYMENT_PROVIDER_LATENCY_MS (20): the mock provider's latency. */
  readonly providerLatencyMs: number;
  /** PAYMENT_PROVIDER_JITTER_MS (0): up to this much random extra latency. */
  readonly providerJitterMs: number;
  /** PAYMENT_DECLINE_ABOVE (unset): the mock provider declines amounts (minor units) above this. */
  readonly declineAbove: number | undefined;
  /** PAYMENT_TIMEOUT_MS (1000): how long one attempt may take. */
  readonly timeoutMs: number;
  /** PAYMENT_RETRY_ATTEMPTS (3): attempts per call, the first included. */
  readonly retryAttempts: number;
  /** PAYMENT_RETRY_BASE_MS (100): backoff before the first retry (full jitter below it). */
  readonly retryBaseMs: number;
  /** PAYMENT_RETRY_MAX_MS (2000): no backoff exceeds this. */
  readonly retryMaxMs: number;
  /** PAYMENT_CIRCUIT_FAILURES (5): consecutive failed attempts that open the circuit. */
  readonly circuitFailures: number;
  /** PAYMENT_CIRCUIT_RESET_MS (10000): how long the circuit stays open before a trial call. */
  readonly circuitResetMs: number;
}

const MAX_MS = 3_600_000;

/**
 * Reads the payment settings from the environment, with the defaults above. A value that is not a
 * whole number in range throws a {@link ConfigError} naming the variable.
 */
export function loadPaymentSettings(env: NodeJS.ProcessEnv = process.env): PaymentSettings {
  const settings: PaymentSettings = {
    providerLatencyMs: integerVar(env, 'PAYMENT_PROVIDER_LATENCY_MS', 20, 0, MAX_MS),
    providerJitterMs: integerVar(env, 'PAYMENT_PROVIDER_JITTER_MS', 0, 0, MAX_MS),
    declineAbove: optionalWhole(env, 'PAYMENT_DECLINE_ABOVE', 0, Number.MAX_SAFE_INTEGER),
    timeoutMs: integerVar(env, 'PAYMENT_TIMEOUT_MS', 1000, 1, MAX_MS),
    retryAttempts: integerVar(env, 'PAYMENT_RETRY_ATTEMPTS', 3, 1, 20),
    retryBaseMs: integerVar(env, 'PAYMENT_RETRY_BASE_MS', 100, 0, MAX_MS),
    retryMaxMs: integerVar(env, 'PAYMENT_RETRY_MAX_MS', 2000, 0, MAX_MS),
    circuitFailures: integerVar(env, 'PAYMENT_CIRCUIT_FAILURES', 5, 1, 1000),
    circuitResetMs: integerVar(env, 'PAYMENT_CIRCUIT_RESET_MS', 10_000, 1, MAX_MS),
  };
  if (settings.retryMaxMs < settings.retryBaseMs) {
    throw new ConfigError(`PAYMENT_RETRY_MAX_MS (${settings.retryMaxMs}) must be at least PAYMENT_RETRY_BASE_MS (${settings.retryBaseMs})`);
  }
  return settings;
}

function optionalWhole(env: NodeJS.ProcessEnv, key: string, min: number, max: number): number | undefined {
  const raw = env[key]?.trim();
  return raw === undefined || raw === '' ? undefined : integerVar(env, key, 0, min, max);
}


/** The result of an authorisation, as the payment service records it. `attempts` counts provider calls. */
export type AuthorizationOutcome =
  | { readonly outcome: 'AUTHORIZED'; readonly providerRef: string; readonly attempts: number }
  | { readonly outcome: 'DECLINED'; readonly reason: string; readonly attempts: number }
  | { readonly outcome: 'FAILED'; readonly reason: string; readonly attempts: number };

/** The result of a refund. `attempts` counts provider calls. */
export type RefundOutcome =
  | { readonly outcome: 'REFUNDED'; readonly refundRef: string; readonly attempts: number }
  | { readonly outcome: 'FAILED'; readonly reason: string; readonly attempts: number };

/** A refund through {@link ResilientProvider}: the idempotency key is required, since it retries. */
export interface IdempotentRefundRequest extends RefundRequest {
  readonly refundId: string;
}

/** Reported before each retry (for logs and metrics). */
export interface RetryNotice {
  readonly operation: 'authorize' | 'refund';
  /** The attempt that failed (1-based). */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: unknown;
}

/** Settings of {@link ResilientProvider}. */
export interface ResilientProviderOptions {
  /** How long one attempt may take. */
  readonly timeoutMs: number;
  readonly retry: {
    readonly attempts: number;
    readonly baseMs: number;
    readonly maxMs: number;
    /** Random source for the jitter; tests pass a fixed one. */
    readonly random?: () => number;
  };
  /** The breaker to share, or the settings of a new one. */
  readonly circuit: CircuitBreaker | CircuitBreakerOptions;
  readonly onRetry?: (notice: RetryNotice) => void;
}

/** What one attempt produced, wrapped so that a refused request does not count as a breaker failure. */
type Attempt<T> =
  | { readonly kind: 'answer'; readonly value: T }
  | { readonly kind: 'refused'; readonly error: ProviderRequestError };

/**
 * A payment provider behind a timeout, retries and a circuit breaker; answers with outcomes and
 * never throws for the provider's failures. It throws only when the caller's own signal aborts
 * (shutdown): then nothing was decided and the event should be handled again later.
 */
export class ResilientProvider {
  readonly #provider: PaymentProvider;
  readonly #options: ResilientProviderOptions;
  readonly #breaker: CircuitBreaker;

  constructor(provider: PaymentProvider, options: ResilientProviderOptions) {
    if (!(options.timeoutMs > 0)) throw new RangeError(`timeoutMs must be above 0, got ${options.timeoutMs}`);
    if (!Number.isInteger(options.retry.attempts) || options.retry.attempts < 1) {
      throw new RangeError(`retry.attempts must be a whole number from 1, got ${options.retry.attempts}`);
    }
    this.#provider = provider;
    this.#options = options;
    this.#breaker = options.circuit instanceof CircuitBreaker ? options.circuit : new CircuitBreaker(options.circuit);
  }

  /** Where the shared circuit stands now. */
  get circuitState(): CircuitState {
    return this.#breaker.state;
  }

  /** Authorises `request.amount`; retries reuse `request.paymentId`. */
  async authorize(request: AuthorizeRequest, signal?: AbortSignal): Promise<AuthorizationOutcome> {
    const { result, attempts } = await this.#call('authorize', (s) => this.#provider.authorize(request, s), signal);
    if ('error' in result) return { outcome: 'FAILED', reason: result.error, attempts };
    return result.value.status === 'AUTHORIZED'
      ? { outcome: 'AUTHORIZED', providerRef: result.value.providerRef, attempts }
      : { outcome: 'DECLINED', reason: result.value.reason, attempts };
  }

  /** Refunds `request.amount` of an authorisation; retries reuse `request.refundId`. */
  async refund(request: IdempotentRefundRequest, signal?: AbortSignal): Promise<RefundOutcome> {
    if (typeof request.refundId !== 'string' || request.refundId.length === 0) {
      throw new TypeError('refund needs a refundId: it is retried, and the id keeps a retry from refunding twice');
    }
    const { result, attempts } = await this.#call('refund', (s) => this.#provider.refund(request, s), signal);
    if ('error' in result) return { outcome: 'FAILED', reason: result.error, attempts };
    return { outcome: 'REFUNDED', refundRef: result.value.refundRef, attempts };
  }

  async #call<T>(
    operation: RetryNotice['operation'],
    work: (signal: AbortSignal) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<{ result: { value: T } | { error: string }; attempts: number }> {
    const { timeoutMs, retry: retryOptions, onRetry } = this.#options;
    let attempts = 0;
    let attempt: Attempt<T>;
    try {
      attempt = await retry(
        () => this.#breaker.run(async (): Promise<Attempt<T>> => {
          attempts++;
          try {
            const value = await withTimeout(timeoutMs, `payment provider ${operation}`,
              (timeoutSignal) => work(signal ? AbortSignal.any([signal, timeoutSignal]) : timeoutSignal));
            return { kind: 'answer', value };
          } catch (error) {
            if (error instanceof ProviderRequestError) return { kind: 'refused', error };
            // Everything else counts as a failure, a caller's abort included: that proves nothing
            // about the provider's health, and only a real answer may close a half-open circuit.
            throw error;
          }
        }),
        {
          attempts: retryOptions.attempts,
          baseMs: retryOptions.baseMs,
          maxMs: retryOptions.maxMs,
          random: retryOptions.random,
          signal,
          retryable: (error) => !signal?.aborted && (error instanceof TimeoutError || error instanceof TransientProviderError),
          onRetry: onRetry && ((error, failed, delayMs) => onRetry({ operation, attempt: failed, delayMs, error })),
        },
      );
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      return { result: { error: failureReason(error, attempts) }, attempts };
    }
    if (attempt.kind === 'refused') return { result: { error: `provider refused the request: ${attempt.error.message}` }, attempts };
    return { result: { value: attempt.value }, attempts };
  }
}

/** The FAILED reason for the error that ended the retries. */
function failureReason(error: unknown, attempts: number): string {
  const after = `after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
  if (error instanceof CircuitOpenError) return 'circuit open';
  if (error instanceof TimeoutError) return `provider timed out ${after}`;
  if (error instanceof TransientProviderError) return `provider unavailable ${after}`;
  return `provider error ${after}: ${error instanceof Error ? error.message : String(error)}`;
}

/**
 * The service's provider as configured: the mock provider (unless one is given) behind the
 * timeout, retries and one circuit breaker.
 */
export function createResilientProvider(
  settings: PaymentSettings,
  provider: PaymentProvider = new MockPaymentProvider({
    latencyMs: settings.providerLatencyMs,
    jitterMs: settings.providerJitterMs,
    declineAbove: settings.declineAbove,
  }),
  onRetry?: (notice: RetryNotice) => void,
): ResilientProvider {
  return new ResilientProvider(provider, {
    timeoutMs: settings.timeoutMs,
    retry: { attempts: settings.retryAttempts, baseMs: settings.retryBaseMs, maxMs: settings.retryMaxMs },
    circuit: { failureThreshold: settings.circuitFailures, resetAfterMs: settings.circuitResetMs },
    onRetry,
  });
}
