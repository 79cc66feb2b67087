/**
 * graphql-ws on the gateway's GraphQL path: authentication from `connectionParams`, documents
 * parsed and validated against the current API schema, subscriptions handed to
 * {@link LiveSubscriptions}, queries and mutations to Apollo Server, and one bounded queue of
 * undelivered messages per client connection.
 */
import type { Server as HttpServer } from 'node:http';
import {
  type DocumentNode, type ExecutionArgs, type ExecutionResult, type FormattedExecutionResult, GraphQLError, type GraphQLSchema,
  getOperationAST, parse, print, validate,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import type { SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ApolloServer } from '@apollo/server';
import { type Viewer, viewerFromAuthorization } from '@swiftcart/platform/auth';
import { ErrorCode } from '@swiftcart/platform/errors';
import { MAX_BODY_BYTES, PATHS } from '@swiftcart/platform/http';
import type { Logger } from '@swiftcart/platform/logger';
import { authorizationParam } from '@swiftcart/platform/ws';
import type { LiveMetrics } from './live-metrics.ts';
import type { ClientSink, LiveSubscriptions } from './subscriptions.ts';

/** Close code for a client whose queue overflowed: the standard "policy violation". */
export const SLOW_CLIENT_CLOSE_CODE = 1008;

/** Tunables of the live endpoint. */
export interface LiveServerSettings {
  /** Undelivered messages one connection may have waiting before it is closed as too slow. */
  readonly queueLimit: number;
  /** Interval of server pings; a client that does not answer one within it is dropped. */
  readonly keepAliveMs: number;
  /** How long a new connection has to send `connection_init`. */
  readonly connectionInitTimeoutMs: number;
  /** Parser token limit, the same as for HTTP requests. */
  readonly maxTokens: number;
  /** Reconnection attempts to a subgraph before its subscriptions fail (about 30 s with the default). */
  readonly upstreamRetryAttempts: number;
}

/** Defaults of {@link LiveServerSettings}. */
export const DEFAULT_LIVE_SETTINGS: LiveServerSettings = {
  queueLimit: 256,
  keepAliveMs: 12_000,
  connectionInitTimeoutMs: 3_000,
  maxTokens: 15_000,
  upstreamRetryAttempts: 18,
};

/** What a started live endpoint needs. */
export interface LiveServerOptions<TContext extends { viewer: Viewer; authorization: string | undefined }> {
  readonly server: HttpServer;
  readonly engine: LiveSubscriptions;
  readonly apollo: ApolloServer<TContext>;
  readonly jwtSecret: string;
  readonly log: Logger;
  readonly metrics: LiveMetrics;
  readonly settings: LiveServerSettings;
}

/** A running live endpoint; dispose it to close every client connection. */
export interface LiveServer extends AsyncDisposable {
  close(): Promise<void>;
}

/** Per connection: who it is and what it has queued. */
interface Connection {
  readonly socket: WebSocket;
  viewer: Viewer | null;
  authorization: string | undefined;
  queued: number;
  /** {@link LiveServerSettings.queueLimit}. */
  readonly limit: number;
  readonly queues: Set<ClientQueue>;
  overflowed: boolean;
}

/** What onSubscribe hands to execute/subscribe. */
interface OperationContext {
  readonly connection: Connection;
  readonly source: string;
  readonly payload: SubscribePayload;
}

function requestError(message: string, code: string, nodes?: GraphQLError['nodes']): GraphQLError {
  return new GraphQLError(message, { nodes, extensions: { code } });
}

/**
 * One client subscription's messages on their way to the socket. graphql-ws pulls the next message
 * only once the previous one was written, so a client that cannot keep up makes this queue grow;
 * the connection's total is capped by {@link LiveServerSettings.queueLimit}.
 */
class ClientQueue implements ClientSink, AsyncIterableIterator<FormattedExecutionResult> {
  readonly #connection: Connection;
  readonly #onOverflow: () => void;
  readonly #buffer: FormattedExecutionResult[] = [];
  #waiting: ((result: IteratorResult<FormattedExecutionResult>) => void) | null = null;
  #ended = false;
  #unsubscribe: (() => void) | null = null;
  #released = false;

  constructor(connection: Connection, onOverflow: () => void) {
    this.#connection = connection;
    this.#onOverflow = onOverflow;
    connection.queues.add(this);
  }

  push(result: FormattedExecutionResult): void {
    if (this.#ended) return;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = null;
      resolve({ value: result, done: false });
      return;
    }
    this.#buffer.push(result);
    if (++this.#connection.queued > this.#connection.limit) this.#onOverflow();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#buffer.length === 0 && this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = null;
      resolve({ value: undefined, done: true });
    }
  }

  /** Drops everything waiting and ends at once (the connection is being closed). */
  abort(): void {
    this.#connection.queued -= this.#buffer.length;
    this.#buffer.length = 0;
    this.end();
    this.#release();
  }

  next(): Promise<IteratorResult<FormattedExecutionResult>> {
    const value = this.#buffer.shift();
    if (value !== undefined) {
      this.#connection.queued--;
      return Promise.resolve({ value, done: false });
    }
    if (this.#ended) {
      this.#release();
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve) => { this.#waiting = resolve; });
  }

  /** graphql-ws calls this when the client completes or disconnects. */
  return(): Promise<IteratorResult<FormattedExecutionResult>> {
    this.abort();
    return Promise.resolve({ value: undefined, done: true });
  }

  /**
   * Hands over the function that ends the engine's subscription. The engine replays the current
   * state while subscribing, which may already overflow the connection: then it is called at once.
   */
  attach(unsubscribe: () => void): void {
    if (this.#released) unsubscribe();
    else this.#unsubscribe = unsubscribe;
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#connection.queues.delete(this);
    this.#unsubscribe?.();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Documents kept parsed and validated; storefronts send a handful of distinct ones. */
const MAX_CACHED_DOCUMENTS = 1_000;

/**
 * Parsed and validated documents by their text, per schema: 10,000 storefronts subscribing with
 * the same document are parsed and validated once. A new schema starts an empty cache.
 */
class DocumentCache {
  readonly #maxTokens: number;
  #schema: GraphQLSchema | null = null;
  readonly #entries = new Map<string, { document: DocumentNode; source: string } | { errors: readonly GraphQLError[] }>();

  constructor(maxTokens: number) {
    this.#maxTokens = maxTokens;
  }

  check(schema: GraphQLSchema, query: string): { document: DocumentNode; source: string } | { errors: readonly GraphQLError[] } {
    if (schema !== this.#schema) {
      this.#schema = schema;
      this.#entries.clear();
    }
    let entry = this.#entries.get(query);
    if (!entry) {
      entry = this.#compute(schema, query);
      if (this.#entries.size >= MAX_CACHED_DOCUMENTS) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(query, entry);
    }
    return entry;
  }

  #compute(schema: GraphQLSchema, query: string): { document: DocumentNode; source: string } | { errors: readonly GraphQLError[] } {
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: this.#maxTokens });
    } catch (error) {
      return { errors: [requestError((error as Error).message, 'GRAPHQL_PARSE_FAILED')] };
    }
    const invalid = validate(schema, document);
    if (invalid.length) return { errors: invalid.map((e) => requestError(e.message, 'GRAPHQL_VALIDATION_FAILED', e.nodes)) };
    return { document, source: print(document) };
  }
}

/** Serves graphql-ws on the HTTP server's GraphQL path. */
export function startLiveServer<TContext extends { viewer: Viewer; authorization: string | undefined }>(
  options: LiveServerOptions<TContext>,
): LiveServer {
  const { engine, apollo, log, metrics, settings } = options;
  const connections = new WeakMap<WebSocket, Connection>();
  const wss = new WebSocketServer({ server: options.server, path: PATHS.graphql, maxPayload: MAX_BODY_BYTES });
  wss.on('connection', (socket: WebSocket) => {
    metrics.values.connections++;
    connections.set(socket, { socket, viewer: null, authorization: undefined, queued: 0, queues: new Set(), overflowed: false, limit: settings.queueLimit });
    socket.once('close', () => {
      metrics.values.connections--;
      const connection = connections.get(socket);
      if (connection) for (const queue of [...connection.queues]) queue.abort();
    });
  });

  const documents = new DocumentCache(settings.maxTokens);
  const overflow = (connection: Connection) => {
    if (connection.overflowed) return;
    connection.overflowed = true;
    metrics.values.slowClientsClosed++;
    log.warn({ queued: connection.queued, limit: settings.queueLimit }, 'closing a client that does not keep up with its subscriptions');
    for (const queue of [...connection.queues]) queue.abort();
    connection.socket.close(SLOW_CLIENT_CLOSE_CODE, `Slow client: more than ${settings.queueLimit} messages waiting`);
    // A client that does not read will not answer the close handshake either.
    setTimeout(() => connection.socket.terminate(), 1_000).unref();
  };

  const server = useServer<Record<string, unknown> | undefined, { socket: WebSocket }>({
    connectionInitWaitTimeout: settings.connectionInitTimeoutMs,
    onConnect: async (ctx) => {
      const connection = connections.get(ctx.extra.socket)!;
      try {
        const authorization = authorizationParam(ctx.connectionParams);
        connection.viewer = await viewerFromAuthorization(authorization, options.jwtSecret);
        connection.authorization = authorization;
        return true;
      } catch {
        // graphql-ws closes with 4403 Forbidden.
        return false;
      }
    },
    onSubscribe: (ctx, _id, payload) => {
      const connection = connections.get(ctx.extra.socket)!;
      const schema = engine.apiSchema;
      if (!schema) return [requestError('The gateway has no schema loaded yet', ErrorCode.InternalServerError)];
      const checked = documents.check(schema, payload.query);
      if ('errors' in checked) return checked.errors;
      const { document, source } = checked;
      const operation = getOperationAST(document, payload.operationName);
      if (!operation) {
        return [requestError(payload.operationName ? `Unknown operation named "${payload.operationName}"` : 'The document must contain exactly one operation, or name one', 'OPERATION_RESOLUTION_FAILURE')];
      }
      const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {});
      if (coerced.errors) return coerced.errors.map((e) => requestError(e.message, ErrorCode.BadUserInput, e.nodes));
      const context: OperationContext = { connection, source, payload };
      return { schema, document, operationName: payload.operationName ?? undefined, variableValues: coerced.coerced, contextValue: context } satisfies ExecutionArgs;
    },
    subscribe: (args) => {
      const { connection, source } = args.contextValue as OperationContext;
      const queue = new ClientQueue(connection, () => overflow(connection));
      try {
        queue.attach(engine.subscribe({
          document: args.document,
          source,
          operationName: args.operationName ?? undefined,
          variables: (args.variableValues ?? {}) as Record<string, unknown>,
          authorization: connection.authorization,
          context: { viewer: connection.viewer, authorization: connection.authorization },
        }, queue));
      } catch (error) {
        queue.abort();
        log.error({ err: error }, 'a subscription could not be started');
        return { errors: [new GraphQLError(`The subscription could not be started: ${(error as Error).message}`, { extensions: { code: ErrorCode.InternalServerError } })] };
      }
      // graphql-ws only iterates and calls return(); its type asks for a whole AsyncGenerator.
      return queue as unknown as AsyncGenerator<ExecutionResult>;
    },
    execute: async (args) => {
      const { connection, payload } = args.contextValue as OperationContext;
      const response = await apollo.executeOperation(
        { query: payload.query, variables: payload.variables ?? undefined, operationName: payload.operationName ?? undefined },
        { contextValue: { viewer: connection.viewer!, authorization: connection.authorization } as TContext },
      );
      // Incremental delivery (@defer) is not offered over graphql-ws.
      return response.body.kind === 'single' ? response.body.singleResult as never : { errors: [new GraphQLError('Incremental delivery is not supported over graphql-ws')] };
    },
    onNext: (_ctx, _id, _payload, _args, result) => {
      metrics.values.messagesSent++;
      // Results are formatted already (engine and Apollo Server); send them as they are.
      return result as FormattedExecutionResult;
    },
  }, wss, settings.keepAliveMs);

  let closing: Promise<void> | undefined;
  const close = () => (closing ??= (async () => {
    engine.close();
    // Let the SHUTTING_DOWN messages reach the clients before graphql-ws closes them with 1001.
    await new Promise((resolve) => setImmediate(resolve));
    await server.dispose();
  })());
  return { close, [Symbol.asyncDispose]: close };
}
