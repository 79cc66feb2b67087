/**
 * The gateway's graphql-ws connections to subgraphs. Credentials travel in graphql-ws's
 * `connectionParams`, which belong to a connection, so there is one connection per subgraph and
 * Authorization header: anonymous upstream subscriptions of a subgraph all share one socket. The
 * gateway's own credential (SUBGRAPH_SECRET) travels as a header of the WebSocket upgrade, which the
 * subgraph checks before any socket opens.
 */
import type { FormattedExecutionResult } from 'graphql';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { Logger } from '@swiftcart/platform/logger';
import { type IBackoff, exponentialBackoff, sleep } from '@swiftcart/platform/resilience';
import type { LiveMetrics } from './live-metrics.ts';

/** Upper bound of one wait between reconnection attempts. */
const MAX_RETRY_WAIT_MS = 4_000;
/** Pings to subgraphs, so that a vanished peer is noticed without waiting for TCP. */
const UPSTREAM_KEEP_ALIVE_MS = 10_000;
/** A connection without subscriptions stays open this long, for the next one to reuse. */
const IDLE_CLOSE_MS = 5_000;
/** graphql-ws's close code for a refused `connectionParams`: retrying the same token cannot help. */
const FORBIDDEN_CLOSE_CODE = 4403;

/** What an upstream subscription reports. Errors are already formatted for clients. */
export interface UpstreamSink {
  next(result: FormattedExecutionResult<Record<string, unknown>, unknown>): void;
  /** The subscription failed for good (refused, or the subgraph stayed unreachable). */
  error(message: string): void;
  complete(): void;
}

/** One subscription to send to a subgraph. */
export interface UpstreamRequest {
  readonly query: string;
  readonly operationName?: string;
  readonly variables: Record<string, unknown>;
}

interface PooledClient {
  readonly client: Client;
  users: number;
}

function describe(reason: unknown): string {
  if (Array.isArray(reason)) return reason.map((e: { message?: string }) => e?.message ?? String(e)).join('; ');
  const event = reason as { code?: number; reason?: string; message?: string };
  if (typeof event?.code === 'number') return `connection closed (${event.code}${event.reason ? ` ${event.reason}` : ''})`;
  return event?.message ?? String(reason);
}

/** Waits between reconnection attempts: the platform's capped exponential backoff with full jitter. */
const RECONNECT_BACKOFF = exponentialBackoff({ baseMs: 250, maxMs: MAX_RETRY_WAIT_MS });

/** The subgraphs' graphql-ws endpoints, one pooled connection per subgraph and credentials. */
export class UpstreamConnections implements AsyncDisposable {
  readonly #pool = new Map<string, PooledClient>();
  readonly #log: Logger;
  readonly #metrics: LiveMetrics;
  readonly #retryAttempts: number;
  /** The WebSocket class graphql-ws instantiates: `ws`, sending the upgrade headers given. */
  readonly #webSocketImpl: new (
    address: string,
    protocols?: string | string[],
  ) => WebSocket;

  /**
   * `retryAttempts`: reconnection attempts before a subgraph's subscriptions fail. `headers`: sent
   * with every upgrade request (the gateway credential).
   */
  constructor(log: Logger, metrics: LiveMetrics, retryAttempts: number, headers: Readonly<Record<string, string>> = {}) {
    this.#log = log;
    this.#metrics = metrics;
    this.#retryAttempts = retryAttempts;
    // graphql-ws constructs the socket as `new impl(url, protocol)`: options only get in through a subclass.
    this.#webSocketImpl =
      Object.keys(headers).length === 0
        ? WebSocket
        : class extends WebSocket {
            constructor(address: string | URL, protocols?: string | string[]) {
              super(address, protocols, { headers: { ...headers } });
            }
          };
  }

  /**
   * Subscribes at a subgraph (the ws:// twin of one of `httpUrls`, its replicas) with
   * `authorization` (undefined: anonymous). Returns the function that ends the subscription; it is
   * safe to call more than once.
   */
  subscribe(httpUrls: readonly string[], authorization: string | undefined, request: UpstreamRequest, sink: UpstreamSink): () => void {
    const key = `${httpUrls.join(',')}\n${authorization ?? ''}`;
    let pooled = this.#pool.get(key);
    if (!pooled) {
      pooled = { client: this.#connect(httpUrls, authorization), users: 0 };
      this.#pool.set(key, pooled);
    }
    pooled.users++;
    const entry = pooled;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--entry.users === 0 && authorization !== undefined) {
        // A viewer's own connection is not worth keeping once their subscriptions are gone.
        this.#pool.delete(key);
        void entry.client.dispose();
      }
    };
    const unsubscribe = entry.client.subscribe<Record<string, unknown>, unknown>(
      { query: request.query, operationName: request.operationName, variables: request.variables },
      {
        next: (result) => sink.next(result),
        error: (reason) => {
          release();
          sink.error(describe(reason));
        },
        complete: () => {
          release();
          sink.complete();
        },
      },
    );
    return () => {
      if (released) return;
      unsubscribe();
      release();
    };
  }

  #connect(httpUrls: readonly string[], authorization: string | undefined): Client {
    const urls = httpUrls.map((u) => u.replace(/^http/, 'ws'));
    // Each (re)connection goes to the next replica: one that died is left behind by the retry.
    let next = 0;
    let url = urls[0];
    let connectedBefore = false;
    let wait: IBackoff<unknown> | undefined;
    return createClient({
      url: () => (url = urls[next++ % urls.length]),
      webSocketImpl: this.#webSocketImpl,
      connectionParams: authorization ? { authorization } : {},
      lazy: true,
      lazyCloseTimeout: IDLE_CLOSE_MS,
      keepAlive: UPSTREAM_KEEP_ALIVE_MS,
      retryAttempts: this.#retryAttempts,
      // graphql-ws counts `retries` from 0 again after a successful connection; so does the backoff.
      retryWait: async (retries) => {
        wait = retries === 0 || !wait ? RECONNECT_BACKOFF.next(undefined) : wait.next(undefined);
        await sleep(wait.duration);
      },
      // A subgraph restarting closes with 1001 or refuses connections: both are worth retrying,
      // a refused token is not.
      shouldRetry: (event) => (event as { code?: number })?.code !== FORBIDDEN_CLOSE_CODE,
      on: {
        connected: () => {
          if (connectedBefore) {
            this.#metrics.values.upstreamReconnects++;
            this.#log.info({ url }, 'reconnected to subgraph; its subscriptions are resumed');
          }
          connectedBefore = true;
        },
        closed: (event) => {
          const code = (event as { code?: number })?.code;
          if (code !== 1000) this.#log.debug({ url, code }, 'subgraph subscription connection closed');
        },
      },
    });
  }

  /** Closes every upstream connection. */
  async close(): Promise<void> {
    const clients = [...this.#pool.values()];
    this.#pool.clear();
    await Promise.all(clients.map(async (pooled) => pooled.client.dispose()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
