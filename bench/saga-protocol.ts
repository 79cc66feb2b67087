/**
 * What bench/saga.ts and its customer process (bench/saga-worker.ts) share: the IPC messages, and
 * how a placeOrder request is built and its response read, so a replay sends the identical input.
 */

/** What the bench asks the worker to do. */
export type SagaWorkerRequest =
  | { readonly type: 'run'; readonly run: SagaRunRequest }
  /** End the placing phase now: no new placement starts; those in flight finish, then the run reports. */
  | { readonly type: 'stop' }
  | { readonly type: 'exit' };

export interface SagaRunRequest {
  readonly url: string;
  /** One bearer token per customer; customer n is `bench-<n>`. */
  readonly tokens: readonly string[];
  readonly skus: number;
  readonly quantity: number;
  readonly paymentMethod: string;
  readonly durationMs: number;
  /** Every idempotency key starts with it, so the run's orders can be told from every other. */
  readonly keyPrefix: string;
  /**
   * Open loop: placements start on a schedule, this many a second spread over the customers in
   * turn, whether or not earlier ones have been answered (at most {@link OPEN_LOOP_MAX_IN_FLIGHT}
   * in flight). Absent: closed loop, each customer places its next order when the previous one is answered.
   */
  readonly ratePerSecond?: number;
}

/** Open loop: placements in flight at most; a start that finds that many waits for one to end (and may so start late). */
export const OPEN_LOOP_MAX_IN_FLIGHT = 256;
/** Open loop: a placement that starts this much after its scheduled time counts as a late start. */
export const LATE_START_MS = 100;

/** How an open-loop run kept its schedule. */
export interface OpenLoopSchedule {
  /** The window placements were scheduled in (shorter than durationMs when stopped early). */
  readonly windowMs: number;
  /** Placements due within the window. */
  readonly scheduled: number;
  /** Placements started (a due one that could not start before the window closed is not). */
  readonly started: number;
  /** Starts more than LATE_START_MS after their scheduled time (in-flight cap reached, or a busy event loop). */
  readonly lateStarts: number;
  readonly maxStartLagMs: number;
  readonly peakInFlight: number;
}

/** Codes of a placement refused for being busy: the API stored nothing (so it is not replayed), and the customer comes back after Retry-After. */
export const BUSY_CODES: ReadonlySet<string> = new Set(['OVERLOADED', 'RATE_LIMITED']);

/** One order the API accepted. */
export interface PlacedOrder {
  readonly id: string;
  readonly customer: number;
  readonly sku: string;
  readonly quantity: number;
  readonly idempotencyKey: string;
  /** HTTP round trip of placeOrder, ms. */
  readonly latencyMs: number;
  /** Wall clock when the response arrived (epoch ms). */
  readonly respondedAt: number;
  /** The status placeOrder returned (PENDING unless the saga was already faster). */
  readonly status: string;
}

/** One placeOrder that did not return an order: kept so the bench can replay its idempotency key. */
export interface FailedPlacement {
  readonly customer: number;
  readonly sku: string;
  readonly quantity: number;
  readonly idempotencyKey: string;
  readonly latencyMs: number;
  readonly error: string;
  /** The GraphQL error code, or "HTTP <status>" / "NETWORK" when there was no GraphQL answer. */
  readonly code: string;
}

export interface SagaRunResult {
  readonly placed: readonly PlacedOrder[];
  readonly failed: readonly FailedPlacement[];
  /** From the start until the last answer arrived. */
  readonly elapsedMs: number;
  /** CPU time (user + system) the customer process spent in the run, seconds: a busy load generator understates. */
  readonly clientCpuSeconds: number;
  /** Present for an open-loop run. */
  readonly schedule?: OpenLoopSchedule;
}

export type SagaWorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly placed: number; readonly failed: number; readonly inFlight: number; readonly elapsedMs: number }
  | { readonly type: 'result'; readonly result: SagaRunResult }
  | { readonly type: 'failed'; readonly error: string };

export const PLACE_ORDER = 'mutation PlaceOrder($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }';

/** The placeOrder input of one order; the same function builds a replay's input, so it is identical. */
export function placeOrderInput(customer: number, idempotencyKey: string, sku: string, quantity: number, paymentMethod: string) {
  return {
    idempotencyKey,
    items: [{ sku, quantity }],
    shippingAddress: { name: `Bench Customer ${customer}`, line1: `${customer} Benchmark Street`, city: 'Berlin', postalCode: '10115', country: 'DE' },
    paymentMethod,
  };
}

/** SKU-0001 .. SKU-<skus>, as the seed names them. */
export function seedSku(n: number): string {
  return `SKU-${String(n).padStart(4, '0')}`;
}

/** The order a placeOrder response carries, or why it carries none: an error code and a description. */
export function readPlaceOrder(
  status: number,
  text: string,
): { order: { id: string; status: string } } | { code: string; error: string; retryAfterSeconds?: number } {
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    return { code: `HTTP ${status}`, error: `HTTP ${status}, not JSON: ${text.slice(0, 160)}` };
  }
  const order = json?.data?.placeOrder;
  if (json?.errors?.length || !order?.id) {
    const first = json?.errors?.[0];
    const code = first?.extensions?.code ?? (status === 200 ? 'NO_ORDER' : `HTTP ${status}`);
    const retryAfter = Number(first?.extensions?.retryAfterSeconds);
    return {
      code,
      error: `${code}: ${first?.message ?? `HTTP ${status}, no order in ${text.slice(0, 120)}`}`.slice(0, 240),
      ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
    };
  }
  return { order: { id: String(order.id), status: String(order.status) } };
}
