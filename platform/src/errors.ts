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
  /**
   * A part of the platform is briefly out of reach: a service, its database or a broker is
   * restarting. `extensions.retryAfterSeconds` says when to try again (HTTP 503 when the whole
   * request failed). A query may simply be sent again; a mutation may or may not have been applied,
   * so send it again only with the same idempotency key (`placeOrder`) or after reading the state.
   */
  ServiceUnavailable: 'SERVICE_UNAVAILABLE',
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

/** Socket errors of a connection that is refused, cut or timed out. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_SOCKET']);
/** PostgreSQL's SQLSTATEs for "the server is going away or not there yet": shutdown, crash recovery, no slot. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
const UNREACHABLE_MESSAGE = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down|in recovery mode)/i;

/**
 * Whether `error` (or what caused it: `cause`, `originalError`) says that something the work
 * needed could not be reached, rather than that the work itself failed: a refused, cut or timed-out
 * connection, a PostgreSQL server shutting down or recovering (SQLSTATE class 08, 57P01–57P03), no
 * connection slot left. Such work is worth doing again later, however often: a consumer never
 * dead-letters it, and a client is told SERVICE_UNAVAILABLE, not INTERNAL_SERVER_ERROR.
 */
export function isUnavailable(error: unknown): boolean {
  type Link = { code?: unknown; message?: unknown; cause?: unknown; originalError?: unknown } | null | undefined;
  const seen = new Set<unknown>();
  for (let e = error as Link; e && typeof e === 'object' && !seen.has(e) && seen.size < 8; e = (e.cause ?? e.originalError) as Link) {
    seen.add(e);
    if (typeof e.code === 'string' && (UNREACHABLE_CODES.has(e.code) || UNAVAILABLE_STATES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code))) return true;
    if (typeof e.message === 'string' && UNREACHABLE_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/** How long a client told SERVICE_UNAVAILABLE should wait: a restarting process is back within seconds. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

/** The error a client sees for work that failed because a part of the platform was out of reach ({@link isUnavailable}). */
export function unavailableError(message: string, path?: readonly (string | number)[], locations?: readonly { line: number; column: number }[]) {
  return { message, path, locations, extensions: { code: ErrorCode.ServiceUnavailable, retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS } };
}
