/**
 * createClient: the typed SwiftCart client. Queries and mutations go over HTTP (`fetch`),
 * subscriptions over graphql-ws (`WebSocket`); both use the platform's globals unless given others.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { Kind, type DocumentNode, print } from 'graphql';
import { ErrorCode, SwiftCartError } from './errors.ts';
import { type FetchLike, type RequestOptions, defaultFetch, postOperation } from './http.ts';
import { type LiveSubscription, LiveConnections, LiveIterator } from './live.ts';
import { type ResultOf, type VariablesOf, requestDocuments, subscriptionDocuments } from './operations.ts';
import { DOCUMENT_IDS } from './generated/document-ids.ts';
import { type TokenSource, resolveToken } from './token.ts';
import { webSocketUrlOf } from './wire.ts';

/** What {@link createClient} needs. */
export interface ClientOptions {
  /** The gateway's GraphQL endpoint, e.g. `http://127.0.0.1:4000/graphql`. */
  readonly url: string;
  /**
   * The customer's token, or a function returning the current one (asked before every request and
   * every new subscription, so sign-in and sign-out need no new client). None: the anonymous viewer.
   */
  readonly token?: TokenSource;
  /** The graphql-ws endpoint; by default `url` with `http` replaced by `ws` (`https` by `wss`). */
  readonly wsUrl?: string;
  /** A `fetch` implementation; by default the platform's global `fetch`. */
  readonly fetch?: FetchLike;
  /** A WebSocket constructor (e.g. `ws` in old Node versions); by default the platform's global `WebSocket`. */
  readonly webSocketImpl?: unknown;
  /**
   * How often a dropped WebSocket is reconnected before its subscriptions fail (graphql-ws's
   * default: 5, with randomised exponential backoff). After a reconnection every subscription
   * receives the current state again.
   */
  readonly retryAttempts?: number;
  /**
   * Send the SDK's own queries and mutations by their trusted-document id alone (default true):
   * a few dozen bytes instead of the document; the document follows only if the gateway answers
   * `PERSISTED_QUERY_NOT_FOUND`. Subscriptions send the document.
   */
  readonly trustedDocuments?: boolean;
  /**
   * How often a query or mutation that the server refused because it is busy (OVERLOADED,
   * RATE_LIMITED: nothing was done) is sent again before the error is thrown (default 3; 0: never).
   * Each retry waits at least the `retryAfterSeconds` the server asked for, with exponential
   * backoff and jitter, at most 30 s. A mutation that is retried must be safe to repeat: placeOrder
   * is, through its idempotency key.
   */
  readonly busyRetries?: number;
  /** Told before each busy retry (e.g. to show "busy, retrying"). */
  readonly onBusy?: (notice: BusyNotice) => void;
}

/** What {@link ClientOptions.onBusy} is told before a busy retry. */
export interface BusyNotice {
  /** The operation's name. */
  readonly operationName: string | undefined;
  /** The retry about to be made: 1 for the first. */
  readonly retry: number;
  /** How long the client waits before it. */
  readonly delayMs: number;
  /** The refusal. */
  readonly error: SwiftCartError;
}

/** The codes of a refusal that did nothing and asks to come back later. */
const BUSY_CODES: ReadonlySet<string> = new Set([ErrorCode.Overloaded, ErrorCode.RateLimited]);
/** The first backoff, and the longest wait, of a busy retry. */
const BUSY_BASE_MS = 500;
const BUSY_MAX_MS = 30_000;

/** The wait before busy retry number `retry` (1-based): the server's delay or the backoff, whichever is longer, with jitter. */
export function busyDelayMs(error: SwiftCartError, retry: number, random: () => number = Math.random): number {
  const asked = Number(error.extensions.retryAfterSeconds);
  const askedMs = Number.isFinite(asked) && asked > 0 ? asked * 1000 : 0;
  const backoff = BUSY_BASE_MS * 2 ** (retry - 1);
  // Up to a quarter more, so that clients refused together do not come back together.
  return Math.min(BUSY_MAX_MS, Math.round(Math.max(askedMs, backoff) * (1 + random() / 4)));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The arguments of a method: variables may be left out when none of them is required. */
export type MethodArgs<V, O> = {} extends V ? [variables?: V, options?: O] : [variables: V, options?: O];

/** One typed method per query and mutation of `schema/operations/`, resolving to the operation's `data`. */
export type RequestMethods = {
  [K in keyof typeof requestDocuments]: (
    ...args: MethodArgs<VariablesOf<(typeof requestDocuments)[K]>, RequestOptions>
  ) => Promise<ResultOf<(typeof requestDocuments)[K]>>;
};

/** One typed method per subscription of `schema/operations/`, returning an async iterator of its `data`. */
export type SubscriptionMethods = {
  [K in keyof typeof subscriptionDocuments]: (
    ...args: MethodArgs<VariablesOf<(typeof subscriptionDocuments)[K]>, never>
  ) => LiveSubscription<ResultOf<(typeof subscriptionDocuments)[K]>>;
};

/** The SwiftCart client: a typed method per operation, plus generic `request`/`subscribe` and `close`. */
export interface SwiftCartClient extends RequestMethods, SubscriptionMethods, AsyncDisposable {
  /** Runs any typed query or mutation document (e.g. one of your own) and resolves to its `data`. */
  request<R, V>(document: TypedDocumentNode<R, V>, ...args: MethodArgs<V, RequestOptions>): Promise<R>;
  /** Starts any typed subscription document; the connection opens on the iterator's first `next()`. */
  subscribe<R, V>(document: TypedDocumentNode<R, V>, ...args: MethodArgs<V, never>): LiveSubscription<R>;
  /** Closes every WebSocket (running subscriptions end); HTTP methods keep working. */
  close(): Promise<void>;
}

/** A document's text, operation name and (for the SDK's own documents) trusted-document id, computed once per document. */
interface Prepared {
  readonly query: string;
  readonly operationName: string | undefined;
  readonly id: string | undefined;
}

/** The SDK's own documents: only these are sent by id (a document of the caller's may share a name). */
const OWN_DOCUMENTS = new Set<DocumentNode>([...Object.values(requestDocuments), ...Object.values(subscriptionDocuments)]);

const prepared = new WeakMap<DocumentNode, Prepared>();

function prepare(document: DocumentNode): Prepared {
  let entry = prepared.get(document);
  if (!entry) {
    const operation = document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
    const operationName = operation?.name?.value;
    entry = { query: print(document), operationName, id: OWN_DOCUMENTS.has(document) && operationName ? DOCUMENT_IDS[operationName] : undefined };
    prepared.set(document, entry);
  }
  return entry;
}

/**
 * Creates a client of the SwiftCart gateway. Nothing connects until the first call: HTTP requests
 * are independent, and a WebSocket opens with the first subscription of a token and closes after
 * its last one.
 *
 * @example
 * const client = createClient({ url: 'http://127.0.0.1:4000/graphql', token: () => session.token });
 * const { products } = await client.browseProducts({ first: 20 });
 */
export function createClient(options: ClientOptions): SwiftCartClient {
  const fetchImpl = options.fetch ?? defaultFetch;
  const live = new LiveConnections({
    url: options.wsUrl ?? webSocketUrlOf(options.url),
    webSocketImpl: options.webSocketImpl,
    retryAttempts: options.retryAttempts,
  });

  const busyRetries = options.busyRetries ?? 3;
  if (!Number.isSafeInteger(busyRetries) || busyRetries < 0) throw new TypeError(`busyRetries must be a whole number from 0, got ${busyRetries}`);

  async function request(document: DocumentNode, variables?: unknown, requestOptions?: RequestOptions): Promise<any> {
    const { query, operationName, id } = prepare(document);
    // A trusted document goes by its id alone; a gateway that does not know it (an older one, or
    // one that restarted and forgot a registered id) says PERSISTED_QUERY_NOT_FOUND, and the text follows.
    const byId = id !== undefined && options.trustedDocuments !== false;
    const post = async (token: string | null) => {
      if (byId) {
        try {
          return await postOperation(fetchImpl, { url: options.url, query: undefined, id, operationName, variables, token }, requestOptions);
        } catch (error) {
          if (!(error instanceof SwiftCartError) || error.code !== ErrorCode.PersistedQueryNotFound) throw error;
        }
      }
      return postOperation(fetchImpl, { url: options.url, query, id: byId ? id : undefined, operationName, variables, token }, requestOptions);
    };
    for (let retry = 1; ; retry++) {
      const token = await resolveToken(options.token);
      try {
        return await post(token);
      } catch (error) {
        if (!(error instanceof SwiftCartError) || !BUSY_CODES.has(error.code) || retry > busyRetries) throw error;
        const delayMs = busyDelayMs(error, retry);
        options.onBusy?.({ operationName, retry, delayMs, error });
        await sleep(delayMs, requestOptions?.signal);
      }
    }
  }

  function subscribe(document: DocumentNode, variables?: unknown): LiveSubscription<any> {
    const { query, operationName } = prepare(document);
    return new LiveIterator(async () => live.acquire(await resolveToken(options.token)), { query, operationName, variables });
  }

  const methods: Record<string, unknown> = {};
  for (const [name, document] of Object.entries(requestDocuments)) {
    methods[name] = (variables?: unknown, requestOptions?: RequestOptions) => request(document, variables, requestOptions);
  }
  for (const [name, document] of Object.entries(subscriptionDocuments)) {
    methods[name] = (variables?: unknown) => subscribe(document, variables);
  }
  const close = () => live.close();
  return {
    ...methods,
    request: (document: DocumentNode, variables?: unknown, requestOptions?: RequestOptions) => request(document, variables, requestOptions),
    subscribe: (document: DocumentNode, variables?: unknown) => subscribe(document, variables),
    close,
    [Symbol.asyncDispose]: close,
  } as unknown as SwiftCartClient;
}

/** The `data` type of one of the client's methods, e.g. `ResultOfMethod<'browseProducts'>`. */
export type ResultOfMethod<K extends keyof typeof requestDocuments | keyof typeof subscriptionDocuments> = ResultOf<
  (typeof requestDocuments & typeof subscriptionDocuments)[K]
>;
