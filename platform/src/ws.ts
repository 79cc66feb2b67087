/**
 * GraphQL subscriptions over WebSocket for a subgraph: the standard graphql-ws protocol
 * (subprotocol `graphql-transport-ws`) on the HTTP server's own port and path, so the gateway,
 * Apollo Router or Hive Gateway can all subscribe to a subgraph directly (docs/live.md).
 */
import type http from 'node:http';
import { CloseCode, type Context } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  GraphQLError, getOperationAST, parse, validate,
  type ExecutionArgs, type GraphQLFormattedError, type GraphQLSchema,
} from 'graphql';
import { type Viewer, viewerFromAuthorization } from './auth.ts';
import { ErrorCode, apiError } from './errors.ts';
import { MAX_BODY_BYTES, PATHS } from './http.ts';
import type { Logger } from './logger.ts';

/** graphql-ws's default keep-alive: a WebSocket ping every 12 s, a peer silent for another 12 s is cut. */
export const DEFAULT_KEEP_ALIVE_MS = 12_000;
/** How long a socket may stay open without `connection_init` before it is closed with 4408. */
export const DEFAULT_CONNECTION_INIT_TIMEOUT_MS = 3_000;
/** How long closing waits for clients to answer the 1001 close before their sockets are cut. */
const CLOSE_GRACE_MS = 1_000;

/** The close code and reason every open socket gets when the service shuts down. */
export const GOING_AWAY = { code: 1001, reason: 'Going away' } as const;

/** What the subscription server serves, and how. */
export interface SubscriptionServerOptions<TContext> {
  /** The HTTP server whose port (and path) the WebSocket endpoint shares. */
  readonly server: http.Server;
  readonly schema: GraphQLSchema;
  /** The per-subscription context for `viewer`: the same shape as an HTTP request's. */
  readonly context: (viewer: Viewer) => TContext | Promise<TContext>;
  /** Verifies `connectionParams.authorization` exactly as HTTP verifies the header. */
  readonly jwtSecret: string;
  readonly log: Logger;
  /** Turns an error into what the client sees (the same function Apollo uses over HTTP). */
  readonly formatError?: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  /** Default `/graphql`. */
  readonly path?: string;
  /** Default {@link DEFAULT_KEEP_ALIVE_MS}; 0 turns pings off. */
  readonly keepAliveMs?: number;
  /** Default {@link DEFAULT_CONNECTION_INIT_TIMEOUT_MS}. */
  readonly connectionInitWaitTimeoutMs?: number;
  /** Hides internal error messages in close reasons (production). */
  readonly production?: boolean;
}

/** A running subscription endpoint; closing it closes every socket with 1001 "Going away". */
export interface SubscriptionServer extends AsyncDisposable {
  /** The WebSocket connections open right now. */
  readonly connections: number;
  close(): Promise<void>;
}

/** `error` with `extensions.code` set, its message, locations and path kept. */
function coded(error: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, originalError: error.originalError, extensions: { ...error.extensions, code } });
}

/**
 * The token a client sent in `connectionParams`: `authorization` (as the gateway sends it) or
 * `Authorization` (as browsers' clients often do). Anything that is not a string is refused.
 */
export function authorizationParam(params: Readonly<Record<string, unknown>> | undefined | null): string | undefined {
  const value = params?.authorization ?? params?.Authorization;
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new TypeError('connectionParams.authorization must be a string');
  return value;
}

/**
 * Serves graphql-ws subscriptions on `options.server` at `options.path`:
 * - `connection_init` must carry a valid token or none: an invalid one closes the socket with
 *   4403 Forbidden; none means the anonymous viewer, as over HTTP.
 * - Each subscription gets its own context from `options.context(viewer)`, so resolvers written for
 *   HTTP run unchanged (their errors and codes included).
 * - Only subscriptions are executed here; queries and mutations belong to HTTP, where the request
 *   limits apply.
 */
export function serveSubscriptions<TContext>(options: SubscriptionServerOptions<TContext>): SubscriptionServer {
  const { log, schema } = options;
  const wss = new WebSocketServer({ server: options.server, path: options.path ?? PATHS.graphql, maxPayload: MAX_BODY_BYTES });
  // graphql-ws keeps one Context per socket for its whole life: the viewer is decided once, at init.
  const viewers = new WeakMap<Context<any, any>, Viewer>();
  const format = (error: GraphQLError): GraphQLFormattedError =>
    options.formatError ? options.formatError(error.toJSON(), error) : error.toJSON();

  const served = useServer<Record<string, unknown> | undefined>({
    schema,
    connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? DEFAULT_CONNECTION_INIT_TIMEOUT_MS,
    isProd: options.production ?? false,
    onConnect: async (ctx) => {
      try {
        viewers.set(ctx, await viewerFromAuthorization(authorizationParam(ctx.connectionParams), options.jwtSecret));
        return true;
      } catch (error) {
        log.info({ err: (error as Error).message }, 'subscription connection refused');
        return false;
      }
    },
    // The client's mistakes carry the codes Apollo gives them over HTTP, so `formatError` passes
    // them through instead of logging (and, in production, masking) them as internal errors.
    onSubscribe: (_ctx, _id, payload) => {
      let document;
      try {
        document = parse(payload.query);
      } catch (error) {
        return [coded(error as GraphQLError, 'GRAPHQL_PARSE_FAILED')];
      }
      const errors = validate(schema, document);
      if (errors.length > 0) return errors.map((error) => coded(error, ErrorCode.GraphQLValidationFailed));
      const operation = getOperationAST(document, payload.operationName);
      if (!operation) return [apiError(ErrorCode.BadUserInput, 'The document names no operation to run (operationName)', { field: 'operationName' })];
      if (operation.operation !== 'subscription') {
        return [new GraphQLError(`Only subscriptions are served over WebSocket; send this ${operation.operation} over HTTP`, { extensions: { code: 'BAD_REQUEST' } })];
      }
      const args: ExecutionArgs = { schema, document, operationName: payload.operationName, variableValues: payload.variables };
      return args;
    },
    context: async (ctx) => {
      const viewer = viewers.get(ctx);
      if (!viewer) throw new Error('subscription before an acknowledged connection');
      return options.context(viewer) as Promise<Record<string, unknown>>;
    },
    onError: (_ctx, _id, _payload, errors) => errors.map(format),
    onNext: (_ctx, _id, _payload, _args, result) => (result.errors ? { ...result, errors: result.errors.map(format) } : undefined),
  }, wss, options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS);

  let closing: Promise<void> | undefined;
  const close = () => (closing ??= (async () => {
    const sockets = [...wss.clients];
    const closed = sockets.map((socket) => new Promise<void>((resolve) => {
      if (socket.readyState === socket.CLOSED) return resolve();
      socket.once('close', () => resolve());
    }));
    for (const socket of sockets) socket.close(GOING_AWAY.code, GOING_AWAY.reason);
    // A client that never answers the close frame must not hold the shutdown (nor the port).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((resolve) => { timer = setTimeout(resolve, CLOSE_GRACE_MS); })]);
    clearTimeout(timer);
    for (const socket of wss.clients as Set<WebSocket>) socket.terminate();
    // Closes the WebSocketServer and detaches it from the HTTP server (which is closed by its owner).
    await served.dispose();
  })());
  return {
    get connections() { return wss.clients.size; },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The graphql-ws close codes a client can see from a subgraph, for tests and documentation. */
export const SUBSCRIPTION_CLOSE_CODES = {
  forbidden: CloseCode.Forbidden,
  connectionInitTimeout: CloseCode.ConnectionInitialisationTimeout,
  goingAway: GOING_AWAY.code,
} as const;
