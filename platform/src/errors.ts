import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ErrorCode } from '@swiftcart/sdk/errors';
import type { Logger } from './logger.ts';

/**
 * The `extensions.code` values that SwiftCart's GraphQL API returns. The SDK owns the table
 * because it is the public wire contract clients branch on; the servers import it from there so
 * that a code can't be emitted without the SDK knowing it.
 */
export { ErrorCode };

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
const UNREACHABLE_MESSAGE =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down|in recovery mode)|Connection is closed|Reached the max retries per request limit|Stream isn't writeable/i;

/**
 * Whether `error` (or what caused it: `cause`, `originalError`) says that something the work
 * needed could not be reached, rather than that the work itself failed: a refused, cut or timed-out
 * connection, a PostgreSQL server shutting down or recovering (SQLSTATE class 08, 57P01–57P03), no
 * connection slot left, an ioredis command given up while Redis is away (its errors carry no code). Such work is worth doing again later, however often: a consumer never
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

/** How {@link errorFormatter} formats one server's errors: what differs between a subgraph and the gateway. */
export interface ErrorFormatterOptions {
  /** Masks unexpected errors (and the `internalExtensions`) from clients. */
  readonly production: boolean;
  readonly log: Logger;
  /** What a client is told when something its request needed was out of reach ({@link isUnavailable}). */
  unavailableMessage(formatted: GraphQLFormattedError): string;
  /** The log lines of such a failure and of an unexpected error. */
  readonly logMessages: { readonly unavailable: string; readonly unexpected: string };
  /**
   * Extensions dropped in production from errors that keep their code: the gateway's `response`,
   * which @apollo/gateway attaches with a failed subgraph's HTTP response (its URL and body).
   */
  readonly internalExtensions?: readonly string[];
}

/**
 * The `formatError` of an Apollo server (and of its graphql-ws endpoint). Errors with a documented
 * code pass through. Something out of reach is SERVICE_UNAVAILABLE, with a retry delay, logged as a
 * warning. Anything else is logged as an error and, in production, replaced by a generic
 * INTERNAL_SERVER_ERROR, so that internals (SQL, URLs, bodies) never reach a client.
 */
export function errorFormatter(options: ErrorFormatterOptions): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  const { production, log, logMessages } = options;
  const internal = production ? (options.internalExtensions ?? []) : [];
  return (formatted, error) => {
    const code = formatted.extensions?.code;
    if (code && code !== ErrorCode.InternalServerError) {
      const extensions = formatted.extensions!;
      if (!internal.some((name) => name in extensions)) return formatted;
      return { ...formatted, extensions: Object.fromEntries(Object.entries(extensions).filter(([name]) => !internal.includes(name))) };
    }
    if (isUnavailable(error)) {
      log.warn({ err: error }, logMessages.unavailable);
      return unavailableError(options.unavailableMessage(formatted), formatted.path, formatted.locations);
    }
    log.error({ err: error }, logMessages.unexpected);
    if (!production) return formatted;
    return { message: 'Internal server error', path: formatted.path, locations: formatted.locations, extensions: { code: ErrorCode.InternalServerError } };
  };
}
