/**
 * Test helpers for GraphQL subscriptions over graphql-ws: a real `graphql-ws` client on the `ws`
 * WebSocket, and a probe per subscription that records everything the server sends, so a test can
 * wait for the next result, assert that nothing more arrives, and see how the socket was closed.
 */
import assert from 'node:assert/strict';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** One result of a subscription as the client received it. */
export interface LiveResult<T = any> {
  readonly data?: T | null;
  readonly errors?: readonly { message: string; extensions?: { code?: string; [key: string]: unknown }; path?: readonly (string | number)[] }[];
}

/** How a WebSocket closed: its close code and reason. */
export interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** Everything one subscription received, in order, and how it ended. */
export class SubscriptionProbe<T = any> {
  readonly results: LiveResult<T>[] = [];
  #read = 0;
  /** Set when the server completed the operation. */
  completed = false;
  /** Set when the operation failed: GraphQL errors, an Error, or a close event ({@link Closed}). */
  error: unknown = undefined;
  #changed: (() => void)[] = [];
  readonly #unsubscribe: () => void;

  constructor(client: Client, query: string, variables?: Record<string, unknown>) {
    this.#unsubscribe = client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          this.results.push(value as LiveResult<T>);
          this.#notify();
        },
        error: (error) => {
          this.error = error;
          this.#notify();
        },
        complete: () => {
          this.completed = true;
          this.#notify();
        },
      },
    );
  }

  #notify(): void {
    const waiting = this.#changed;
    this.#changed = [];
    for (const wake of waiting) wake();
  }

  /** Whether the operation has ended (completed or failed). */
  get ended(): boolean {
    return this.completed || this.error !== undefined;
  }

  /** The next result not yet returned by `next`; fails after `timeoutMs` or when the operation ends first. */
  async next(timeoutMs = 5_000): Promise<LiveResult<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#read < this.results.length) return this.results[this.#read++];
      if (this.ended) assert.fail(`the subscription ended (${this.describeEnd()}) while a result was awaited`);
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`no result within ${timeoutMs} ms (received ${this.results.length})`);
      await this.#wait(left);
    }
  }

  /**
   * The first result (received already or later) for which `match` holds; fails after `timeoutMs`,
   * or when the operation ends first, naming `what` and what arrived instead.
   */
  async waitFor(match: (result: LiveResult<T> & { data?: any }) => boolean, what: string, timeoutMs = 15_000): Promise<LiveResult<T> & { data?: any }> {
    const deadline = Date.now() + timeoutMs;
    for (let seen = 0; ; ) {
      for (; seen < this.results.length; seen++) if (match(this.results[seen])) return this.results[seen];
      const received = JSON.stringify(this.results).slice(0, 2_000);
      if (this.ended) assert.fail(`the subscription ended (${this.describeEnd()}) before ${what}; received ${received}`);
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`no ${what} within ${timeoutMs} ms; received ${received}`);
      await this.#wait(left);
    }
  }

  /** The data of the next result, failing when it carries errors. */
  async nextData(timeoutMs = 5_000): Promise<T> {
    const result = await this.next(timeoutMs);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data as T;
  }

  /** Fails when another result arrives within `ms`. */
  async nothingWithin(ms: number): Promise<void> {
    const before = this.results.length;
    await new Promise((resolve) => setTimeout(resolve, ms));
    assert.equal(this.results.length, before, `unexpected results: ${JSON.stringify(this.results.slice(before))}`);
  }

  /** Waits until the operation ends (completed or failed); fails after `timeoutMs`. */
  async end(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`the subscription did not end within ${timeoutMs} ms`);
      await this.#wait(left);
    }
  }

  /** Completes the operation from the client's side. */
  dispose(): void {
    this.#unsubscribe();
  }

  /** How the operation ended, in words, for assertion messages. */
  describeEnd(): string {
    if (this.completed) return 'completed';
    const error = this.error as { code?: number; reason?: string; message?: string } | undefined;
    if (error && typeof error.code === 'number') return `closed ${error.code} ${error.reason ?? ''}`;
    return `failed: ${error?.message ?? JSON.stringify(error)}`;
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#changed.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** A graphql-ws connection of a test, with what it saw. */
export interface LiveClient extends AsyncDisposable {
  readonly client: Client;
  /** Every close of the socket, in order. */
  readonly closes: Closed[];
  /** Starts a subscription and records what it receives. */
  subscribe<T = any>(query: string, variables?: Record<string, unknown>): SubscriptionProbe<T>;
  /** Waits for the socket to close (fails after `timeoutMs`) and returns how. */
  closed(timeoutMs?: number): Promise<Closed>;
  close(): Promise<void>;
}

/** What {@link connectLive} sends at connection time. */
export interface ConnectOptions {
  /** Sent as `connectionParams.authorization: "Bearer <token>"`. */
  readonly token?: string | null;
  /** Replaces the connection params entirely (for malformed ones). */
  readonly connectionParams?: Record<string, unknown>;
  /** Sent with the WebSocket upgrade request (a subgraph needs the gateway's credential: `stack.subgraphHeaders`). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** The ws:// address of an http:// GraphQL endpoint (a ws:// one is returned as it is). */
export function wsUrl(url: string): string {
  return url.replace(/^http/, 'ws');
}

/**
 * A graphql-ws client of `url` (`ws://host:port/graphql`, or its http:// twin) that never retries, so a refused or closed
 * connection shows in the probes and in {@link LiveClient.closes}. It connects on the first subscription.
 */
export function connectLive(url: string, options: ConnectOptions = {}): LiveClient {
  const closes: Closed[] = [];
  const waiters: (() => void)[] = [];
  const headers = options.headers;
  const client = createClient({
    url: wsUrl(url),
    // graphql-ws constructs the socket as `new impl(url, protocol)`: headers only get in through a subclass.
    webSocketImpl: headers
      ? class extends WebSocket {
          constructor(address: string, protocols?: string | string[]) {
            super(address, protocols, { headers: { ...headers } });
          }
        }
      : WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: options.connectionParams ?? (options.token ? { authorization: `Bearer ${options.token}` } : {}),
    on: {
      closed: (event) => {
        const { code, reason } = event as Closed;
        closes.push({ code, reason: String(reason) });
        for (const wake of waiters.splice(0)) wake();
      },
    },
  });
  let disposed: Promise<void> | undefined;
  const close = () => (disposed ??= Promise.resolve(client.dispose()).then(() => undefined));
  return {
    client,
    closes,
    subscribe: (query, variables) => new SubscriptionProbe(client, query, variables),
    async closed(timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (closes.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`the socket did not close within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return closes[0];
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
