/**
 * Talking to the payment provider safely (DESIGN.md §6): every attempt runs behind a timeout, is
 * retried with full-jitter exponential backoff when the provider did not decide (timeout or
 * transient failure; never on a decline), and goes through one circuit breaker shared by every
 * call of the service, so a provider that is failing is not called at all until it has had time
 * to recover. All of it is the platform's cockatiel policies (`@swiftcart/platform/resilience`).
 *
 * Composition: `retry( breaker( timeout( provider ) ) )`. The breaker samples every attempt and
 * opens on the provider's failure rate: at least `circuitThresholdPercent` % of at least
 * `circuitMinCalls` attempts within `circuitWindowMs`. A few failing payments (one customer's card
 * that times out) cannot open it on their own; a provider failing for everyone does, within a
 * window. An open circuit is not retried (the outcome is FAILED "circuit open").
 * Only failures that say something about the provider's health count: timeouts, transient and
 * unexpected errors. A decline is an answer (a success with a negative answer), and a refused
 * request (4xx) is neither sampled nor retried.
 *
 * Retries reuse the payment id (and refund id), the provider's idempotency key, so an attempt whose
 * answer was lost to the timeout is never charged or refunded twice.
 */
import {
  BrokenCircuitError,
  CircuitState,
  TaskCancelledError,
  failureRateBreaker,
  integer,
  replaced,
  retryPolicy,
  runPolicy,
  timeoutPolicy,
  wrap,
  z,
  type CircuitBreakerPolicy,
} from '@swiftcart/platform';
import {
  MockPaymentProvider,
  ProviderRequestError,
  TransientProviderError,
  type AuthorizeRequest,
  type PaymentProvider,
  type RefundRequest,
} from './provider.ts';

/** How the payment service talks to its provider; read from `PAYMENT_*` by {@link paymentSettings}. */
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
  /** PAYMENT_CIRCUIT_THRESHOLD_PERCENT (50): the share of failed attempts in the window that opens the circuit. */
  readonly circuitThresholdPercent: number;
  /** PAYMENT_CIRCUIT_MIN_CALLS (20): attempts the window must hold before their failure rate counts. */
  readonly circuitMinCalls: number;
  /** PAYMENT_CIRCUIT_WINDOW_MS (10000): the sliding window the failure rate is sampled over. */
  readonly circuitWindowMs: number;
  /** PAYMENT_CIRCUIT_RESET_MS (10000): how long the circuit stays open before a trial call. */
  readonly circuitResetMs: number;
}

const MAX_MS = 3_600_000;

/**
 * The payment service's variables, read into {@link PaymentSettings}; the platform parses them once
 * at start-up and hands them to the service as `runtime.settings`.
 */
export const paymentSettings = z
  .object({
    PAYMENT_PROVIDER_LATENCY_MS: integer({ default: 20, min: 0, max: MAX_MS, unit: 'ms' }).describe("the mock provider's answer time"),
    PAYMENT_PROVIDER_JITTER_MS: integer({ default: 0, min: 0, max: MAX_MS, unit: 'ms' }).describe('up to this much random extra latency of the mock provider'),
    PAYMENT_DECLINE_ABOVE: integer({ default: undefined, min: 0, max: Number.MAX_SAFE_INTEGER, defaultText: 'unset: no limit' }).describe(
      'the mock provider declines amounts (minor units) above this',
    ),
    PAYMENT_TIMEOUT_MS: integer({ default: 1_000, min: 1, max: MAX_MS, unit: 'ms' }).describe('how long one call to the provider may take'),
    PAYMENT_RETRY_ATTEMPTS: integer({ default: 3, min: 1, max: 20 }).describe('calls per payment before it fails, the first included'),
    PAYMENT_RETRY_BASE_MS: integer({ default: 100, min: 0, max: MAX_MS, unit: 'ms' }).describe('first retry backoff (doubling, with full jitter)'),
    PAYMENT_RETRY_MAX_MS: integer({ default: 2_000, min: 0, max: MAX_MS, unit: 'ms' }).describe(
      'no retry backoff exceeds this; at least `PAYMENT_RETRY_BASE_MS`',
    ),
    PAYMENT_CIRCUIT_THRESHOLD_PERCENT: integer({ default: 50, min: 1, max: 100 }).describe(
      'the circuit opens when at least this share of the provider calls in the window failed...',
    ),
    PAYMENT_CIRCUIT_MIN_CALLS: integer({ default: 20, min: 1, max: 1_000_000 }).describe(
      '...and the window holds at least this many calls (declines count as successes)',
    ),
    PAYMENT_CIRCUIT_WINDOW_MS: integer({ default: 10_000, min: 100, max: MAX_MS, unit: 'ms' }).describe('the sliding window the failure rate is sampled over'),
    PAYMENT_CIRCUIT_RESET_MS: integer({ default: 10_000, min: 1, max: MAX_MS, unit: 'ms' }).describe('how long the circuit stays open before one trial call'),
    // Ignoring a setting that no longer exists would change behaviour unnoticed.
    PAYMENT_CIRCUIT_FAILURES: replaced(
      'the payment circuit breaker is set with PAYMENT_CIRCUIT_THRESHOLD_PERCENT, PAYMENT_CIRCUIT_MIN_CALLS and PAYMENT_CIRCUIT_WINDOW_MS',
    ),
  })
  .superRefine((s, ctx) => {
    if (s.PAYMENT_RETRY_MAX_MS < s.PAYMENT_RETRY_BASE_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['PAYMENT_RETRY_MAX_MS'],
        message: `(${s.PAYMENT_RETRY_MAX_MS}) must be at least PAYMENT_RETRY_BASE_MS (${s.PAYMENT_RETRY_BASE_MS})`,
      });
    }
  })
  .transform(
    (s): PaymentSettings => ({
      providerLatencyMs: s.PAYMENT_PROVIDER_LATENCY_MS,
      providerJitterMs: s.PAYMENT_PROVIDER_JITTER_MS,
      declineAbove: s.PAYMENT_DECLINE_ABOVE,
      timeoutMs: s.PAYMENT_TIMEOUT_MS,
      retryAttempts: s.PAYMENT_RETRY_ATTEMPTS,
      retryBaseMs: s.PAYMENT_RETRY_BASE_MS,
      retryMaxMs: s.PAYMENT_RETRY_MAX_MS,
      circuitThresholdPercent: s.PAYMENT_CIRCUIT_THRESHOLD_PERCENT,
      circuitMinCalls: s.PAYMENT_CIRCUIT_MIN_CALLS,
      circuitWindowMs: s.PAYMENT_CIRCUIT_WINDOW_MS,
      circuitResetMs: s.PAYMENT_CIRCUIT_RESET_MS,
    }),
  );

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

/** Where the provider's circuit stands. `open` stays until the first call after the reset time tries the provider again. */
export type CircuitStatus = 'closed' | 'open' | 'half-open';

/** The provider circuit breaker's settings: see {@link PaymentSettings}. */
export interface ProviderCircuitOptions {
  readonly thresholdPercent: number;
  readonly minimumCalls: number;
  readonly windowMs: number;
  readonly halfOpenAfterMs: number;
}

/** Settings of {@link ResilientProvider}. */
export interface ResilientProviderOptions {
  /** How long one attempt may take. */
  readonly timeoutMs: number;
  readonly retry: {
    readonly attempts: number;
    readonly baseMs: number;
    readonly maxMs: number;
  };
  readonly circuit: ProviderCircuitOptions;
  readonly onRetry?: (notice: RetryNotice) => void;
  /** Called when the circuit opens, half-opens or closes (for logs and metrics). */
  readonly onCircuitChange?: (status: CircuitStatus) => void;
}

type Operation = RetryNotice['operation'];

/**
 * The provider failures the breaker samples: everything but a refused request, a caller's abort
 * included (it proves nothing about the provider's health, and only a real answer may close a
 * half-open circuit).
 */
const isProviderFailure = (error: unknown): boolean => !(error instanceof ProviderRequestError);

/** The failures worth another attempt: the provider did not decide. */
const isUndecided = (error: unknown): boolean => error instanceof TaskCancelledError || error instanceof TransientProviderError;

/**
 * A payment provider behind a timeout, retries and a circuit breaker; answers with outcomes and
 * never throws for the provider's failures. It throws only when the caller's own signal aborts
 * (shutdown): then nothing was decided and the event should be handled again later.
 */
export class ResilientProvider {
  readonly #provider: PaymentProvider;
  readonly #breaker: CircuitBreakerPolicy;
  readonly #policies: Readonly<Record<Operation, ReturnType<typeof wrap>>>;

  constructor(provider: PaymentProvider, options: ResilientProviderOptions) {
    this.#provider = provider;
    const attemptTimeout = timeoutPolicy(options.timeoutMs);
    this.#breaker = failureRateBreaker({
      thresholdPercent: options.circuit.thresholdPercent,
      minimumCalls: options.circuit.minimumCalls,
      windowMs: options.circuit.windowMs,
      halfOpenAfterMs: options.circuit.halfOpenAfterMs,
      isFailure: isProviderFailure,
    });
    const { onCircuitChange } = options;
    if (onCircuitChange) this.#breaker.onStateChange((state) => onCircuitChange(statusOf(state)));
    const policyFor = (operation: Operation) => {
      const { onRetry } = options;
      const retry = retryPolicy({
        ...options.retry,
        retryable: isUndecided,
        onRetry: onRetry && ((error, attempt, delayMs) => onRetry({ operation, attempt, delayMs, error })),
      });
      return wrap(retry, this.#breaker, attemptTimeout);
    };
    this.#policies = { authorize: policyFor('authorize'), refund: policyFor('refund') };
  }

  /** Where the shared circuit stands now. */
  get circuitState(): CircuitStatus {
    return statusOf(this.#breaker.state);
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
    operation: Operation,
    work: (signal: AbortSignal) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<{ result: { value: T } | { error: string }; attempts: number }> {
    let attempts = 0;
    try {
      const value = (await runPolicy(
        this.#policies[operation],
        (context) => {
          attempts++;
          return work(context.signal) as Promise<T>;
        },
        signal,
      )) as T;
      return { result: { value }, attempts };
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      return { result: { error: failureReason(error, attempts) }, attempts };
    }
  }
}

function statusOf(state: CircuitState): CircuitStatus {
  if (state === CircuitState.Closed) return 'closed';
  return state === CircuitState.HalfOpen ? 'half-open' : 'open';
}

/** The FAILED reason for the error that ended the retries. */
function failureReason(error: unknown, attempts: number): string {
  const after = `after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
  if (error instanceof BrokenCircuitError) return 'circuit open';
  if (error instanceof ProviderRequestError) return `provider refused the request: ${error.message}`;
  if (error instanceof TaskCancelledError) return `provider timed out ${after}`;
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
  hooks: Pick<ResilientProviderOptions, 'onRetry' | 'onCircuitChange'> = {},
): ResilientProvider {
  return new ResilientProvider(provider, {
    timeoutMs: settings.timeoutMs,
    retry: { attempts: settings.retryAttempts, baseMs: settings.retryBaseMs, maxMs: settings.retryMaxMs },
    circuit: {
      thresholdPercent: settings.circuitThresholdPercent,
      minimumCalls: settings.circuitMinCalls,
      windowMs: settings.circuitWindowMs,
      halfOpenAfterMs: settings.circuitResetMs,
    },
    ...hooks,
  });
}
