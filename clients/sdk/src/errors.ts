/**
 * SwiftCartError: the one error type the SDK throws, with the API's `extensions.code` typed.
 */

/**
 * The `extensions.code` values the SwiftCart API documents (README's error table and the schema's
 * descriptions), by name. Clients branch on these; the API adds codes but never renames one.
 */
export const ErrorCode = {
  /** An argument is invalid; `extensions.field` names it. */
  BadUserInput: 'BAD_USER_INPUT',
  /** The operation does not match the schema. */
  GraphQLValidationFailed: 'GRAPHQL_VALIDATION_FAILED',
  /** The operation is not valid GraphQL syntax. */
  GraphQLParseFailed: 'GRAPHQL_PARSE_FAILED',
  /** No token where one is needed, or the token is invalid or expired (HTTP 401, WebSocket close 4403). */
  Unauthenticated: 'UNAUTHENTICATED',
  /** The caller lacks the role, or the data belongs to another customer. */
  Forbidden: 'FORBIDDEN',
  /** A mutation named something that does not exist. */
  NotFound: 'NOT_FOUND',
  /** It exists already (a duplicate sku). */
  Conflict: 'CONFLICT',
  /** A stock change would leave fewer units on hand than reserved. */
  InsufficientStock: 'INSUFFICIENT_STOCK',
  /** `placeOrder` with an idempotency key that was used with other input. */
  IdempotencyKeyReused: 'IDEMPOTENCY_KEY_REUSED',
  /** `cancelOrder` once the order has shipped; `extensions.status` says where it is. */
  OrderNotCancellable: 'ORDER_NOT_CANCELLABLE',
  /** `placeOrder` for a discontinued sku. */
  ProductUnavailable: 'PRODUCT_UNAVAILABLE',
  /** `addToCart` or `updateCartItem` beyond the units allowed per line or the lines allowed per cart; `extensions.limit` gives the limit. */
  CartLimitExceeded: 'CART_LIMIT_EXCEEDED',
  /** `checkout` of an empty cart. */
  CartEmpty: 'CART_EMPTY',
  /** A shipment change that does not fit its current status. */
  InvalidTransition: 'INVALID_TRANSITION',
  /** The HTTP body is not valid JSON (HTTP 400). */
  BadRequest: 'BAD_REQUEST',
  /** The HTTP body exceeds 1 MiB (HTTP 413). */
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  /** The operation nests deeper than the gateway allows (HTTP 400); `extensions.limit` gives the limit. */
  DepthLimitExceeded: 'DEPTH_LIMIT_EXCEEDED',
  /** The operation uses more aliases than the gateway allows (HTTP 400). */
  AliasLimitExceeded: 'ALIAS_LIMIT_EXCEEDED',
  /** The operation uses more directives than the gateway allows (HTTP 400). */
  DirectiveLimitExceeded: 'DIRECTIVE_LIMIT_EXCEEDED',
  /** The document has more tokens than the gateway parses (HTTP 400). */
  TokenLimitExceeded: 'TOKEN_LIMIT_EXCEEDED',
  /** The operation's estimated cost is over the gateway's budget (HTTP 400); `extensions.cost` and `extensions.limit` say by how much. */
  CostLimitExceeded: 'COST_LIMIT_EXCEEDED',
  /** The document holds several operations and `operationName` is missing or names none of them (HTTP 400). */
  OperationResolutionFailure: 'OPERATION_RESOLUTION_FAILURE',
  /** Too many requests, sockets or subscriptions (HTTP 429 with Retry-After, or WebSocket close 4429); `extensions.retryAfterSeconds` says when to try again. */
  RateLimited: 'RATE_LIMITED',
  /** The browser's `Origin` is not one the gateway serves (HTTP 403). */
  ForbiddenOrigin: 'FORBIDDEN_ORIGIN',
  /** (subgraphs only) A subgraph was called without the gateway's credential (HTTP 401). */
  GatewayCredentialRequired: 'GATEWAY_CREDENTIAL_REQUIRED',
  /** The platform is too busy to take this on now (HTTP 503 with Retry-After); nothing was done, `extensions.retryAfterSeconds` says when to try again. */
  Overloaded: 'OVERLOADED',
  /**
   * A service, its database or a broker is restarting (HTTP 503 with Retry-After when nothing else
   * was answered); `extensions.retryAfterSeconds` says when to try again. A mutation may or may not
   * have been applied: send it again only with the same idempotency key, or read what it did.
   */
  ServiceUnavailable: 'SERVICE_UNAVAILABLE',
  /** A bug on the server. */
  InternalServerError: 'INTERNAL_SERVER_ERROR',
  /** (subscriptions) The gateway loaded a new schema: subscribe again. */
  SubscriptionSchemaReload: 'SUBSCRIPTION_SCHEMA_RELOAD',
  /** (subscriptions) The subgraph owning the subscription stayed unreachable: subscribe again later. */
  SubscriptionUpstreamFailed: 'SUBSCRIPTION_UPSTREAM_FAILED',
  /** The gateway does not know the trusted-document id sent alone: the SDK sends the document next (you only see it with your own fetch). */
  PersistedQueryNotFound: 'PERSISTED_QUERY_NOT_FOUND',
  /** The gateway runs only trusted documents (production) and this one is not among them. */
  PersistedQueryNotInList: 'PERSISTED_QUERY_NOT_IN_LIST',
  /** (subscriptions) The subscription reached a gateway that had begun to stop: subscribe again. A stopping gateway's open subscriptions are not ended: their socket closes with 1001 and the SDK resubscribes. */
  ShuttingDown: 'SHUTTING_DOWN',
} as const;

/** One of the API's documented error codes. */
export type ApiErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The codes the SDK itself gives to failures that carry no GraphQL error, by name.
 */
export const ClientErrorCode = {
  /** The request never got an answer: offline, DNS, refused connection, or the fetch failed otherwise. */
  NetworkError: 'NETWORK_ERROR',
  /** The server answered with an HTTP error status and no GraphQL errors. */
  HttpError: 'HTTP_ERROR',
  /** The answer was not a GraphQL response (not JSON, or neither `data` nor `errors`). */
  BadResponse: 'BAD_RESPONSE',
  /** The WebSocket closed under a subscription; `closeCode` and `closeReason` say how. */
  ConnectionClosed: 'CONNECTION_CLOSED',
} as const;

/** One of the SDK's own error codes. */
export type ClientErrorCodeValue = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/**
 * The code of a {@link SwiftCartError}: a documented API code, an SDK code, or (for codes added to
 * the API after this SDK was built) any other string.
 */
export type SwiftCartErrorCode = ApiErrorCode | ClientErrorCodeValue | (string & {});

/** One GraphQL error as the server sent it. */
export interface GraphQLErrorPayload {
  /** What went wrong, in words (masked in production for internal errors). */
  readonly message: string;
  /** Where in the operation it happened. */
  readonly locations?: readonly { readonly line: number; readonly column: number }[];
  /** The response path of the field that failed. */
  readonly path?: readonly (string | number)[];
  /** `code`, and per code more detail (`field`, `status`, `id`, ...). */
  readonly extensions?: { readonly code?: string; readonly [key: string]: unknown };
}

/** What a {@link SwiftCartError} is made of. */
export interface SwiftCartErrorInit {
  /** The error's code. */
  readonly code: SwiftCartErrorCode;
  /** The error's message. */
  readonly message: string;
  /** Every GraphQL error of the response (empty when there were none). */
  readonly errors?: readonly GraphQLErrorPayload[];
  /** The HTTP status, when the error came over HTTP. */
  readonly status?: number;
  /** The WebSocket close code, when a subscription's socket closed. */
  readonly closeCode?: number;
  /** The WebSocket close reason, when a subscription's socket closed. */
  readonly closeReason?: string;
  /** The partial `data` that came with GraphQL errors, if any. */
  readonly data?: unknown;
  /** The underlying error (a failed fetch, a parse error). */
  readonly cause?: unknown;
}

/** The code used when a GraphQL error carries no `extensions.code`. */
const UNCODED = ErrorCode.InternalServerError;

/**
 * The error every SDK method throws (and every subscription iterator rejects with): a GraphQL
 * error result, an HTTP error, a network failure, or a subscription's socket closing.
 *
 * Branch on {@link SwiftCartError.code}: it is the first GraphQL error's `extensions.code`, or one
 * of {@link ClientErrorCode} when there was no GraphQL error.
 */
export class SwiftCartError extends Error {
  override readonly name = 'SwiftCartError';
  /** The first GraphQL error's `extensions.code`, else one of {@link ClientErrorCode}. */
  readonly code: SwiftCartErrorCode;
  /** Every GraphQL error of the response, in order; empty when there was none. */
  readonly errors: readonly GraphQLErrorPayload[];
  /** The HTTP status of the response; undefined for subscriptions and network failures. */
  readonly status: number | undefined;
  /** The WebSocket close code, when a subscription's socket closed (4403: token refused; 1008: slow client). */
  readonly closeCode: number | undefined;
  /** The WebSocket close reason, when a subscription's socket closed. */
  readonly closeReason: string | undefined;
  /** The partial `data` that came with the errors, if any. */
  readonly data: unknown;

  /** Builds an error; the SDK does this, applications normally only catch it. */
  constructor(init: SwiftCartErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.errors = init.errors ?? [];
    this.status = init.status;
    this.closeCode = init.closeCode;
    this.closeReason = init.closeReason;
    this.data = init.data;
  }

  /** The `extensions` of the first GraphQL error (e.g. `field` for BAD_USER_INPUT), or an empty object. */
  get extensions(): { readonly code?: string; readonly [key: string]: unknown } {
    return this.errors[0]?.extensions ?? {};
  }

  /** An error for a GraphQL result with `errors`: the code and message are the first error's. */
  static fromGraphQLErrors(errors: readonly GraphQLErrorPayload[], options: { status?: number; data?: unknown } = {}): SwiftCartError {
    const first = errors[0];
    const code = typeof first?.extensions?.code === 'string' ? first.extensions.code : UNCODED;
    return new SwiftCartError({ code, message: first?.message ?? code, errors, status: options.status, data: options.data });
  }
}

/** Whether `error` is a {@link SwiftCartError}, optionally with the given code. */
export function isSwiftCartError(error: unknown, code?: SwiftCartErrorCode): error is SwiftCartError {
  return error instanceof SwiftCartError && (code === undefined || error.code === code);
}

/** Whether `value` is a non-empty list of GraphQL errors (objects with a string `message`). */
export function isGraphQLErrorList(value: unknown): value is readonly GraphQLErrorPayload[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((e) => typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string')
  );
}
