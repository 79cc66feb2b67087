import { GraphQLError } from 'graphql';

/**
 * The `extensions.code` values that SwiftCart's GraphQL API returns. Clients branch on these,
 * so they are part of the contract: add new ones, never rename.
 */
export const ErrorCode = {
  BadUserInput: 'BAD_USER_INPUT',
  Unauthenticated: 'UNAUTHENTICATED',
  Forbidden: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  Conflict: 'CONFLICT',
  InsufficientStock: 'INSUFFICIENT_STOCK',
  IdempotencyKeyReused: 'IDEMPOTENCY_KEY_REUSED',
  OrderNotCancellable: 'ORDER_NOT_CANCELLABLE',
  ProductUnavailable: 'PRODUCT_UNAVAILABLE',
  InvalidTransition: 'INVALID_TRANSITION',
  GraphQLValidationFailed: 'GRAPHQL_VALIDATION_FAILED',
  InternalServerError: 'INTERNAL_SERVER_ERROR',
  /** The operation nests fields deeper than the configured maximum depth (HTTP 400). */
  DepthLimitExceeded: 'DEPTH_LIMIT_EXCEEDED',
  /** The operation uses more aliases than allowed (HTTP 400). */
  AliasLimitExceeded: 'ALIAS_LIMIT_EXCEEDED',
  /** The operation uses more directives than allowed (HTTP 400). */
  DirectiveLimitExceeded: 'DIRECTIVE_LIMIT_EXCEEDED',
  /** The document has more tokens than the parser accepts (HTTP 400). */
  TokenLimitExceeded: 'TOKEN_LIMIT_EXCEEDED',
  /** The operation's estimated cost (list sizes included) exceeds the maximum (HTTP 400). */
  CostLimitExceeded: 'COST_LIMIT_EXCEEDED',
  /** `operationName` is missing for a document with several operations, or names none of them (HTTP 400). */
  OperationResolutionFailure: 'OPERATION_RESOLUTION_FAILURE',
  /** Too many requests, sockets or subscriptions; `extensions.retryAfterSeconds` says when to retry (HTTP 429). */
  RateLimited: 'RATE_LIMITED',
  /** The request's `Origin` is neither the gateway's own nor in the allow-list (HTTP 403). */
  ForbiddenOrigin: 'FORBIDDEN_ORIGIN',
  /** A subgraph was called without the gateway's credential (HTTP 401). */
  GatewayCredentialRequired: 'GATEWAY_CREDENTIAL_REQUIRED',
  /**
   * The platform is too busy to take this on now (the saga lags); nothing was done, and
   * `extensions.retryAfterSeconds` says when to try again (HTTP 503 when the whole request is refused).
   */
  Overloaded: 'OVERLOADED',
} as const;

/** One of the documented error codes. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A GraphQL error whose `extensions.code` tells the client what went wrong. */
export function apiError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { ...extensions, code } });
}

/** Bad input from the client; `field` names the argument or input field at fault. */
export function badInput(message: string, field?: string): GraphQLError {
  return apiError(ErrorCode.BadUserInput, message, field ? { field } : {});
}

/** The thing the client named does not exist. */
export function notFound(what: string, id: string): GraphQLError {
  return apiError(ErrorCode.NotFound, `${what} "${id}" does not exist`, { id });
}
