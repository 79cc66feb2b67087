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
