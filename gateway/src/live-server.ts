/**
 * graphql-ws on the gateway's GraphQL path: authentication from `connectionParams`, documents
 * parsed and validated against the current API schema, subscriptions handed to
 * {@link LiveSubscriptions}, queries and mutations to Apollo Server, and one bounded queue of
 * undelivered messages per client connection.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { type ExecutionArgs, type ExecutionResult, type FormattedExecutionResult, GraphQLError } from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import type { SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { WebSocket } from 'ws';
import type { ApolloServer } from '@apollo/server';
import type { Viewer } from '@swiftcart/platform/auth';
import { ErrorCode } from '@swiftcart/platform/errors';
import type { Logger } from '@swiftcart/platform/logger';
import type { InputGuard } from '@swiftcart/platform/input';
import { type OperationLimits, costLimiter } from '@swiftcart/platform/limits';
import { OperationChecker, SocketCaller, graphqlSocketServer } from '@swiftcart/platform/ws';
import { type Clock, tokenExpiredError } from '@swiftcart/platform/expiry';
import { type Edge, RATE_LIMITED_CLOSE_CODE, rateLimitedError, subscriptionsPerSocketRefusal } from './edge.ts';
import type { Refusal } from './rate-limits.ts';
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
  /** Reconnection attempts to a subgraph before its subscriptions fail (about 30 s with the default). */
  readonly upstreamRetryAttempts: number;
}

/** Defaults of {@link LiveServerSettings}. */
export const DEFAULT_LIVE_SETTINGS: LiveServerSettings = {
  queueLimit: 256,
  keepAliveMs: 12_000,
  connectionInitTimeoutMs: 3_000,
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
  /** Refuses bad strings in documents and variables (platform/src/input.ts); default limits when absent. */
  readonly inputGuard?: InputGuard;
  /** The operation limits of HTTP requests (platform/src/limits.ts); none when null or absent (EDGE_LIMITS=off). */
  readonly limits?: OperationLimits | null;
  /**
   * Origin checks, rate limits and caps of sockets and subscriptions (gateway/src/edge.ts); none
   * when absent.
   */
  readonly edge?: Edge;
  /** When tokens expire (platform/src/expiry.ts); default `Date.now`. */
  readonly clock?: Clock;
}

/** A running live endpoint; dispose it to close every client connection. */
export interface LiveServer extends AsyncDisposable {
  close(): Promise<void>;
}

/** Per connection: who it is and what it has queued. */
interface Connection {
  readonly socket: WebSocket;
  /** Who connected, once `connection_init` was accepted (platform/src/ws.ts). */
  caller: SocketCaller | null;
  queued: number;
  /** {@link LiveServerSettings.queueLimit}. */
  readonly limit: number;
  readonly queues: Set<ClientQueue>;
  overflowed: boolean;
  /** The upgrade request: whom the socket counts for (gateway/src/edge.ts). */
  readonly request: IncomingMessage;
  /** Ids of the subscriptions open or being started, for {@link Edge.maxSubscriptionsPerSocket}. */
  readonly subscriptionIds: Set<string>;
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
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
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

/** Serves graphql-ws on the HTTP server's GraphQL path. */
export function startLiveServer<TContext extends { viewer: Viewer; authorization: string | undefined }>(options: LiveServerOptions<TContext>): LiveServer {
  const { engine, apollo, log, metrics, settings } = options;
  const connections = new WeakMap<WebSocket, Connection>();
  const { edge, clock } = options;
  // Origin, upgrades per window and open sockets per address, before any socket exists.
  const wss = graphqlSocketServer(options.server, edge?.verifyClient);
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    metrics.values.connections++;
    connections.set(socket, {
      socket,
      caller: null,
      queued: 0,
      queues: new Set(),
      overflowed: false,
      limit: settings.queueLimit,
      request,
      subscriptionIds: new Set(),
    });
    socket.once('close', () => {
      metrics.values.connections--;
      const connection = connections.get(socket);
      connection?.caller?.close();
      if (connection) for (const queue of [...connection.queues]) queue.abort();
    });
  });

  /** The token expired: every subscription gets UNAUTHENTICATED as its last message (platform/src/expiry.ts). */
  const endSubscriptions = (connection: Connection) => {
    const last: FormattedExecutionResult = { errors: [tokenExpiredError().toJSON()] };
    for (const queue of [...connection.queues]) {
      queue.push(last);
      queue.end();
    }
  };

  /**
   * The per-socket subscription cap, then the per-window count of subscriptions (or of queries and
   * mutations, shared with HTTP). The cap is taken before the first await, so subscriptions sent
   * in one burst are counted in the order they arrived.
   */
  const admit = async (connection: Connection, id: string, subscription: boolean): Promise<Refusal | null> => {
    if (!edge) return null;
    if (subscription) {
      if (connection.subscriptionIds.size >= edge.maxSubscriptionsPerSocket) return subscriptionsPerSocketRefusal(edge.maxSubscriptionsPerSocket);
      connection.subscriptionIds.add(id);
    }
    const refusal = await edge.admitOperation(edge.socketClient(connection.request), subscription ? 'subscription' : 'operation');
    if (refusal) connection.subscriptionIds.delete(id);
    return refusal;
  };

  // Checked as Apollo Server checks HTTP requests: tokens while parsing, the rest while validating.
  const checker = new OperationChecker({ limits: options.limits ?? null, inputGuard: options.inputGuard });
  const costOf = options.limits ? costLimiter(options.limits) : null;
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

  const server = useServer<Record<string, unknown> | undefined, { socket: WebSocket }>(
    {
      connectionInitWaitTimeout: settings.connectionInitTimeoutMs,
      onConnect: async (ctx) => {
        const connection = connections.get(ctx.extra.socket)!;
        try {
          const caller = await SocketCaller.verify(ctx.connectionParams, options.jwtSecret, clock);
          connection.caller = caller;
          // A token's sockets count for its subject from now on; one too many is closed (gateway/src/edge.ts).
          const refusal = await edge?.authenticate(connection.request, caller.viewer);
          if (refusal) {
            connection.socket.close(RATE_LIMITED_CLOSE_CODE, `${ErrorCode.RateLimited}: ${refusal.message}`.slice(0, 123));
            return false;
          }
          caller.watchExpiry(connection.socket, () => endSubscriptions(connection));
          return true;
        } catch {
          // graphql-ws closes with 4403 Forbidden.
          return false;
        }
      },
      onSubscribe: async (ctx, id, payload) => {
        const connection = connections.get(ctx.extra.socket)!;
        const expired = connection.caller?.refusal();
        if (expired) return [expired];
        const schema = engine.apiSchema;
        if (!schema) return [requestError('The gateway has no schema loaded yet', ErrorCode.InternalServerError)];
        // Subscriptions go to the engine (and its planner) without Apollo's plugins: bad input is refused here too.
        const checked = checker.check(schema, payload);
        if (!('document' in checked)) return checked;
        const { document, source, operation } = checked;
        const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {});
        if (coerced.errors) return coerced.errors.map((e) => requestError(e.message, ErrorCode.BadUserInput, e.nodes));
        // The cost depends on the variables (`first`), so it is checked once they are known, before planning.
        const tooCostly = costOf?.(schema, document, operation, payload.variables ?? undefined);
        if (tooCostly) return [tooCostly];
        // Counted last, so that only operations that would run use up the client's allowance.
        const refusal = await admit(connection, id, operation.operation === 'subscription');
        if (refusal) return [rateLimitedError(refusal)];
        const context: OperationContext = { connection, source, payload };
        return {
          schema,
          document,
          operationName: payload.operationName ?? undefined,
          variableValues: coerced.coerced,
          contextValue: context,
        } satisfies ExecutionArgs;
      },
      subscribe: (args) => {
        const { connection, source } = args.contextValue as OperationContext;
        const { viewer, authorization } = connection.caller!;
        const queue = new ClientQueue(connection, () => overflow(connection));
        try {
          queue.attach(
            engine.subscribe(
              {
                document: args.document,
                source,
                operationName: args.operationName ?? undefined,
                variables: (args.variableValues ?? {}) as Record<string, unknown>,
                authorization,
                context: { viewer, authorization },
              },
              queue,
            ),
          );
        } catch (error) {
          queue.abort();
          log.error({ err: error }, 'a subscription could not be started');
          return {
            errors: [
              new GraphQLError(`The subscription could not be started: ${(error as Error).message}`, { extensions: { code: ErrorCode.InternalServerError } }),
            ],
          };
        }
        // graphql-ws only iterates and calls return(); its type asks for a whole AsyncGenerator.
        return queue as unknown as AsyncGenerator<ExecutionResult>;
      },
      execute: async (args) => {
        const { connection, payload } = args.contextValue as OperationContext;
        const response = await apollo.executeOperation(
          { query: payload.query, variables: payload.variables ?? undefined, operationName: payload.operationName ?? undefined },
          { contextValue: { viewer: connection.caller!.viewer, authorization: connection.caller!.authorization } as TContext },
        );
        // Incremental delivery (@defer) is not offered over graphql-ws.
        return response.body.kind === 'single'
          ? (response.body.singleResult as never)
          : { errors: [new GraphQLError('Incremental delivery is not supported over graphql-ws')] };
      },
      // However an operation ends (server, client or socket): its place under the per-socket cap is free.
      onComplete: (ctx, id) => {
        connections.get(ctx.extra.socket)?.subscriptionIds.delete(id);
      },
      onNext: (_ctx, _id, _payload, _args, result) => {
        metrics.values.messagesSent++;
        // Results are formatted already (engine and Apollo Server); send them as they are.
        return result as FormattedExecutionResult;
      },
    },
    wss,
    settings.keepAliveMs,
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      engine.close();
      // Let the SHUTTING_DOWN messages reach the clients before graphql-ws closes them with 1001.
      await new Promise((resolve) => setImmediate(resolve));
      await server.dispose();
    })());
  return { close, [Symbol.asyncDispose]: close };
}
