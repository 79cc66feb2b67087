/**
 * What bench/live.ts shares with its client processes (bench/live-worker.ts) and its stock-change
 * driver (bench/live-driver.ts): the IPC messages, the subscription it measures, and the clock.
 *
 * Every time in these messages is epoch milliseconds with sub-millisecond precision
 * ({@link epochNow}), taken in the process where the event happened: the driver right after the
 * change committed, a client when graphql-ws hands it the message. All processes run on the same
 * machine and read the same system clock, so a client's time minus the driver's time is the
 * delivery latency.
 */

/** Wall-clock epoch milliseconds with sub-millisecond precision (Date.now() has whole milliseconds). */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** What each subscriber selects: `full` makes the gateway fetch the product's name from the product subgraph per event. */
export const SELECTIONS = {
  full: 'sku available version product { name }',
  minimal: 'sku available version',
} as const;
export type Selection = keyof typeof SELECTIONS;

/** The one subscription every client runs, for its own sku. */
export function subscriptionQuery(selection: Selection): string {
  return `subscription LiveStock($skus: [ID!]!) { stockLevelChanged(skus: $skus) { ${SELECTIONS[selection]} } }`;
}

// ---------------------------------------------------------------------------------------------
// bench/live.ts ↔ bench/live-worker.ts

export interface ConnectRequest {
  /** ws://host:port/graphql of the gateway under test. */
  readonly url: string;
  readonly selection: Selection;
  /** Global client numbers this worker runs, and the sku each subscribes to (same order). */
  readonly clients: Int32Array;
  readonly skus: readonly string[];
  /** Subscriptions being set up at once in this worker (each waits for its first message). */
  readonly concurrency: number;
  /** A client that has no first message within this many ms counts as failed. */
  readonly timeoutMs: number;
}

export type LiveWorkerRequest =
  | { readonly type: 'connect'; readonly connect: ConnectRequest }
  /** Unsubscribe and close every client, then report. */
  | { readonly type: 'close' }
  | { readonly type: 'exit' };

/** Something that happened to one client other than a good message. */
export interface ClientEvent {
  readonly client: number;
  readonly at: number;
  /**
   * `failed`: no first message (subscription refused, connection refused, timeout);
   * `closed`: the socket closed while subscribed (code and reason in detail);
   * `error`: the subscription ended with an error; `complete`: the server completed it;
   * `bad-message`: a message with GraphQL errors, another sku, or (selection full) no product name.
   */
  readonly kind: 'failed' | 'closed' | 'error' | 'complete' | 'bad-message';
  readonly detail: string;
}

/** Good messages received since the last batch: client n got `version` of its sku at `at`. */
export interface ReceiptBatch {
  readonly client: Int32Array;
  readonly version: Float64Array;
  readonly at: Float64Array;
}

export type LiveWorkerReply =
  | { readonly type: 'ready'; readonly pid: number }
  | { readonly type: 'receipts'; readonly receipts: ReceiptBatch }
  | { readonly type: 'events'; readonly events: readonly ClientEvent[] }
  | { readonly type: 'progress'; readonly subscribed: number; readonly failed: number }
  /** Every client of the connect request has its first message or has failed. */
  | { readonly type: 'connected'; readonly subscribed: number; readonly failed: number }
  | { readonly type: 'closed' }
  | { readonly type: 'failed'; readonly error: string };

// ---------------------------------------------------------------------------------------------
// bench/live.ts ↔ bench/live-driver.ts

export type LiveDriverRequest =
  /** Start changing the stock of `skus` round robin at `rate` changes per second, +1/−1 alternately per sku. */
  | { readonly type: 'run'; readonly rate: number; readonly skus: readonly string[] }
  /** Stop issuing; reply `stopped` once the changes in flight have finished. */
  | { readonly type: 'stop' }
  | { readonly type: 'exit' };

/** Changes committed since the last batch: sku number (index into the run's skus), new version, commit time. */
export interface CommitBatch {
  readonly sku: Int32Array;
  readonly version: Float64Array;
  readonly at: Float64Array;
}

export interface DriverSummary {
  /** Changes started and committed since `run`. */
  readonly issued: number;
  readonly committed: number;
  readonly failed: number;
  readonly errorSamples: readonly string[];
  readonly elapsedMs: number;
  /** How far the driver fell behind its schedule at worst, ms (a change waits while its sku's previous one is in flight). */
  readonly maxScheduleLagMs: number;
  /** One whole `StockLedger.adjust` (transaction and Redis publish), p50/p99 ms. */
  /** Per change: its batch's transaction and announcements. */
  readonly commitMs: { readonly p50: number; readonly p99: number };
}

export type LiveDriverReply =
  | { readonly type: 'ready'; readonly pid: number }
  | { readonly type: 'commits'; readonly commits: CommitBatch }
  | { readonly type: 'stopped'; readonly summary: DriverSummary }
  | { readonly type: 'failed'; readonly error: string };
