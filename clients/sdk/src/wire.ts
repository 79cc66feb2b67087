/**
 * The values the SDK puts on the wire, by name: HTTP headers and media types, the bearer scheme,
 * the graphql-ws connection parameter, and the WebSocket close codes it interprets.
 */

/** The media type of a GraphQL request body sent over HTTP POST. */
export const JSON_MEDIA_TYPE = 'application/json';

/**
 * The `Accept` header of every HTTP request: the GraphQL-over-HTTP response type first, plain JSON
 * as the fallback older servers answer with.
 */
export const ACCEPT_GRAPHQL_RESPONSE = 'application/graphql-response+json, application/json;q=0.9';

/** The HTTP method of every operation, queries included (the gateway's CSRF rule accepts JSON POSTs). */
export const HTTP_METHOD = 'POST';

/** The header that carries the token over HTTP. */
export const AUTHORIZATION_HEADER = 'authorization';

/** The key of graphql-ws `connectionParams` that carries the token (docs/live.md). */
export const AUTHORIZATION_PARAM = 'authorization';

/** The scheme prefix of a token in {@link AUTHORIZATION_HEADER} and {@link AUTHORIZATION_PARAM}. */
export const BEARER_PREFIX = 'Bearer ';

/** The gateway closes a WebSocket whose token it refuses with 4403 Forbidden (docs/live.md). */
export const CLOSE_FORBIDDEN = 4403;

/** The gateway closes a WebSocket that does not read its messages with 1008 (docs/live.md). */
export const CLOSE_SLOW_CLIENT = 1008;

/** The `Authorization` value for a token. */
export function bearer(token: string): string {
  return `${BEARER_PREFIX}${token}`;
}

/** The WebSocket URL of an HTTP GraphQL endpoint: `http:` becomes `ws:`, `https:` becomes `wss:`. */
export function webSocketUrlOf(url: string): string {
  return url.replace(/^http(s?):/i, (_, secure: string) => `ws${secure}:`);
}
