/**
 * Subscriptions over graphql-ws: one lazy graphql-ws client per token in use, and each subscription
 * as an async iterator of its results' `data`, ending with a {@link SwiftCartError} on any error.
 */
import { type Client, type FormattedExecutionResult, createClient as createWsClient } from 'graphql-ws';
import { ClientErrorCode, ErrorCode, SwiftCartError, isGraphQLErrorList } from './errors.ts';
import { AUTHORIZATION_PARAM, CLOSE_FORBIDDEN, bearer } from './wire.ts';

/**
 * A running subscription: an async iterator of typed payloads. `for await` reads it; leaving the
 * loop (or calling `return()`) completes the subscription on the server at once, even while a
 * `next()` is waiting (that `next()` then resolves as done).
 */
export interface LiveSubscription<T> extends AsyncIterableIterator<T> {
  /** Completes the subscription; the socket closes when it was the last one on it. */
  return(): Promise<IteratorResult<T, undefined>>;
  /** Same as {@link LiveSubscription.return}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** How the SDK opens WebSockets. */
export interface LiveSettings {
  /** The graphql-ws endpoint, e.g. ws://127.0.0.1:4000/graphql. */
  readonly url: string;
  /** A WebSocket constructor; undefined uses the platform's global `WebSocket`. */
  readonly webSocketImpl: unknown;
  /**
   * How often graphql-ws reconnects a dropped socket before the subscriptions on it fail
   * (re-subscribing re-sends the current state). A refused token (4403) is never retried.
   */
  readonly retryAttempts: number | undefined;
}

/** A WebSocket close as graphql-ws reports it. */
interface CloseLike {
  readonly code: number;
  readonly reason: string;
}

function isCloseLike(value: unknown): value is CloseLike {
  return typeof value === 'object' && value !== null && typeof (value as CloseLike).code === 'number' && 'reason' in value;
}

/** Turns whatever graphql-ws ended a subscription with into a {@link SwiftCartError}. */
export function liveError(error: unknown): SwiftCartError {
  if (error instanceof SwiftCartError) return error;
  if (isGraphQLErrorList(error)) return SwiftCartError.fromGraphQLErrors(error);
  if (isCloseLike(error)) {
    const closeReason = String(error.reason ?? '');
    const refused = error.code === CLOSE_FORBIDDEN;
    return new SwiftCartError({
      code: refused ? ErrorCode.Unauthenticated : ClientErrorCode.ConnectionClosed,
      message: refused
        ? `the gateway refused the token (WebSocket closed ${error.code} ${closeReason})`
        : `the WebSocket closed: ${error.code} ${closeReason}`.trim(),
      closeCode: error.code,
      closeReason,
    });
  }
  return new SwiftCartError({
    code: ClientErrorCode.NetworkError,
    message: `subscription failed: ${(error as Error)?.message ?? String(error)}`,
    cause: error,
  });
}

/** One graphql-ws client per token, shared by that token's subscriptions and disposed with the last. */
export class LiveConnections {
  readonly #settings: LiveSettings;
  readonly #byToken = new Map<string, { client: Client; users: number }>();

  /** Sockets are opened on the first subscription of a token. */
  constructor(settings: LiveSettings) {
    this.#settings = settings;
  }

  /** The graphql-ws client for `token` and a function that gives it back (once). */
  acquire(token: string | null): { client: Client; release(): void } {
    const key = token ?? '';
    let entry = this.#byToken.get(key);
    if (!entry) {
      const { url, webSocketImpl, retryAttempts } = this.#settings;
      const client = createWsClient({
        url,
        webSocketImpl,
        lazy: true,
        retryAttempts,
        connectionParams: token ? { [AUTHORIZATION_PARAM]: bearer(token) } : {},
        // The same token would be refused again: fail at once instead of retrying.
        shouldRetry: (event) => isCloseLike(event) && event.code !== CLOSE_FORBIDDEN,
      });
      entry = { client, users: 0 };
      this.#byToken.set(key, entry);
    }
    entry.users++;
    const held = entry;
    let released = false;
    return {
      client: held.client,
      release: () => {
        if (released) return;
        released = true;
        if (--held.users === 0 && this.#byToken.get(key) === held) {
          this.#byToken.delete(key);
          void held.client.dispose();
        }
      },
    };
  }

  /** Closes every socket; running subscriptions end. */
  async close(): Promise<void> {
    const entries = [...this.#byToken.values()];
    this.#byToken.clear();
    await Promise.all(entries.map(async (entry) => entry.client.dispose()));
  }
}

/** What a subscription needs once it starts. */
export interface LiveRequest {
  /** The operation's text. */
  readonly query: string;
  /** The operation's name. */
  readonly operationName: string | undefined;
  /** Its variables. */
  readonly variables: unknown;
}

/**
 * A subscription that starts on the first `next()`: it resolves the token, joins the token's
 * graphql-ws client and iterates it, yielding each result's `data` and throwing on errors.
 */
export class LiveIterator<T> implements LiveSubscription<T> {
  readonly #start: () => Promise<{ client: Client; release(): void }>;
  readonly #request: LiveRequest;
  #running: Promise<{ source: AsyncIterableIterator<FormattedExecutionResult<Record<string, unknown>, unknown>>; release(): void }> | undefined;
  #done = false;

  /** `start` resolves the token and acquires a client; nothing happens until the first `next()`. */
  constructor(start: () => Promise<{ client: Client; release(): void }>, request: LiveRequest) {
    this.#start = start;
    this.#request = request;
  }

  /** The next payload; done when the subscription completed or was returned; rejects with {@link SwiftCartError}. */
  async next(): Promise<IteratorResult<T, undefined>> {
    if (this.#done) return { done: true, value: undefined };
    let result: IteratorResult<FormattedExecutionResult<Record<string, unknown>, unknown>>;
    try {
      const { source } = await (this.#running ??= this.#open());
      result = await source.next();
    } catch (error) {
      await this.return();
      throw liveError(error);
    }
    if (this.#done || result.done) {
      await this.return();
      return { done: true, value: undefined };
    }
    const { data, errors } = result.value;
    if (isGraphQLErrorList(errors)) {
      await this.return();
      throw SwiftCartError.fromGraphQLErrors(errors, { data: data ?? undefined });
    }
    if (data === null || typeof data !== 'object') {
      await this.return();
      throw new SwiftCartError({ code: ClientErrorCode.BadResponse, message: 'a subscription result came without data or errors' });
    }
    return { done: false, value: data as T };
  }

  /** Completes the subscription (at once, also while a `next()` waits) and frees its socket. */
  async return(): Promise<IteratorResult<T, undefined>> {
    this.#done = true;
    const running = this.#running;
    if (running) {
      const opened = await running.catch(() => undefined);
      if (opened) {
        await opened.source.return?.();
        opened.release();
      }
    }
    return { done: true, value: undefined };
  }

  /** Same as {@link LiveIterator.return}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  /** The iterator itself, so `for await` works on it. */
  [Symbol.asyncIterator](): this {
    return this;
  }

  async #open() {
    const { client, release } = await this.#start();
    try {
      const { query, operationName, variables } = this.#request;
      const source = client.iterate<Record<string, unknown>>({ query, operationName, variables: variables as Record<string, unknown> });
      return { source, release };
    } catch (error) {
      release();
      throw error;
    }
  }
}
