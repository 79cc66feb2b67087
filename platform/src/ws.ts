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
  GraphQLError, getOperationAST,
  type ExecutionArgs, type GraphQLFormattedError, type GraphQLSchema,
} from 'graphql';
import { type Viewer, viewerFromAuthorization } from './auth.ts';
import { type Clock, ExpiringStream, TOKEN_EXPIRED_CLOSE, TOKEN_EXPIRED_CLOSE_DELAY_MS, atTime, tokenExpiredError } from './expiry.ts';
import { GATEWAY_CREDENTIAL_STATUS, gatewayCredentialCheck, gatewayCredentialRequiredBody } from './gateway-credential.ts';
import { InputGuard } from './input.ts';
import { DEFAULT_SUBGRAPH_LIMITS, type SubgraphLimits, limitValidationRules, operationResolutionError, parseWithLimit, validateWithLimits } from './limits.ts';
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
  /** Refuses bad strings in documents and variables (platform/src/input.ts); default limits when absent. */
  readonly inputGuard?: InputGuard;
  /** The subgraph's depth and token limits, as over HTTP; default {@link DEFAULT_SUBGRAPH_LIMITS}. */
  readonly limits?: SubgraphLimits;
  /**
   * A subgraph's `SUBGRAPH_SECRET`: the upgrade request must carry it (platform/src/gateway-credential.ts),
   * else it is answered 401 GATEWAY_CREDENTIAL_REQUIRED and no WebSocket opens.
   */
  readonly gatewaySecret?: string | null;
  /** When tokens expire (platform/src/expiry.ts); default `Date.now`. */
  readonly clock?: Clock;
}

/** A running subscription endpoint; closing it closes every socket with 1001 "Going away". */
export interface SubscriptionServer extends AsyncDisposable {
  /** The WebSocket connections open right now. */
  readonly connections: number;
  close(): Promise<void>;
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
  const inputGuard = options.inputGuard ?? new InputGuard();
  const limits = options.limits ?? DEFAULT_SUBGRAPH_LIMITS;
  const limitRules = limitValidationRules({ maxDepth: limits.maxDepth });
  const fromGateway = options.gatewaySecret ? gatewayCredentialCheck(options.gatewaySecret) : null;
  const refusal = JSON.stringify(gatewayCredentialRequiredBody());
  const wss = new WebSocketServer({
    server: options.server, path: options.path ?? PATHS.graphql, maxPayload: MAX_BODY_BYTES,
    // Checked on the upgrade request itself, before any socket or graphql-ws state exists.
    ...(fromGateway && {
      verifyClient: ({ req }: { req: http.IncomingMessage }, done: (ok: boolean, status?: number, body?: string, headers?: http.OutgoingHttpHeaders) => void) => {
        if (fromGateway(req.headers)) return done(true);
        done(false, GATEWAY_CREDENTIAL_STATUS, refusal, { 'content-type': 'application/json; charset=utf-8' });
      },
    }),
  });
  // graphql-ws keeps one Context per socket for its whole life: the viewer is decided once, at init.
  const viewers = new WeakMap<Context<any, any>, Viewer>();
  // A connection with a token ends its subscriptions when the token expires (platform/src/expiry.ts).
  const expiries = new WeakMap<Context<any, any>, { expired: boolean; readonly streams: Map<string, ExpiringStream<unknown>>; cancel: () => void }>();
  const expire = (ctx: Context<any, any>) => {
    const expiry = expiries.get(ctx)!;
    expiry.expired = true;
    for (const stream of expiry.streams.values()) stream.expire();
    const socket = (ctx.extra as { socket: WebSocket }).socket;
    setTimeout(() => socket.close(TOKEN_EXPIRED_CLOSE.code, TOKEN_EXPIRED_CLOSE.reason), TOKEN_EXPIRED_CLOSE_DELAY_MS).unref();
  };
  const format = (error: GraphQLError): GraphQLFormattedError =>
    options.formatError ? options.formatError(error.toJSON(), error) : error.toJSON();

  const served = useServer<Record<string, unknown> | undefined>({
    schema,
    connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? DEFAULT_CONNECTION_INIT_TIMEOUT_MS,
    isProd: options.production ?? false,
    onConnect: async (ctx) => {
      try {
        const viewer = await viewerFromAuthorization(authorizationParam(ctx.connectionParams), options.jwtSecret);
        viewers.set(ctx, viewer);
        if (viewer.expiresAt !== null) {
          expiries.set(ctx, { expired: false, streams: new Map(), cancel: atTime(viewer.expiresAt, () => expire(ctx), options.clock) });
        }
        return true;
      } catch (error) {
        log.info({ err: (error as Error).message }, 'subscription connection refused');
        return false;
      }
    },
    // The client's mistakes carry the codes Apollo gives them over HTTP, so `formatError` passes
    // them through instead of logging (and, in production, masking) them as internal errors.
    onSubscribe: (ctx, _id, payload) => {
      if (expiries.get(ctx)?.expired) return [tokenExpiredError()];
      // The subgraph's own depth and token limits, as over HTTP (platform/src/limits.ts).
      const document = parseWithLimit(payload.query, limits.maxTokens);
      if (document instanceof GraphQLError) return [document];
      const errors = validateWithLimits(schema, document, limitRules);
      if (errors.length > 0) return errors;
      const operation = getOperationAST(document, payload.operationName);
      if (!operation) return [operationResolutionError(payload.operationName)];
      if (operation.operation !== 'subscription') {
        return [new GraphQLError(`Only subscriptions are served over WebSocket; send this ${operation.operation} over HTTP`, { extensions: { code: 'BAD_REQUEST' } })];
      }
      const refused = inputGuard.check(schema, document, operation, payload.variables);
      if (refused) return [refused];
      const args: ExecutionArgs = { schema, document, operationName: payload.operationName, variableValues: payload.variables };
      return args;
    },
    context: async (ctx) => {
      const viewer = viewers.get(ctx);
      if (!viewer) throw new Error('subscription before an acknowledged connection');
      return options.context(viewer) as Promise<Record<string, unknown>>;
    },
    onOperation: (ctx, id, _payload, _args, result) => {
      const expiry = expiries.get(ctx);
      if (!expiry || !(Symbol.asyncIterator in result)) return undefined;
      const stream = new ExpiringStream<unknown>(result, () => ({ errors: [tokenExpiredError()] }));
      expiry.streams.set(id, stream);
      return stream as never;
    },
    // Called however an operation ends: by the server, the client, or the socket closing.
    onComplete: (ctx, id) => { expiries.get(ctx)?.streams.delete(id); },
    onClose: (ctx) => expiries.get(ctx)?.cancel(),
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
