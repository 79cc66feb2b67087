/**
 * GraphQL subscriptions over WebSocket for a subgraph: the standard graphql-ws protocol
 * (subprotocol `graphql-transport-ws`) on the HTTP server's own port and path, so the gateway,
 * Apollo Router or Hive Gateway can all subscribe to a subgraph directly (docs/live.md).
 */
import type http from 'node:http';
import { CloseCode, type Context } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';
import {
  GraphQLError,
  getOperationAST,
  print,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { type VerificationSecrets, type Viewer, viewerFromAuthorization } from './auth.ts';
import { type Clock, ExpiringStream, TOKEN_EXPIRED_CLOSE, TOKEN_EXPIRED_CLOSE_DELAY_MS, atTime, hasExpired, tokenExpiredError } from './expiry.ts';
import { GATEWAY_CREDENTIAL_STATUS, gatewayCredentialCheck, gatewayCredentialRequiredBody } from './gateway-credential.ts';
import { InputGuard } from './input.ts';
import {
  DEFAULT_SUBGRAPH_LIMITS,
  type OperationLimits,
  type SubgraphLimits,
  limitValidationRules,
  operationResolutionError,
  parseWithLimit,
  validateWithLimits,
} from './limits.ts';
import { MAX_BODY_BYTES, PATHS } from './http.ts';
import type { Logger } from './logger.ts';
import { waitAtMost } from './resilience.ts';

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
  readonly jwtSecret: VerificationSecrets;
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
   * A subgraph's `SUBGRAPH_SECRET` (or the secrets accepted while it is rotated): the upgrade request must carry one (platform/src/gateway-credential.ts),
   * else it is answered 401 GATEWAY_CREDENTIAL_REQUIRED and no WebSocket opens.
   */
  readonly gatewaySecret?: string | readonly string[] | null;
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

// ---------------------------------------------------------------------------------------------
// What every graphql-ws endpoint does alike, the gateway's (gateway/src/live-server.ts) and each
// subgraph's (serveSubscriptions below): the socket server, the caller and its token's expiry, and
// the checks of an operation before it runs.

/**
 * The WebSocket server of a graphql-ws endpoint, on `server`'s own port and `path`: messages are
 * bounded like HTTP bodies ({@link MAX_BODY_BYTES}), and `verifyClient` (when given) checks the
 * upgrade request itself, before any socket or graphql-ws state exists.
 */
export function graphqlSocketServer(server: http.Server, verifyClient?: ServerOptions['verifyClient'], path: string = PATHS.graphql): WebSocketServer {
  return new WebSocketServer({ server, path, maxPayload: MAX_BODY_BYTES, ...(verifyClient && { verifyClient }) });
}

/**
 * The caller of one graphql-ws connection: graphql-ws keeps one context per socket for its whole
 * life, so the caller is decided once, at `connection_init`, from `connectionParams` exactly as
 * HTTP decides it from the header. A connection with a token ends when the token expires
 * (platform/src/expiry.ts): see {@link SocketCaller.watchExpiry} and {@link SocketCaller.refusal}.
 */
export class SocketCaller {
  readonly viewer: Viewer;
  /** The token as the client sent it, for a gateway to pass on; undefined when none was sent. */
  readonly authorization: string | undefined;
  readonly #clock: Clock | undefined;
  #expired = false;
  #cancelExpiry: (() => void) | null = null;

  private constructor(viewer: Viewer, authorization: string | undefined, clock: Clock | undefined) {
    this.viewer = viewer;
    this.authorization = authorization;
    this.#clock = clock;
  }

  /**
   * Verifies the token of `connectionParams` ({@link authorizationParam}); none is the anonymous
   * caller. Rejects when the token is invalid or expired, or is not a string: the endpoint then
   * refuses the connection (graphql-ws closes it with 4403 Forbidden).
   */
  static async verify(
    connectionParams: Readonly<Record<string, unknown>> | undefined | null,
    jwtSecret: VerificationSecrets,
    clock?: Clock,
  ): Promise<SocketCaller> {
    const authorization = authorizationParam(connectionParams);
    return new SocketCaller(await viewerFromAuthorization(authorization, jwtSecret), authorization, clock);
  }

  /**
   * Ends the connection when the token expires: `endSubscriptions` then gives every open
   * subscription its last message (an UNAUTHENTICATED error) and ends it, and
   * {@link TOKEN_EXPIRED_CLOSE_DELAY_MS} later, once those messages are out, `socket` is closed
   * with {@link TOKEN_EXPIRED_CLOSE}. Nothing for a caller without a token.
   */
  watchExpiry(socket: WebSocket, endSubscriptions: () => void): void {
    if (this.viewer.expiresAt === null) return;
    this.#cancelExpiry = atTime(
      this.viewer.expiresAt,
      () => {
        this.#expired = true;
        endSubscriptions();
        setTimeout(() => socket.close(TOKEN_EXPIRED_CLOSE.code, TOKEN_EXPIRED_CLOSE.reason), TOKEN_EXPIRED_CLOSE_DELAY_MS).unref();
      },
      this.#clock,
    );
  }

  /** Whether the token has expired: its subscriptions were ended, or its `exp` is past. */
  get expired(): boolean {
    return this.#expired || hasExpired(this.viewer, this.#clock);
  }

  /** The refusal of a new operation once the token has expired (UNAUTHENTICATED), else null. */
  refusal(): GraphQLError | null {
    return this.expired ? tokenExpiredError() : null;
  }

  /** Stops watching the expiry: the socket closed first. */
  close(): void {
    this.#cancelExpiry?.();
  }
}

/** What a graphql-ws `subscribe` message asks for. */
export interface OperationRequest {
  readonly query: string;
  readonly operationName?: string | null;
  readonly variables?: Readonly<Record<string, unknown>> | null;
}

/** An operation that passed {@link OperationChecker.check}. */
export interface CheckedOperation {
  readonly document: DocumentNode;
  /** The document printed (normalised), for an engine that plans by its text. */
  readonly source: string;
  readonly operation: OperationDefinitionNode;
}

/** How {@link OperationChecker} checks. */
export interface OperationCheckerOptions {
  /**
   * The limits Apollo Server applies over HTTP: tokens while parsing, depth, aliases and directives
   * while validating (platform/src/limits.ts); none when null (the gateway with EDGE_LIMITS=off).
   */
  readonly limits: Partial<Pick<OperationLimits, 'maxTokens' | 'maxDepth' | 'maxAliases' | 'maxDirectives'>> | null;
  /** Refuses bad strings in documents and variables (platform/src/input.ts); default limits when absent. */
  readonly inputGuard?: InputGuard;
  /** Refuses queries and mutations (BAD_REQUEST): a subgraph serves them over HTTP only. */
  readonly subscriptionsOnly?: boolean;
}

/** Documents kept parsed and validated; storefronts send a handful of distinct ones. */
const MAX_CACHED_DOCUMENTS = 1_000;

type DocumentCheck = { readonly document: DocumentNode; readonly source: string } | { readonly errors: readonly GraphQLError[] };

/**
 * Checks an operation sent over graphql-ws as Apollo Server checks one sent over HTTP, with the
 * codes it gives (so that `formatError` passes them through rather than logging and masking them
 * as internal errors): the parse (with its token limit), graphql's and the limits' validation
 * rules, the operation `operationName` names, and the input guard. Parsed and validated documents
 * are kept by their text, per schema: 10,000 clients subscribing with the same document are
 * parsed and validated once; a new schema starts an empty cache.
 */
export class OperationChecker {
  readonly #maxTokens: number | undefined;
  readonly #rules: ReturnType<typeof limitValidationRules>;
  readonly #inputGuard: InputGuard;
  readonly #subscriptionsOnly: boolean;
  #schema: GraphQLSchema | null = null;
  readonly #documents = new Map<string, DocumentCheck>();

  constructor(options: OperationCheckerOptions) {
    this.#maxTokens = options.limits?.maxTokens;
    this.#rules = options.limits ? limitValidationRules(options.limits) : [];
    this.#inputGuard = options.inputGuard ?? new InputGuard();
    this.#subscriptionsOnly = options.subscriptionsOnly ?? false;
  }

  /** The operation `request` names in a valid document, or why it may not run. */
  check(schema: GraphQLSchema, request: OperationRequest): CheckedOperation | readonly GraphQLError[] {
    const checked = this.#document(schema, request.query);
    if ('errors' in checked) return checked.errors;
    const { document, source } = checked;
    const operation = getOperationAST(document, request.operationName);
    if (!operation) return [operationResolutionError(request.operationName)];
    if (this.#subscriptionsOnly && operation.operation !== 'subscription') {
      return [
        new GraphQLError(`Only subscriptions are served over WebSocket; send this ${operation.operation} over HTTP`, { extensions: { code: 'BAD_REQUEST' } }),
      ];
    }
    const refused = this.#inputGuard.check(schema, document, operation, request.variables);
    if (refused) return [refused];
    return { document, source, operation };
  }

  #document(schema: GraphQLSchema, query: string): DocumentCheck {
    if (schema !== this.#schema) {
      this.#schema = schema;
      this.#documents.clear();
    }
    let entry = this.#documents.get(query);
    if (!entry) {
      entry = this.#compute(schema, query);
      if (this.#documents.size >= MAX_CACHED_DOCUMENTS) this.#documents.delete(this.#documents.keys().next().value!);
      this.#documents.set(query, entry);
    }
    return entry;
  }

  #compute(schema: GraphQLSchema, query: string): DocumentCheck {
    const document = parseWithLimit(query, this.#maxTokens);
    if (document instanceof GraphQLError) return { errors: [document] };
    const invalid = validateWithLimits(schema, document, this.#rules);
    if (invalid.length) return { errors: invalid };
    return { document, source: print(document) };
  }
}

// ---------------------------------------------------------------------------------------------
// A subgraph's endpoint.

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
  // The subgraph's own depth and token limits, as over HTTP (platform/src/limits.ts).
  const checker = new OperationChecker({ limits: options.limits ?? DEFAULT_SUBGRAPH_LIMITS, inputGuard: options.inputGuard, subscriptionsOnly: true });
  const fromGateway = options.gatewaySecret?.length ? gatewayCredentialCheck(options.gatewaySecret) : null;
  const refusal = JSON.stringify(gatewayCredentialRequiredBody());
  const wss = graphqlSocketServer(
    options.server,
    fromGateway
      ? ({ req }, done) => {
          if (fromGateway(req.headers)) return done(true);
          done(false, GATEWAY_CREDENTIAL_STATUS, refusal, { 'content-type': 'application/json; charset=utf-8' });
        }
      : undefined,
    options.path,
  );
  const callers = new WeakMap<Context<any, any>, SocketCaller>();
  // The streams of a connection whose token can expire, ended with it (platform/src/expiry.ts).
  const streams = new WeakMap<Context<any, any>, Map<string, ExpiringStream<unknown>>>();
  const format = (error: GraphQLError): GraphQLFormattedError => (options.formatError ? options.formatError(error.toJSON(), error) : error.toJSON());

  const served = useServer<Record<string, unknown> | undefined>(
    {
      schema,
      connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? DEFAULT_CONNECTION_INIT_TIMEOUT_MS,
      isProd: options.production ?? false,
      onConnect: async (ctx) => {
        try {
          const caller = await SocketCaller.verify(ctx.connectionParams, options.jwtSecret, options.clock);
          callers.set(ctx, caller);
          if (caller.viewer.expiresAt !== null) {
            const open = new Map<string, ExpiringStream<unknown>>();
            streams.set(ctx, open);
            caller.watchExpiry((ctx.extra as { socket: WebSocket }).socket, () => {
              for (const stream of open.values()) stream.expire();
            });
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
        const expired = callers.get(ctx)?.refusal();
        if (expired) return [expired];
        const checked = checker.check(schema, payload);
        if (!('document' in checked)) return checked;
        const args: ExecutionArgs = { schema, document: checked.document, operationName: payload.operationName, variableValues: payload.variables };
        return args;
      },
      context: async (ctx) => {
        const caller = callers.get(ctx);
        if (!caller) throw new Error('subscription before an acknowledged connection');
        return options.context(caller.viewer) as Promise<Record<string, unknown>>;
      },
      onOperation: (ctx, id, _payload, _args, result) => {
        const open = streams.get(ctx);
        if (!open || !(Symbol.asyncIterator in result)) return undefined;
        const stream = new ExpiringStream<unknown>(result, () => ({ errors: [tokenExpiredError()] }));
        open.set(id, stream);
        return stream as never;
      },
      // Called however an operation ends: by the server, the client, or the socket closing.
      onComplete: (ctx, id) => {
        streams.get(ctx)?.delete(id);
      },
      onClose: (ctx) => callers.get(ctx)?.close(),
      onError: (_ctx, _id, _payload, errors) => errors.map(format),
      onNext: (_ctx, _id, _payload, _args, result) => (result.errors ? { ...result, errors: result.errors.map(format) } : undefined),
    },
    wss,
    options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
  );

  let closing: Promise<void> | undefined;
  // served.dispose() closes the WebSocketServer and detaches it from the HTTP server (which is closed by its owner).
  const close = () => (closing ??= goAway(wss, () => served.dispose()));
  return {
    get connections() {
      return wss.clients.size;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Closes every socket of `wss` with 1001 "Going away" and waits for the clients to answer, then
 * calls `dispose` (graphql-ws's, which closes the server). A client that never answers the close
 * frame must not hold the shutdown (nor the port): after {@link CLOSE_GRACE_MS} its socket is cut.
 */
export async function goAway(wss: WebSocketServer, dispose: () => void | Promise<void>): Promise<void> {
  const sockets = [...wss.clients];
  const closed = sockets.map(
    (socket) =>
      new Promise<void>((resolve) => {
        if (socket.readyState === socket.CLOSED) return resolve();
        socket.once('close', () => resolve());
      }),
  );
  for (const socket of sockets) socket.close(GOING_AWAY.code, GOING_AWAY.reason);
  await waitAtMost(Promise.all(closed), CLOSE_GRACE_MS);
  for (const socket of wss.clients) socket.terminate();
  await dispose();
}

/** The graphql-ws close codes a client can see from a subgraph, for tests and documentation. */
export const SUBSCRIPTION_CLOSE_CODES = {
  forbidden: CloseCode.Forbidden,
  connectionInitTimeout: CloseCode.ConnectionInitialisationTimeout,
  goingAway: GOING_AWAY.code,
} as const;
