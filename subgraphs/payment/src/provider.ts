/**
 * The mock payment provider (DESIGN.md §6): answers like a card processor, with configurable
 * latency and decline rules, and keyed by the caller's payment id the way a real provider keys
 * requests by an idempotency key.
 *
 * Test cards (the payment `method`):
 * - `tok_visa`        authorises;
 * - `tok_decline`     declines with "card declined";
 * - `tok_timeout`     never answers: the promise settles only when the caller's signal aborts;
 * - `tok_unavailable` fails with a {@link TransientProviderError} every time (the provider is down);
 * - `tok_flaky`       fails with a {@link TransientProviderError} on the first call for a payment id,
 *                     then authorises (a retry recovers);
 * - anything else     declines with "unknown payment method".
 *
 * Declines are answers, not errors: `authorize` resolves with `status: 'DECLINED'`. Errors mean the
 * provider did not decide: {@link TransientProviderError} (worth retrying) or
 * {@link ProviderRequestError} (the request is wrong; retrying cannot help).
 */
import { randomUUID } from 'node:crypto';
import { sleep } from '@swiftcart/platform';

/** An authorisation request. `paymentId` is the idempotency key. */
export interface AuthorizeRequest {
  readonly paymentId: string;
  /** Minor units (cents). */
  readonly amount: number;
  /** The payment method token, e.g. `tok_visa`. */
  readonly method: string;
}

/** The provider's decision on an authorisation. */
export type AuthorizeResponse = { readonly status: 'AUTHORIZED'; readonly providerRef: string } | { readonly status: 'DECLINED'; readonly reason: string };

/** A refund of (part of) an authorised payment. `refundId`, when given, is the idempotency key. */
export interface RefundRequest {
  readonly providerRef: string;
  /** Minor units; at most what is still unrefunded. */
  readonly amount: number;
  readonly refundId?: string;
}

export interface RefundResponse {
  readonly refundRef: string;
}

/** What the payment service needs from a provider. */
export interface PaymentProvider {
  authorize(request: AuthorizeRequest, signal?: AbortSignal): Promise<AuthorizeResponse>;
  refund(request: RefundRequest, signal?: AbortSignal): Promise<RefundResponse>;
}

/** The provider failed without deciding (think HTTP 503): the same request may succeed later. */
export class TransientProviderError extends Error {
  override name = 'TransientProviderError';
}

/** The provider refused the request itself (think HTTP 4xx): repeating it cannot succeed. */
export class ProviderRequestError extends Error {
  override name = 'ProviderRequestError';
}

/** An extra decline rule: returns the decline reason, or undefined to let the request through. */
export type DeclineRule = (request: AuthorizeRequest) => string | undefined;

/** Mock provider settings. */
export interface MockProviderOptions {
  /** Base latency of every answer (default 20 ms). */
  readonly latencyMs?: number;
  /** Up to this much random extra latency (default 0). */
  readonly jitterMs?: number;
  /** Amounts (minor units) above this are declined with "amount exceeds limit". */
  readonly declineAbove?: number;
  /** Further decline rules, checked in order after the built-in ones. */
  readonly declineRules?: readonly DeclineRule[];
  /** Random source in [0, 1) for the jitter; tests pass a fixed one. */
  readonly random?: () => number;
}

interface Authorization {
  readonly request: AuthorizeRequest;
  readonly response: AuthorizeResponse;
}

interface Captured {
  readonly amount: number;
  refunded: number;
}

/** An in-memory provider with the rules above; one instance is one provider account. */
export class MockPaymentProvider implements PaymentProvider {
  readonly #latencyMs: number;
  readonly #jitterMs: number;
  readonly #declineAbove: number | undefined;
  readonly #rules: readonly DeclineRule[];
  readonly #random: () => number;
  /** Decisions by payment id: the same id always gets the same answer. */
  readonly #authorizations = new Map<string, Authorization>();
  /** Authorised amounts and what was refunded of them, by provider reference. */
  readonly #captured = new Map<string, Captured>();
  /** Refunds by idempotency key. */
  readonly #refunds = new Map<string, { readonly request: RefundRequest; readonly response: RefundResponse }>();
  /** Payment ids of `tok_flaky` that have already failed once. */
  readonly #flaked = new Set<string>();
  #authorizeCalls = 0;
  #refundCalls = 0;

  constructor(options: MockProviderOptions = {}) {
    this.#latencyMs = nonNegative(options.latencyMs ?? 20, 'latencyMs');
    this.#jitterMs = nonNegative(options.jitterMs ?? 0, 'jitterMs');
    this.#declineAbove = options.declineAbove === undefined ? undefined : nonNegative(options.declineAbove, 'declineAbove');
    this.#rules = options.declineRules ?? [];
    this.#random = options.random ?? Math.random;
  }

  /** How many authorisation requests reached the provider. */
  get authorizeCalls(): number {
    return this.#authorizeCalls;
  }

  /** How many refund requests reached the provider. */
  get refundCalls(): number {
    return this.#refundCalls;
  }

  /**
   * Decides at once and answers after the latency. The decision is recorded when the request
   * arrives, as at a real provider: a caller that gave up waiting (aborted) and retries with the
   * same payment id gets the decision it missed, with the same provider reference.
   */
  async authorize(request: AuthorizeRequest, signal?: AbortSignal): Promise<AuthorizeResponse> {
    this.#authorizeCalls++;
    signal?.throwIfAborted();
    if (request.method === 'tok_timeout') return never(signal);

    const previous = this.#authorizations.get(request.paymentId);
    if (previous) {
      if (previous.request.amount !== request.amount || previous.request.method !== request.method) {
        await this.#delay(signal);
        throw new ProviderRequestError(`payment id "${request.paymentId}" was already used with another amount or method`);
      }
      await this.#delay(signal);
      return previous.response;
    }

    if (request.method === 'tok_unavailable') {
      await this.#delay(signal);
      throw new TransientProviderError('provider unavailable (503)');
    }
    if (request.method === 'tok_flaky' && !this.#flaked.has(request.paymentId)) {
      this.#flaked.add(request.paymentId);
      await this.#delay(signal);
      throw new TransientProviderError('provider unavailable (503)');
    }

    const reason = this.#declineReason(request);
    const response: AuthorizeResponse = reason === undefined ? { status: 'AUTHORIZED', providerRef: `auth_${randomUUID()}` } : { status: 'DECLINED', reason };
    this.#authorizations.set(request.paymentId, { request: { ...request }, response });
    if (response.status === 'AUTHORIZED') this.#captured.set(response.providerRef, { amount: request.amount, refunded: 0 });
    await this.#delay(signal);
    return response;
  }

  /**
   * Refunds up to what is still unrefunded of an authorisation. With a `refundId`, repeating the
   * request returns the first refund instead of refunding again.
   */
  async refund(request: RefundRequest, signal?: AbortSignal): Promise<RefundResponse> {
    this.#refundCalls++;
    signal?.throwIfAborted();
    if (request.refundId !== undefined) {
      const previous = this.#refunds.get(request.refundId);
      if (previous) {
        await this.#delay(signal);
        if (previous.request.providerRef !== request.providerRef || previous.request.amount !== request.amount) {
          throw new ProviderRequestError(`refund id "${request.refundId}" was already used with another payment or amount`);
        }
        return previous.response;
      }
    }
    const captured = this.#captured.get(request.providerRef);
    let problem: string | undefined;
    if (!captured) problem = `no authorisation "${request.providerRef}"`;
    else if (!Number.isInteger(request.amount) || request.amount <= 0) problem = `refund amount must be a whole number from 1, got ${request.amount}`;
    else if (request.amount > captured.amount - captured.refunded) {
      problem = `refund of ${request.amount} exceeds the ${captured.amount - captured.refunded} left to refund`;
    }
    if (problem !== undefined) {
      await this.#delay(signal);
      throw new ProviderRequestError(problem);
    }
    captured!.refunded += request.amount;
    const response: RefundResponse = { refundRef: `refund_${randomUUID()}` };
    if (request.refundId !== undefined) this.#refunds.set(request.refundId, { request: { ...request }, response });
    await this.#delay(signal);
    return response;
  }

  #declineReason(request: AuthorizeRequest): string | undefined {
    if (!Number.isInteger(request.amount) || request.amount < 0) return 'invalid amount';
    if (request.method !== 'tok_visa' && request.method !== 'tok_flaky') {
      return request.method === 'tok_decline' ? 'card declined' : 'unknown payment method';
    }
    if (this.#declineAbove !== undefined && request.amount > this.#declineAbove) return 'amount exceeds limit';
    for (const rule of this.#rules) {
      const reason = rule(request);
      if (reason !== undefined) return reason;
    }
    return undefined;
  }

  #delay(signal?: AbortSignal): Promise<void> {
    const ms = this.#latencyMs + (this.#jitterMs > 0 ? Math.floor(this.#random() * (this.#jitterMs + 1)) : 0);
    return ms > 0 ? sleep(ms, signal) : Promise.resolve();
  }
}

/** A promise that never resolves: it rejects with the signal's reason when (and only if) it aborts. */
function never(signal?: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`MockPaymentProvider: ${name} must be a number from 0, got ${value}`);
  return value;
}
