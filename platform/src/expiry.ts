/**
 * Subscriptions end when the token that opened them expires (docs/security.md): a graphql-ws
 * connection is authenticated once, at `connection_init`, so without this a subscription would
 * go on delivering long after its token stopped being valid. The gateway (gateway/src/live-server.ts)
 * and every subgraph (ws.ts) do the same at the token's `exp` ({@link Viewer.expiresAt}):
 *
 * 1. each open subscription gets a last message, an UNAUTHENTICATED error, then `complete`;
 * 2. later operations on the connection are refused with UNAUTHENTICATED;
 * 3. {@link TOKEN_EXPIRED_CLOSE_DELAY_MS} later the socket is closed with {@link TOKEN_EXPIRED_CLOSE}
 *    (4403), which graphql-ws clients answer by connecting again, with a fresh token when their
 *    `connectionParams` is a function.
 */
import type { GraphQLError } from 'graphql';
import type { Viewer } from './auth.ts';
import { ErrorCode, apiError } from './errors.ts';

/** The close code and reason of a socket whose token has expired. */
export const TOKEN_EXPIRED_CLOSE = { code: 4403, reason: 'Forbidden: the token has expired' } as const;

/** Time between the subscriptions' last messages and the socket's close, for those messages to go out first. */
export const TOKEN_EXPIRED_CLOSE_DELAY_MS = 1_000;

/** The last message of a subscription whose token expired, and the refusal of later operations. */
export function tokenExpiredError(): GraphQLError {
  return apiError(ErrorCode.Unauthenticated, 'The token has expired: connect again with a new one');
}

/** Milliseconds since the epoch; tests pass their own. */
export type Clock = () => number;

/** Longest delay `setTimeout` takes as it is; longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Runs `run` once `clock()` reaches `at` (never synchronously), re-arming for instants beyond
 * what one timer can wait (a token valid for a month). Returns the cancel function.
 */
export function atTime(at: number, run: () => void, clock: Clock = Date.now): () => void {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = (first: boolean) => {
    if (cancelled) return;
    const left = at - clock();
    if (left <= 0 && !first) return run();
    timer = setTimeout(() => arm(false), Math.min(Math.max(left, 0), MAX_TIMER_MS));
    // A pending expiry must not keep a process alive that has nothing else to do.
    timer.unref();
  };
  arm(true);
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

/** Whether `viewer`'s token has expired at `clock()`. */
export function hasExpired(viewer: Viewer, clock: Clock = Date.now): boolean {
  return viewer.expiresAt !== null && clock() >= viewer.expiresAt;
}

/**
 * A subscription's results until {@link ExpiringStream.expire}: then `last` is its final result
 * and it ends, at once, even while the source has nothing to say. Ending it (graphql-ws calls
 * `return` when the client completes or leaves) ends the source too.
 */
export class ExpiringStream<T> implements AsyncGenerator<T, undefined, unknown> {
  readonly #source: AsyncIterator<T>;
  readonly #last: () => T;
  #state: 'open' | 'expired' | 'done' = 'open';
  #waiting: ((result: IteratorResult<T, undefined>) => void) | null = null;

  constructor(source: AsyncIterable<T>, last: () => T) {
    this.#source = source[Symbol.asyncIterator]();
    this.#last = last;
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#state === 'done') return Promise.resolve({ value: undefined, done: true });
    if (this.#state === 'expired') {
      this.#state = 'done';
      return Promise.resolve({ value: this.#last(), done: false });
    }
    return new Promise((resolve, reject) => {
      this.#waiting = resolve;
      this.#source.next().then(
        (result) => {
          if (this.#waiting !== resolve) return;
          this.#waiting = null;
          if (result.done) this.#state = 'done';
          resolve(result.done ? { value: undefined, done: true } : result);
        },
        (error: unknown) => {
          if (this.#waiting !== resolve) return;
          this.#waiting = null;
          this.#state = 'done';
          reject(error);
        },
      );
    });
  }

  /** The token expired: the next result is `last`, then the stream ends; the source is ended now. */
  expire(): void {
    if (this.#state !== 'open') return;
    this.#state = 'expired';
    const waiting = this.#waiting;
    this.#waiting = null;
    void this.#source.return?.(undefined)?.catch(() => {});
    if (waiting) {
      this.#state = 'done';
      waiting({ value: this.#last(), done: false });
    }
  }

  return(): Promise<IteratorResult<T, undefined>> {
    const wasOpen = this.#state === 'open';
    this.#state = 'done';
    const waiting = this.#waiting;
    this.#waiting = null;
    waiting?.({ value: undefined, done: true });
    if (wasOpen) void this.#source.return?.(undefined)?.catch(() => {});
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error: unknown): Promise<IteratorResult<T, undefined>> {
    void this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }
}
