/**
 * graphql-ws on the gateway's GraphQL path: authentication from `connectionParams`, documents
 * parsed and validated against the current API schema, subscriptions handed to
 * {@link LiveSubscriptions}, queries and mutations to Apollo Server, and one bounded queue of
 * undelivered messages per client connection.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { type ExecutionArgs, type ExecutionResult, type FormattedExecutionResult, GraphQLError } from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import type { Socket } from 'node:net';
import { MessageType, type SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { WebSocket } from 'ws';
import type { ApolloServer } from '@apollo/server';
import type { VerificationSecrets, Viewer } from '@swiftcart/platform/auth';
import { ErrorCode } from '@swiftcart/platform/errors';
import type { Logger } from '@swiftcart/platform/logger';
import type { InputGuard } from '@swiftcart/platform/input';
import { type OperationLimits, costLimiter } from '@swiftcart/platform/limits';
import { OperationChecker, SocketCaller, goAway, graphqlSocketServer } from '@swiftcart/platform/ws';
import { type Clock, tokenExpiredError } from '@swiftcart/platform/expiry';
import { type Edge, RATE_LIMITED_CLOSE_CODE, rateLimitedError, subscriptionsPerSocketRefusal } from './edge.ts';
import type { Refusal } from './rate-limits.ts';
import type { LiveMetrics } from './live-metrics.ts';
import type { ClientSink, LiveSubscriptions } from './subscriptions.ts';
import { NOT_IN_LIST, type TrustedDocuments } from './trusted-documents.ts';

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
  /** The secrets a token may be signed with (`Config.acceptedJwtSecrets`). */
  readonly jwtSecret: VerificationSecrets;
  readonly log: Logger;
  readonly metrics: LiveMetrics;
  readonly settings: LiveServerSettings;
  /** Refuses bad strings in documents and variables (platform/src/input.ts); default limits when absent. */
  readonly inputGuard?: InputGuard;
  /** Which documents may run (trusted-documents.ts); any when absent. */
  readonly trusted?: TrustedDocuments;
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
  /** Messages handed to ws and not yet written to the kernel. */
  queued: number;
  /** ws's write callback: one per connection, not one closure per message. */
  readonly written: () => void;
  /** Whether the TCP socket is corked until the end of this tick ({@link send}). */
  corked: boolean;
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
  /** The graphql-ws id of the operation. */
  readonly id: string;
  readonly source: string;
  readonly payload: SubscribePayload;
}

function requestError(message: string, code: string, nodes?: GraphQLError['nodes']): GraphQLError {
  return new GraphQLError(message, { nodes, extensions: { code } });
}

/**
 * The `payload` of a `next` message as JSON. The engine hands one result object to every client of
 * a group in one synchronous loop, so it is serialised once per event and group, not once per
 * subscriber. The texts are forgotten at the end of the tick: the engine keeps each group's latest
 * result for newcomers, and texts kept as long would outlive V8's young generation and be
 * collected only by a full collection, whose pause is what a live client waits through.
 */
let serialised: Map<FormattedExecutionResult, string> | null = null;
function payloadJson(result: FormattedExecutionResult): string {
  if (!serialised) {
    serialised = new Map();
    process.nextTick(() => {
      serialised = null;
    });
  }
  let json = serialised.get(result);
  if (json === undefined) serialised.set(result, (json = JSON.stringify(result)));
  return json;
}

/**
 * Sends one message on a connection, counted in {@link Connection.queued} until ws has handed it
 * to the kernel. The TCP socket is corked until the end of the tick, so what one tick sends to one
 * client (several subscriptions' events, a burst of one) leaves in one write. ws has no public
 * cork; `_socket` is the net.Socket it writes to.
 */
function send(connection: Connection, frame: string): void {
  connection.queued++;
  const raw = (connection.socket as unknown as { _socket?: Socket })._socket;
  if (raw && !connection.corked) {
    connection.corked = true;
    raw.cork();
    process.nextTick(() => {
      connection.corked = false;
      raw.uncork();
    });
  }
  connection.socket.send(frame, connection.written);
}

/**
 * One client subscription: the engine's results go straight to the socket as graphql-ws `next`
 * messages (graphql-ws would serialise each result again per subscriber, and await each write
 * before taking the next). graphql-ws still owns the subscription's life: it iterates this queue,
 * which yields nothing and ends when the engine ends it, and then sends `complete`. A client whose
 * connection has more than {@link LiveServerSettings.queueLimit} messages not yet written to the
 * kernel is too slow.
 */
class ClientQueue implements ClientSink, AsyncIterableIterator<FormattedExecutionResult> {
  readonly #connection: Connection;
  readonly #onOverflow: () => void;
  /** `{"id":…,"type":"next","payload":` for this subscription. */
  readonly #prefix: string;
  readonly #metrics: LiveMetrics;
  #waiting: ((result: IteratorResult<FormattedExecutionResult>) => void) | null = null;
  #ended = false;
  #unsubscribe: (() => void) | null = null;
  #released = false;

  constructor(connection: Connection, id: string, metrics: LiveMetrics, onOverflow: () => void) {
    this.#connection = connection;
    this.#onOverflow = onOverflow;
    this.#metrics = metrics;
    this.#prefix = `{"id":${JSON.stringify(id)},"type":"${MessageType.Next}","payload":`;
    connection.queues.add(this);
  }

  push(result: FormattedExecutionResult): void {
    if (this.#ended || this.#connection.overflowed) return;
    send(this.#connection, `${this.#prefix}${payloadJson(result)}}`);
    this.#metrics.values.messagesSent++;
    if (this.#connection.queued > this.#connection.limit) this.#onOverflow();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = null;
      // graphql-ws will not call next() again after this: the subscription is over here.
      this.#release();
      resolve({ value: undefined, done: true });
    }
  }

  /** Ends at once, sending nothing more (the client left, or its connection is being closed). */
  abort(): void {
    this.end();
    this.#release();
  }

  next(): Promise<IteratorResult<FormattedExecutionResult>> {
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
    const connection: Connection = {
      socket,
      caller: null,
      queued: 0,
      written: () => {
        connection.queued--;
      },
      corked: false,
      queues: new Set(),
      overflowed: false,
      limit: settings.queueLimit,
      request,
      subscriptionIds: new Set(),
    };
    connections.set(socket, connection);
    socket.once('close', () => {
      metrics.values.connections--;
      connection.caller?.close();
      for (const queue of [...connection.queues]) queue.abort();
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
        const untrusted = options.trusted?.enforced
          ? await options.trusted.admit({ query: payload.query, id: undefined }, async () => connection.caller!.viewer)
          : null;
        if (untrusted) return [requestError(untrusted, NOT_IN_LIST)];
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
        const context: OperationContext = { connection, id, source, payload };
        return {
          schema,
          document,
          operationName: payload.operationName ?? undefined,
          variableValues: coerced.coerced,
          contextValue: context,
        } satisfies ExecutionArgs;
      },
      subscribe: (args) => {
        const { connection, id, source } = args.contextValue as OperationContext;
        const { viewer, authorization } = connection.caller!;
        const queue = new ClientQueue(connection, id, metrics, () => overflow(connection));
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
          // Already the client's answer (SHUTTING_DOWN).
          if (error instanceof GraphQLError) return { errors: [error] };
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
      // Results of queries and mutations (subscriptions' go straight to the socket, ClientQueue).
      onNext: (_ctx, _id, _payload, _args, result) => {
        metrics.values.messagesSent++;
        // Formatted already by Apollo Server: send it as it is.
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
      // graphql-ws clients that retry reconnect (to another replica) and resubscribe.
      await goAway(wss, () => server.dispose());
    })());
  return { close, [Symbol.asyncDispose]: close };
}
