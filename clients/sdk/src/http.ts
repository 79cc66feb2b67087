/**
 * Queries and mutations over HTTP: one JSON POST per operation with the global (or a given)
 * `fetch`, and every failure turned into a {@link SwiftCartError}.
 */
import { ClientErrorCode, SwiftCartError, isGraphQLErrorList } from './errors.ts';
import { ACCEPT_GRAPHQL_RESPONSE, AUTHORIZATION_HEADER, HTTP_METHOD, JSON_MEDIA_TYPE, bearer } from './wire.ts';

/** The part of a `fetch` response the SDK reads. */
export interface FetchResponse {
  /** The HTTP status code. */
  readonly status: number;
  /** Whether the status is 2xx. */
  readonly ok: boolean;
  /** The body as text. */
  text(): Promise<string>;
}

/** The part of a `fetch` request the SDK sends. */
export interface FetchInit {
  /** Always POST. */
  readonly method: string;
  /** Content type, accept, and authorization when there is a token. */
  readonly headers: Record<string, string>;
  /** The JSON body: `{ query, variables, operationName }`. */
  readonly body: string;
  /** Aborts the request. */
  readonly signal?: AbortSignal;
}

/**
 * A `fetch` function: the platform's global one (browsers, Node ≥ 18, React Native) by default,
 * or any compatible implementation (a polyfill, a test double, one with custom TLS settings).
 */
export type FetchLike = (url: string, init: FetchInit) => Promise<FetchResponse>;

/** Per-call settings of a query or mutation. */
export interface RequestOptions {
  /** Aborts the request; the method then rejects with the signal's reason, not a SwiftCartError. */
  readonly signal?: AbortSignal;
}

/** One operation to send. */
export interface HttpOperation {
  /** The GraphQL endpoint. */
  readonly url: string;
  /** The operation's text; left out when `id` names it (a trusted document). */
  readonly query: string | undefined;
  /** The trusted-document id (SHA-256 of the text), sent as `extensions.persistedQuery`. */
  readonly id?: string;
  /** The operation's name (selects it in a document with several). */
  readonly operationName: string | undefined;
  /** Its variables. */
  readonly variables: unknown;
  /** The caller's token, or null for the anonymous viewer. */
  readonly token: string | null;
}

/** The default `fetch`: the global one, looked up at call time so that a polyfill installed later is used. */
export const defaultFetch: FetchLike = (url, init) => {
  const fetchImpl = (globalThis as { fetch?: FetchLike }).fetch;
  if (typeof fetchImpl !== 'function') throw new TypeError('no global fetch: pass `fetch` to createClient');
  return fetchImpl(url, init);
};

/** Sends `operation` and returns its `data`; throws {@link SwiftCartError} for anything else. */
export async function postOperation(fetchImpl: FetchLike, operation: HttpOperation, options: RequestOptions = {}): Promise<unknown> {
  const headers: Record<string, string> = { 'content-type': JSON_MEDIA_TYPE, accept: ACCEPT_GRAPHQL_RESPONSE };
  if (operation.token) headers[AUTHORIZATION_HEADER] = bearer(operation.token);
  const body = JSON.stringify({
    query: operation.query,
    variables: operation.variables ?? {},
    operationName: operation.operationName,
    extensions: operation.id ? { persistedQuery: { version: 1, sha256Hash: operation.id } } : undefined,
  });
  let response: FetchResponse;
  let text: string;
  try {
    response = await fetchImpl(operation.url, { method: HTTP_METHOD, headers, body, signal: options.signal });
    text = await response.text();
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new SwiftCartError({
      code: ClientErrorCode.NetworkError,
      message: `${operation.url} could not be reached: ${(error as Error)?.message ?? error}`,
      cause: error,
    });
  }
  let result: { data?: unknown; errors?: unknown };
  try {
    result = JSON.parse(text);
  } catch (error) {
    const code = response.ok ? ClientErrorCode.BadResponse : ClientErrorCode.HttpError;
    throw new SwiftCartError({
      code,
      message: `${operation.url} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`,
      status: response.status,
      cause: error,
    });
  }
  if (isGraphQLErrorList(result?.errors)) {
    throw SwiftCartError.fromGraphQLErrors(result.errors, { status: response.status, data: result.data ?? undefined });
  }
  if (!response.ok) {
    throw new SwiftCartError({ code: ClientErrorCode.HttpError, message: `${operation.url} answered HTTP ${response.status}`, status: response.status });
  }
  if (result === null || typeof result !== 'object' || result.data === null || typeof result.data !== 'object') {
    throw new SwiftCartError({ code: ClientErrorCode.BadResponse, message: `${operation.url} answered without data or errors`, status: response.status });
  }
  return result.data;
}
